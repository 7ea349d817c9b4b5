//! `guild serve` as a real process: private PostgreSQL, HTTP, a project to the end, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

#[tokio::test]
async fn serve_runs_a_project_over_http_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("pg");
    let mut child = Command::new(env!("CARGO_BIN_EXE_guild"))
        .env_remove("DATABASE_URL")
        .env_remove("GUILD_API_KEYS")
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--data-dir",
        ])
        .arg(&data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("guild serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    let base = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();

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

    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(
        !data_dir.join("postmaster.pid").exists(),
        "PostgreSQL still running"
    );
    drop(stdout);
}
