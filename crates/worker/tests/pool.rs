//! The worker pool against a real PostgreSQL: whole projects, failures, retries, panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use guild_agents::{Agent, AgentError, AgentOutcome, AgentSettings, Agents, TaskInput};
use guild_core::{ProjectStatus, ProjectType, TaskStatus};
use guild_llm::OfflineProvider;
use guild_store::{PgPool, events, files, projects, sessions, tasks};
use guild_worker::{WorkerConfig, WorkerEvent, WorkerPool};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn offline_team() -> Agents {
    Agents::new(
        Arc::new(OfflineProvider::default()),
        AgentSettings::default(),
    )
}

async fn create(pool: &PgPool, project_type: ProjectType) -> Uuid {
    projects::create(
        pool,
        projects::NewProject {
            description: "A todo list app with user accounts and sharing",
            project_type,
            technology_stack: None,
            options: json!({}),
            plan: &project_type.template(),
            max_attempts: 3,
            idempotency: None,
        },
    )
    .await
    .expect("create")
    .into_project()
    .id
}

fn config(slots: usize) -> WorkerConfig {
    WorkerConfig {
        retry_base_delay: Duration::from_millis(20),
        poll_interval: Duration::from_millis(200),
        ..WorkerConfig::new(slots)
    }
}

/// A running pool: its progress events, the token that stops it, and its handle.
struct Running {
    progress: tokio::sync::broadcast::Receiver<WorkerEvent>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), guild_worker::WorkerError>>,
}

fn start(pool: &PgPool, agent: Arc<dyn Agent>, config: WorkerConfig) -> Running {
    let workers = WorkerPool::new(pool.clone(), agent, config);
    let progress = workers.subscribe();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { workers.run(shutdown).await }
    });
    Running {
        progress,
        shutdown,
        handle,
    }
}

/// Runs a pool until every project in `projects` has finished, then shuts it down.
async fn run_until_finished(pool: &PgPool, agent: Arc<dyn Agent>, slots: usize, projects: &[Uuid]) {
    let Running {
        mut progress,
        shutdown,
        handle,
    } = start(pool, agent, config(slots));
    let mut open: Vec<Uuid> = projects.to_vec();
    tokio::time::timeout(Duration::from_secs(60), async {
        while !open.is_empty() {
            if let WorkerEvent::ProjectFinished { project_id, .. } =
                progress.recv().await.expect("events")
            {
                open.retain(|id| *id != project_id);
            }
        }
    })
    .await
    .expect("projects finish within a minute");
    shutdown.cancel();
    handle
        .await
        .expect("pool task")
        .expect("pool stops cleanly");
}

async fn status_of(pool: &PgPool, project_id: Uuid, key: &str) -> TaskStatus {
    tasks::list(pool, project_id)
        .await
        .expect("tasks")
        .into_iter()
        .find(|t| t.key == key)
        .expect(key)
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_runs_to_completion_with_the_offline_team() {
    let pool = guild_testkit::database().await;
    let mut ids = Vec::new();
    for project_type in ProjectType::ALL {
        ids.push((project_type, create(&pool, project_type).await));
    }
    let all: Vec<Uuid> = ids.iter().map(|(_, id)| *id).collect();
    run_until_finished(&pool, Arc::new(offline_team()), 4, &all).await;

    for (project_type, id) in ids {
        let project = projects::get(&pool, id)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(
            project.status,
            ProjectStatus::Completed,
            "{project_type}: {:?}",
            project.error
        );
        let requirements = project
            .requirements
            .expect("analysis stored on the project");
        assert!(requirements["core_features"].is_array());
        assert!(project.prompt_tokens > 0 && project.completion_tokens > 0);
        assert_eq!(project.cost_usd, Some(0.0));

        let all_tasks = tasks::list(&pool, id).await.expect("tasks");
        assert_eq!(all_tasks.len(), project_type.template().tasks().len());
        for task in &all_tasks {
            assert_eq!(task.status, TaskStatus::Completed, "{}", task.key);
            assert_eq!(task.attempt, 1);
            let result = task.result.as_ref().expect("result");
            assert_eq!(result["prompt_version"].as_str().map(str::len), Some(12));
            for dep in &task.depends_on {
                let dep = all_tasks
                    .iter()
                    .find(|t| &t.key == dep)
                    .expect("dependency");
                assert!(
                    dep.completed_at.expect("done") <= task.started_at.expect("started"),
                    "{} before {}",
                    task.key,
                    dep.key
                );
            }
        }
        let written = files::latest(&pool, id).await.expect("files");
        let expected_files: usize = all_tasks
            .iter()
            .map(|t| {
                t.result.as_ref().expect("result")["files"]
                    .as_array()
                    .expect("files")
                    .len()
            })
            .sum();
        assert_eq!(
            written.len(),
            expected_files,
            "{project_type}: every path written once"
        );
        let log = events::list(&pool, id, 0, 10_000).await.expect("events");
        let count = |kind: &str| log.iter().filter(|e| e.kind == kind).count();
        assert_eq!(count("task_completed"), all_tasks.len());
        assert_eq!(count("llm_call"), all_tasks.len());
        assert_eq!(count("project_completed"), 1);
    }
    let sessions = sessions::list(&pool).await.expect("sessions");
    assert!(sessions.iter().all(|s| s.current_task_id.is_none()));
    assert_eq!(
        sessions.iter().map(|s| s.tasks_completed).sum::<i64>(),
        15 + 6 + 7 + 8
    );
}

/// Fails the tasks of one type the way a test needs.
struct FailOn {
    team: Agents,
    kind: &'static str,
    mode: Mode,
    calls: AtomicU32,
}

enum Mode {
    Always { retryable: bool },
    FirstAttempts(u32),
    Panic,
}

#[async_trait]
impl Agent for FailOn {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        if input.kind != self.kind {
            return self.team.run(input).await;
        }
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let error = |retryable| AgentError {
            message: format!("scripted failure {call}"),
            retryable,
            calls: vec![],
            raw_answer: Some("garbage".into()),
        };
        match self.mode {
            Mode::Always { retryable } => Err(error(retryable)),
            Mode::FirstAttempts(n) if call <= n => Err(error(true)),
            Mode::FirstAttempts(_) => self.team.run(input).await,
            Mode::Panic => panic!("agent bug"),
        }
    }
}

fn fail_on(kind: &'static str, mode: Mode) -> Arc<FailOn> {
    Arc::new(FailOn {
        team: offline_team(),
        kind,
        mode,
        calls: AtomicU32::new(0),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_non_critical_task_skips_its_dependents_and_the_rest_completes() {
    let pool = guild_testkit::database().await;
    let id = create(&pool, ProjectType::Fullstack).await;
    run_until_finished(
        &pool,
        fail_on("state_management", Mode::Always { retryable: false }),
        4,
        &[id],
    )
    .await;

    assert_eq!(
        status_of(&pool, id, "state_management").await,
        TaskStatus::Failed
    );
    for key in ["api_integration", "code_review", "performance_testing"] {
        assert_eq!(
            status_of(&pool, id, key).await,
            TaskStatus::Skipped,
            "{key}"
        );
    }
    for key in [
        "page_layouts",
        "business_logic",
        "security_audit",
        "monitoring_setup",
    ] {
        assert_eq!(
            status_of(&pool, id, key).await,
            TaskStatus::Completed,
            "{key}"
        );
    }
    let project = projects::get(&pool, id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Failed);
    assert_eq!(
        project.error.as_deref(),
        Some("4 of 15 tasks did not complete: 1 failed, 3 skipped, 0 cancelled")
    );
    let log = events::list(&pool, id, 0, 10_000).await.expect("events");
    let failed = log
        .iter()
        .find(|e| e.kind == "task_failed")
        .expect("task_failed event");
    assert_eq!(failed.data["raw_answer"], "garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_critical_task_fails_the_project_and_nothing_downstream_runs() {
    let pool = guild_testkit::database().await;
    let id = create(&pool, ProjectType::Fullstack).await;
    run_until_finished(
        &pool,
        fail_on("authentication", Mode::Always { retryable: false }),
        1,
        &[id],
    )
    .await;

    let project = projects::get(&pool, id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Failed);
    assert_eq!(
        project.error.as_deref(),
        Some("critical task `authentication` failed: scripted failure 1")
    );
    let all = tasks::list(&pool, id).await.expect("tasks");
    for task in &all {
        if matches!(task.status, TaskStatus::Cancelled | TaskStatus::Skipped) {
            assert!(task.started_at.is_none(), "{} ran", task.key);
        }
    }
    assert_eq!(
        status_of(&pool, id, "business_logic").await,
        TaskStatus::Skipped
    );
    assert!(all.iter().any(|t| t.status == TaskStatus::Cancelled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_and_completes_on_a_later_attempt() {
    let pool = guild_testkit::database().await;
    let id = create(&pool, ProjectType::Backend).await;
    run_until_finished(
        &pool,
        fail_on("database_schema", Mode::FirstAttempts(2)),
        2,
        &[id],
    )
    .await;

    let project = projects::get(&pool, id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Completed);
    let schema = tasks::list(&pool, id)
        .await
        .expect("tasks")
        .into_iter()
        .find(|t| t.key == "database_schema")
        .expect("schema");
    assert_eq!(schema.attempt, 3);
    let log = events::list(&pool, id, 0, 10_000).await.expect("events");
    let retried: Vec<_> = log
        .iter()
        .filter(|e| e.kind == "task_retried")
        .map(|e| e.data["error"].clone())
        .collect();
    assert_eq!(
        retried,
        [json!("scripted failure 1"), json!("scripted failure 2")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_agent_fails_its_task_and_the_pool_keeps_going() {
    let pool = guild_testkit::database().await;
    let id = create(&pool, ProjectType::Frontend).await;
    run_until_finished(&pool, fail_on("page_layouts", Mode::Panic), 2, &[id]).await;

    assert_eq!(
        status_of(&pool, id, "page_layouts").await,
        TaskStatus::Failed
    );
    assert_eq!(
        status_of(&pool, id, "state_management").await,
        TaskStatus::Completed
    );
    let page = tasks::list(&pool, id)
        .await
        .expect("tasks")
        .into_iter()
        .find(|t| t.key == "page_layouts")
        .expect("page");
    assert!(page.error.expect("error").starts_with("the agent crashed"));
}

/// Holds every caller until `parties` of them are inside at once.
struct Rendezvous {
    team: Agents,
    barrier: tokio::sync::Barrier,
}

#[async_trait]
impl Agent for Rendezvous {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        if input.kind != "requirements_analysis" {
            self.barrier.wait().await;
        }
        self.team.run(input).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connection_is_held_while_agents_run() {
    // Two connections: the listener keeps one, the other is shared by every slot. Three
    // slots can only all be inside their agents at once if none holds a connection there.
    let pool = guild_testkit::database_with_connections(2).await;
    let id = create(&pool, ProjectType::Fullstack).await;
    let agent = Arc::new(Rendezvous {
        team: offline_team(),
        barrier: tokio::sync::Barrier::new(3),
    });
    // After the analysis, exactly three tasks are ready: schema, components, environment.
    // Later the barrier keeps releasing in threes; the last tasks arrive alone, so run only
    // until the first three have completed.
    let config = WorkerConfig {
        shutdown_grace: Duration::from_millis(300),
        ..config(3)
    };
    let Running {
        mut progress,
        shutdown,
        handle,
    } = start(&pool, agent, config);
    let mut completed = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        while completed < 4 {
            if let WorkerEvent::TaskCompleted { .. } = progress.recv().await.expect("events") {
                completed += 1;
            }
        }
    })
    .await
    .expect("three slots were inside their agents at once");
    shutdown.cancel();
    // The remaining slots wait at the barrier: they are released at the grace deadline.
    let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
    assert_eq!(
        status_of(&pool, id, "database_schema").await,
        TaskStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_worker_died_is_recovered_and_completes() {
    let pool = guild_testkit::database().await;
    let id = create(&pool, ProjectType::Frontend).await;
    // A worker claims the analysis and dies: its lease runs out and nobody heartbeats.
    let ghost = tasks::claim_ready(&pool, "ghost", 1, Duration::ZERO, &[])
        .await
        .expect("claim");
    assert_eq!(ghost[0].key, "requirements_analysis");

    let config = WorkerConfig {
        lease: Duration::from_millis(300),
        ..config(2)
    };
    let mut running = start(&pool, Arc::new(offline_team()), config);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let WorkerEvent::ProjectFinished { project_id, .. } =
                running.progress.recv().await.expect("events")
            {
                assert_eq!(project_id, id);
                return;
            }
        }
    })
    .await
    .expect("the project finishes");
    running.shutdown.cancel();
    running
        .handle
        .await
        .expect("pool task")
        .expect("pool stops");

    let project = projects::get(&pool, id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Completed);
    let analysis = tasks::list(&pool, id)
        .await
        .expect("tasks")
        .into_iter()
        .find(|t| t.key == "requirements_analysis")
        .expect("analysis");
    assert_eq!(analysis.attempt, 2, "the dead worker's attempt counts");
    let log = events::list(&pool, id, 0, 1000).await.expect("events");
    let retried = log
        .iter()
        .find(|e| e.kind == "task_retried")
        .expect("task_retried");
    assert!(
        retried.data["error"]
            .as_str()
            .expect("error")
            .starts_with("lease expired")
    );
    // The ghost's late result is refused.
    let late = guild_store::settle::complete(
        &pool,
        guild_store::settle::Completion {
            project_id: id,
            task_id: ghost[0].id,
            attempt: ghost[0].attempt,
            session_id: None,
            duration_ms: 1,
            result: json!({"summary": "late"}),
            files: &[],
            rejected_files: &[],
            requirements: None,
            llm_calls: &[],
        },
    )
    .await;
    assert!(matches!(
        late,
        Err(guild_store::StoreError::NotRunning { .. })
    ));
}
