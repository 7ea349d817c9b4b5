//! The history written with gix, read back with the real `git`.

use std::process::Command;

use guild_history::{Commit, write};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn commit(author: &str, revision: i32, time: i64, message: &str, files: &[(&str, &str)]) -> Commit {
    Commit {
        author: author.into(),
        email: format!("{author}@guild"),
        time,
        message: message.into(),
        files: files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect(),
        revision,
    }
}

fn history() -> Vec<Commit> {
    vec![
        commit(
            "backend",
            1,
            1_800_000_000,
            "database_schema: the schema\n\nTask-Id: 1\nRevision: 1\n",
            &[
                ("backend/db/schema.sql", "CREATE TABLE t ();\n"),
                ("README.md", "# x\n"),
            ],
        ),
        commit(
            "frontend",
            1,
            1_800_000_100,
            "ui_components: the list\n\nRevision: 1\n",
            &[
                ("frontend/src/List.tsx", "export const List = 1;\n"),
                ("frontend/src/a.b/x.ts", "x\n"),
            ],
        ),
        commit(
            "backend",
            2,
            1_800_000_200,
            "database_schema_c2: a due date\n\nRevision: 2\n",
            &[("backend/db/schema.sql", "CREATE TABLE t (due date);\n")],
        ),
    ]
}

#[test]
fn a_bare_history_clones_with_git_with_a_commit_per_task_and_a_tag_per_revision() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bare = dir.path().join("project.git");
    let head = write(&bare, &history(), true)
        .expect("written")
        .expect("a head");
    let clone = dir.path().join("clone");
    let output = Command::new("git")
        .args(["clone", "--quiet"])
        .arg(&bare)
        .arg(&clone)
        .output()
        .expect("git clone");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]).trim(), head);
    assert_eq!(
        git(&clone, &["log", "--format=%an <%ae>|%s"])
            .lines()
            .collect::<Vec<_>>(),
        [
            "backend <backend@guild>|database_schema_c2: a due date",
            "frontend <frontend@guild>|ui_components: the list",
            "backend <backend@guild>|database_schema: the schema",
        ]
    );
    assert_eq!(
        git(&clone, &["tag"]).lines().collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    // Each tag's tree is that revision's files.
    assert_eq!(
        git(&clone, &["show", "r1:backend/db/schema.sql"]),
        "CREATE TABLE t ();\n"
    );
    assert_eq!(
        git(&clone, &["show", "r2:backend/db/schema.sql"]),
        "CREATE TABLE t (due date);\n"
    );
    assert_eq!(
        git(&clone, &["ls-tree", "-r", "--name-only", "r2"])
            .lines()
            .collect::<Vec<_>>(),
        [
            "README.md",
            "backend/db/schema.sql",
            "frontend/src/List.tsx",
            "frontend/src/a.b/x.ts"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("frontend/src/List.tsx")).expect("checked out"),
        "export const List = 1;\n"
    );
    assert!(git(&clone, &["log", "-1", "--format=%B", "r1"]).contains("Revision: 1"));
    git(&clone, &["fsck", "--strict"]);
}

#[test]
fn a_history_over_a_work_tree_leaves_it_clean() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, content) in [
        ("backend/db/schema.sql", "CREATE TABLE t (due date);\n"),
        ("README.md", "# x\n"),
        ("frontend/src/List.tsx", "export const List = 1;\n"),
        ("frontend/src/a.b/x.ts", "x\n"),
    ] {
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, content).expect("write");
    }
    write(dir.path(), &history(), false).expect("written");
    assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
    assert_eq!(
        git(dir.path(), &["rev-list", "--count", "HEAD"]).trim(),
        "3"
    );
}
