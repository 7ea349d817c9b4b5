//! SQL checked for balanced, complete statements: parentheses that match, strings, quoted
//! identifiers, comments and dollar quotes that end, no statement ending inside
//! parentheses, and a `;` after the last statement. It does not know SQL's grammar, so it
//! catches truncated and mangled files, not misspelt keywords.

use crate::Problem;

/// Where a construct began: a 1-based line and column.
type At = (usize, usize);

pub(crate) fn check(content: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let chars: Vec<char> = content.chars().collect();
    let (mut line, mut column) = (1, 1);
    let mut open: Vec<At> = Vec::new();
    // Where the statement being read began, once it has any content.
    let mut statement: Option<At> = None;
    let mut i = 0;

    // Advances over `n` characters, keeping the position.
    let advance = |i: &mut usize, n: usize, line: &mut usize, column: &mut usize| {
        for c in &chars[*i..(*i + n).min(chars.len())] {
            if *c == '\n' {
                *line += 1;
                *column = 1;
            } else {
                *column += 1;
            }
        }
        *i += n;
    };
    let starts_with = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(i + k) == Some(&c))
    };

    while i < chars.len() {
        let c = chars[i];
        let here = (line, column);
        if starts_with(i, "--") {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, 1, &mut line, &mut column);
            }
            continue;
        }
        if starts_with(i, "/*") {
            // PostgreSQL's block comments nest.
            let mut depth = 0;
            loop {
                if i >= chars.len() {
                    problems.push(Problem::new(here.0, here.1, "unterminated `/*` comment"));
                    return problems;
                }
                if starts_with(i, "/*") {
                    depth += 1;
                    advance(&mut i, 2, &mut line, &mut column);
                } else if starts_with(i, "*/") {
                    depth -= 1;
                    advance(&mut i, 2, &mut line, &mut column);
                    if depth == 0 {
                        break;
                    }
                } else {
                    advance(&mut i, 1, &mut line, &mut column);
                }
            }
            continue;
        }
        if !c.is_whitespace() && c != ';' {
            statement.get_or_insert(here);
        }
        match c {
            '\'' | '"' => {
                let what = if c == '\'' {
                    "string"
                } else {
                    "quoted identifier"
                };
                advance(&mut i, 1, &mut line, &mut column);
                loop {
                    if i >= chars.len() {
                        problems.push(Problem::new(here.0, here.1, format!("unterminated {what}")));
                        return problems;
                    }
                    if chars[i] == c {
                        // A doubled quote is an escaped quote.
                        if chars.get(i + 1) == Some(&c) {
                            advance(&mut i, 2, &mut line, &mut column);
                            continue;
                        }
                        advance(&mut i, 1, &mut line, &mut column);
                        break;
                    }
                    advance(&mut i, 1, &mut line, &mut column);
                }
            }
            '$' => match dollar_tag(&chars[i..]) {
                Some(tag) => {
                    let tag_len = tag.chars().count();
                    advance(&mut i, tag_len, &mut line, &mut column);
                    loop {
                        if i >= chars.len() {
                            problems.push(Problem::new(
                                here.0,
                                here.1,
                                format!("unterminated dollar-quoted string `{tag}`"),
                            ));
                            return problems;
                        }
                        if starts_with(i, &tag) {
                            advance(&mut i, tag_len, &mut line, &mut column);
                            break;
                        }
                        advance(&mut i, 1, &mut line, &mut column);
                    }
                }
                None => advance(&mut i, 1, &mut line, &mut column),
            },
            '(' => {
                open.push(here);
                advance(&mut i, 1, &mut line, &mut column);
            }
            ')' => {
                if open.pop().is_none() {
                    problems.push(Problem::new(here.0, here.1, "`)` without a matching `(`"));
                }
                advance(&mut i, 1, &mut line, &mut column);
            }
            ';' => {
                for (l, col) in open.drain(..) {
                    problems.push(Problem::new(
                        l,
                        col,
                        format!("`(` is not closed before the `;` on line {}", here.0),
                    ));
                }
                statement = None;
                advance(&mut i, 1, &mut line, &mut column);
            }
            _ => advance(&mut i, 1, &mut line, &mut column),
        }
    }
    for (l, col) in open {
        problems.push(Problem::new(l, col, "`(` is never closed"));
    }
    if let Some((l, col)) = statement {
        problems.push(Problem::new(
            l,
            col,
            "the last statement does not end with `;` (incomplete statement)",
        ));
    }
    problems
}

/// The dollar-quote tag starting at `chars[0]` (`$$` or `$name$`), if it is one; `$1`
/// (a parameter) is not.
fn dollar_tag(chars: &[char]) -> Option<String> {
    let mut tag = String::from("$");
    for (k, c) in chars.iter().enumerate().skip(1) {
        match c {
            '$' => {
                tag.push('$');
                return Some(tag);
            }
            c if c.is_alphabetic() || *c == '_' || (c.is_ascii_digit() && k > 1) => tag.push(*c),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(sql: &str) -> Vec<(u32, String)> {
        check(sql)
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    #[test]
    fn complete_statements_pass() {
        assert!(
            messages(
                "-- a comment; with a semicolon\n\
                 /* nested /* comment */ ( */\n\
                 CREATE TABLE \"odd;name\" (id int, body text DEFAULT 'a ( b');\n\
                 SELECT $1, $tag$ ) ; $tag$;\n"
            )
            .is_empty()
        );
        assert!(messages("").is_empty());
    }

    #[test]
    fn broken_statements_are_reported_where_they_start() {
        assert_eq!(
            messages("CREATE TABLE a (\n  id int,\n  name text\n;\n"),
            [(1, "`(` is not closed before the `;` on line 4".to_owned())]
        );
        assert_eq!(
            messages("SELECT 1;\nSELECT (2));\n"),
            [(2, "`)` without a matching `(`".to_owned())]
        );
        assert_eq!(
            messages("SELECT 1;\nINSERT INTO t VALUES (1)\n"),
            [(
                2,
                "the last statement does not end with `;` (incomplete statement)".to_owned()
            )]
        );
        assert_eq!(
            messages("SELECT 'abc;\n"),
            [(1, "unterminated string".to_owned())]
        );
        assert_eq!(
            messages("SELECT 1;\n/* open\n"),
            [(2, "unterminated `/*` comment".to_owned())]
        );
        assert_eq!(
            messages("CREATE FUNCTION f() AS $body$ SELECT 1;\n"),
            [(1, "unterminated dollar-quoted string `$body$`".to_owned())]
        );
    }
}
