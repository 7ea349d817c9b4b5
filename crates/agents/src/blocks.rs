//! Reading an agent's markdown answer: its summary and its fenced code blocks.
//!
//! The convention the prompts teach: each file is a fenced block whose info string is the
//! language followed by `path=<relative path>`, e.g. ```` ```ts path=src/app.ts ````.

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

/// A code block of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBlock {
    pub language: Option<String>,
    /// The `path=` attribute, as written.
    pub path: Option<String>,
    /// The info string has the word `findings`: a review's structured findings, not a file.
    pub findings: bool,
    pub content: String,
    /// Its closing fence is there. An unclosed block runs to the end of the answer, which
    /// is how an answer cut off in the middle of a file ends.
    pub closed: bool,
}

/// An answer split into prose and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The prose before the first code block, on one line.
    pub summary: String,
    pub blocks: Vec<CodeBlock>,
}

/// Splits a markdown answer with a markdown parser (fences inside lists, longer fences and
/// tildes all work).
pub fn parse_answer(markdown: &str) -> Answer {
    let mut summary = String::new();
    let mut blocks = Vec::new();
    let mut current: Option<CodeBlock> = None;
    for (event, range) in Parser::new(markdown).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let (language, path, findings, closed) = match kind {
                    CodeBlockKind::Fenced(info) => {
                        let (language, path) = parse_info(&info);
                        let findings = info.split_whitespace().any(|t| t == "findings");
                        (
                            language,
                            path,
                            findings,
                            has_closing_fence(&markdown[range]),
                        )
                    }
                    CodeBlockKind::Indented => (None, None, false, true),
                };
                current = Some(CodeBlock {
                    language,
                    path,
                    findings,
                    content: String::new(),
                    closed,
                });
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(current.take()),
            Event::Text(text) => match current.as_mut() {
                Some(block) => block.content.push_str(&text),
                None if blocks.is_empty() => summary.push_str(&text),
                None => {}
            },
            Event::Code(code) if current.is_none() && blocks.is_empty() => {
                summary.push('`');
                summary.push_str(&code);
                summary.push('`');
            }
            Event::SoftBreak | Event::HardBreak | Event::End(TagEnd::Paragraph)
                if current.is_none() && blocks.is_empty() =>
            {
                summary.push(' ');
            }
            _ => {}
        }
    }
    Answer {
        summary: summary.split_whitespace().collect::<Vec<_>>().join(" "),
        blocks,
    }
}

/// Whether a fenced block's source (opening fence to the end of the block) ends with a
/// closing fence: a line of at least as many of the same fence characters.
fn has_closing_fence(block: &str) -> bool {
    let opening = block.trim_start_matches(' ');
    let Some(fence_char) = opening.chars().next().filter(|c| matches!(c, '`' | '~')) else {
        return false;
    };
    let width = opening.chars().take_while(|c| *c == fence_char).count();
    let mut lines = block.trim_end().lines();
    lines.next(); // the opening fence
    lines.next_back().is_some_and(|last| {
        let last = last.trim();
        last.chars().take_while(|c| *c == fence_char).count() >= width
            && last.chars().all(|c| c == fence_char)
    })
}

/// `ts path=src/app.ts` → (`ts`, `src/app.ts`); the path may be quoted.
fn parse_info(info: &str) -> (Option<String>, Option<String>) {
    let mut language = None;
    let mut path = None;
    let mut rest = info.trim();
    while !rest.is_empty() {
        let (token, tail) = if let Some(value) = rest.strip_prefix("path=\"") {
            match value.find('"') {
                Some(end) => (&rest[..6 + end + 1], &value[end + 1..]),
                None => (rest, ""),
            }
        } else {
            rest.split_once(char::is_whitespace).unwrap_or((rest, ""))
        };
        if let Some(value) = token.strip_prefix("path=") {
            path = Some(value.trim_matches('"').to_owned());
        } else if language.is_none() && !token.contains('=') && token != "findings" {
            language = Some(token.to_owned());
        }
        rest = tail.trim_start();
    }
    (language, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_carry_language_path_and_exact_content() {
        let answer = parse_answer(
            "Wrote the `app` and\nits schema.\n\n\
             ```ts path=src/app.ts\nconst a = 1;\n```\n\n\
             Some words between.\n\n\
             ~~~sql path=\"db/schema file.sql\"\nCREATE TABLE t (id int);\n~~~\n\n\
             ````markdown path=README.md\n```js\nnested\n```\n````\n",
        );
        assert_eq!(answer.summary, "Wrote the `app` and its schema.");
        assert_eq!(
            answer.blocks,
            vec![
                CodeBlock {
                    language: Some("ts".into()),
                    path: Some("src/app.ts".into()),
                    findings: false,
                    content: "const a = 1;\n".into(),
                    closed: true,
                },
                CodeBlock {
                    language: Some("sql".into()),
                    path: Some("db/schema file.sql".into()),
                    findings: false,
                    content: "CREATE TABLE t (id int);\n".into(),
                    closed: true,
                },
                CodeBlock {
                    language: Some("markdown".into()),
                    path: Some("README.md".into()),
                    findings: false,
                    content: "```js\nnested\n```\n".into(),
                    closed: true,
                },
            ]
        );
    }

    #[test]
    fn blocks_without_a_path_are_kept_for_reporting() {
        let answer = parse_answer("Example:\n\n```python\nprint(1)\n```\n\n    indented code\n");
        assert_eq!(answer.blocks.len(), 2);
        assert!(answer.blocks.iter().all(|b| b.path.is_none()));
    }

    #[test]
    fn a_block_cut_off_by_the_end_of_the_answer_is_unclosed() {
        let answer = parse_answer(
            "Files.\n\n```ts path=a.ts\nlet a = 1;\n```\n\n````markdown path=README.md\n# App\n```sh\nnpm ins",
        );
        assert!(answer.blocks[0].closed);
        assert!(!answer.blocks[1].closed);
        assert_eq!(answer.blocks[1].content, "# App\n```sh\nnpm ins");
        let empty = parse_answer("```ts path=b.ts\n");
        assert!(!empty.blocks[0].closed);
        let tilde = parse_answer("~~~py path=c.py\nx = 1\n~~~~\n");
        assert!(tilde.blocks[0].closed);
    }

    #[test]
    fn findings_blocks_are_marked() {
        let answer = parse_answer("Review.\n\n```json findings\n{\"findings\": []}\n```\n");
        assert!(answer.blocks[0].findings);
        assert_eq!(answer.blocks[0].language.as_deref(), Some("json"));
        assert_eq!(answer.blocks[0].path, None);
    }

    #[test]
    fn a_path_may_come_first() {
        assert_eq!(
            parse_info("path=a/b.rs rust"),
            (Some("rust".into()), Some("a/b.rs".into()))
        );
    }
}
