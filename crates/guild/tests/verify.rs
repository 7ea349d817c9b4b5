//! Verification end to end: `guild serve` with the sandbox, projects of the offline
//! provider generated, installed, type-checked, built, tested, started and called through
//! their contracts with the real toolchains (npm, tsc, vite, vitest, pip, mypy, ruff,
//! pytest, PostgreSQL), and what `GET /projects/{id}/verification` says of them.

mod common;

use std::time::Duration;

use common::{Database, create, events_to_the_end, get_json, serve};
use serde_json::{Value, json};

/// The longest a project with its verification may take (cold package caches included).
const PROJECT_DEADLINE: Duration = Duration::from_secs(1200);

async fn finished(client: &reqwest::Client, base: &str, id: &str) -> String {
    tokio::time::timeout(PROJECT_DEADLINE, events_to_the_end(client, base, id))
        .await
        .expect("the project ends")
}

/// Every step of every component of a report passed, and its smoke test called at least
/// `min_calls` times, all passing.
fn all_passed(report: &Value, min_calls: u64) {
    assert_eq!(report["status"], "passed", "{report:#}");
    for component in report["components"].as_array().expect("components") {
        for step in component["steps"].as_array().expect("steps") {
            assert_eq!(step["status"], "passed", "{}: {step:#}", component["name"]);
            assert!(step["duration_ms"].as_u64().is_some());
        }
        if let Some(tests) = component["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "test"))
            .and_then(|s| s.get("tests"))
        {
            assert!(tests["passed"].as_u64().expect("passed") > 0, "{tests}");
            assert_eq!(tests["failed"], 0);
        }
    }
    let backend = report["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "backend"))
        .expect("a backend");
    let smoke = &backend["smoke"];
    assert_eq!(smoke["passed"], smoke["total"], "{smoke:#}");
    assert!(
        smoke["total"].as_u64().expect("total") >= min_calls,
        "{smoke:#}"
    );
    let steps: Vec<&str> = backend["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        steps.contains(&"start") && steps.contains(&"test"),
        "{steps:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_projects_are_verified_in_the_sandbox_and_runtime_flaws_are_fixed() {
    let url = guild_testkit::database_url().await;
    let (server, base) = serve(
        Database::Url(&url),
        "4",
        &[("GUILD_VERIFY", "full"), ("GUILD_VERIFY_CONCURRENCY", "2")],
    );
    let client = guild_testkit::http_client();
    let typescript = create(
        &client,
        &base,
        json!({"description": "A todo list app with user accounts and sharing"}),
    )
    .await;
    let python = create(
        &client,
        &base,
        json!({"description": "A todo list app with user accounts and sharing, in Python"}),
    )
    .await;
    let flawed = create(
        &client,
        &base,
        json!({"description": format!("A todo list app {}", guild_offline::RUNTIME_FLAW_MARKER)}),
    )
    .await;
    let required = create(
        &client,
        &base,
        json!({
            "description": format!("A todo list app {}", guild_offline::RUNTIME_FLAW_MARKER),
            "project_type": "backend",
            "options": {"max_fix_rounds": 0, "require_verified": true},
        }),
    )
    .await;

    // Both stacks: every step passed, every contract operation answered as documented.
    for id in [&typescript, &python] {
        let events = finished(&client, &base, id).await;
        assert!(events.contains("event: project_completed"), "{events}");
        let verification = get_json(&client, &format!("{base}/projects/{id}/verification")).await;
        assert_eq!(verification["status"], "passed", "{verification:#}");
        let rounds = verification["rounds"].as_array().expect("rounds");
        assert_eq!(rounds.len(), 1);
        all_passed(&rounds[0]["report"], 15);
        assert_eq!(rounds[0]["findings"], json!([]));
        assert!(
            verification["summary"]
                .as_str()
                .expect("summary")
                .contains("smoke 15/15")
        );
    }

    // A flaw that parses and passes the design's checks, found by running the project at
    // its file and line, fixed by a fix task, verified green by the next round.
    let events = finished(&client, &base, &flawed).await;
    assert!(events.contains("event: project_completed"), "{events}");
    let verification = get_json(&client, &format!("{base}/projects/{flawed}/verification")).await;
    assert_eq!(verification["status"], "passed", "{verification:#}");
    let rounds = verification["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{verification:#}");
    let first = &rounds[0];
    assert_eq!(first["round"], 0);
    assert_eq!(first["report"]["status"], "failed");
    let typecheck = first["report"]["components"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == "typecheck")
        .expect("a typecheck step");
    assert_eq!(typecheck["status"], "failed");
    assert!(
        typecheck["output_tail"]
            .as_str()
            .expect("tail")
            .contains("parseIdentifier")
    );
    let finding = first["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["file"] == "backend/src/routes/todos.ts")
        .expect("a finding on the routes module");
    assert_eq!(finding["line"], 6, "{finding}");
    assert_eq!(finding["severity"], "high");
    assert!(
        finding["message"]
            .as_str()
            .expect("message")
            .contains("parseIdentifier")
    );
    assert_eq!(rounds[1]["round"], 1);
    all_passed(&rounds[1]["report"], 15);
    let tasks = get_json(&client, &format!("{base}/projects/{flawed}/tasks")).await;
    let fix = tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["kind"] == "fix_findings")
        .expect("a fix task");
    assert_eq!(fix["agent"], "backend");
    assert_eq!(fix["status"], "completed");

    // With no fix round and the verification required, the same flaw fails the project.
    let events = finished(&client, &base, &required).await;
    assert!(events.contains("event: project_failed"), "{events}");
    let project = get_json(&client, &format!("{base}/projects/{required}")).await;
    assert!(
        project["error"]
            .as_str()
            .expect("error")
            .starts_with("the verification did not pass (options.require_verified)"),
        "{project:#}"
    );
    let verification = get_json(&client, &format!("{base}/projects/{required}/verification")).await;
    assert_eq!(verification["status"], "failed");

    // The metrics count verifications by outcome.
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("guild_verifications_total{status=\"passed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("guild_verifications_total{status=\"failed\"}"),
        "{metrics}"
    );
    server.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn eval_runs_its_suite_verified_and_ends_with_one_json_object() {
    let url = guild_testkit::database_url().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("suite.txt");
    std::fs::write(
        &suite,
        "# two stacks\nA reading list with ratings\nA habit tracker with streaks, in Python\n",
    )
    .expect("write the suite");
    let output = common::guild(
        &["eval", "--suite", suite.to_str().expect("utf-8")],
        &[("DATABASE_URL", url.as_str()), ("GUILD_VERIFY", "full")],
    )
    .output()
    .expect("guild eval runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let figures: Value =
        serde_json::from_str(stdout.lines().last().expect("a last line")).expect("JSON");
    assert_eq!(figures["projects"], 2, "{figures}");
    assert_eq!(figures["verified"], 2, "{stdout}");
    assert_eq!(figures["executability"], 1.0);
    assert!(figures["tokens"].as_i64().expect("tokens") > 0);
    assert_eq!(figures["cost_usd"], 0.0);
}
