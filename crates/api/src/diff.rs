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
    let (a_path, b_path) = (quoted(&format!("a/{path}")), quoted(&format!("b/{path}")));
    let a = if old.is_some() {
        a_path.clone()
    } else {
        "/dev/null".to_owned()
    };
    let b = if new.is_some() {
        b_path.clone()
    } else {
        "/dev/null".to_owned()
    };
    let mut out = format!("diff --git {a_path} {b_path}\n");
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

/// A path as git writes it in a diff's headers: in double quotes, with `"` and `\`
/// escaped, when it holds a space, a quote or a backslash (so `patch -p1` reads it whole;
/// `git apply` reads both forms). Generated paths hold no control characters.
fn quoted(path: &str) -> String {
    if path.contains([' ', '"', '\\']) {
        format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        path.to_owned()
    }
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
            ("dir x/f g.txt", "old\n"),
            ("gone.txt", "bye\n"),
            ("same.txt", "x\n"),
        ]);
        let after = tree_of(&[
            ("a.txt", "one\n2\n"),
            ("dir x/f g.txt", "new\n"),
            ("new/b.txt", "hello"),
            ("ü/ñ.txt", "hola\n"),
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

        assert!(diff.contains("--- \"a/dir x/f g.txt\"\n"), "{diff}");

        // `git apply` and `patch -p1` take it and give `after`, byte for byte.
        for tool in [
            &["git", "apply", "--whitespace=nowarn"][..],
            &["patch", "-p1", "-s", "-i"],
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            for (path, content) in &before {
                let target = dir.path().join(path);
                std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
                std::fs::write(target, content).expect("write");
            }
            std::fs::write(dir.path().join("change.diff"), &diff).expect("write");
            let applied = std::process::Command::new(tool[0])
                .args(&tool[1..])
                .arg("change.diff")
                .current_dir(dir.path())
                .output()
                .expect("the tool runs");
            assert!(
                applied.status.success(),
                "{tool:?}: {}",
                String::from_utf8_lossy(&applied.stderr)
            );
            for (path, content) in &after {
                assert_eq!(
                    &std::fs::read_to_string(dir.path().join(path)).expect("read"),
                    content,
                    "{tool:?}: {path}"
                );
            }
            assert!(!dir.path().join("gone.txt").exists(), "{tool:?}");
        }

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
                    path: "dir x/f g.txt".into(),
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
                FileStat {
                    path: "ü/ñ.txt".into(),
                    added: 1,
                    removed: 0
                },
            ]
        );
    }
}
