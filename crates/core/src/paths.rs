//! Safe file paths: a generated file can only land inside its project, and every file of a
//! project can be written to one tree on any file system.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("absolute path")]
    Absolute,
    #[error("path contains `..`")]
    ParentSegment,
    #[error("path contains a backslash, a control character or an invisible character")]
    BadCharacter,
    #[error("path is longer than 512 bytes")]
    TooLong,
    /// A version-control metadata directory (`.git`, `.hg`, `.svn`, `.bzr`, `_darcs`) at
    /// any depth, in any letter case or spelling a file system may take for it.
    #[error("path writes version-control metadata (`{0}`)")]
    VersionControl(String),
    /// A name that is unsafe or unwritable on some file system a user may unpack it on.
    #[error("path is not portable: {0}")]
    NotPortable(String),
}

/// Version-control metadata directories: a model that writes `frontend/.git/config` could
/// set `core.fsmonitor` and run a command on the user's next `git status`.
const VERSION_CONTROL: &[&str] = &[".git", ".hg", ".svn", ".bzr", "_darcs"];

/// Names Windows reserves for devices, whatever the extension.
const RESERVED_NAMES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Characters some file systems ignore in names (HFS+ drops them, so `.g\u{200c}it` is
/// `.git` there) or that hide what a name says.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
}

/// Refuses a segment that is version-control metadata on some file system, or a name
/// Windows cannot write: `.GIT`, `.git.` and `.git ` (Windows drops trailing dots and
/// spaces), `git~1` (its 8.3 short name), `CON.txt`, `a<b`.
fn check_segment(segment: &str) -> Result<(), PathError> {
    let lower = segment.to_lowercase();
    let trimmed = lower.trim_end_matches(['.', ' ']);
    if VERSION_CONTROL.contains(&trimmed) || trimmed == "git~1" {
        return Err(PathError::VersionControl(segment.to_owned()));
    }
    if trimmed.len() != lower.len() {
        return Err(PathError::NotPortable(format!(
            "`{segment}` ends with a dot or a space"
        )));
    }
    if let Some(c) = segment
        .chars()
        .find(|c| matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*'))
    {
        return Err(PathError::NotPortable(format!(
            "`{segment}` contains `{c}`"
        )));
    }
    let stem = lower.split('.').next().unwrap_or_default();
    if RESERVED_NAMES.contains(&stem) {
        return Err(PathError::NotPortable(format!(
            "`{segment}` is a device name on Windows"
        )));
    }
    Ok(())
}

/// Normalises a relative path (`./a//b` → `a/b`) or refuses it when it is absolute, climbs
/// with `..`, or could be read differently on another system.
pub fn safe_path(raw: &str) -> Result<String, PathError> {
    let raw = raw.trim().trim_matches(|c| c == '"' || c == '\'');
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    if raw
        .chars()
        .any(|c| c == '\\' || c.is_control() || is_invisible(c))
    {
        return Err(PathError::BadCharacter);
    }
    let bytes = raw.as_bytes();
    let drive_letter = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if raw.starts_with('/') || raw.starts_with('~') || drive_letter {
        return Err(PathError::Absolute);
    }
    let mut segments = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(PathError::ParentSegment),
            other => segments.push(other),
        }
    }
    if segments.is_empty() {
        return Err(PathError::Empty);
    }
    for segment in &segments {
        check_segment(segment)?;
    }
    let path = segments.join("/");
    if path.len() > 512 {
        return Err(PathError::TooLong);
    }
    Ok(path)
}

/// Why `new` cannot be written beside `kept` in one tree, if it cannot: the same path
/// (on a case-insensitive file system too), or one is a directory the other needs to be
/// a file.
pub fn path_clash(kept: &str, new: &str) -> Option<String> {
    let (a, b) = (kept.to_lowercase(), new.to_lowercase());
    if a == b {
        return Some(if kept == new {
            format!("duplicate path `{new}`")
        } else {
            format!("`{new}` and `{kept}` differ only in letter case")
        });
    }
    let is_dir_of = |dir: &str, file: &str| {
        file.starts_with(dir) && file.as_bytes().get(dir.len()) == Some(&b'/')
    };
    if is_dir_of(&b, &a) {
        return Some(format!(
            "`{new}` would be a file, but `{kept}` needs it to be a directory"
        ));
    }
    if is_dir_of(&a, &b) {
        return Some(format!(
            "`{new}` needs `{kept}` to be a directory, but it is a file"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalised() {
        assert_eq!(
            safe_path("backend/src/app.ts"),
            Ok("backend/src/app.ts".into())
        );
        assert_eq!(safe_path("./a//b/./c.txt"), Ok("a/b/c.txt".into()));
        assert_eq!(safe_path("\"quoted/path.md\""), Ok("quoted/path.md".into()));
        assert_eq!(
            safe_path(".github/workflows/ci.yml"),
            Ok(".github/workflows/ci.yml".into())
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert_eq!(safe_path("/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(safe_path("~/.ssh/config"), Err(PathError::Absolute));
        assert_eq!(safe_path("C:/Windows/win.ini"), Err(PathError::Absolute));
        assert_eq!(safe_path("../outside.txt"), Err(PathError::ParentSegment));
        assert_eq!(safe_path("a/../../b"), Err(PathError::ParentSegment));
        assert_eq!(safe_path("a\\..\\b"), Err(PathError::BadCharacter));
        assert_eq!(safe_path("a\0b"), Err(PathError::BadCharacter));
        assert_eq!(safe_path(""), Err(PathError::Empty));
        assert_eq!(safe_path("./"), Err(PathError::Empty));
        assert_eq!(
            safe_path(".git/hooks/pre-commit"),
            Err(PathError::VersionControl(".git".into()))
        );
        // At any depth, in any case, in the spellings file systems fold to `.git`.
        for path in [
            "frontend/.git/config",
            ".GIT/config",
            "a/.Git/hooks/post-checkout",
            "a/.git./config",
            "a/.git /config",
            "GIT~1/config",
            "vendor/.hg/hgrc",
            "x/.svn/entries",
            "frontend/.git",
        ] {
            assert!(
                matches!(safe_path(path), Err(PathError::VersionControl(_))),
                "{path}: {:?}",
                safe_path(path)
            );
        }
        assert_eq!(
            safe_path("a/.g\u{200c}it/config"),
            Err(PathError::BadCharacter)
        );
        for path in [
            "docs/CON.txt",
            "src/aux.ts",
            "a/b.",
            "a/b /c",
            "a/b:c",
            "q?.md",
        ] {
            assert!(
                matches!(safe_path(path), Err(PathError::NotPortable(_))),
                "{path}: {:?}",
                safe_path(path)
            );
        }
        // Names that merely start like them are fine.
        for path in [
            ".gitignore",
            ".github/workflows/ci.yml",
            "src/console.ts",
            "git/x",
        ] {
            assert!(safe_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn paths_that_cannot_share_a_tree_clash() {
        assert_eq!(path_clash("src/app.ts", "src/app.tsx"), None);
        assert_eq!(path_clash("src/config.ts", "src/config/index.ts"), None);
        assert!(path_clash("src/config", "src/config/index.ts").is_some());
        assert!(path_clash("src/config/index.ts", "SRC/Config").is_some());
        assert!(path_clash("README.md", "readme.md").is_some());
        assert!(path_clash("a/b", "a/b").is_some());
        assert_eq!(safe_path(&"a/".repeat(300)), Err(PathError::TooLong));
    }
}
