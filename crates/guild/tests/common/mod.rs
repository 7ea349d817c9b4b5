//! Guild processes for the tests: `guild serve` and `guild worker` as real child processes,
//! killed if a test fails before it stops them.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

/// A child process that is killed when dropped, so a failing test leaves nothing running.
pub struct Proc {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Proc {
    /// Sends SIGTERM and expects a clean exit.
    pub fn terminate(mut self) {
        self.signal("TERM");
        let status = self.child.wait().expect("exits");
        assert!(status.success(), "{status:?}");
    }

    /// Kills it without warning (SIGKILL) and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    /// The next line the process prints.
    pub fn next_line(&mut self) -> String {
        self.first_line()
    }

    fn first_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read");
        line
    }
}

/// The database a `guild serve` uses.
pub enum Database<'a> {
    /// A server at this URL.
    Url(&'a str),
    /// A private PostgreSQL with its data here.
    Private(&'a Path),
}

/// The settings that would send a test's calls to a real provider: unset for every test.
pub const LLM_VARIABLES: [&str; 5] = [
    "GUILD_LLM_PROVIDER",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
];

pub fn guild(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guild"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("GUILD_API_KEYS")
        // Verification has its own tests (verify.rs): these stay fast.
        .env("GUILD_VERIFY", "off");
    for variable in LLM_VARIABLES {
        command.env_remove(variable);
    }
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Starts `guild serve` on a free port with `workers` slots and extra environment, and
/// returns it with its base URL once it listens.
pub fn serve(database: Database<'_>, workers: &str, env: &[(&str, &str)]) -> (Proc, String) {
    let mut command = guild(
        &["serve", "--bind", "127.0.0.1:0", "--workers", workers],
        env,
    );
    match database {
        Database::Url(url) => command.env("DATABASE_URL", url),
        Database::Private(dir) => command.arg("--data-dir").arg(dir),
    };
    let mut child = command.spawn().expect("guild serve starts");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut proc = Proc { child, stdout };
    let line = proc.first_line();
    let base = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (proc, base)
}

/// Starts `guild worker` against `url`; returns it with its worker id once it runs.
pub fn worker(url: &str, slots: &str, env: &[(&str, &str)]) -> (Proc, String) {
    let mut command = guild(&["worker", "--workers", slots], env);
    command.env("DATABASE_URL", url);
    let mut child = command.spawn().expect("guild worker starts");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut proc = Proc { child, stdout };
    let line = proc.first_line();
    let id = line
        .split_whitespace()
        .find(|word| word.starts_with("worker-"))
        .unwrap_or_else(|| panic!("no worker id in {line:?}"))
        .to_owned();
    (proc, id)
}

/// Creates a project; returns its id.
pub async fn create(client: &reqwest::Client, base: &str, body: Value) -> String {
    let created = client
        .post(format!("{base}/projects"))
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 202);
    let created: Value = created.json().await.expect("json");
    created["id"].as_str().expect("id").to_owned()
}

/// The project's whole event stream, read until the server closes it (the project ended).
pub async fn events_to_the_end(client: &reqwest::Client, base: &str, id: &str) -> String {
    client
        .get(format!("{base}/projects/{id}/events"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("stream")
        .text()
        .await
        .expect("the stream ends")
}

/// Follows the project's events to its end, within two minutes, and expects it completed.
/// Returns its events.
pub async fn completes(client: &reqwest::Client, base: &str, id: &str) -> String {
    let events = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        events_to_the_end(client, base, id),
    )
    .await
    .expect("the project ends");
    assert!(events.contains("event: project_completed"), "{events}");
    events
}

/// Reads the project's event stream until `found` says the text so far has what it needs
/// (within two minutes: a test fails rather than hangs).
pub async fn events_until(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    found: impl Fn(&str) -> bool,
) -> String {
    let read = async {
        let mut stream = client
            .get(format!("{base}/projects/{id}/events"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("stream");
        let mut seen = String::new();
        while !found(&seen) {
            let chunk = stream.chunk().await.expect("chunk").expect("more");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        seen
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), read)
        .await
        .expect("the awaited event arrives")
}

/// GET a JSON document.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json")
}
