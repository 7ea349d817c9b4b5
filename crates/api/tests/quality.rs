//! Code you can trust, through the API: with the offline provider's flaw marker, a fullstack
//! project shows a file that failed validation and its repair, a fix task created by the
//! security audit's blocking finding and a re-review, and ends with every file valid.

mod common;

use serde_json::{Value, json};

fn task<'a>(tasks: &'a Value, key: &str) -> &'a Value {
    tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no task {key}"))
}

#[tokio::test]
async fn an_offline_run_with_flaws_is_validated_repaired_reviewed_and_fixed() {
    let server = common::start(common::Options::default()).await;
    let id = server
        .create(json!({
            "description": format!("A todo list app with user accounts {}", guild_offline::FLAW_MARKER),
            "project_type": "fullstack",
        }))
        .await;
    let events = server.until_finished(&id).await;
    assert_eq!(events.last().expect("events").kind, "project_completed");

    // The graph grew while the project ran: a fix task and a re-review after the audit.
    let tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    let all = tasks["tasks"].as_array().expect("tasks");
    assert_eq!(all.len(), 22, "20 planned, 1 fix, 1 re-review");
    assert!(all.iter().all(|t| t["status"] == "completed"));
    let fix = task(&tasks, "fix_security_audit_backend_r1");
    assert_eq!(fix["kind"], "fix_findings");
    assert_eq!(fix["agent"], "backend");
    assert_eq!(fix["review_round"], 1);
    assert_eq!(fix["depends_on"], json!(["security_audit"]));
    assert_eq!(fix["findings"][0]["severity"], "high");
    assert_eq!(fix["findings"][0]["file"], "backend/src/auth.ts");
    let planted_line = fix["findings"][0]["line"].as_u64().expect("line");
    let rereview = task(&tasks, "security_audit_r1");
    assert_eq!(rereview["kind"], "security_audit");
    assert_eq!(
        rereview["depends_on"],
        json!(["fix_security_audit_backend_r1"])
    );

    // The audit's structured findings, and the re-review's: nothing blocking is left.
    let detail = |key: &str| {
        let task_id = task(&tasks, key)["id"].as_str().expect("id").to_owned();
        let server = &server;
        let id = id.clone();
        async move {
            server
                .get_json(&format!("/projects/{id}/tasks/{task_id}"))
                .await
        }
    };
    let audit = detail("security_audit").await;
    let blocking = |findings: &Value| {
        findings
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["severity"] == "high" || f["severity"] == "critical")
            .count()
    };
    assert_eq!(blocking(&audit["result"]["findings"]), 1);
    let again = detail("security_audit_r1").await;
    assert_eq!(blocking(&again["result"]["findings"]), 0);
    assert!(
        !again["result"]["findings"]
            .as_array()
            .expect("findings")
            .is_empty()
    );

    // The API's first answer had a file that failed validation; one repair round fixed it.
    let api = detail("api_structure").await;
    assert_eq!(api["result"]["repair_rounds"], 1);
    assert_eq!(api["result"]["invalid_files"], json!([]));
    let history = server
        .get_json(&format!(
            "/projects/{id}/files?path=backend/src/app.ts&history=true"
        ))
        .await;
    let versions = history["files"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{history}");
    let (broken, repaired) = (&versions[0], &versions[1]);
    assert_eq!(broken["validation"]["status"], "invalid");
    assert_eq!(broken["validation"]["checker"], "tree-sitter-typescript");
    let error = &broken["validation"]["errors"][0];
    assert!(error["line"].as_u64().expect("line") > 1, "{error}");
    assert!(!error["message"].as_str().expect("message").is_empty());
    assert_eq!(broken["repair_round"], 0);
    assert_eq!(repaired["validation"]["status"], "valid");
    assert_eq!(repaired["repair_round"], 1);
    // Provenance of every version: task, agent, attempt, model, prompt version.
    for version in versions {
        assert_eq!(version["task_key"], "api_structure");
        assert_eq!(version["agent"], "backend");
        assert_eq!(version["attempt"], 1);
        assert_eq!(version["model"], "offline-1");
        assert_eq!(version["prompt_version"], api["result"]["prompt_version"]);
    }
    let invalid = events
        .iter()
        .filter(|e| e.kind == "file_invalid")
        .collect::<Vec<_>>();
    assert_eq!(invalid.len(), 1);
    assert_eq!(
        invalid[0].data["data"]["path"], "backend/src/app.ts",
        "{:?}",
        invalid[0]
    );

    // The fix replaced the planted secret, after the authentication task's version.
    let auth = server
        .get_json(&format!(
            "/projects/{id}/files?path=backend/src/auth.ts&history=true"
        ))
        .await;
    let auth_versions = auth["files"].as_array().expect("versions");
    assert_eq!(
        auth_versions
            .iter()
            .map(|v| v["task_key"].as_str().expect("key"))
            .collect::<Vec<_>>(),
        ["authentication", "fix_security_audit_backend_r1"]
    );
    assert_eq!(
        auth_versions[1]["conflict"],
        Value::Null,
        "the fix is ordered after the author"
    );
    let planted = server
        .get(&format!(
            "/projects/{id}/files/backend/src/auth.ts?version=1"
        ))
        .await
        .text()
        .await
        .expect("text");
    let at = usize::try_from(planted_line).expect("small") - 1;
    assert!(
        planted
            .lines()
            .nth(at)
            .is_some_and(|l| l.contains("guild-dev-secret")),
        "line {planted_line} of the planted version: {planted}"
    );
    let fixed = server
        .get(&format!("/projects/{id}/files/backend/src/auth.ts"))
        .await
        .text()
        .await
        .expect("content");
    assert!(!fixed.contains("guild-dev-secret"));
    assert!(fixed.contains("process.env.AUTH_SECRET"));
    assert!(events.iter().any(|e| e.kind == "fix_round_started"));

    // Every final file is valid (or of a type with no checker).
    let files = server.get_json(&format!("/projects/{id}/files")).await;
    let files = files["files"].as_array().expect("files");
    assert!(files.len() > 20);
    for file in files {
        let status = &file["validation"]["status"];
        assert!(status == "valid" || status == "unchecked", "{file}");
    }
    assert!(
        files
            .iter()
            .filter(|f| f["validation"]["status"] == "valid")
            .count()
            > 15
    );
    // Every call records the prompt version it was made with.
    let calls: Vec<_> = events.iter().filter(|e| e.kind == "llm_call").collect();
    assert_eq!(calls.len(), 23, "22 tasks and one repair");
    assert!(calls.iter().all(|c| {
        c.data["data"]["prompt_version"]
            .as_str()
            .is_some_and(|v| v.len() == 12)
    }));
}

#[tokio::test]
async fn fix_round_and_file_query_options_are_checked() {
    let server = common::start(common::Options {
        workers: 0,
        ..common::Options::default()
    })
    .await;
    let response = server
        .post(
            "/projects",
            json!({"description": "A todo app", "options": {"max_fix_rounds": 9}}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "options.max_fix_rounds");
    assert_eq!(problem["errors"][0]["reason"], "must be from 0 to 5");

    let id = server
        .create(json!({"description": "A todo app", "options": {"max_fix_rounds": 0}}))
        .await;
    let response = server
        .get(&format!("/projects/{id}/files?history=true"))
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["errors"][0]["field"], "history");
    let none = server
        .get_json(&format!(
            "/projects/{id}/files?path=src/none.ts&history=true"
        ))
        .await;
    assert_eq!(none["files"], json!([]));
}
