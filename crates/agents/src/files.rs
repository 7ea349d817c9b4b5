//! Turning code blocks into files: a safe path, text content, one block per path.

use guild_validate::Validation;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::blocks::CodeBlock;
use guild_core::RejectedFile;
use guild_core::paths::{path_clash, safe_path};

/// Files larger than this are refused: no generated source file needs more.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// A file an agent wrote, ready to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedFile {
    pub path: String,
    pub content: String,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
    pub language: Option<String>,
    /// The file's check by its type.
    pub validation: Validation,
    /// 0 for the task's first answer, n for its n-th repair round.
    pub repair_round: u32,
    /// The model whose answer held it.
    pub model: String,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(content: &str) -> String {
    Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The language of a file, from its name.
pub fn language_of(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let language = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("rs") => "rust",
        Some("py") => "python",
        Some("ts" | "mts" | "cts") => "typescript",
        Some("tsx") => "tsx",
        Some("js" | "mjs" | "cjs") => "javascript",
        Some("jsx") => "jsx",
        Some("json") => "json",
        Some("yml" | "yaml") => "yaml",
        Some("toml") => "toml",
        Some("sql") => "sql",
        Some("md") => "markdown",
        Some("html") => "html",
        Some("css") => "css",
        Some("sh") => "shell",
        _ if name == "Dockerfile" => "dockerfile",
        _ if name.starts_with(".env") => "dotenv",
        _ => return None,
    };
    Some(language)
}

/// Keeps the blocks that are files: a safe path, text content of a sane size, the first
/// block for each path. Everything else is reported, never dropped silently.
pub fn files_from_blocks(blocks: Vec<CodeBlock>) -> (Vec<GeneratedFile>, Vec<RejectedFile>) {
    let mut files: Vec<GeneratedFile> = Vec::new();
    let mut rejected = Vec::new();
    for block in blocks {
        let reject = |reason: String| RejectedFile {
            path: block.path.clone(),
            reason,
        };
        let Some(raw_path) = block.path.as_deref() else {
            rejected.push(reject(
                "code block names no file (add `path=` after the language)".into(),
            ));
            continue;
        };
        let path = match safe_path(raw_path) {
            Ok(path) => path,
            Err(error) => {
                rejected.push(reject(format!("unsafe path: {error}")));
                continue;
            }
        };
        if let Some(clash) = files.iter().find_map(|f| path_clash(&f.path, &path)) {
            rejected.push(reject(format!("{clash}: the first block was kept")));
            continue;
        }
        if block.content.len() > MAX_FILE_BYTES {
            rejected.push(reject(format!(
                "file is larger than {MAX_FILE_BYTES} bytes"
            )));
            continue;
        }
        if looks_binary(&block.content) {
            rejected.push(reject("content is not text".into()));
            continue;
        }
        let language = language_of(&path);
        files.push(GeneratedFile {
            sha256: sha256_hex(&block.content),
            validation: guild_validate::validate(language, &block.content),
            language: language.map(str::to_owned),
            repair_round: 0,
            model: String::new(),
            path,
            content: block.content,
        });
    }
    (files, rejected)
}

/// NUL bytes, or many control characters besides tab, newline, carriage return and form
/// feed, mean the model emitted something that is not source text.
fn looks_binary(content: &str) -> bool {
    let control = content
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
        .count();
    content.contains('\0') || control * 100 > content.chars().count().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(path: Option<&str>, content: &str) -> CodeBlock {
        CodeBlock {
            language: None,
            path: path.map(str::to_owned),
            findings: false,
            content: content.into(),
            closed: true,
        }
    }

    #[test]
    fn good_blocks_become_files_and_the_rest_is_reported() {
        let (files, rejected) = files_from_blocks(vec![
            block(Some("./src/app.ts"), "let a = 1;\n"),
            block(Some("../escape.sh"), "rm -rf /\n"),
            block(Some("/etc/passwd"), "root\n"),
            block(None, "print(1)\n"),
            block(Some("src/app.ts"), "let b = 2;\n"),
            block(Some("blob.bin"), "\0\u{1}\u{2}"),
            block(Some("SRC/APP.ts"), "let c = 3;\n"),
            block(Some("src/app.ts/index.ts"), "let d = 4;\n"),
            block(Some("src"), "not a directory\n"),
        ]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "src/app.ts");
        assert_eq!(files[0].language.as_deref(), Some("typescript"));
        assert_eq!(files[0].sha256, sha256_hex("let a = 1;\n"));
        assert_eq!(files[0].sha256.len(), 64);
        assert_eq!(files[0].validation.status, guild_validate::Status::Valid);
        let reasons: Vec<_> = rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "unsafe path: path contains `..`",
                "unsafe path: absolute path",
                "code block names no file (add `path=` after the language)",
                "duplicate path `src/app.ts`: the first block was kept",
                "content is not text",
                "`SRC/APP.ts` and `src/app.ts` differ only in letter case: the first block was kept",
                "`src/app.ts/index.ts` needs `src/app.ts` to be a directory, but it is a file: the first block was kept",
                "`src` would be a file, but `src/app.ts` needs it to be a directory: the first block was kept",
            ]
        );
    }

    #[test]
    fn sha256_is_the_standard_digest() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
