//! Safe file paths: a generated file can only land inside its project.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("absolute path")]
    Absolute,
    #[error("path contains `..`")]
    ParentSegment,
    #[error("path contains a backslash or a control character")]
    BadCharacter,
    #[error("path is longer than 512 bytes")]
    TooLong,
    #[error("path writes inside `.git`")]
    GitDirectory,
}

/// Normalises a relative path (`./a//b` → `a/b`) or refuses it when it is absolute, climbs
/// with `..`, or could be read differently on another system.
pub fn safe_path(raw: &str) -> Result<String, PathError> {
    let raw = raw.trim().trim_matches(|c| c == '"' || c == '\'');
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    if raw.chars().any(|c| c == '\\' || c.is_control()) {
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
    // A `.git` directory in the output would run hooks on the user's next git command.
    if segments[0] == ".git" {
        return Err(PathError::GitDirectory);
    }
    let path = segments.join("/");
    if path.len() > 512 {
        return Err(PathError::TooLong);
    }
    Ok(path)
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
            Err(PathError::GitDirectory)
        );
        assert_eq!(safe_path(&"a/".repeat(300)), Err(PathError::TooLong));
    }
}
