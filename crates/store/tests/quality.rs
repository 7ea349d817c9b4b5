//! Conflicts between unordered writers, and the review → fix loop growing the graph, on a
//! real PostgreSQL.

use std::time::Duration;

use guild_core::ProjectId;
use guild_core::{AgentKind, Finding, Plan, Severity, TaskStatus};
use guild_store::files::NewFile;
use guild_store::settle;
use guild_store::tasks::{self, ClaimedTask};
use guild_store::{PgPool, events, files, projects};
use serde_json::json;

async fn claim(pool: &PgPool, key: &str) -> ClaimedTask {
    let claimed = tasks::claim_ready(pool, "w", 100, Duration::from_secs(60), &[])
        .await
        .expect("claim");
    let mut found = None;
    for task in claimed {
        if task.key == key {
            found = Some(task);
        } else {
            tasks::release(pool, task.project_id, task.id, task.attempt)
                .await
                .expect("release");
        }
    }
    found.unwrap_or_else(|| panic!("{key} was not ready"))
}

async fn complete(pool: &PgPool, task: &ClaimedTask, files: &[NewFile], findings: &[Finding]) {
    settle::complete(pool, guild_testkit::completion(task, files, findings))
        .await
        .expect("complete");
}

async fn event_kinds(pool: &PgPool, project_id: ProjectId) -> Vec<(String, serde_json::Value)> {
    events::list(pool, project_id, 0, 1000)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.kind.as_str().to_owned(), e.data))
        .collect()
}

/// Claims `key` and completes it with one file at `path`.
async fn run_writing(pool: &PgPool, key: &str, path: &str) {
    let task = claim(pool, key).await;
    complete(
        pool,
        &task,
        &[guild_testkit::new_file(path, key, "typescript")],
        &[],
    )
    .await;
}

fn finding(severity: Severity, file: &str) -> Finding {
    Finding {
        severity,
        file: file.into(),
        line: Some(3),
        message: format!("{} problem", severity.as_str()),
        suggested_fix: Some("fix it".into()),
    }
}

#[tokio::test]
async fn unordered_writers_of_a_path_conflict_and_both_versions_are_kept() {
    let pool = guild_testkit::database().await;
    // `left` and `right` are not ordered; `join` comes after both.
    let plan = Plan::new(vec![
        guild_testkit::task_spec("left", AgentKind::Backend, &[]),
        guild_testkit::task_spec("right", AgentKind::Frontend, &[]),
        guild_testkit::task_spec("join", AgentKind::Reviewer, &["left", "right"]),
    ])
    .expect("plan");
    let project_id = guild_testkit::create_project(&pool, &plan, json!({})).await;
    let file = |content: &str| guild_testkit::new_file("src/shared.ts", content, "typescript");

    let left = claim(&pool, "left").await;
    complete(&pool, &left, &[file("export const a = 1;")], &[]).await;
    let right = claim(&pool, "right").await;
    complete(&pool, &right, &[file("export const a = 2;")], &[]).await;

    let versions = files::history(&pool, project_id, "src/shared.ts")
        .await
        .expect("history");
    assert_eq!(versions.len(), 2, "both versions are kept");
    assert_eq!(versions[0].conflict, None);
    assert_eq!(
        versions[1].conflict,
        Some(json!({"version": 1, "task_key": "left", "agent": "backend"}))
    );
    let conflicts: Vec<_> = event_kinds(&pool, project_id)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "file_conflict")
        .collect();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].1["path"], "src/shared.ts");
    assert_eq!(conflicts[0].1["other_task_key"], "left");

    // The task after both sees the conflict in its context; what it writes next is
    // ordered after both writers, so it is no conflict.
    let join = claim(&pool, "join").await;
    let context = tasks::context(&pool, project_id, join.id)
        .await
        .expect("context");
    assert_eq!(context.files.len(), 1);
    assert_eq!(context.files[0].version, 2);
    assert_eq!(
        context.files[0].conflict.as_ref().expect("conflict")["task_key"],
        "left"
    );
    complete(&pool, &join, &[file("export const a = 3;")], &[]).await;
    let versions = files::history(&pool, project_id, "src/shared.ts")
        .await
        .expect("history");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2].conflict, None);
    // A task rewriting its own path is no conflict either.
    assert_eq!(
        event_kinds(&pool, project_id)
            .await
            .iter()
            .filter(|(kind, _)| kind == "file_conflict")
            .count(),
        1
    );
}

#[tokio::test]
async fn blocking_findings_add_fix_tasks_and_a_re_review_that_dependents_wait_for() {
    let pool = guild_testkit::database().await;
    let plan = Plan::new(vec![
        guild_testkit::task_spec("api", AgentKind::Backend, &[]),
        guild_testkit::task_spec("ui", AgentKind::Frontend, &[]),
        guild_testkit::task_spec("code_review", AgentKind::Reviewer, &["api", "ui"]),
        guild_testkit::task_spec("deploy", AgentKind::Devops, &["code_review"]),
    ])
    .expect("plan");
    let project_id = guild_testkit::create_project(&pool, &plan, json!({})).await;
    run_writing(&pool, "api", "src/api.ts").await;
    run_writing(&pool, "ui", "web/app.tsx").await;

    let review = claim(&pool, "code_review").await;
    let findings = [
        finding(Severity::High, "src/api.ts"),
        finding(Severity::Critical, "src/api.ts"),
        finding(Severity::Critical, "web/app.tsx"),
        finding(Severity::Low, "web/app.tsx"),
        finding(Severity::High, "nobody/wrote.this"),
    ];
    complete(&pool, &review, &[], &findings).await;

    let all = tasks::list(&pool, project_id).await.expect("tasks");
    let task = |key: &str| {
        all.iter()
            .find(|t| t.key == key)
            .unwrap_or_else(|| panic!("{key}"))
    };
    let backend_fix = task("fix_code_review_backend_r1");
    assert_eq!(backend_fix.kind, "fix_findings");
    assert_eq!(backend_fix.agent, AgentKind::Backend);
    assert_eq!(backend_fix.status, TaskStatus::Ready);
    assert_eq!(backend_fix.review_round, 1);
    assert_eq!(backend_fix.findings, findings[..2]);
    assert_eq!(backend_fix.depends_on, ["code_review"]);
    let frontend_fix = task("fix_code_review_frontend_r1");
    assert_eq!(
        frontend_fix.findings,
        findings[2..3],
        "low findings do not block"
    );
    let rereview = task("code_review_r1");
    assert_eq!(rereview.kind, "code_review");
    assert_eq!(rereview.status, TaskStatus::Blocked);
    assert_eq!(
        rereview.depends_on,
        ["fix_code_review_backend_r1", "fix_code_review_frontend_r1"]
    );
    assert_eq!(rereview.findings.len(), 4);
    let deploy = task("deploy");
    assert_eq!(deploy.status, TaskStatus::Blocked);
    assert_eq!(deploy.depends_on, ["code_review", "code_review_r1"]);

    let log = event_kinds(&pool, project_id).await;
    let started = log
        .iter()
        .find(|(kind, _)| kind == "fix_round_started")
        .expect("fix_round_started");
    assert_eq!(started.1["round"], 1);
    assert_eq!(started.1["re_review"], "code_review_r1");
    let unassigned = log
        .iter()
        .find(|(kind, _)| kind == "findings_unassigned")
        .expect("findings_unassigned");
    assert_eq!(unassigned.1["findings"][0]["file"], "nobody/wrote.this");

    // The fixes release the re-review; its blocking finding has no round left (1 by
    // default), so the project goes on.
    for key in ["fix_code_review_backend_r1", "fix_code_review_frontend_r1"] {
        let fix = claim(&pool, key).await;
        let context = tasks::context(&pool, project_id, fix.id)
            .await
            .expect("context");
        assert!(!context.findings.is_empty());
        assert_eq!(
            context.files.len(),
            2,
            "the fix sees the files under review"
        );
        complete(&pool, &fix, &[], &[]).await;
    }
    let rereview = claim(&pool, "code_review_r1").await;
    complete(
        &pool,
        &rereview,
        &[],
        &[finding(Severity::High, "src/api.ts")],
    )
    .await;
    let log = event_kinds(&pool, project_id).await;
    let exhausted = log
        .iter()
        .find(|(kind, _)| kind == "fix_rounds_exhausted")
        .expect("fix_rounds_exhausted");
    assert_eq!(exhausted.1["max_fix_rounds"], 1);
    let deploy = claim(&pool, "deploy").await;
    complete(&pool, &deploy, &[], &[]).await;
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("project");
    assert_eq!(project.status, guild_core::ProjectStatus::Completed);
    assert_eq!(
        tasks::list(&pool, project_id).await.expect("tasks").len(),
        7
    );
}

#[tokio::test]
async fn max_fix_rounds_zero_turns_the_loop_off() {
    let pool = guild_testkit::database().await;
    let plan = Plan::new(vec![
        guild_testkit::task_spec("api", AgentKind::Backend, &[]),
        guild_testkit::task_spec("security_audit", AgentKind::Reviewer, &["api"]),
    ])
    .expect("plan");
    let project_id =
        guild_testkit::create_project(&pool, &plan, json!({"max_fix_rounds": 0})).await;
    run_writing(&pool, "api", "src/api.ts").await;
    let audit = claim(&pool, "security_audit").await;
    complete(
        &pool,
        &audit,
        &[],
        &[finding(Severity::Critical, "src/api.ts")],
    )
    .await;
    assert_eq!(
        tasks::list(&pool, project_id).await.expect("tasks").len(),
        2
    );
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("project");
    assert_eq!(project.status, guild_core::ProjectStatus::Completed);
}

#[tokio::test]
async fn an_approved_review_starts_its_fix_round_and_taken_keys_are_not_reused() {
    let pool = guild_testkit::database().await;
    // A custom workflow that already has a task keyed like the re-review would be.
    let plan = Plan::new(vec![
        guild_testkit::task_spec("api", AgentKind::Backend, &[]),
        guild_testkit::task_spec("code_review", AgentKind::Reviewer, &["api"]),
        guild_testkit::task_spec("code_review_r1", AgentKind::Devops, &["code_review"]),
    ])
    .expect("plan");
    let project_id =
        guild_testkit::create_project(&pool, &plan, json!({"require_approval": ["code_review"]}))
            .await;
    run_writing(&pool, "api", "src/api.ts").await;
    let review = claim(&pool, "code_review").await;
    let blocking = [finding(Severity::High, "src/api.ts")];
    complete(&pool, &review, &[], &blocking).await;
    // Waiting at its gate: nothing grows yet.
    assert_eq!(
        tasks::list(&pool, project_id).await.expect("tasks").len(),
        3
    );

    guild_store::oversight::approve(&pool, project_id, review.id)
        .await
        .expect("approve");
    let all = tasks::list(&pool, project_id).await.expect("tasks");
    let keys: Vec<&str> = all.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys.len(),
        5,
        "the fix task and the re-review are added: {keys:?}"
    );
    let rereview = all
        .iter()
        .find(|t| t.key == "code_review_r1_2")
        .expect("the re-review takes a free key");
    assert_eq!(rereview.depends_on, ["fix_code_review_backend_r1"]);
    let waiting = all
        .iter()
        .find(|t| t.key == "code_review_r1")
        .expect("task");
    assert_eq!(waiting.depends_on, ["code_review", "code_review_r1_2"]);
    assert_eq!(waiting.status, TaskStatus::Blocked);
}

/// The field report: `src/config` from one task and `src/config/index.ts` from another
/// were both stored, and no archive of them could be unpacked. The second is refused like
/// a duplicate; so is a path that differs from a stored one only in letter case.
#[tokio::test]
async fn a_file_where_another_task_needs_a_directory_is_refused() {
    let pool = guild_testkit::database().await;
    let project_id = guild_testkit::create_graph(
        &pool,
        &[
            ("a", AgentKind::Backend, &[]),
            ("b", AgentKind::Frontend, &["a"]),
            ("c", AgentKind::Devops, &["b"]),
        ],
        json!({}),
    )
    .await;
    run_writing(&pool, "a", "src/config/index.ts").await;
    let b = claim(&pool, "b").await;
    let files = [
        guild_testkit::new_file("src/config", "b", "text"),
        guild_testkit::new_file("src/ok.ts", "b", "typescript"),
    ];
    let mut completion = guild_testkit::completion(&b, &files, &[]);
    completion.result =
        json!({"summary": "b", "files": ["src/config", "src/ok.ts"], "invalid_files": []});
    settle::complete(&pool, completion)
        .await
        .expect("completes");
    let c = claim(&pool, "c").await;
    complete(
        &pool,
        &c,
        &[guild_testkit::new_file("SRC/OK.ts", "c", "typescript")],
        &[],
    )
    .await;

    let stored: Vec<String> = files::list_latest(&pool, project_id)
        .await
        .expect("files")
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(stored, ["src/config/index.ts", "src/ok.ts"]);
    let refused: Vec<(String, String)> = event_kinds(&pool, project_id)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "file_rejected")
        .map(|(_, d)| {
            (
                d["path"].as_str().unwrap_or("").to_owned(),
                d["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            (
                "src/config".to_owned(),
                "`src/config` would be a file, but `src/config/index.ts` needs it to be a directory: the other task's file was kept".to_owned()
            ),
            (
                "SRC/OK.ts".to_owned(),
                "`SRC/OK.ts` and `src/ok.ts` differ only in letter case: the other task's file was kept".to_owned()
            ),
        ]
    );
    let task_b = tasks::get(&pool, project_id, b.id)
        .await
        .expect("read")
        .expect("b");
    let result = task_b.result.expect("result");
    assert_eq!(result["files"], json!(["src/ok.ts"]));
    assert_eq!(result["rejected_files"][0]["path"], "src/config");
}

/// Two completions of one batch that cannot share a tree: the first keeps its file.
#[tokio::test]
async fn clashing_files_in_one_batch_keep_the_first() {
    let pool = guild_testkit::database().await;
    let project_id = guild_testkit::create_graph(
        &pool,
        &[
            ("a", AgentKind::Backend, &[]),
            ("b", AgentKind::Frontend, &[]),
        ],
        json!({}),
    )
    .await;
    let claimed = tasks::claim_ready(&pool, "w", 2, Duration::from_secs(60), &[])
        .await
        .expect("claim");
    let a_files = [guild_testkit::new_file("lib", "a", "text")];
    let b_files = [guild_testkit::new_file("lib/x.ts", "b", "typescript")];
    let by_key = |key: &str| claimed.iter().find(|t| t.key == key).expect("claimed");
    let batch = [
        guild_testkit::completion(by_key("a"), &a_files, &[]),
        guild_testkit::completion(by_key("b"), &b_files, &[]),
    ];
    let outcomes = settle::complete_many(&pool, &batch).await.expect("batch");
    assert!(outcomes.iter().all(Result::is_ok));
    let stored: Vec<String> = files::list_latest(&pool, project_id)
        .await
        .expect("files")
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(stored, ["lib"]);
}

/// The field report: an analysis holding `\u0000` made every settlement fail until the
/// lease expired. Model output is made storable: NUL is dropped from the result, the
/// analysis, the findings and every event.
#[tokio::test]
async fn nul_in_model_output_is_stored_without_it() {
    let pool = guild_testkit::database().await;
    let project_id =
        guild_testkit::create_graph(&pool, &[("a", AgentKind::Analyst, &[])], json!({})).await;
    let task = claim(&pool, "a").await;
    let analysis = json!({"core_features": ["lists\u{0}"], "notes\u{0}": "x\u{0}y"});
    let rejected = [guild_core::RejectedFile {
        path: Some("bad\u{0}path".into()),
        reason: "no\u{0}".into(),
    }];
    let completion = settle::Completion {
        result: json!({"summary": "Analysed\u{0} it"}),
        requirements: Some(analysis),
        rejected_files: rejected.to_vec(),
        ..guild_testkit::completion(&task, &[], &[])
    };
    settle::complete(&pool, completion).await.expect("stored");
    let project = projects::get(&pool, project_id)
        .await
        .expect("read")
        .expect("project");
    assert_eq!(
        project.requirements,
        Some(json!({"core_features": ["lists"], "notes": "xy"}))
    );
    let task = tasks::get(&pool, project_id, task.id)
        .await
        .expect("read")
        .expect("task");
    assert_eq!(task.result.expect("result")["summary"], "Analysed it");
    let rejected = event_kinds(&pool, project_id)
        .await
        .into_iter()
        .find(|(kind, _)| kind == "file_rejected")
        .expect("rejected");
    assert_eq!(rejected.1["path"], "badpath");
}
