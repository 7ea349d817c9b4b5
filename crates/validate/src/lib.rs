//! Checking generated files by their type, so a broken file is caught before anyone runs it.
//!
//! Python, JavaScript (and JSX), TypeScript, TSX and Rust are parsed with their tree-sitter
//! grammars; JSON, YAML and TOML with their parsers; SQL by a statement scanner, which finds
//! unbalanced parentheses, unterminated strings, comments and dollar quotes, and statements
//! missing their `;`. Other types are `unchecked`.

mod interface;
mod sql;
mod syntax;

pub use interface::{Interface, interface};

use serde::{Deserialize, Serialize};

/// At most this many problems are reported per file: the first ones are the useful ones.
pub const MAX_PROBLEMS: usize = 10;

/// The problem of a file cut off by the model's length limit.
pub const CUT_OFF: &str =
    "the model's answer was cut off at its length limit while writing this file: it is incomplete";

/// A file's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub status: Status,
    /// What checked it: `tree-sitter-python`, `serde_json`, `sql-statements`, ...
    pub checker: Option<String>,
    /// Empty unless `invalid`.
    pub errors: Vec<Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Valid,
    Invalid,
    /// No checker for this type of file.
    Unchecked,
}

/// One problem, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            message: message.into(),
        }
    }
}

impl Validation {
    fn from_problems(checker: &str, mut errors: Vec<Problem>) -> Self {
        errors.truncate(MAX_PROBLEMS);
        Self {
            status: if errors.is_empty() {
                Status::Valid
            } else {
                Status::Invalid
            },
            checker: Some(checker.to_owned()),
            errors,
        }
    }

    fn unchecked() -> Self {
        Self {
            status: Status::Unchecked,
            checker: None,
            errors: Vec::new(),
        }
    }

    pub fn is_invalid(&self) -> bool {
        self.status == Status::Invalid
    }

    /// Adds problems a later check found (the design's, at line 1): the file is invalid,
    /// whatever its parser said; `checker` names both (`tree-sitter-typescript, design`).
    pub fn add_problems(&mut self, checker: &str, problems: impl IntoIterator<Item = String>) {
        let before = self.errors.len();
        self.errors
            .extend(problems.into_iter().map(|m| Problem::new(1, 1, m)));
        if self.errors.len() == before {
            return;
        }
        self.errors.truncate(MAX_PROBLEMS);
        self.status = Status::Invalid;
        self.checker = Some(match self.checker.take() {
            Some(first) if first != checker => format!("{first}, {checker}"),
            _ => checker.to_owned(),
        });
    }

    /// Marks a file the model was still writing when its answer hit the length limit: it
    /// is incomplete, whatever its checker said, and the first problem says so at its last
    /// line.
    pub fn mark_cut_off(&mut self, last_line: usize) {
        self.status = Status::Invalid;
        self.checker.get_or_insert_with(|| "stop_reason".to_owned());
        self.errors.insert(0, Problem::new(last_line, 1, CUT_OFF));
        self.errors.truncate(MAX_PROBLEMS);
    }

    /// The errors, one per line: `line 3, column 5: missing `}``.
    pub fn describe(&self) -> String {
        self.errors
            .iter()
            .map(|p| format!("line {}, column {}: {}", p.line, p.column, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Checks `content` as a file of `language` (as named by the agents' `language_of`:
/// `python`, `typescript`, `tsx`, `javascript`, `jsx`, `rust`, `json`, `yaml`, `toml`,
/// `sql`); any other language is unchecked.
pub fn validate(language: Option<&str>, content: &str) -> Validation {
    match language {
        Some("python") => syntax::check(syntax::Grammar::Python, content),
        Some("javascript" | "jsx") => syntax::check(syntax::Grammar::JavaScript, content),
        Some("typescript") => syntax::check(syntax::Grammar::TypeScript, content),
        Some("tsx") => syntax::check(syntax::Grammar::Tsx, content),
        Some("rust") => syntax::check(syntax::Grammar::Rust, content),
        Some("json") => Validation::from_problems("serde_json", check_json(content)),
        Some("yaml") => Validation::from_problems("yaml-rust2", check_yaml(content)),
        Some("toml") => Validation::from_problems("toml", check_toml(content)),
        Some("sql") => Validation::from_problems("sql-statements", sql::check(content)),
        _ => Validation::unchecked(),
    }
}

fn check_json(content: &str) -> Vec<Problem> {
    match serde_json::from_str::<serde_json::Value>(content) {
        Ok(_) => Vec::new(),
        Err(error) => {
            // serde_json's message ends with " at line L column C"; the fields say it.
            let message = error.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(head, _)| head);
            vec![Problem::new(error.line(), error.column(), message)]
        }
    }
}

fn check_yaml(content: &str) -> Vec<Problem> {
    match yaml_rust2::YamlLoader::load_from_str(content) {
        Ok(_) => Vec::new(),
        Err(error) => vec![Problem::new(
            error.marker().line(),
            error.marker().col() + 1,
            error.info(),
        )],
    }
}

fn check_toml(content: &str) -> Vec<Problem> {
    match content.parse::<toml::Table>() {
        Ok(_) => Vec::new(),
        Err(error) => {
            let offset = error.span().map_or(0, |span| span.start);
            let (line, column) = line_and_column(content, offset);
            vec![Problem::new(line, column, error.message().trim())]
        }
    }
}

/// The 1-based line and column of a byte offset.
pub(crate) fn line_and_column(content: &str, offset: usize) -> (usize, usize) {
    let before = &content[..offset.min(content.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(language: &str, content: &str) -> Vec<Problem> {
        let validation = validate(Some(language), content);
        assert_eq!(
            validation.is_invalid(),
            !validation.errors.is_empty(),
            "{validation:?}"
        );
        validation.errors
    }

    #[test]
    fn good_files_are_valid_with_their_checker() {
        let samples = [
            (
                "python",
                "def f(x):\n    return x + 1\n",
                "tree-sitter-python",
            ),
            (
                "javascript",
                "export const f = (a) => a * 2;\n",
                "tree-sitter-javascript",
            ),
            (
                "jsx",
                "const B = () => <button onClick={go}>Go</button>;\n",
                "tree-sitter-javascript",
            ),
            (
                "typescript",
                "interface A { id: number }\nexport function f(a: A): number { return a.id; }\n",
                "tree-sitter-typescript",
            ),
            (
                "tsx",
                "export const L = ({ xs }: { xs: string[] }) => <ul>{xs.map((x) => <li key={x}>{x}</li>)}</ul>;\n",
                "tree-sitter-tsx",
            ),
            (
                "rust",
                "fn main() {\n    println!(\"hi\");\n}\n",
                "tree-sitter-rust",
            ),
            ("json", "{\"a\": [1, 2, {\"b\": null}]}", "serde_json"),
            (
                "yaml",
                "services:\n  db:\n    image: postgres:16\n",
                "yaml-rust2",
            ),
            (
                "toml",
                "[package]\nname = \"x\"\nversion = \"0.1.0\"\n",
                "toml",
            ),
            (
                "sql",
                "CREATE TABLE t (id int PRIMARY KEY, note text DEFAULT 'it''s; fine');\n\
                 CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n",
                "sql-statements",
            ),
        ];
        for (language, content, checker) in samples {
            let validation = validate(Some(language), content);
            assert_eq!(
                validation.status,
                Status::Valid,
                "{language}: {validation:?}"
            );
            assert_eq!(validation.checker.as_deref(), Some(checker), "{language}");
        }
    }

    #[test]
    fn broken_files_name_the_line() {
        let python = errors("python", "def f(x):\n    return x +\n\nprint(f(1)\n");
        assert_eq!(python[0].line, 2, "{python:?}");

        let typescript = errors(
            "typescript",
            "export function f(a: number): number {\n  return a;\n",
        );
        assert!(
            typescript.iter().any(|p| p.message.contains("missing `}`")),
            "{typescript:?}"
        );

        let tsx = errors("tsx", "export const A = () => <div>\n  <span>hi</div>;\n");
        assert!(!tsx.is_empty());

        let rust = errors("rust", "fn main() {\n    let x = ;\n}\n");
        assert_eq!(rust[0].line, 2, "{rust:?}");

        let javascript = errors("javascript", "function f() {\n  return 1 +;\n}\n");
        assert_eq!(javascript[0].line, 2, "{javascript:?}");

        let json = errors("json", "{\n  \"a\": 1,\n}\n");
        assert_eq!((json[0].line, json[0].column), (3, 1), "{json:?}");
        assert!(json[0].message.starts_with("trailing comma"), "{json:?}");

        let yaml = errors("yaml", "a: 1\n  b: 2\n");
        assert_eq!(yaml[0].line, 2, "{yaml:?}");

        let toml = errors("toml", "[package]\nname = \"x\nversion = 1\n");
        assert_eq!(toml[0].line, 2, "{toml:?}");
    }

    #[test]
    fn unknown_types_are_unchecked() {
        assert_eq!(validate(Some("markdown"), "# hi").status, Status::Unchecked);
        assert_eq!(validate(None, "\0").status, Status::Unchecked);
    }

    #[test]
    fn problems_are_capped() {
        let content = "fn a( {\n".repeat(50);
        assert!(errors("rust", &content).len() <= MAX_PROBLEMS);
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_and_column("ab\ncé\nx", 6), (2, 3));
        assert_eq!(line_and_column("abc", 0), (1, 1));
    }
}
