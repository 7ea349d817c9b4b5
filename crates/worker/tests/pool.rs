//! The worker pool against a real PostgreSQL: whole projects, failures, retries, panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use guild_agents::{Agent, AgentError, AgentOutcome, AgentSettings, Agents, TaskInput};
use guild_core::{AgentKind, ProjectStatus, ProjectType, TaskStatus};
use guild_core::{EventKind, ProjectId};
use guild_offline::OfflineProvider;
use guild_store::projects::Project;
use guild_store::{PgPool, events, files, projects, sessions, tasks};
use guild_worker::{WorkerConfig, WorkerEvent, WorkerPool};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn offline_team() -> Agents {
    Agents::new(
        Arc::new(OfflineProvider::default()),
        AgentSettings::default(),
    )
}

async fn create(pool: &PgPool, project_type: ProjectType) -> ProjectId {
    projects::create(
        pool,
        projects::NewProject {
            description: "A todo list app with user accounts and sharing",
            project_type,
            technology_stack: None,
            options: &guild_core::ProjectOptions::default(),
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
async fn run_until_finished(
    pool: &PgPool,
    agent: Arc<dyn Agent>,
    slots: usize,
    projects: &[ProjectId],
) {
    let Running {
        mut progress,
        shutdown,
        handle,
    } = start(pool, agent, config(slots));
    let mut open: Vec<ProjectId> = projects.to_vec();
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

async fn status_of(pool: &PgPool, project_id: ProjectId, key: &str) -> TaskStatus {
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
    for &project_type in ProjectType::ALL {
        ids.push((project_type, create(&pool, project_type).await));
    }
    let all: Vec<ProjectId> = ids.iter().map(|(_, id)| *id).collect();
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
        assert!(project.usage.prompt_tokens > 0 && project.usage.completion_tokens > 0);
        assert_eq!(project.usage.cost_usd, Some(0.0));

        let all_tasks = tasks::list(&pool, id).await.expect("tasks");
        assert_eq!(all_tasks.len(), project_type.template().tasks().len());
        for task in &all_tasks {
            assert_eq!(task.status, TaskStatus::Completed, "{}", task.key);
            assert_eq!(task.attempt, 1);
            let result = task.result.as_ref().expect("result");
            if task.kind == "verify" {
                // No verifier on this team: the verification says so, and never passes.
                assert_eq!(result["verification"]["status"], "unavailable", "{result}");
                continue;
            }
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
        let count = |kind: EventKind| log.iter().filter(|e| e.kind == kind).count();
        assert_eq!(count(EventKind::TaskCompleted), all_tasks.len());
        // One call a task, but the verification's, which asks no model.
        assert_eq!(count(EventKind::LlmCall), all_tasks.len() - 1);
        assert_eq!(count(EventKind::ProjectCompleted), 1);
    }
    let sessions = sessions::list(&pool).await.expect("sessions");
    assert!(sessions.iter().all(|s| s.current_task_id.is_none()));
    assert_eq!(
        sessions.iter().map(|s| s.tasks_completed).sum::<i64>(),
        21 + 11 + 13 + 14
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
            stops_project: false,
            retry_after: None,
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

/// Runs a project of `project_type` on `slots` slots with the offline team, the task of
/// type `kind` failing as `mode` says, until it finishes; returns it.
async fn run_failing(
    pool: &PgPool,
    project_type: ProjectType,
    kind: &'static str,
    mode: Mode,
    slots: usize,
) -> Project {
    let id = create(pool, project_type).await;
    run_until_finished(pool, fail_on(kind, mode), slots, &[id]).await;
    projects::get(pool, id).await.expect("get").expect("exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_non_critical_task_skips_its_dependents_and_the_rest_completes() {
    let pool = guild_testkit::database().await;
    let project = run_failing(
        &pool,
        ProjectType::Fullstack,
        "state_management",
        Mode::Always { retryable: false },
        4,
    )
    .await;
    let id = project.id;

    assert_eq!(
        status_of(&pool, id, "state_management").await,
        TaskStatus::Failed
    );
    for key in [
        "api_integration",
        "frontend_tests",
        "code_review",
        "performance_testing",
        "readme",
    ] {
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
    assert_eq!(project.status, ProjectStatus::Failed);
    assert_eq!(
        project.error.as_deref(),
        Some("7 of 21 tasks did not complete: 1 failed, 6 skipped, 0 cancelled")
    );
    let log = events::list(&pool, id, 0, 10_000).await.expect("events");
    let failed = log
        .iter()
        .find(|e| e.kind == EventKind::TaskFailed)
        .expect("task_failed event");
    assert_eq!(failed.data["raw_answer"], "garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_critical_task_fails_the_project_and_nothing_downstream_runs() {
    let pool = guild_testkit::database().await;
    let project = run_failing(
        &pool,
        ProjectType::Fullstack,
        "authentication",
        Mode::Always { retryable: false },
        1,
    )
    .await;
    let id = project.id;

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
    let project = run_failing(
        &pool,
        ProjectType::Backend,
        "database_schema",
        Mode::FirstAttempts(2),
        2,
    )
    .await;
    let id = project.id;

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
        .filter(|e| e.kind == EventKind::TaskRetried)
        .map(|e| e.data["error"].clone())
        .collect();
    assert_eq!(
        retried,
        [json!("scripted failure 1"), json!("scripted failure 2")]
    );
    let kept: Vec<&str> = schema.errors.iter().map(|e| e.error.as_str()).collect();
    assert_eq!(kept, ["scripted failure 1", "scripted failure 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_always_fails_ends_failed_after_its_attempts_with_every_error_kept() {
    let pool = guild_testkit::database().await;
    let project = run_failing(
        &pool,
        ProjectType::Backend,
        "code_review",
        Mode::Always { retryable: true },
        2,
    )
    .await;
    let id = project.id;
    let docs = tasks::list(&pool, id)
        .await
        .expect("tasks")
        .into_iter()
        .find(|t| t.key == "code_review")
        .expect("review");
    assert_eq!(docs.status, TaskStatus::Failed);
    assert_eq!(docs.attempt, 3);
    let kept: Vec<(i32, &str)> = docs
        .errors
        .iter()
        .map(|e| (e.attempt, e.error.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            (1, "scripted failure 1"),
            (2, "scripted failure 2"),
            (3, "scripted failure 3")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_agent_fails_its_task_and_the_pool_keeps_going() {
    let pool = guild_testkit::database().await;
    let id = run_failing(&pool, ProjectType::Frontend, "page_layouts", Mode::Panic, 2)
        .await
        .id;

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
        if !["requirements_analysis", "system_design", "scaffold"].contains(&input.kind.as_str()) {
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
    // After the analysis, the design and the scaffold, exactly three tasks are ready:
    // schema, components, environment.
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
        while completed < 6 {
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
        .find(|e| e.kind == EventKind::TaskRetried)
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
            result: json!({"summary": "late"}),
            ..guild_testkit::completion(&ghost[0], &[], &[])
        },
    )
    .await;
    assert!(matches!(
        late,
        Err(guild_store::StoreError::NotRunning { .. })
    ));
    // Refused; the project had ended, so its last event stays its end (an unfinished
    // project gets a `result_dropped` event: see the store's budget tests).
    let log = events::list(&pool, id, 0, 1000).await.expect("events");
    assert!(log.iter().all(|e| e.kind != EventKind::ResultDropped));
    assert_eq!(
        log.last().expect("events").kind,
        EventKind::ProjectCompleted
    );
}

/// An agent that never answers, and says when it is stopped (dropped).
struct Hangs {
    started: tokio::sync::mpsc::UnboundedSender<String>,
    stopped: tokio::sync::mpsc::UnboundedSender<String>,
}

/// Sends the key when dropped: the agent's future was abandoned.
struct OnDrop(tokio::sync::mpsc::UnboundedSender<String>, String);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(self.1.clone());
    }
}

#[async_trait]
impl Agent for Hangs {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        let _guard = OnDrop(self.stopped.clone(), input.key.clone());
        let _ = self.started.send(input.key.clone());
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_project_stops_its_running_agents_at_the_next_heartbeat() {
    let pool = guild_testkit::database().await;
    let id = create(&pool, ProjectType::Fullstack).await;
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (stopped_tx, mut stopped) = tokio::sync::mpsc::unbounded_channel();
    let agent = Arc::new(Hangs {
        started: started_tx,
        stopped: stopped_tx,
    });
    let config = WorkerConfig {
        lease: Duration::from_millis(600),
        ..config(4)
    };
    let mut running = start(&pool, agent, config);
    assert_eq!(
        started.recv().await.as_deref(),
        Some("requirements_analysis")
    );

    let cancelled_at = std::time::Instant::now();
    projects::cancel(&pool, id).await.expect("cancel");
    let key = tokio::time::timeout(Duration::from_secs(20), stopped.recv())
        .await
        .expect("the agent is stopped");
    assert_eq!(key.as_deref(), Some("requirements_analysis"));
    // Within one heartbeat (a third of the lease, 200 ms), give or take a busy machine; an
    // agent nobody stops would hang forever.
    let waited = cancelled_at.elapsed();
    assert!(waited < Duration::from_secs(5), "stopped after {waited:?}");
    loop {
        match running.progress.recv().await.expect("events") {
            WorkerEvent::TaskInterrupted {
                key, project_id, ..
            } => {
                assert_eq!((key.as_str(), project_id), ("requirements_analysis", id));
                break;
            }
            WorkerEvent::TaskCompleted { key, .. } => panic!("{key} completed after cancel"),
            _ => {}
        }
    }
    running.shutdown.cancel();
    running
        .handle
        .await
        .expect("pool task")
        .expect("pool stops");

    // Nothing of the project was claimed after it was cancelled, and no session is busy.
    let log = events::list(&pool, id, 0, 1000).await.expect("events");
    let cancelled = log
        .iter()
        .position(|e| e.kind == EventKind::ProjectCancelled)
        .expect("project_cancelled");
    assert!(
        log[cancelled..]
            .iter()
            .all(|e| e.kind != EventKind::TaskClaimed),
        "{log:?}"
    );
    assert!(
        tasks::list(&pool, id)
            .await
            .expect("tasks")
            .iter()
            .all(|t| t.status == TaskStatus::Cancelled)
    );
    let sessions = sessions::list(&pool).await.expect("sessions");
    assert!(sessions.iter().all(|s| s.current_task_id.is_none()));
}

/// Runs the offline team (whose provider models a model's latency, so tasks overlap) and
/// records the most tasks of each agent kind seen at once.
struct Counting {
    team: Agents,
    now: std::sync::Mutex<std::collections::HashMap<AgentKind, usize>>,
    most: std::sync::Mutex<std::collections::HashMap<AgentKind, usize>>,
}

#[async_trait]
impl Agent for Counting {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        {
            let mut now = self.now.lock().expect("lock");
            let n = now.entry(input.agent).or_default();
            *n += 1;
            let mut most = self.most.lock().expect("lock");
            let m = most.entry(input.agent).or_default();
            *m = (*m).max(*n);
        }
        let outcome = self.team.run(input).await;
        *self
            .now
            .lock()
            .expect("lock")
            .get_mut(&input.agent)
            .expect("counted") -= 1;
        outcome
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_per_agent_kind_is_respected_across_the_pool() {
    let pool = guild_testkit::database().await;
    let ids = [
        create(&pool, ProjectType::Fullstack).await,
        create(&pool, ProjectType::Fullstack).await,
        create(&pool, ProjectType::Fullstack).await,
    ];
    let agent = Arc::new(Counting {
        team: Agents::new(
            Arc::new(OfflineProvider::new(Duration::from_millis(40))),
            AgentSettings::default(),
        ),
        now: Default::default(),
        most: Default::default(),
    });
    let config = WorkerConfig {
        agent_caps: [(AgentKind::Backend, 1)].into_iter().collect(),
        ..config(8)
    };
    let Running {
        mut progress,
        shutdown,
        handle,
    } = start(&pool, agent.clone(), config);
    let mut open = ids.to_vec();
    while !open.is_empty() {
        if let WorkerEvent::ProjectFinished { project_id, status } =
            progress.recv().await.expect("events")
        {
            assert_eq!(status, ProjectStatus::Completed);
            open.retain(|id| *id != project_id);
        }
    }
    shutdown.cancel();
    handle.await.expect("pool task").expect("pool stops");

    let most = agent.most.lock().expect("lock").clone();
    assert_eq!(most[&AgentKind::Backend], 1, "{most:?}");
    // The other kinds were not held back: three projects' frontend tasks overlapped.
    assert!(most[&AgentKind::Frontend] > 1, "{most:?}");
}

#[tokio::test]
async fn sessions_of_a_worker_that_stopped_heartbeating_are_stale() {
    let pool = guild_testkit::database().await;
    create(&pool, ProjectType::Frontend).await;
    let claimed = tasks::claim_ready(&pool, "alive", 2, Duration::from_secs(30), &[])
        .await
        .expect("claim");
    let task = &claimed[0];
    for worker in ["alive", "gone"] {
        let starting = [sessions::SlotTask {
            slot: 0,
            agent: task.agent,
            task_id: task.id,
        }];
        sessions::begin_tasks(&pool, worker, &starting, Duration::from_secs(30))
            .await
            .expect("session");
    }
    // Both last heartbeated an hour ago; then only `alive` heartbeats.
    guild_store::sqlx::query("UPDATE agent_sessions SET heartbeat_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .expect("age the sessions");
    tasks::heartbeat(&pool, "alive", &[task.id], Duration::from_secs(30))
        .await
        .expect("heartbeat");
    let stale: Vec<(String, bool)> = sessions::list(&pool)
        .await
        .expect("sessions")
        .into_iter()
        .map(|s| (s.worker_id, s.stale))
        .collect();
    assert!(stale.contains(&("alive".to_owned(), false)), "{stale:?}");
    assert!(stale.contains(&("gone".to_owned(), true)), "{stale:?}");
}
