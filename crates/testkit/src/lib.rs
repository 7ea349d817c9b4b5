//! Test support: a real PostgreSQL for every test, with nothing to set up.
//!
//! With `DATABASE_URL` set, tests create their databases on that server. Without it, the
//! first test of a test binary starts a private ephemeral cluster (see `guild-pg`) that
//! lives as long as the binary and is stopped and removed when it exits. Either way each
//! test gets a database of its own, migrated, named `guild_test_<uuid>`.

use std::str::FromStr;
use std::sync::OnceLock;

use guild_pg::{Cluster, Storage};
use guild_store::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// The server tests create their databases on: its URL, and the private cluster behind
/// it when the tests started one.
struct Server {
    url: String,
    _cluster: Option<Cluster>,
}

impl Server {
    fn admin_options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&self.url).expect("the server URL parses")
    }
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) => Server {
            url,
            _cluster: None,
        },
        Err(_) => {
            let cluster =
                Cluster::start(&Storage::Ephemeral).expect("a private PostgreSQL for the tests");
            Server {
                url: cluster.url("postgres"),
                _cluster: Some(cluster),
            }
        }
    })
}

/// The options to connect to a fresh, migrated database of this test's own.
pub async fn database_options() -> PgConnectOptions {
    let admin = server().admin_options();
    let name = format!("guild_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await.expect("connect to the test server");
    // The name is built from hex digits only.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    conn.close().await.ok();

    let options = admin.database(&name);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .expect("connect to the test database");
    guild_store::migrate(&pool)
        .await
        .expect("migrate the test database");
    pool.close().await;
    options
}

/// A pool on a fresh, migrated database of this test's own.
pub async fn database() -> PgPool {
    database_with_connections(10).await
}

/// A pool of at most `max_connections` on a fresh, migrated database of this test's own.
pub async fn database_with_connections(max_connections: u32) -> PgPool {
    let options = database_options().await;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await
        .expect("connect to the test database")
}

/// The URL of a fresh, migrated database, for tests that start a `guild` process.
pub async fn database_url() -> String {
    let options = database_options().await;
    let base = &server().url;
    let name = options
        .get_database()
        .expect("the test database has a name");
    match base.rfind('/') {
        Some(slash) => {
            let (head, tail) = base.split_at(slash);
            let query = tail.find('?').map(|q| &tail[q..]).unwrap_or("");
            format!("{head}/{name}{query}")
        }
        None => base.clone(),
    }
}

/// An HTTP client for tests that talk to a server. The TLS stack needs its cryptography
/// installed before any client is built.
pub fn http_client() -> reqwest::Client {
    guild_llm::install_crypto();
    reqwest::Client::new()
}

/// Creates a project "A todo list app" of `plan` with `options` (as a client writes them:
/// they must be valid `ProjectOptions`; 3 attempts per task) and returns its id.
pub async fn create_project(
    pool: &PgPool,
    plan: &guild_core::Plan,
    options: serde_json::Value,
) -> guild_core::ProjectId {
    let options: guild_core::ProjectOptions =
        serde_json::from_value(options).expect("valid project options");
    guild_store::projects::create(
        pool,
        guild_store::projects::NewProject {
            description: "A todo list app",
            project_type: guild_core::ProjectType::Fullstack,
            technology_stack: None,
            options: &options,
            plan,
            max_attempts: 3,
            idempotency: None,
        },
    )
    .await
    .expect("create")
    .into_project()
    .id
}

/// Creates a project of the tasks `(key, agent, depends_on)` (each typed by its key) with
/// `options`; returns its id.
pub async fn create_graph(
    pool: &PgPool,
    tasks: &[(&str, guild_core::AgentKind, &[&str])],
    options: serde_json::Value,
) -> guild_core::ProjectId {
    let plan = guild_core::Plan::new(
        tasks
            .iter()
            .map(|(key, agent, depends_on)| task_spec(key, *agent, depends_on))
            .collect(),
    )
    .expect("a valid graph");
    create_project(pool, &plan, options).await
}

/// Completes a claimed task with the summary "done", no files, and `llm_calls`.
pub async fn complete_task(
    pool: &PgPool,
    task: &guild_store::tasks::ClaimedTask,
    llm_calls: &[guild_core::ModelCall],
) {
    guild_store::settle::complete(
        pool,
        guild_store::settle::Completion {
            result: serde_json::json!({"summary": "done"}),
            llm_calls: llm_calls.to_vec(),
            ..completion(task, &[], &[])
        },
    )
    .await
    .expect("complete");
}

/// The completion of a claimed task with the summary of its key, `files` and `findings`,
/// no call made.
pub fn completion(
    task: &guild_store::tasks::ClaimedTask,
    files: &[guild_store::files::NewFile],
    findings: &[guild_core::Finding],
) -> guild_store::settle::Completion {
    guild_store::settle::Completion {
        duration_ms: 1,
        files: files.to_vec(),
        findings: findings.to_vec(),
        ..guild_store::settle::Completion::new(
            task.project_id,
            task.id,
            task.attempt,
            serde_json::json!({"summary": task.key}),
        )
    }
}

/// A file as a task stores it, with a stand-in digest (the store does not check it): valid,
/// by `offline-1`, prompt version `test`, first answer.
pub fn new_file(path: &str, content: &str, language: &str) -> guild_store::files::NewFile {
    guild_store::files::NewFile {
        path: path.into(),
        content: content.into(),
        sha256: format!("{:0>64x}", content.len()),
        language: Some(language.into()),
        validation: serde_json::json!({"status": "valid", "checker": "test", "errors": []}),
        model: Some("offline-1".into()),
        prompt_version: Some("test".into()),
        repair_round: 0,
    }
}

/// A task of `agent` keyed and typed `key`, after `depends_on`, with priority 1, not
/// critical, 1 minute.
pub fn task_spec(
    key: &str,
    agent: guild_core::AgentKind,
    depends_on: &[&str],
) -> guild_core::TaskSpec {
    guild_core::TaskSpec {
        key: key.into(),
        kind: key.into(),
        agent,
        description: key.into(),
        depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
        priority: 1,
        critical: false,
        estimated_minutes: 1,
        max_attempts: None,
    }
}

/// The sum of a Prometheus metric's samples whose labels contain every one of `labels`.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
