//! Unified diffs of generated files (the `similar` crate), with git's headers so a change's
//! diff applies with `git apply` or `patch -p1`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

/// The unified diff of one file from `old` to `new` (`None`: absent), paths relative to
/// the project's root; empty when nothing changed.
pub fn file(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    if old == new {
        return String::new();
    }
    let (before, after) = (old.unwrap_or_default(), new.unwrap_or_default());
    let a = if old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".to_owned()
    };
    let b = if new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".to_owned()
    };
    let mut out = format!("diff --git a/{path} b/{path}\n");
    match (old, new) {
        (None, Some(_)) => out.push_str("new file mode 100644\n"),
        (Some(_), None) => out.push_str("deleted file mode 100644\n"),
        _ => {}
    }
    let diff = TextDiff::from_lines(before, after);
    let _ = write!(
        out,
        "{}",
        diff.unified_diff().context_radius(3).header(&a, &b)
    );
    out
}

/// The diff of a whole tree from `before` to `after` (path → content), file by file in
/// path order.
pub fn tree(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> String {
    paths(before, after)
        .into_iter()
        .map(|path| {
            file(
                path,
                before.get(path).map(String::as_str),
                after.get(path).map(String::as_str),
            )
        })
        .collect()
}

/// Lines added and removed in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub path: String,
    pub added: usize,
    pub removed: usize,
}

/// What changed from `before` to `after`, file by file (unchanged files left out).
pub fn stat(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<FileStat> {
    paths(before, after)
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|path| {
            let (old, new) = (
                before.get(path).map_or("", String::as_str),
                after.get(path).map_or("", String::as_str),
            );
            let diff = TextDiff::from_lines(old, new);
            let count = |tag| diff.iter_all_changes().filter(|c| c.tag() == tag).count();
            FileStat {
                path: path.to_owned(),
                added: count(ChangeTag::Insert),
                removed: count(ChangeTag::Delete),
            }
        })
        .collect()
}

fn paths<'a>(
    before: &'a BTreeMap<String, String>,
    after: &'a BTreeMap<String, String>,
) -> Vec<&'a str> {
    let mut all: Vec<&str> = before
        .keys()
        .chain(after.keys())
        .map(String::as_str)
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_of(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn diffs_carry_git_headers_and_apply_with_git() {
        let before = tree_of(&[
            ("a.txt", "one\ntwo\n"),
            ("gone.txt", "bye\n"),
            ("same.txt", "x\n"),
        ]);
        let after = tree_of(&[
            ("a.txt", "one\n2\n"),
            ("new/b.txt", "hello"),
            ("same.txt", "x\n"),
        ]);
        let diff = tree(&before, &after);
        assert!(diff.contains("diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n"), "{diff}");
        assert!(diff.contains("diff --git a/new/b.txt b/new/b.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new/b.txt\n"), "{diff}");
        assert!(diff.contains("\\ No newline at end of file"), "{diff}");
        assert!(
            diff.contains("deleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n"),
            "{diff}"
        );
        assert!(!diff.contains("same.txt"));

        // `git apply` takes it and gives `after`, byte for byte.
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, content) in &before {
            let target = dir.path().join(path);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::write(target, content).expect("write");
        }
        std::fs::write(dir.path().join("change.diff"), &diff).expect("write");
        let applied = std::process::Command::new("git")
            .args(["apply", "--whitespace=nowarn", "change.diff"])
            .current_dir(dir.path())
            .output()
            .expect("git apply runs");
        assert!(
            applied.status.success(),
            "{}",
            String::from_utf8_lossy(&applied.stderr)
        );
        for (path, content) in &after {
            assert_eq!(
                &std::fs::read_to_string(dir.path().join(path)).expect("read"),
                content,
                "{path}"
            );
        }
        assert!(!dir.path().join("gone.txt").exists());

        let stat = stat(&before, &after);
        assert_eq!(
            stat,
            [
                FileStat {
                    path: "a.txt".into(),
                    added: 1,
                    removed: 1
                },
                FileStat {
                    path: "gone.txt".into(),
                    added: 0,
                    removed: 1
                },
                FileStat {
                    path: "new/b.txt".into(),
                    added: 1,
                    removed: 0
                },
            ]
        );
    }
}
