//! `guild serve` as a real process: private PostgreSQL, HTTP, a project to the end, SIGTERM;
//! API-only servers with `guild worker` processes; recovery after `kill -9`.

mod common;

use common::{
    Database, completes, create, events_to_the_end, events_until, get_json, serve, worker,
};
use guild_testkit::metric;
use serde_json::json;

#[tokio::test]
async fn serve_runs_a_project_over_http_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("pg");
    let (server, base) = serve(Database::Private(&data_dir), "2", &[]);

    let client = guild_testkit::http_client();
    let id = create(
        &client,
        &base,
        json!({"description": "A todo list app with user accounts and sharing"}),
    )
    .await;
    // The event stream closes when the project has ended.
    let stream = events_to_the_end(&client, &base, &id).await;
    assert!(stream.contains("event: project_completed"), "{stream}");
    let project = get_json(&client, &format!("{base}/projects/{id}")).await;
    assert_eq!(project["status"], "completed");
    assert_eq!(project["progress"], json!({"completed": 20}));

    server.terminate();
    assert!(
        !data_dir.join("postmaster.pid").exists(),
        "PostgreSQL still running"
    );
}

#[tokio::test]
async fn tasks_of_a_killed_server_are_recovered_by_another_one() {
    let url = guild_testkit::database_url().await;
    let client = guild_testkit::http_client();
    // A: slow answers and a short lease.
    let (a, a_base) = serve(
        Database::Url(&url),
        "2",
        &[
            ("GUILD_OFFLINE_LATENCY_MS", "60000"),
            ("GUILD_LEASE_SECS", "2"),
        ],
    );
    let id = create(
        &client,
        &a_base,
        json!({"description": "A todo app", "project_type": "frontend"}),
    )
    .await;
    // Wait until A runs the analysis, then kill it without warning.
    events_until(&client, &a_base, &id, |seen| {
        seen.contains("event: task_claimed")
    })
    .await;
    a.kill();

    // B: fast answers; it finds the expired lease and finishes the project.
    let (b, b_base) = serve(Database::Url(&url), "2", &[("GUILD_LEASE_SECS", "2")]);
    let events = completes(&client, &b_base, &id).await;
    assert!(events.contains("lease expired"), "{events}");
    let project = get_json(&client, &format!("{b_base}/projects/{id}")).await;
    assert_eq!(project["status"], "completed");
    let completions = events.matches("event: task_completed").count();
    assert_eq!(completions, 10, "each task completed exactly once");
    b.terminate();
}

#[tokio::test]
async fn worker_processes_run_the_projects_of_an_api_only_server() {
    let url = guild_testkit::database_url().await;
    let client = guild_testkit::http_client();
    let (api, base) = serve(Database::Url(&url), "0", &[]);
    let workers: Vec<_> = (0..2).map(|_| worker(&url, "2", &[]).0).collect();

    let mut ids = Vec::new();
    for project_type in ["fullstack", "backend"] {
        ids.push(
            create(
                &client,
                &base,
                json!({"description": "A todo app", "project_type": project_type}),
            )
            .await,
        );
    }
    for id in &ids {
        completes(&client, &base, id).await;
    }
    // Both workers took part, in slots of their own.
    let sessions = get_json(&client, &format!("{base}/sessions")).await;
    let worker_ids: std::collections::HashSet<&str> = sessions["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["worker_id"].as_str().expect("worker"))
        .collect();
    assert_eq!(worker_ids.len(), 2, "{sessions}");

    for worker in workers {
        worker.terminate();
    }
    api.terminate();
}

#[tokio::test]
async fn a_worker_process_serves_its_metrics_and_health_for_the_container() {
    let url = guild_testkit::database_url().await;
    let client = guild_testkit::http_client();
    let (api, base) = serve(Database::Url(&url), "0", &[]);
    let (mut worker, _) = worker(&url, "4", &[("GUILD_METRICS_BIND", "127.0.0.1:0")]);
    let line = worker.next_line();
    let metrics_url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
        .to_owned();

    let id = create(&client, &base, json!({"description": "A todo app"})).await;
    completes(&client, &base, &id).await;

    // The work happened in the worker process: its metrics show it.
    let text = client
        .get(&metrics_url)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert_eq!(
        metric(&text, "guild_tasks_completed_total", &[]),
        20.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "guild_llm_calls_total", &["provider=\"offline\""]),
        20.0
    );
    assert!(metric(&text, "guild_llm_tokens_total", &["type=\"completion\""]) > 0.0);
    // The API process ran no task, but served the requests.
    let api_text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert_eq!(metric(&api_text, "guild_tasks_completed_total", &[]), 0.0);
    assert!(
        metric(
            &api_text,
            "guild_http_requests_total",
            &["route=\"/projects\""]
        ) >= 1.0
    );

    // `guild healthcheck`, as the image runs it, against each process.
    let health = metrics_url.replace("/metrics", "/healthz");
    for (url, healthy) in [
        (health.as_str(), true),
        (&format!("{base}/healthz"), true),
        ("http://127.0.0.1:9/healthz", false),
    ] {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_guild"))
            .args(["healthcheck", "--url", url])
            .output()
            .expect("guild healthcheck runs")
            .status;
        assert_eq!(status.success(), healthy, "{url}");
    }
    worker.terminate();
    api.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_when_a_collector_is_set() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let url = guild_testkit::database_url().await;
    let client = guild_testkit::http_client();
    let (api, base) = serve(
        Database::Url(&url),
        "2",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.uri().as_str()),
            ("OTEL_SERVICE_NAME", "guild-under-test"),
        ],
    );
    let id = create(
        &client,
        &base,
        json!({"description": "A todo app", "project_type": "frontend"}),
    )
    .await;
    completes(&client, &base, &id).await;
    // Stopping flushes the batch of spans.
    tokio::task::spawn_blocking(move || api.terminate())
        .await
        .expect("stopped");

    let exports = collector.received_requests().await.expect("recorded");
    assert!(!exports.is_empty(), "no span was exported");
    let contains = |needle: &str| {
        exports
            .iter()
            .any(|r| r.body.windows(needle.len()).any(|w| w == needle.as_bytes()))
    };
    assert!(
        exports
            .iter()
            .all(|r| r.headers["content-type"] == "application/x-protobuf")
    );
    assert!(contains("guild-under-test"), "the service name");
    assert!(contains("request_id"), "request spans carry their id");
    assert!(
        contains("execute") && contains(&id),
        "task spans carry their project"
    );
}
