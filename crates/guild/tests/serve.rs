//! `guild serve` as a real process: private PostgreSQL, HTTP, a project to the end, SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

#[tokio::test]
async fn serve_runs_a_project_over_http_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("pg");
    let (child, _stdout, base) = serve(Database::Private(&data_dir), "2", &[]);

    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/projects"))
        .json(&json!({"description": "A todo list app with user accounts and sharing"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 202);
    let location = created.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    // The event stream closes when the project has ended.
    let stream = client
        .get(format!("{base}{location}/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("stream")
        .text()
        .await
        .expect("the stream ends");
    assert!(stream.contains("event: project_completed"), "{stream}");
    let project: Value = client
        .get(format!("{base}{location}"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(project["status"], "completed");
    assert_eq!(project["progress"], json!({"completed": 15}));

    terminate(child);
    assert!(
        !data_dir.join("postmaster.pid").exists(),
        "PostgreSQL still running"
    );
}

/// The database a `guild serve` uses.
enum Database<'a> {
    /// A server at this URL.
    Url(&'a str),
    /// A private PostgreSQL with its data here.
    Private(&'a Path),
}

/// Starts `guild serve` on a free port with `workers` slots and extra environment, and
/// returns it with its output reader and base URL once it listens.
fn serve(
    database: Database<'_>,
    workers: &str,
    env: &[(&str, &str)],
) -> (Child, BufReader<ChildStdout>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guild"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("GUILD_API_KEYS")
        .args(["serve", "--bind", "127.0.0.1:0", "--workers", workers])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match database {
        Database::Url(url) => command.env("DATABASE_URL", url),
        Database::Private(dir) => command.arg("--data-dir").arg(dir),
    };
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("guild serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    let base = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, stdout, base)
}

/// Sends SIGTERM and expects a clean exit.
fn terminate(mut child: Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn tasks_of_a_killed_server_are_recovered_by_another_one() {
    let url = guild_testkit::database_url().await;
    let client = reqwest::Client::new();
    // A: slow answers and a short lease.
    let (mut a, _a_out, a_base) = serve(
        Database::Url(&url),
        "2",
        &[
            ("GUILD_OFFLINE_LATENCY_MS", "60000"),
            ("GUILD_LEASE_SECS", "2"),
        ],
    );
    let created: Value = client
        .post(format!("{a_base}/projects"))
        .json(&json!({"description": "A todo app", "project_type": "frontend"}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    // Wait until A runs the analysis, then kill it without warning.
    let mut stream = client
        .get(format!("{a_base}/projects/{id}/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("stream");
    let mut seen = String::new();
    while !seen.contains("event: task_claimed") {
        let chunk = stream.chunk().await.expect("chunk").expect("more");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    a.kill().expect("SIGKILL");
    a.wait().expect("reaped");

    // B: fast answers; it finds the expired lease and finishes the project.
    let (b, _b_out, b_base) = serve(Database::Url(&url), "2", &[("GUILD_LEASE_SECS", "2")]);
    let events = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        client
            .get(format!("{b_base}/projects/{id}/events"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("stream")
            .text(),
    )
    .await
    .expect("the project ends")
    .expect("the stream ends");
    assert!(events.contains("lease expired"), "{events}");
    assert!(events.contains("event: project_completed"), "{events}");
    let project: Value = client
        .get(format!("{b_base}/projects/{id}"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(project["status"], "completed");
    let completions = events.matches("event: task_completed").count();
    assert_eq!(completions, 6, "each task completed exactly once");
    terminate(b);
}

#[tokio::test]
async fn worker_processes_run_the_projects_of_an_api_only_server() {
    let url = guild_testkit::database_url().await;
    let client = reqwest::Client::new();
    let (api, _api_out, base) = serve(Database::Url(&url), "0", &[]);
    let workers: Vec<(Child, BufReader<ChildStdout>)> = (0..2)
        .map(|_| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_guild"))
                .env("DATABASE_URL", &url)
                .args(["worker", "--workers", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("guild worker starts");
            let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read");
            assert!(line.starts_with("Guild worker worker-"), "{line}");
            (child, stdout)
        })
        .collect();

    let mut ids = Vec::new();
    for project_type in ["fullstack", "backend"] {
        let created: Value = client
            .post(format!("{base}/projects"))
            .json(&json!({"description": "A todo app", "project_type": project_type}))
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("json");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        let events = client
            .get(format!("{base}/projects/{id}/events"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("stream")
            .text()
            .await
            .expect("the stream ends");
        assert!(events.contains("event: project_completed"), "{events}");
    }
    // Both workers took part, in slots of their own.
    let sessions: Value = client
        .get(format!("{base}/sessions"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let worker_ids: std::collections::HashSet<&str> = sessions["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["worker_id"].as_str().expect("worker"))
        .collect();
    assert_eq!(worker_ids.len(), 2, "{sessions}");

    for (child, _) in workers {
        terminate(child);
    }
    terminate(api);
}
