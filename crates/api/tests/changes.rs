//! Change requests through real HTTP and PostgreSQL with the offline team: revisions,
//! diffs that apply with `git apply`, the git history read back with `git`, failure,
//! cancel and budget.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Options, Server, start};
use guild_store::sqlx;
use serde_json::{Value, json};

const CHANGE: &str = "Add a due date to todos, shown in the list and settable when adding one";

async fn finished_project(server: &Server, project_type: &str) -> String {
    let id = server
        .create(json!({"description": "A todo list app with user accounts", "project_type": project_type}))
        .await;
    server.until_finished(&id).await;
    let project = server.get_json(&format!("/projects/{id}")).await;
    assert_eq!(project["status"], "completed", "{project}");
    assert_eq!(project["revision"], 1);
    id
}

async fn bytes(server: &Server, path: &str) -> Vec<u8> {
    let response = server.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.bytes().await.expect("body").to_vec()
}

/// Unpacks a `.tar.gz` into `dir`.
fn unpack(archive: &[u8], dir: &Path) {
    tar::Archive::new(flate2::read::GzDecoder::new(archive))
        .unpack(dir)
        .expect("the archive unpacks");
}

/// Every file under `dir` (path relative to it → bytes), `.git` left out.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                out.insert(
                    relative.to_string_lossy().into_owned(),
                    std::fs::read(&path).expect("read"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn git(dir: &Path, args: &[&str]) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_adds_only_affected_tasks_and_its_diff_turns_revision_1_into_2() {
    let server = start(Options::default()).await;
    let id = finished_project(&server, "fullstack").await;
    let first_tasks = server.get_json(&format!("/projects/{id}/tasks")).await["tasks"]
        .as_array()
        .expect("tasks")
        .len();
    let files_before = server.get_json(&format!("/projects/{id}/files")).await;

    let response = server
        .post(
            &format!("/projects/{id}/changes"),
            json!({"description": CHANGE}),
        )
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.headers()["location"],
        format!("/projects/{id}/changes/2").as_str()
    );
    let change: Value = response.json().await.expect("json");
    assert_eq!(change["revision"], 2);
    assert_eq!(change["status"], "running");
    assert_eq!(
        change["tasks"],
        json!(["change_analysis_c2", "design_update_c2"])
    );
    // Another change while this one runs: a conflict, nothing stored.
    let busy = server
        .post(
            &format!("/projects/{id}/changes"),
            json!({"description": "Add a priority"}),
        )
        .await;
    assert_eq!(busy.status(), 409);
    assert_eq!(busy.headers()["content-type"], "application/problem+json");
    server.until_finished(&id).await;

    let project = server.get_json(&format!("/projects/{id}")).await;
    assert_eq!(project["status"], "completed", "{project}");
    assert_eq!(project["revision"], 2);
    let revisions = server.get_json(&format!("/projects/{id}/changes")).await;
    let revisions = revisions["changes"].as_array().expect("changes");
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0]["revision"], 1);
    assert_eq!(revisions[0]["status"], "completed");
    assert_eq!(
        revisions[0]["tasks"].as_array().expect("tasks").len(),
        first_tasks
    );
    let added: Vec<&str> = revisions[1]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t.as_str().expect("key"))
        .collect();
    assert!(added.iter().all(|k| k.ends_with("_c2")), "{added:?}");
    let all_tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    for task in all_tasks["tasks"].as_array().expect("tasks") {
        let key = task["key"].as_str().expect("key");
        let revision = if added.contains(&key) { 2 } else { 1 };
        assert_eq!(task["revision"], revision, "{key}");
        if revision == 1 {
            assert_eq!(task["attempt"], 1, "{key} never ran again");
        }
    }
    assert!(added.contains(&"code_review_c2"), "{added:?}");
    assert!(
        added.len() < first_tasks,
        "only the affected tasks: {added:?}"
    );
    // The schema and the UI change with a new field; CI and docker files do not.
    assert!(
        added.iter().any(|k| k.starts_with("database_schema")),
        "{added:?}"
    );
    assert!(!added.iter().any(|k| k.starts_with("ci_cd")), "{added:?}");
    assert!(
        revisions[1]["usage"]["total_tokens"]
            .as_i64()
            .expect("tokens")
            > 0,
        "{}",
        revisions[1]
    );

    // A new design version, the old one kept.
    let design = server.get_json(&format!("/projects/{id}/design")).await;
    assert_eq!(design["version"], 2);
    assert_eq!(design["versions"], json!([1, 2]));
    assert!(
        design["design"].to_string().contains("due_date"),
        "the design gained the field"
    );
    let first = server
        .get_json(&format!("/projects/{id}/design?version=1"))
        .await;
    assert!(!first["design"].to_string().contains("due_date"));

    // New versions of exactly the files the diff changes.
    let diff_response = server.get(&format!("/projects/{id}/changes/2/diff")).await;
    assert_eq!(diff_response.status(), 200);
    assert!(
        diff_response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/x-diff")
    );
    let diff = diff_response.text().await.expect("diff");
    let diffed: Vec<&str> = diff
        .lines()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .map(|l| l.split(" b/").next().expect("path"))
        .collect();
    // The schema, the backend and the frontend change together.
    assert!(diffed.contains(&"backend/db/schema.sql"), "{diffed:?}");
    assert!(
        diffed.iter().any(|p| p.starts_with("backend/src/")),
        "{diffed:?}"
    );
    assert!(
        diffed.iter().any(|p| p.starts_with("frontend/src/")),
        "{diffed:?}"
    );
    let files_after = server.get_json(&format!("/projects/{id}/files")).await;
    let version_of = |list: &Value, path: &str| {
        list["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["path"] == path)
            .map(|f| f["version"].as_i64().expect("version"))
    };
    for file in files_after["files"].as_array().expect("files") {
        let path = file["path"].as_str().expect("path");
        let changed = version_of(&files_before, path) != version_of(&files_after, path);
        assert_eq!(
            changed,
            diffed.contains(&path),
            "{path}: a new version exactly when the diff changes it"
        );
    }

    // The diff applies to revision 1's archive and yields revision 2's files byte for byte.
    let scratch = tempfile::tempdir().expect("tempdir");
    let (one, two) = (scratch.path().join("r1"), scratch.path().join("r2"));
    unpack(
        &bytes(&server, &format!("/projects/{id}/archive?revision=1")).await,
        &one,
    );
    unpack(
        &bytes(&server, &format!("/projects/{id}/archive?revision=2")).await,
        &two,
    );
    std::fs::write(scratch.path().join("change.diff"), &diff).expect("write diff");
    let applied = Command::new("git")
        .current_dir(&one)
        .args(["apply", "--whitespace=nowarn", "../change.diff"])
        .output()
        .expect("git apply");
    assert!(
        applied.status.success(),
        "git apply: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert_eq!(read_tree(&one), read_tree(&two));
    // The latest archive is revision 2's.
    let latest = scratch.path().join("latest");
    unpack(
        &bytes(&server, &format!("/projects/{id}/archive")).await,
        &latest,
    );
    assert_eq!(read_tree(&latest), read_tree(&two));

    // One file's diff between revisions, and between versions.
    let path = diffed[0];
    let file_diff = server
        .get(&format!("/projects/{id}/files/{path}?diff=r1..r2"))
        .await;
    assert_eq!(file_diff.status(), 200);
    let file_diff = file_diff.text().await.expect("text");
    assert!(file_diff.starts_with(&format!("diff --git a/{path} b/{path}")));
    assert!(diff.contains(&file_diff), "the file's part of the change");
    let unchanged = server
        .get(&format!("/projects/{id}/files/{path}?diff=r2..r2"))
        .await;
    assert_eq!(unchanged.status(), 200);
    assert_eq!(unchanged.text().await.expect("text"), "");
    for bad in ["1..r2", "r0..r1", "x", "2..", "r1..r2&version=1"] {
        let response = server
            .get(&format!("/projects/{id}/files/{path}?diff={bad}"))
            .await;
        assert_eq!(response.status(), 422, "diff={bad}");
    }
    assert_eq!(
        server
            .get(&format!("/projects/{id}/archive?revision=3"))
            .await
            .status(),
        404
    );
    for range in ["r1..r3", "r3..r1"] {
        let response = server
            .get(&format!("/projects/{id}/files/{path}?diff={range}"))
            .await;
        assert_eq!(response.status(), 404, "diff={range}: no revision 3");
    }
    assert_eq!(
        server
            .get(&format!("/projects/{id}/changes/3"))
            .await
            .status(),
        404
    );

    // The git history clones with git: a commit per writing task, a tag per revision.
    let repository = scratch.path().join("repository");
    unpack(
        &bytes(&server, &format!("/projects/{id}/repository")).await,
        &repository,
    );
    let clone = scratch.path().join("clone");
    let cloned = Command::new("git")
        .args(["clone", "-q"])
        .arg(repository.join("project.git"))
        .arg(&clone)
        .output()
        .expect("git clone");
    assert!(
        cloned.status.success(),
        "{}",
        String::from_utf8_lossy(&cloned.stderr)
    );
    assert_eq!(read_tree(&clone), read_tree(&two));
    assert_eq!(
        git(&clone, &["tag", "--list"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    let mut writing = std::collections::BTreeSet::new();
    for file in files_after["files"].as_array().expect("files") {
        let path = file["path"].as_str().expect("path");
        let history = server
            .get_json(&format!("/projects/{id}/files?path={path}&history=true"))
            .await;
        for version in history["files"].as_array().expect("versions") {
            writing.insert(version["task_key"].as_str().expect("task").to_owned());
        }
    }
    let writing = writing.len();
    let log = git(
        &clone,
        &[
            "log",
            "--format=%an <%ae>|%s|%(trailers:key=Revision,valueonly)",
        ],
    );
    assert_eq!(
        log.lines().filter(|l| !l.is_empty()).count(),
        writing,
        "{log}"
    );
    let last = log.lines().next().expect("a commit");
    assert!(last.contains("<agent@guild>|"), "{last}");
    assert!(last.contains("_c2: "), "{last}");
    let r1_files = scratch.path().join("r1-checkout");
    git(
        &clone,
        &[
            "worktree",
            "add",
            "-q",
            r1_files.to_str().expect("utf-8"),
            "r1",
        ],
    );
    let r1_archive = scratch.path().join("r1-again");
    unpack(
        &bytes(&server, &format!("/projects/{id}/archive?revision=1")).await,
        &r1_archive,
    );
    assert_eq!(
        read_tree(&r1_files),
        read_tree(&r1_archive),
        "tag r1 is revision 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_over_budget_fails_and_leaves_revision_1_intact() {
    let server = start(Options::default()).await;
    let id = finished_project(&server, "api").await;
    let archive = bytes(&server, &format!("/projects/{id}/archive")).await;
    let files_before = server.get_json(&format!("/projects/{id}/files")).await;

    let response = server
        .post(
            &format!("/projects/{id}/changes"),
            json!({"description": CHANGE, "options": {"max_tokens": 50}}),
        )
        .await;
    assert_eq!(response.status(), 202);
    server.until_finished(&id).await;
    let project = server.get_json(&format!("/projects/{id}")).await;
    assert_eq!(project["status"], "failed", "{project}");
    assert!(
        project["error"]
            .as_str()
            .unwrap_or_default()
            .contains("max_tokens"),
        "{project}"
    );
    let change = server.get_json(&format!("/projects/{id}/changes/2")).await;
    assert_eq!(change["status"], "failed");
    let one = server.get_json(&format!("/projects/{id}/changes/1")).await;
    assert_eq!(one["status"], "completed");
    // Revision 1's files are untouched and readable.
    assert_eq!(
        server.get_json(&format!("/projects/{id}/files")).await,
        files_before
    );
    let scratch = tempfile::tempdir().expect("tempdir");
    unpack(&archive, &scratch.path().join("before"));
    unpack(
        &bytes(&server, &format!("/projects/{id}/archive?revision=1")).await,
        &scratch.path().join("r1"),
    );
    assert_eq!(
        read_tree(&scratch.path().join("before")),
        read_tree(&scratch.path().join("r1"))
    );
    // The failed project takes another change, with its own budget.
    let again = server
        .post(
            &format!("/projects/{id}/changes"),
            json!({"description": CHANGE}),
        )
        .await;
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["revision"], 3);
    server.until_finished(&id).await;
    let project = server.get_json(&format!("/projects/{id}")).await;
    assert_eq!(project["status"], "completed", "{project}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_change_keeps_the_earlier_files() {
    let server = start(Options {
        agent: common::offline_team(Duration::from_millis(150)),
        ..Options::default()
    })
    .await;
    let id = finished_project(&server, "api").await;
    let archive_before = bytes(&server, &format!("/projects/{id}/archive")).await;
    let response = server
        .post(
            &format!("/projects/{id}/changes"),
            json!({"description": CHANGE}),
        )
        .await;
    assert_eq!(response.status(), 202);
    // Cancel once the change has planned its tasks (its design update settled).
    server
        .follow(&id, None, |e| e.kind == "change_planned")
        .await;
    let cancelled = server
        .post(&format!("/projects/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status(), 200);
    server.until_finished(&id).await;
    let project = server.get_json(&format!("/projects/{id}")).await;
    assert_eq!(project["status"], "cancelled");
    let change = server.get_json(&format!("/projects/{id}/changes/2")).await;
    assert_eq!(change["status"], "cancelled");
    let tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    for task in tasks["tasks"].as_array().expect("tasks") {
        let key = task["key"].as_str().expect("key");
        if !key.ends_with("_c2") {
            assert_eq!(
                task["status"], "completed",
                "{key} of revision 1 is untouched"
            );
        }
    }
    // Revision 1 reads as it was, whatever the change had written before the cancel.
    let scratch = tempfile::tempdir().expect("tempdir");
    unpack(&archive_before, &scratch.path().join("before"));
    unpack(
        &bytes(&server, &format!("/projects/{id}/archive?revision=1")).await,
        &scratch.path().join("r1"),
    );
    assert_eq!(
        read_tree(&scratch.path().join("before")),
        read_tree(&scratch.path().join("r1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_change_requests_get_problems_and_store_nothing() {
    let server = start(Options::default()).await;
    let id = finished_project(&server, "api").await;
    let path = format!("/projects/{id}/changes");
    for (body, field) in [
        (json!({"description": "  "}), "description"),
        (json!({"description": "x".repeat(20_001)}), "description"),
        (
            json!({"description": "ok", "options": {"max_tokens": 0}}),
            "options.max_tokens",
        ),
        (
            json!({"description": "ok", "options": {"max_tokens": u64::MAX}}),
            "options.max_tokens",
        ),
        (
            json!({"description": "ok", "options": {"max_cost_usd": -1}}),
            "options.max_cost_usd",
        ),
    ] {
        let response = server.post(&path, body).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    for body in [
        json!({}),
        json!({"description": "ok", "extra": 1}),
        json!({"description": "ok", "options": {"max_attempts": 2}}),
    ] {
        let response = server.post(&path, body.clone()).await;
        assert!(
            response.status() == 400 || response.status() == 422,
            "{body}: {}",
            response.status()
        );
    }
    let unknown = server
        .post(
            &format!("/projects/{}/changes", uuid::Uuid::now_v7()),
            json!({"description": CHANGE}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(server.get(&format!("{path}/0")).await.status(), 422);
    // A finished project with a task still waiting for a human (a failed project's gate):
    // what it would write belongs to revision 1, so no change starts meanwhile.
    sqlx::query("UPDATE tasks SET status = 'awaiting_approval' WHERE project_id = $1::uuid AND key = 'readme'")
        .bind(&id)
        .execute(&server.pool)
        .await
        .expect("gate a task");
    let gated = server.post(&path, json!({"description": CHANGE})).await;
    assert_eq!(gated.status(), 409);
    let problem: Value = gated.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("awaiting approval"),
        "{problem}"
    );
    sqlx::query(
        "UPDATE tasks SET status = 'completed' WHERE project_id = $1::uuid AND key = 'readme'",
    )
    .bind(&id)
    .execute(&server.pool)
    .await
    .expect("ungate it");
    // Idempotency: the same key and body give the same change; another body conflicts.
    let keyed = |body: Value| {
        server
            .client
            .post(server.url(&path))
            .header("idempotency-key", "change-1")
            .json(&body)
            .send()
    };
    let first = keyed(json!({"description": CHANGE}))
        .await
        .expect("request");
    assert_eq!(first.status(), 202);
    let repeat = keyed(json!({"description": CHANGE}))
        .await
        .expect("request");
    assert_eq!(repeat.status(), 200);
    let repeat: Value = repeat.json().await.expect("json");
    assert_eq!(repeat["revision"], 2);
    let other = keyed(json!({"description": "Add a priority"}))
        .await
        .expect("request");
    assert_eq!(other.status(), 409);
    server.until_finished(&id).await;
    let list = server.get_json(&path).await;
    assert_eq!(list["changes"].as_array().expect("changes").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_task_waits_for_approval_when_its_first_generation_task_did() {
    let server = start(Options::default()).await;
    let id = server
        .create(json!({
            "description": "A todo list app with user accounts",
            "project_type": "api",
            "options": {"require_approval": ["readme"]}
        }))
        .await;
    let task_id = |tasks: &Value, key: &str| {
        tasks["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["key"] == key)
            .map(|t| t["id"].as_str().expect("id").to_owned())
            .expect(key)
    };
    server
        .follow(&id, None, |e| e.kind == "task_awaiting_approval")
        .await;
    let tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    let readme = task_id(&tasks, "readme");
    let approved = server
        .post(&format!("/projects/{id}/tasks/{readme}/approve"), json!({}))
        .await;
    assert_eq!(approved.status(), 200);
    server.until_finished(&id).await;

    let response = server
        .post(
            &format!("/projects/{id}/changes"),
            json!({"description": CHANGE}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let gated = |e: &common::Sse| {
        e.kind == "task_awaiting_approval" && e.data["data"]["key"] == "readme_c2"
    };
    let events = server.follow(&id, None, gated).await;
    assert!(
        events.last().is_some_and(gated),
        "readme_c2 waits for approval"
    );
    let tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    let readme_c2 = task_id(&tasks, "readme_c2");
    let approved = server
        .post(
            &format!("/projects/{id}/tasks/{readme_c2}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status(), 200);
    server.until_finished(&id).await;
    let project = server.get_json(&format!("/projects/{id}")).await;
    assert_eq!(project["status"], "completed", "{project}");
}
