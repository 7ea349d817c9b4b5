//! The `guild` binary as a user runs it: real processes, real PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn guild() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guild"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("GUILD_LLM_PROVIDER")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GUILD_OFFLINE_LATENCY_MS")
        .env_remove("RUST_LOG")
        // Verification has its own tests (verify.rs): these stay fast.
        .env("GUILD_VERIFY", "off");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    if e.path().is_dir() {
                        files_under(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The number after `files:` in the summary.
fn files_reported(stdout: &str) -> usize {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("files:"))
        .expect("a files line");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a count")
}

#[test]
fn the_quick_start_generates_a_fullstack_project_with_a_private_postgres() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("pg");
    let out = dir.path().join("out");
    let output = guild()
        .args([
            "run",
            "A todo list app with user accounts and sharing",
            "--type",
            "fullstack",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("guild runs");
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("completed in"), "{stdout}");
    assert!(stdout.contains("tasks:    20 completed"), "{stdout}");
    // GUILD_VERIFY=off: planned without the verification stage, and said so.
    assert!(
        stdout.contains("verification: off (GUILD_VERIFY=off)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("reviewer/verify") && !stdout.contains("  verify:"),
        "{stdout}"
    );
    assert!(stdout.contains("estimate: 690 min of work in all, 350 min along the critical path"));
    assert!(
        stdout.contains("/20] completed reviewer/performance_testing"),
        "plain lines when piped"
    );
    let written = files_reported(&stdout);
    assert!(written >= 20, "{stdout}");
    // Every file, and the manifest of what Guild wrote.
    assert_eq!(files_under(&out), written + 1);
    assert!(out.join(".guild-manifest.json").is_file());
    for path in [
        "backend/db/schema.sql",
        "backend/package.json",
        "backend/tsconfig.json",
        "backend/src/server.ts",
        "backend/src/app.ts",
        "backend/test/todos.test.ts",
        "frontend/index.html",
        "frontend/src/main.tsx",
        "frontend/src/App.tsx",
        ".github/workflows/ci.yml",
        "docs/openapi.json",
        "docs/reviews/code-review.md",
        "README.md",
    ] {
        assert!(out.join(path).is_file(), "{path} missing");
    }
    let schema = std::fs::read_to_string(out.join("backend/db/schema.sql")).expect("schema");
    assert!(schema.contains("CREATE TABLE IF NOT EXISTS \"todos\""));
    // The private server was stopped on exit, and its data kept for the next run.
    assert!(data_dir.join("PG_VERSION").exists());
    assert!(
        !data_dir.join("postmaster.pid").exists(),
        "PostgreSQL still running"
    );

    // A second run reuses the initialised data directory.
    let again = guild()
        .args(["run", "A recipe box", "--type", "frontend", "--data-dir"])
        .arg(&data_dir)
        .arg("--out")
        .arg(dir.path().join("out2"))
        .output()
        .expect("guild runs");
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("tasks:    10 completed"));
}

#[tokio::test]
async fn every_other_template_runs_end_to_end_against_database_url() {
    for (project_type, tasks) in [("frontend", 10), ("backend", 12), ("api", 13)] {
        let url = guild_testkit::database_url().await;
        let out = tempfile::tempdir().expect("temp dir");
        let output = guild()
            .env("DATABASE_URL", &url)
            .args([
                "run",
                "A bug tracker for small teams in Python",
                "--type",
                project_type,
                "--workers",
                "2",
            ])
            .arg("--out")
            .arg(out.path())
            .output()
            .expect("guild runs");
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "{project_type}: {stdout}\n{}",
            text(&output.stderr)
        );
        assert!(
            stdout.contains(&format!("tasks:    {tasks} completed")),
            "{project_type}: {stdout}"
        );
        assert_eq!(
            files_under(out.path()),
            files_reported(&stdout) + 1,
            "{project_type}: the files and Guild's manifest"
        );
        if project_type != "frontend" {
            assert!(
                out.path().join("backend/app/main.py").is_file(),
                "{project_type}: Python was asked for"
            );
        }
    }
}

#[test]
fn an_unreachable_database_fails_with_the_reason_and_no_secret() {
    let output = guild()
        .env(
            "DATABASE_URL",
            "postgres://guild:s3cret-password@127.0.0.1:1/guild",
        )
        .args(["run", "A todo app"])
        .output()
        .expect("guild runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("connecting to PostgreSQL (check DATABASE_URL)"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-password"), "{stderr}");
}

#[test]
fn bad_input_is_refused_before_anything_starts() {
    let empty = guild().args(["run", "   "]).output().expect("guild runs");
    assert_eq!(empty.status.code(), Some(1));
    assert!(text(&empty.stderr).contains("the description is empty"));

    let bad_type = guild()
        .args(["run", "x", "--type", "mobile"])
        .output()
        .expect("guild runs");
    assert_eq!(bad_type.status.code(), Some(2));
    assert!(text(&bad_type.stderr).contains("invalid value 'mobile'"));
}

#[tokio::test]
async fn migrate_applies_the_schema() {
    let url = guild_testkit::database_url().await;
    let output = guild()
        .env("DATABASE_URL", &url)
        .arg("migrate")
        .output()
        .expect("guild runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("database schema is up to date"));
}

/// Starts a run whose model takes a minute per answer, with its own private PostgreSQL in
/// `dir/pg`, and returns once the database is up and the project exists (its first line),
/// with the reader of its output, kept open.
fn start_slow_run(dir: &Path) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = guild()
        .env("GUILD_OFFLINE_LATENCY_MS", "60000")
        .args(["run", "A slow project"])
        .arg("--data-dir")
        .arg(dir.join("pg"))
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("guild starts");
    let mut output = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first_line = String::new();
    output.read_line(&mut first_line).expect("read");
    assert!(first_line.starts_with("Project "), "{first_line}");
    assert!(
        dir.join("pg/postmaster.pid").exists(),
        "PostgreSQL is running"
    );
    (child, output)
}

#[test]
fn killing_guild_also_stops_its_private_postgres() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("pg");
    let (mut child, _output) = start_slow_run(dir.path());

    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    // The watchdog notices the closed pipe and stops the server; wait for that, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    while data_dir.join("postmaster.pid").exists() {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL outlived a killed guild"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_stops_the_run_and_its_private_postgres() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("pg");
    let (child, _output) = start_slow_run(dir.path());

    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let output = child.wait_with_output().expect("exits");
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("interrupted: project"));
    // Stopped in order before exiting: nothing left to wait for.
    assert!(
        !data_dir.join("postmaster.pid").exists(),
        "PostgreSQL still running"
    );
}

#[test]
fn a_reader_that_goes_away_does_not_stop_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let mut child = guild()
        .args(["run", "A todo app", "--data-dir"])
        .arg(dir.path().join("pg"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("guild starts");
    // Like `guild run … | head -1`: read one line, then close the pipe.
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first_line)
        .expect("read");
    let output = child.wait_with_output().expect("exits");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(out.join("backend/db/schema.sql").is_file());
}

#[tokio::test]
async fn bench_runs_its_three_measurements_and_ends_with_one_json_object() {
    let url = guild_testkit::database_url().await;
    let output = guild()
        .env("DATABASE_URL", &url)
        .args([
            "bench",
            "--projects",
            "4",
            "--slots",
            "4",
            "--makespan-projects",
            "2",
            "--latency-ms",
            "20",
        ])
        .output()
        .expect("guild runs");
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let last = stdout.lines().last().expect("output");
    let figures: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    for key in [
        "tasks_per_s",
        "scheduler_tasks_per_s",
        "release_latency_p50_ms",
        "release_latency_p99_ms",
        "makespan_ratio",
        "peak_rss_mb",
    ] {
        let value = figures[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {last}"));
        assert!(value >= 0.0, "{key} = {value}");
    }
    for key in ["tasks_per_s", "scheduler_tasks_per_s", "peak_rss_mb"] {
        assert!(figures[key].as_f64().expect(key) > 0.0, "{key} in {last}");
    }
    // Two fullstack projects of 7 phases at 20 ms per call cannot beat 140 ms.
    assert!(
        figures["makespan_ratio"].as_f64().expect("ratio") >= 1.0,
        "{last}"
    );
}

#[tokio::test]
async fn prune_reports_what_it_removed_and_refuses_a_bad_age() {
    let url = guild_testkit::database_url().await;
    let output = guild()
        .env("DATABASE_URL", &url)
        .args(["prune", "--older-than", "30d"])
        .output()
        .expect("guild runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        "pruned 0 project(s) finished more than 30days ago: 0 event(s), 0 superseded file version(s)"
    );
    let refused = guild()
        .env("DATABASE_URL", &url)
        .args(["prune", "--older-than", "soon"])
        .output()
        .expect("guild runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("--older-than"));
}

/// The prompt version a run recorded for task `key`.
async fn prompt_version(url: &str, key: &str) -> String {
    let pool = guild_store::PgPool::connect(url).await.expect("connect");
    let (version,): (String,) =
        guild_store::sqlx::query_as("SELECT result->>'prompt_version' FROM tasks WHERE key = $1")
            .bind(key)
            .fetch_one(&pool)
            .await
            .expect("version");
    pool.close().await;
    version
}

#[tokio::test]
async fn flaws_are_repaired_and_fixed_and_a_prompt_directory_overrides_templates() {
    let prompts = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(prompts.path().join("tasks")).expect("mkdir");
    std::fs::write(
        prompts.path().join("tasks/code_review.j2"),
        "{% extends \"base.j2\" %}{% block instructions %}Review only what changed.\n\n```json findings\n[]\n```\n{% endblock %}",
    )
    .expect("write");
    let run = |url: &str, prompts_dir: Option<&Path>| {
        let out = tempfile::tempdir().expect("temp dir");
        let mut command = guild();
        command
            .env("DATABASE_URL", url)
            .args([
                "run",
                "A bug tracker in Python [guild:flaws]",
                "--type",
                "backend",
            ])
            .arg("--out")
            .arg(out.path());
        if let Some(dir) = prompts_dir {
            command.arg("--prompts-dir").arg(dir);
        }
        let output = command.output().expect("guild runs");
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            text(&output.stderr)
        );
        stdout
    };

    let custom = guild_testkit::database_url().await;
    let stdout = run(&custom, Some(prompts.path()));
    // 12 planned tasks, a fix task and a re-review added by the security audit.
    assert!(stdout.contains("tasks:    14 completed"), "{stdout}");
    let checks = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("checks:"))
        .expect("a checks line");
    assert!(checks.contains(" 0 invalid"), "{checks}");
    assert!(
        checks.contains("1 repair round(s); 1 fix task(s) and 1 re-review(s) added by reviews"),
        "{checks}"
    );
    assert!(
        stdout.contains("completed backend/fix_security_audit_backend_r1"),
        "{stdout}"
    );
    // The progress counts the added tasks too.
    assert!(stdout.contains("[ 14/14] completed"), "{stdout}");

    let embedded = guild_testkit::database_url().await;
    run(&embedded, None);
    assert_ne!(
        prompt_version(&custom, "code_review").await,
        prompt_version(&embedded, "code_review").await,
        "the directory's template has its own version"
    );
    assert_eq!(
        prompt_version(&custom, "security_audit").await,
        prompt_version(&embedded, "security_audit").await,
        "templates the directory does not hold are the embedded ones"
    );

    std::fs::write(prompts.path().join("tasks/broken.j2"), "{% if %}").expect("write");
    let output = guild()
        .env("DATABASE_URL", &custom)
        .args(["run", "A todo app", "--prompts-dir"])
        .arg(prompts.path())
        .output()
        .expect("guild runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("prompt template tasks/broken.j2 is invalid"),
        "{stderr}"
    );
}

#[test]
fn run_never_writes_over_files_it_did_not_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("README.md"), "the user's own notes").expect("write");
    let run = |force: bool| {
        let mut command = guild();
        command
            .args(["run", "A todo app", "--type", "backend", "--data-dir"])
            .arg(dir.path().join("pg"))
            .arg("--out")
            .arg(&out);
        if force {
            command.arg("--force");
        }
        command.output().expect("guild runs")
    };
    // Refused before anything runs: no project, no PostgreSQL.
    let refused = run(false);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("is not empty") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(!dir.path().join("pg").exists(), "nothing started");
    assert_eq!(
        std::fs::read_to_string(out.join("README.md")).expect("read"),
        "the user's own notes"
    );

    // Forced: written, the user's other files left alone.
    std::fs::write(out.join("notes.txt"), "keep me").expect("write");
    let forced = run(true);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(out.join(".guild-manifest.json").is_file());

    // A second run into Guild's own output replaces exactly what it wrote.
    let schema = std::fs::read_dir(&out).expect("read").count();
    let again = run(false);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(std::fs::read_dir(&out).expect("read").count(), schema);
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).expect("read"),
        "keep me"
    );
}

#[test]
fn serve_fails_at_once_when_its_address_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let output = guild()
        .args(["serve", "--bind", &address, "--data-dir"])
        .arg(dir.path().join("pg"))
        .output()
        .expect("guild runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("binding {address}")), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    // Before PostgreSQL: its data directory was never made.
    assert!(!dir.path().join("pg").exists());
    assert!(started.elapsed() < Duration::from_secs(10));
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
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[tokio::test]
async fn change_runs_a_revision_and_git_writes_the_history_beside_the_files() {
    let url = guild_testkit::database_url().await;
    let out = tempfile::tempdir().expect("temp dir");
    let run = guild()
        .env("DATABASE_URL", &url)
        .args(["run", "A todo list app", "--type", "api", "--git", "--out"])
        .arg(out.path())
        .output()
        .expect("guild runs");
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    let id = stdout
        .split_whitespace()
        .nth(1)
        .expect("the project id")
        .to_owned();
    assert_eq!(git(out.path(), &["tag", "--list"]).trim(), "r1");
    // The work tree is the project's files, as committed.
    assert_eq!(
        git(out.path(), &["status", "--porcelain"]).trim(),
        "?? .guild-manifest.json"
    );

    let change = guild()
        .env("DATABASE_URL", &url)
        .args(["change", &id, "Add a due date to todos", "--git", "--out"])
        .arg(out.path())
        .output()
        .expect("guild change runs");
    let stdout = text(&change.stdout);
    assert!(
        change.status.success(),
        "{stdout}\n{}",
        text(&change.stderr)
    );
    assert!(
        stdout.contains(&format!("Change 2 of project {id} completed")),
        "{stdout}"
    );
    let diff_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("diff:"))
        .expect("a diff stat");
    let changed: usize = diff_line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a file count");
    assert!(changed > 0, "{stdout}");
    assert_eq!(
        git(out.path(), &["tag", "--list"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    assert_eq!(
        git(out.path(), &["status", "--porcelain"]).trim(),
        "?? .guild-manifest.json",
        "the files written are revision 2's"
    );
    let changed_in_git = git(out.path(), &["diff", "--name-only", "r1", "r2"]);
    assert_eq!(changed_in_git.lines().count(), changed, "{changed_in_git}");
    let schema =
        std::fs::read_to_string(out.path().join("backend/db/schema.sql")).expect("the schema");
    assert!(schema.contains("due_date"), "{schema}");

    // A project this database does not hold: one line saying so.
    let unknown = guild()
        .env("DATABASE_URL", &url)
        .args([
            "change",
            "0193a4b8-0000-7000-8000-000000000000",
            "Add a priority",
            "--out",
        ])
        .arg(out.path())
        .output()
        .expect("guild change runs");
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("no project"),
        "{}",
        text(&unknown.stderr)
    );
}
