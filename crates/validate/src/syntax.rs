//! Code checked with tree-sitter grammars: a file is valid when its tree has no error and
//! no missing node.

use tree_sitter::{Language, Node, Parser};

use crate::{MAX_PROBLEMS, Problem, Validation};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Grammar {
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Rust,
}

impl Grammar {
    pub(crate) fn language(self) -> Language {
        match self {
            Self::Python => tree_sitter_python::LANGUAGE.into(),
            Self::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Self::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Self::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Self::Rust => tree_sitter_rust::LANGUAGE.into(),
        }
    }

    fn checker(self) -> &'static str {
        match self {
            Self::Python => "tree-sitter-python",
            Self::JavaScript => "tree-sitter-javascript",
            Self::TypeScript => "tree-sitter-typescript",
            Self::Tsx => "tree-sitter-tsx",
            Self::Rust => "tree-sitter-rust",
        }
    }
}

thread_local! {
    /// A parser per thread, reused: creating one allocates its stacks and lexer.
    static PARSER: std::cell::RefCell<Parser> = std::cell::RefCell::new(Parser::new());
}

pub(crate) fn check(grammar: Grammar, content: &str) -> Validation {
    PARSER.with_borrow_mut(|parser| check_with(parser, grammar, content))
}

fn check_with(parser: &mut Parser, grammar: Grammar, content: &str) -> Validation {
    if let Err(error) = parser.set_language(&grammar.language()) {
        // A grammar built for another tree-sitter ABI: a build problem, not the file's.
        return Validation::from_problems(
            grammar.checker(),
            vec![Problem::new(
                1,
                1,
                format!("the grammar cannot be loaded: {error}"),
            )],
        );
    }
    let Some(tree) = parser.parse(content, None) else {
        return Validation::from_problems(
            grammar.checker(),
            vec![Problem::new(1, 1, "the parser gave up")],
        );
    };
    let mut problems = Vec::new();
    collect(tree.root_node(), content.as_bytes(), &mut problems);
    Validation::from_problems(grammar.checker(), problems)
}

/// The error and missing nodes under `node`, outermost first, in source order.
fn collect(node: Node<'_>, source: &[u8], problems: &mut Vec<Problem>) {
    if problems.len() >= MAX_PROBLEMS || !node.has_error() {
        return;
    }
    let at = node.start_position();
    if node.is_missing() {
        problems.push(Problem::new(
            at.row + 1,
            at.column + 1,
            format!("missing `{}`", node.kind()),
        ));
        return;
    }
    if node.is_error() {
        let text = node.utf8_text(source).unwrap_or_default();
        let first_line = text.lines().next().unwrap_or_default().trim();
        let snippet: String = first_line.chars().take(40).collect();
        problems.push(Problem::new(
            at.row + 1,
            at.column + 1,
            if snippet.is_empty() {
                "syntax error".to_owned()
            } else {
                format!("syntax error at `{snippet}`")
            },
        ));
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        collect(child, source, problems);
    }
}
