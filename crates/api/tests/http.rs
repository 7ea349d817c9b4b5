//! The HTTP API through real HTTP against a real server, worker pool and PostgreSQL.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::{Options, Recording, start};
use guild_agents::{Agent, AgentError, AgentOutcome, AgentSettings, Agents, TaskInput};
use guild_worker::WorkerEvent;
use serde_json::{Value, json};

const TODO: &str = "A todo list app with user accounts and sharing";

fn statuses(tasks: &Value) -> Vec<(String, String)> {
    tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["key"].as_str().expect("key").to_owned(),
                t["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

fn task_id(tasks: &Value, key: &str) -> String {
    tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["key"] == key)
        .expect(key)["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_runs_from_post_to_files_and_archive() {
    let server = start(Options::default()).await;
    let response = server
        .post(
            "/projects",
            json!({"description": TODO, "project_type": "fullstack"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let created: Value = response.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/projects/{id}"));
    assert_eq!(created["plan"]["critical_path_minutes"], 350);
    assert_eq!(
        created["progress"]["ready"].as_i64().unwrap_or(0)
            + created["progress"]["running"].as_i64().unwrap_or(0)
            + created["progress"]["blocked"].as_i64().unwrap_or(0)
            + created["progress"]["completed"].as_i64().unwrap_or(0),
        20
    );

    let events = server.until_finished(&id).await;
    assert_eq!(events.last().expect("events").kind, "project_completed");

    let project = server.get_json(&location).await;
    assert_eq!(project["status"], "completed");
    assert_eq!(project["progress"], json!({"completed": 20}));
    assert_eq!(
        project["plan"]["phases"].as_array().expect("phases").len(),
        10
    );
    let usage = &project["usage"];
    assert!(usage["total_tokens"].as_i64().expect("tokens") > 0);
    assert_eq!(usage["llm_calls"], 20, "one offline call a task");
    assert_eq!(
        usage["cached_prompt_tokens"], 0,
        "the offline model caches nothing"
    );
    assert_eq!(usage["cache_hits"], 0);
    assert_eq!(usage["cost_usd"], 0.0, "the offline model is free");
    // Usage by agent adds up to the project's.
    let by_agent = project["usage_by_agent"].as_array().expect("by agent");
    let agents: Vec<&str> = by_agent
        .iter()
        .filter_map(|a| a["agent"].as_str())
        .collect();
    assert_eq!(
        agents,
        ["analyst", "backend", "devops", "frontend", "reviewer"]
    );
    let summed: i64 = by_agent
        .iter()
        .map(|a| a["total_tokens"].as_i64().expect("tokens"))
        .sum();
    assert_eq!(summed, usage["total_tokens"].as_i64().expect("tokens"));
    assert!(project["requirements"]["core_features"].is_array());

    // The design: the contract, the file plan, and every file written is in the plan.
    let design = server.get_json(&format!("/projects/{id}/design")).await;
    assert_eq!(design["version"], 1);
    assert_eq!(design["versions"], json!([1]));
    assert_eq!(design["design"]["contract"]["openapi"], "3.1.0");
    assert!(design["design"]["contract"]["paths"]["/api/todos/{id}"]["patch"].is_object());
    let planned: std::collections::BTreeSet<&str> = design["design"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    let files = server.get_json(&format!("/projects/{id}/files")).await;
    let written: std::collections::BTreeSet<&str> = files["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        written, planned,
        "every generated file is in the plan, and every planned one written"
    );
    assert!(written.contains("backend/tsconfig.json") && written.contains("frontend/index.html"));
    let missing = server
        .get(&format!("/projects/{id}/design?version=2"))
        .await;
    assert_eq!(missing.status(), 404);
    let bad = server
        .get(&format!("/projects/{id}/design?version=0"))
        .await;
    assert_eq!(bad.status(), 422);

    let tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    assert!(statuses(&tasks).iter().all(|(_, s)| s == "completed"));
    let integration = tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["key"] == "api_integration")
        .expect("task");
    assert_eq!(
        integration["depends_on"],
        json!(["business_logic", "page_layouts", "state_management"])
    );
    let filtered = server
        .get_json(&format!("/projects/{id}/tasks?status=failed"))
        .await;
    assert_eq!(filtered["tasks"], json!([]));

    let schema = server
        .get_json(&format!(
            "/projects/{id}/tasks/{}",
            task_id(&tasks, "database_schema")
        ))
        .await;
    assert!(
        schema["result"]["summary"]
            .as_str()
            .expect("summary")
            .contains("database_schema")
    );
    assert_eq!(schema["files"].as_array().expect("files").len(), 2);
    assert_eq!(schema["usage"]["llm_calls"], 1);
    assert_eq!(
        schema["usage"]["total_tokens"],
        schema["result"]["prompt_tokens"].as_i64().expect("prompt")
            + schema["result"]["completion_tokens"]
                .as_i64()
                .expect("completion")
    );

    let files = server.get_json(&format!("/projects/{id}/files")).await;
    let files = files["files"].as_array().expect("files").clone();
    assert!(files.len() >= 20);
    let response = server
        .get(&format!("/projects/{id}/files/backend/db/schema.sql"))
        .await;
    assert_eq!(response.headers()["content-type"], "application/sql");
    let schema_sql = response.text().await.expect("text");
    assert!(
        schema_sql.contains("CREATE TABLE IF NOT EXISTS \"todos\""),
        "{schema_sql}"
    );
    let missing = server
        .get(&format!("/projects/{id}/files/backend/db/nope.sql"))
        .await;
    assert_eq!(missing.status(), 404);
    let old = server
        .get(&format!(
            "/projects/{id}/files/backend/db/schema.sql?version=9"
        ))
        .await;
    assert_eq!(old.status(), 404);

    // The archive unpacks to exactly the listed files, byte for byte.
    let archive = server.get(&format!("/projects/{id}/archive")).await;
    assert_eq!(archive.headers()["content-type"], "application/gzip");
    let bytes = archive.bytes().await.expect("bytes");
    let mut unpacked = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut seen = HashSet::new();
    for entry in unpacked.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mut content = String::new();
        entry.read_to_string(&mut content).expect("read");
        let served = server
            .get(&format!("/projects/{id}/files/{path}"))
            .await
            .text()
            .await
            .expect("text");
        assert_eq!(content, served, "{path}");
        seen.insert(path);
    }
    let listed: HashSet<String> = files
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect();
    assert_eq!(seen, listed);
    // Asked for as plain bytes (as some generated clients do), the same archive.
    let as_bytes = server
        .client
        .get(server.url(&format!("/projects/{id}/archive")))
        .header("accept", "application/octet-stream")
        .send()
        .await
        .expect("send");
    assert_eq!(
        as_bytes.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(as_bytes.bytes().await.expect("bytes"), bytes);

    let plan = server.get_json(&format!("/projects/{id}/plan")).await;
    assert_eq!(plan["nodes"].as_array().expect("nodes").len(), 20);
    let mermaid = server
        .client
        .get(server.url(&format!("/projects/{id}/plan")))
        .header("accept", "text/vnd.mermaid")
        .send()
        .await
        .expect("mermaid");
    assert!(
        mermaid.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/vnd.mermaid")
    );
    let mermaid = mermaid.text().await.expect("text");
    assert!(mermaid.starts_with("graph TD\n"));
    assert!(mermaid.contains("database_schema --> api_structure"));
    assert!(
        mermaid.contains("performance_testing[\"performance_testing<br/>reviewer\"]:::completed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_problem_and_store_nothing() {
    let server = start(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let project = server.create(json!({"description": TODO})).await;
    let before = server.get_json("/projects?limit=100").await["items"]
        .as_array()
        .expect("items")
        .len();

    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = server.client.post(server.url("/projects")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let workflow = |tasks: Value| json!({"description": "x", "workflow": tasks});
    let options = |options: Value| json!({"description": "x", "options": options});
    // Bodies POSTed to /projects, with the status and a word of the problem they get.
    let bodies: Vec<(Value, u16, &str)> = vec![
        (
            json!({"description": "x", "project_type": "mobile"}),
            422,
            "project_type",
        ),
        (json!({"description": "  "}), 422, "description"),
        (json!({"description": "a\u{0}b"}), 422, "NUL"),
        (json!({"description": "x", "colour": "red"}), 422, "colour"),
        (
            json!({"description": "x".repeat(20_001)}),
            422,
            "description",
        ),
        (json!({"description": "y".repeat(1_100_000)}), 413, "1 MiB"),
        (
            workflow(json!([
                {"key": "a", "agent": "backend", "depends_on": ["c"]},
                {"key": "b", "agent": "backend", "depends_on": ["a"]},
                {"key": "c", "agent": "backend", "depends_on": ["b"]}])),
            422,
            "a -> c -> b -> a",
        ),
        (
            workflow(json!([{"key": "a", "agent": "backend", "depends_on": ["ghost"]}])),
            422,
            "a -> ghost",
        ),
        (
            workflow(json!([{"key": "a", "agent": "backend"}, {"key": "a", "agent": "frontend"}])),
            422,
            "duplicate task keys: a",
        ),
        (
            workflow(json!([{"key": "a", "agent": "backend", "max_attempts": 11}])),
            422,
            "workflow[0].max_attempts",
        ),
        (
            options(json!({"require_approval": ["nope"]})),
            422,
            "options.require_approval",
        ),
        (
            options(json!({"max_parallel": 0})),
            422,
            "options.max_parallel",
        ),
        (options(json!({"max_tokens": 0})), 422, "options.max_tokens"),
        (
            options(json!({"max_cost_usd": -1.5})),
            422,
            "options.max_cost_usd",
        ),
        (options(json!({"cache": "no"})), 422, "cache"),
    ];
    // Paths read with GET, likewise.
    let unknown = "01a20e79-e14f-7718-a503-c9a7360ab999";
    let paths: Vec<(String, u16, &str)> = vec![
        ("/projects/not-a-uuid".into(), 400, "not-a-uuid"),
        (format!("/projects/{unknown}"), 404, "project not found"),
        (
            format!("/projects/{unknown}/tasks"),
            404,
            "project not found",
        ),
        (
            format!("/projects/{project}/tasks/{unknown}"),
            404,
            "task not found",
        ),
        (
            format!("/projects/{project}/tasks?status=done"),
            400,
            "unknown task status",
        ),
        ("/projects?limit=0".into(), 400, "limit"),
        ("/projects?cursor=zzz".into(), 400, "cursor"),
        ("/projects?status=sleeping".into(), 400, "project status"),
        (
            format!("/projects/{project}/plan?format=svg"),
            400,
            "format",
        ),
        (
            format!("/projects/{project}/files/a?version=0"),
            400,
            "version",
        ),
        (format!("/projects/{project}/events?after=-1"), 400, "after"),
        ("/nowhere".into(), 404, "route not found"),
    ];
    let mut cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (
            raw("{\"description\":", Some("application/json"))
                .await
                .expect("send"),
            400,
            "malformed JSON",
        ),
        (
            raw("{\"description\": 5}", Some("application/json"))
                .await
                .expect("send"),
            422,
            "description",
        ),
        (
            raw("{\"description\": \"x\"}", None).await.expect("send"),
            415,
            "content-type",
        ),
    ];
    for (body, status, needle) in bodies {
        cases.push((server.post("/projects", body).await, status, needle));
    }
    for (path, status, needle) in &paths {
        cases.push((server.get(path).await, *status, needle));
    }
    for (response, status, needle) in cases {
        assert_eq!(response.status().as_u16(), status, "{needle}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{needle}"
        );
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["status"], status);
        assert!(
            problem["type"]
                .as_str()
                .expect("type")
                .starts_with("/problems/")
        );
        let text = problem.to_string();
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    let after = server.get_json("/projects?limit=100").await["items"]
        .as_array()
        .expect("items")
        .len();
    assert_eq!(before, after, "no bad request stored anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_return_the_same_project_or_conflict() {
    let server = start(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let send = |key: &'static str, body: Value| {
        server
            .client
            .post(server.url("/projects"))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send("k-1", json!({"description": TODO}))
        .await
        .expect("send");
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    let again = send("k-1", json!({"description": TODO}))
        .await
        .expect("send");
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("json");
    assert_eq!(first["id"], again["id"]);
    let other = send("k-1", json!({"description": "Something else"}))
        .await
        .expect("send");
    assert_eq!(other.status(), 409);
    let fresh = send("k-2", json!({"description": TODO}))
        .await
        .expect("send");
    assert_eq!(fresh.status(), 202);
    assert_eq!(
        server.get_json("/projects").await["items"]
            .as_array()
            .expect("items")
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_are_listed_newest_first_in_pages() {
    let server = start(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            server
                .create(json!({"description": format!("Project number {i}")}))
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut path = "/projects?limit=2".to_owned();
    loop {
        let page = server.get_json(&path).await;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|p| p["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/projects?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);
    let pending = server.get_json("/projects?status=pending").await;
    assert_eq!(pending["items"].as_array().expect("items").len(), 5);
    assert_eq!(
        server.get_json("/projects?status=running").await["items"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_the_project_and_drops_running_results() {
    let mut server = start(Options {
        workers: 2,
        agent: common::offline_team(Duration::from_millis(400)),
        ..Options::default()
    })
    .await;
    let id = server.create(json!({"description": TODO})).await;
    // Wait until the first task is running.
    server.follow(&id, None, |e| e.kind == "task_claimed").await;
    let response = server
        .post(&format!("/projects/{id}/cancel"), json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let project: Value = response.json().await.expect("json");
    assert_eq!(project["status"], "cancelled");
    assert_eq!(project["progress"], json!({"cancelled": 20}));
    // The running task's result is dropped when it arrives.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let WorkerEvent::ResultDropped { key, .. } =
                server.worker_events.recv().await.expect("events")
            {
                assert_eq!(key, "requirements_analysis");
                return;
            }
        }
    })
    .await
    .expect("the running task ended");
    let tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    assert!(statuses(&tasks).iter().all(|(_, s)| s == "cancelled"));
    let events = server
        .get_json(&format!("/projects/{id}/events?limit=1000"))
        .await;
    assert!(
        !events["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "task_completed")
    );
    let again = server
        .post(&format!("/projects/{id}/cancel"), json!({}))
        .await;
    assert_eq!(again.status(), 409);
}

/// Fails the first run of one task type for good; later runs work.
struct FailOnce {
    team: Agents,
    kind: &'static str,
    failed: AtomicBool,
}

#[async_trait]
impl Agent for FailOnce {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        if input.kind == self.kind && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(AgentError::permanent("the model refused"));
        }
        self.team.run(input).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_failed_task_reopens_its_dependents_and_completes_the_project() {
    let agent = Arc::new(FailOnce {
        team: Agents::new(
            Arc::new(guild_offline::OfflineProvider::default()),
            AgentSettings::default(),
        ),
        kind: "ui_components",
        failed: AtomicBool::new(false),
    });
    let server = start(Options {
        agent,
        ..Options::default()
    })
    .await;
    let id = server
        .create(json!({"description": TODO, "project_type": "frontend"}))
        .await;
    let events = server.until_finished(&id).await;
    assert_eq!(events.last().expect("events").kind, "project_failed");
    let tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    let failed = task_id(&tasks, "ui_components");
    assert!(
        statuses(&tasks).contains(&("page_layouts".into(), "cancelled".into()))
            || statuses(&tasks).contains(&("page_layouts".into(), "skipped".into()))
    );

    let completed = task_id(&tasks, "requirements_analysis");
    let refused = server
        .post(
            &format!("/projects/{id}/tasks/{completed}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(refused.status(), 409);

    let retried = server
        .post(&format!("/projects/{id}/tasks/{failed}/retry"), json!({}))
        .await;
    assert_eq!(retried.status(), 200);
    let last = events.last().map(|e| e.id);
    let more = server.follow(&id, last, |_| false).await;
    assert_eq!(more.last().expect("events").kind, "project_completed");
    let project = server.get_json(&format!("/projects/{id}")).await;
    assert_eq!(project["status"], "completed");
    assert_eq!(project["progress"], json!({"completed": 10}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_task_waits_and_a_rejection_reaches_the_next_prompt() {
    let model = Arc::new(Recording::default());
    let agent = Arc::new(Agents::new(model.clone(), AgentSettings::default()));
    let server = start(Options {
        agent,
        ..Options::default()
    })
    .await;
    let id = server.create(json!({"description": TODO, "project_type": "backend", "options": {"require_approval": ["database_schema"]}})).await;
    let waiting = server
        .follow(&id, None, |e| e.kind == "task_awaiting_approval")
        .await;
    let last = waiting.last().expect("events").id;
    let tasks = server.get_json(&format!("/projects/{id}/tasks")).await;
    let schema = task_id(&tasks, "database_schema");
    assert!(statuses(&tasks).contains(&("database_schema".into(), "awaiting_approval".into())));
    assert!(statuses(&tasks).contains(&("api_structure".into(), "blocked".into())));

    let empty = server
        .post(
            &format!("/projects/{id}/tasks/{schema}/reject"),
            json!({"feedback": " "}),
        )
        .await;
    assert_eq!(empty.status(), 422);
    let rejected = server
        .post(
            &format!("/projects/{id}/tasks/{schema}/reject"),
            json!({"feedback": "Add an index on users.email"}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    let again = server
        .follow(&id, Some(last), |e| e.kind == "task_awaiting_approval")
        .await;
    assert!(again.iter().any(|e| e.kind == "approval_rejected"));
    let prompts = model
        .requests
        .lock()
        .expect("lock")
        .iter()
        .filter(|r| r.purpose.task_kind == "database_schema")
        .map(|r| r.messages[0].content.clone())
        .collect::<Vec<_>>();
    assert_eq!(prompts.len(), 2);
    assert!(!prompts[0].contains("Add an index on users.email"));
    assert!(
        prompts[1]
            .contains("# Reviewer feedback on your previous answer\n\nAdd an index on users.email")
    );

    let approved = server
        .post(&format!("/projects/{id}/tasks/{schema}/approve"), json!({}))
        .await;
    assert_eq!(approved.status(), 200);
    let approved: Value = approved.json().await.expect("json");
    assert_eq!(approved["status"], "completed");
    let twice = server
        .post(&format!("/projects/{id}/tasks/{schema}/approve"), json!({}))
        .await;
    assert_eq!(twice.status(), 409);
    let rest = server
        .follow(&id, Some(again.last().expect("events").id), |_| false)
        .await;
    assert_eq!(rest.last().expect("events").kind, "project_completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_is_ordered_and_resumes_after_the_last_event_id() {
    let server = start(Options::default()).await;
    let id = server
        .create(json!({"description": TODO, "project_type": "api"}))
        .await;
    let first = server
        .follow(&id, None, |e| e.kind == "task_completed")
        .await;
    let resume_after = first.last().expect("events").id;
    let rest = server.follow(&id, Some(resume_after), |_| false).await;
    let streamed: Vec<i64> = first.iter().chain(rest.iter()).map(|e| e.id).collect();
    assert!(streamed.windows(2).all(|w| w[0] < w[1]), "{streamed:?}");
    assert!(rest.first().expect("more").id > resume_after);
    let listed = server
        .get_json(&format!("/projects/{id}/events?limit=1000"))
        .await;
    let listed: Vec<i64> = listed["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(streamed, listed);
    assert_eq!(rest.last().expect("events").kind, "project_completed");
    let page = server
        .get_json(&format!(
            "/projects/{id}/events?after={}&limit=2",
            listed[0]
        ))
        .await;
    assert_eq!(page["events"][0]["id"], listed[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_guard_everything_but_health_and_the_description() {
    let server = start(Options {
        workers: 0,
        keys: "k1,k2",
        ..Options::default()
    })
    .await;
    let unauthorized = server.get("/projects").await;
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(unauthorized.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        unauthorized.headers()["content-type"],
        "application/problem+json"
    );
    let wrong = server
        .client
        .get(server.url("/projects"))
        .bearer_auth("k3")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    let right = server
        .client
        .get(server.url("/projects"))
        .bearer_auth("k2")
        .send()
        .await
        .expect("send");
    assert_eq!(right.status(), 200);
    for open in ["/healthz", "/readyz", "/openapi.json", "/docs/"] {
        assert_eq!(server.get(open).await.status(), 200, "{open}");
    }
    let spec: Value = server
        .get("/openapi.json")
        .await
        .json()
        .await
        .expect("spec");
    assert_eq!(
        spec["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    // The docs page finds the spec relative to itself, so it works behind a path prefix.
    let initializer = server
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .expect("initializer");
    assert!(initializer.contains("\"../openapi.json\""), "{initializer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_agents_and_workflows_describe_the_service() {
    let server = start(Options::default()).await;
    let id = server.create(json!({"description": TODO})).await;
    server.until_finished(&id).await;
    let sessions = server.get_json("/sessions").await;
    let sessions = sessions["sessions"].as_array().expect("sessions");
    assert_eq!(
        sessions
            .iter()
            .map(|s| s["tasks_completed"].as_i64().expect("n"))
            .sum::<i64>(),
        20
    );
    assert!(sessions.iter().all(|s| s["current_task_id"].is_null()));
    let agents = server.get_json("/agents").await;
    let backend = agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent"] == "backend")
        .expect("backend");
    assert_eq!(backend["tasks_completed"], 5);
    assert!(
        backend["p95_duration_ms"].as_f64().expect("p95")
            >= backend["mean_duration_ms"].as_f64().expect("mean") * 0.0
    );
    assert!(backend["prompt_tokens"].as_i64().expect("tokens") > 0);
    let workflows = server.get_json("/workflows").await;
    let fullstack = workflows["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .find(|w| w["project_type"] == "fullstack")
        .expect("fullstack");
    assert_eq!(fullstack["tasks"].as_array().expect("tasks").len(), 20);
    assert_eq!(fullstack["critical_path_minutes"], 350);
    assert_eq!(server.get_json("/readyz").await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_budget_applies_to_projects_that_set_none() {
    let server = start(Options {
        workers: 0,
        default_max_tokens: Some(50_000),
        ..Options::default()
    })
    .await;
    let response = server.post("/projects", json!({"description": TODO})).await;
    assert_eq!(response.status(), 202);
    let project: Value = response.json().await.expect("json");
    assert_eq!(project["options"]["max_tokens"], 50_000);
    assert_eq!(project["options"]["cache"], Value::Null);

    let response = server
        .post(
            "/projects",
            json!({"description": TODO, "options": {"max_tokens": 10, "max_cost_usd": 0.25, "cache": false}}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let project: Value = response.json().await.expect("json");
    assert_eq!(project["options"]["max_tokens"], 10);
    assert_eq!(project["options"]["max_cost_usd"], 0.25);
    assert_eq!(project["options"]["cache"], false);
}
