//! What a source file offers and needs: its exported names and its import specifiers,
//! read from its tree-sitter tree, so files can be held to a design's file plan.

use tree_sitter::{Node, Parser};

use crate::syntax::Grammar;

/// A file's exports and imports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// TypeScript and JavaScript: the names it exports (`default` for a default export;
    /// `*` for `export * from`). Python: its top-level names (definitions, assignments,
    /// imported names).
    pub exports: Vec<String>,
    /// The module specifiers it imports, as written: `./http.js`, `express`,
    /// `node:crypto` (TypeScript, JavaScript: `import`, `export … from`, `require()`,
    /// `import()`); `app.db`, `.routes`, `fastapi` (Python).
    pub imports: Vec<String>,
}

/// The interface of `content` as a file of `language` (`typescript`, `tsx`,
/// `javascript`, `jsx`, `python`); `None` for other languages.
pub fn interface(language: Option<&str>, content: &str) -> Option<Interface> {
    let grammar = match language? {
        "python" => Grammar::Python,
        "javascript" | "jsx" => Grammar::JavaScript,
        "typescript" => Grammar::TypeScript,
        "tsx" => Grammar::Tsx,
        _ => return None,
    };
    let mut parser = Parser::new();
    parser.set_language(&grammar.language()).ok()?;
    let tree = parser.parse(content, None)?;
    let source = content.as_bytes();
    let mut found = Interface::default();
    match grammar {
        Grammar::Python => python(tree.root_node(), source, &mut found),
        _ => script(tree.root_node(), source, &mut found),
    }
    found.exports.sort();
    found.exports.dedup();
    Some(found)
}

fn text(node: Node<'_>, source: &[u8]) -> String {
    node.utf8_text(source).unwrap_or_default().to_owned()
}

/// A string literal's content, without its quotes.
fn string(node: Node<'_>, source: &[u8]) -> String {
    text(node, source)
        .trim_matches(|c| c == '"' || c == '\'' || c == '`')
        .to_owned()
}

fn script(root: Node<'_>, source: &[u8], found: &mut Interface) {
    let mut cursor = root.walk();
    for node in root.children(&mut cursor) {
        match node.kind() {
            "import_statement" => {
                if let Some(from) = node.child_by_field_name("source") {
                    found.imports.push(string(from, source));
                }
            }
            "export_statement" => export(node, source, found),
            _ => {}
        }
    }
    calls(root, source, found);
}

fn export(node: Node<'_>, source: &[u8], found: &mut Interface) {
    if let Some(from) = node.child_by_field_name("source") {
        found.imports.push(string(from, source));
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        match child.kind() {
            "default" => found.exports.push("default".into()),
            "*" => found.exports.push("*".into()),
            "export_clause" => {
                let mut inner = child.walk();
                for specifier in child
                    .named_children(&mut inner)
                    .filter(|c| c.kind() == "export_specifier")
                {
                    let name = specifier
                        .child_by_field_name("alias")
                        .or_else(|| specifier.child_by_field_name("name"));
                    if let Some(name) = name {
                        found.exports.push(text(name, source));
                    }
                }
            }
            "lexical_declaration" | "variable_declaration" => {
                let mut inner = child.walk();
                for declarator in child
                    .named_children(&mut inner)
                    .filter(|c| c.kind() == "variable_declarator")
                {
                    if let Some(name) = declarator.child_by_field_name("name") {
                        declared_names(name, source, &mut found.exports);
                    }
                }
            }
            _ => {
                if let Some(name) = child.child_by_field_name("name")
                    && child.kind().ends_with("declaration")
                {
                    found.exports.push(text(name, source));
                }
            }
        }
    }
}

/// The names a binding pattern declares: `a`, `{ a, b: c }` → `a`, `c`, `[a, b]`.
fn declared_names(pattern: Node<'_>, source: &[u8], names: &mut Vec<String>) {
    match pattern.kind() {
        "identifier" | "shorthand_property_identifier_pattern" => names.push(text(pattern, source)),
        _ => {
            let mut cursor = pattern.walk();
            for child in pattern.named_children(&mut cursor) {
                let target = if child.kind() == "pair_pattern" {
                    child.child_by_field_name("value")
                } else {
                    Some(child)
                };
                if let Some(target) = target {
                    declared_names(target, source, names);
                }
            }
        }
    }
}

/// `require("x")` and `import("x")` anywhere in the file.
fn calls(node: Node<'_>, source: &[u8], found: &mut Interface) {
    if node.kind() == "call_expression"
        && let Some(function) = node.child_by_field_name("function")
        && matches!(function.kind(), "import" | "identifier")
        && (function.kind() == "import" || text(function, source) == "require")
        && let Some(argument) = node
            .child_by_field_name("arguments")
            .and_then(|a| a.named_child(0))
            .filter(|a| a.kind() == "string")
    {
        found.imports.push(string(argument, source));
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        calls(child, source, found);
    }
}

fn python(root: Node<'_>, source: &[u8], found: &mut Interface) {
    let mut cursor = root.walk();
    for node in root.children(&mut cursor) {
        python_statement(node, source, found);
    }
}

fn python_statement(node: Node<'_>, source: &[u8], found: &mut Interface) {
    match node.kind() {
        "function_definition" | "class_definition" => {
            if let Some(name) = node.child_by_field_name("name") {
                found.exports.push(text(name, source));
            }
        }
        "decorated_definition" => {
            if let Some(definition) = node.child_by_field_name("definition") {
                python_statement(definition, source, found);
            }
        }
        "expression_statement" => {
            let mut cursor = node.walk();
            for child in node
                .named_children(&mut cursor)
                .filter(|c| c.kind() == "assignment")
            {
                if let Some(left) = child.child_by_field_name("left") {
                    declared_names(left, source, &mut found.exports);
                }
            }
        }
        "import_statement" => {
            let mut cursor = node.walk();
            for name in node.children_by_field_name("name", &mut cursor) {
                let (module, bound) = match name.kind() {
                    "aliased_import" => (
                        name.child_by_field_name("name").map(|n| text(n, source)),
                        name.child_by_field_name("alias").map(|n| text(n, source)),
                    ),
                    _ => (Some(text(name, source)), None),
                };
                if let Some(module) = module {
                    let top = module.split('.').next().unwrap_or_default().to_owned();
                    found.exports.push(bound.unwrap_or(top));
                    found.imports.push(module);
                }
            }
        }
        "import_from_statement" => {
            if let Some(module) = node.child_by_field_name("module_name") {
                found.imports.push(text(module, source));
            }
            let mut cursor = node.walk();
            for name in node.children_by_field_name("name", &mut cursor) {
                let bound = match name.kind() {
                    "aliased_import" => name.child_by_field_name("alias"),
                    _ => Some(name),
                };
                if let Some(bound) = bound {
                    found.exports.push(text(bound, source));
                }
            }
        }
        // Definitions under `if`/`try` at the top level are top-level names too.
        "if_statement" | "try_statement" | "block" | "else_clause" | "except_clause"
        | "finally_clause" => {
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                python_statement(child, source, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(language: &str, content: &str) -> Interface {
        interface(Some(language), content).expect("a supported language")
    }

    #[test]
    fn typescript_exports_and_imports_are_read() {
        let found = of(
            "typescript",
            r#"import express from "express";
import { randomBytes } from "node:crypto";
import type { Store } from "./store.js";
export { HttpError as ApiError, parseId } from "./http.js";
export const a = 1, { b, c: d } = obj;
export function createApp(): void {}
export class Thing {}
export interface Options { x: number }
export type Id = number;
export enum Kind { A }
export default createApp;
const lazy = await import("./lazy.js");
const old = require("pg");
"#,
        );
        assert_eq!(
            found.exports,
            [
                "ApiError",
                "Id",
                "Kind",
                "Options",
                "Thing",
                "a",
                "b",
                "createApp",
                "d",
                "default",
                "parseId"
            ]
        );
        assert_eq!(
            found.imports,
            [
                "express",
                "node:crypto",
                "./store.js",
                "./http.js",
                "./lazy.js",
                "pg"
            ]
        );
    }

    #[test]
    fn python_top_level_names_and_imports_are_read() {
        let found = of(
            "python",
            "import os\nimport psycopg_pool as pool\nfrom .http import ApiError, parse_id as pid\nfrom app.db import PgStore\n\
             MAX = 10\nx, y = 1, 2\n\ndef create_app():\n    inner = 1\n\n@dataclass\nclass Todo:\n    title: str\n\n\
             try:\n    import orjson\nexcept ImportError:\n    orjson = None\n",
        );
        assert_eq!(
            found.exports,
            [
                "ApiError",
                "MAX",
                "PgStore",
                "Todo",
                "create_app",
                "orjson",
                "os",
                "pid",
                "pool",
                "x",
                "y"
            ]
        );
        assert_eq!(
            found.imports,
            ["os", "psycopg_pool", ".http", "app.db", "orjson"]
        );
    }

    #[test]
    fn other_languages_have_no_interface() {
        assert_eq!(interface(Some("sql"), "SELECT 1;"), None);
        assert_eq!(interface(None, "x"), None);
    }
}
