//! The task graph in PostgreSQL: creation, claiming, release, failure propagation.

use std::collections::HashSet;
use std::time::Duration;

use guild_core::{AgentKind, Plan, ProjectStatus, ProjectType, TaskSpec, TaskStatus};
use guild_core::{EventKind, ProjectId, TaskId};
use guild_store::settle::{self, Completion, Failure};
use guild_store::tasks::{self, ClaimedTask};
use guild_store::{PgPool, StoreError, designs, events, files, projects};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(30);

async fn create(pool: &PgPool, plan: &Plan) -> ProjectId {
    projects::create(
        pool,
        projects::NewProject {
            description: "A todo list app with user accounts and sharing",
            project_type: ProjectType::Fullstack,
            technology_stack: None,
            options: &guild_core::ProjectOptions::default(),
            plan,
            max_attempts: 2,
            idempotency: None,
        },
    )
    .await
    .expect("create project")
    .into_project()
    .id
}

fn completion(task: &ClaimedTask) -> Completion {
    guild_testkit::completion(task, &[], &[])
}

fn failure(task: &ClaimedTask, retryable: bool) -> Failure<'static> {
    Failure {
        project_id: task.project_id,
        task_id: task.id,
        attempt: task.attempt,
        session_id: None,
        duration_ms: 1,
        error: "the model said no",
        retryable,
        retry_delay: Duration::from_secs(3600),
        llm_calls: &[],
        raw_answer: None,
        stops_project: false,
    }
}

/// A fullstack project whose analysis, design and scaffold have completed: three tasks
/// are ready.
async fn fullstack_after_scaffold(pool: &PgPool) -> ProjectId {
    let project_id = create(pool, &ProjectType::Fullstack.template()).await;
    for key in ["requirements_analysis", "system_design", "scaffold"] {
        let task = claim_one(pool, key).await;
        settle::complete(pool, completion(&task))
            .await
            .expect("complete");
    }
    project_id
}

async fn claim_one(pool: &PgPool, key: &str) -> ClaimedTask {
    let claimed = tasks::claim_ready(pool, "test-worker", 100, LEASE, &[])
        .await
        .expect("claim");
    let found = claimed.iter().find(|t| t.key == key).cloned();
    found.unwrap_or_else(|| panic!("{key} was not ready; claimed {claimed:?}"))
}

/// Claims and completes ready tasks until none is left, except `skip` which is failed.
async fn drain(pool: &PgPool, fail_key: Option<&str>) {
    loop {
        let claimed = tasks::claim_ready(pool, "drain", 100, LEASE, &[])
            .await
            .expect("claim");
        if claimed.is_empty() {
            return;
        }
        for task in &claimed {
            if Some(task.key.as_str()) == fail_key {
                settle::fail(pool, failure(task, false))
                    .await
                    .expect("fail");
            } else {
                settle::complete(pool, completion(task))
                    .await
                    .expect("complete");
            }
        }
    }
}

async fn statuses(pool: &PgPool, project_id: ProjectId) -> Vec<(String, TaskStatus)> {
    tasks::list(pool, project_id)
        .await
        .expect("list")
        .into_iter()
        .map(|t| (t.key, t.status))
        .collect()
}

fn status_of(all: &[(String, TaskStatus)], key: &str) -> TaskStatus {
    all.iter()
        .find(|(k, _)| k == key)
        .map(|(_, s)| *s)
        .expect(key)
}

#[tokio::test]
async fn creating_a_project_stores_its_whole_graph() {
    let pool = guild_testkit::database().await;
    let plan = ProjectType::Fullstack.template();
    let project_id = create(&pool, &plan).await;

    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Pending);
    let all = tasks::list(&pool, project_id).await.expect("list");
    assert_eq!(all.len(), 21);
    let ready: Vec<_> = all
        .iter()
        .filter(|t| t.status == TaskStatus::Ready)
        .map(|t| t.key.as_str())
        .collect();
    assert_eq!(ready, ["requirements_analysis"]);
    let integration = all
        .iter()
        .find(|t| t.key == "api_integration")
        .expect("api_integration");
    assert_eq!(
        integration.depends_on,
        ["business_logic", "page_layouts", "state_management"]
    );
    assert_eq!(integration.status, TaskStatus::Blocked);

    let log = events::list(&pool, project_id, 0, 100)
        .await
        .expect("events");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, EventKind::ProjectCreated);
    assert_eq!(log[0].data["tasks"], 21);
    assert_eq!(log[0].data["workflow"], "fullstack");
}

#[tokio::test]
async fn a_custom_workflow_is_not_called_a_template_type() {
    let pool = guild_testkit::database().await;
    let plan =
        Plan::new(vec![guild_testkit::task_spec("a", AgentKind::Backend, &[])]).expect("plan");
    let project_id = create(&pool, &plan).await;
    let log = events::list(&pool, project_id, 0, 10)
        .await
        .expect("events");
    assert_eq!(log[0].kind, EventKind::ProjectCreated);
    assert_eq!(log[0].data["workflow"], "custom");
    assert!(log[0].data.get("project_type").is_none(), "{}", log[0].data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_get_the_same_task() {
    let pool = guild_testkit::database().await;
    let tasks: Vec<TaskSpec> = (0..300)
        .map(|i| TaskSpec {
            key: format!("t{i}"),
            kind: "database_schema".into(),
            agent: AgentKind::Backend,
            description: "independent".into(),
            depends_on: vec![],
            priority: (i % 5) as i16,
            critical: false,
            estimated_minutes: 1,
            max_attempts: None,
        })
        .collect();
    let plan = Plan::new(tasks).expect("plan");
    create(&pool, &plan).await;

    let claimers = (0..6).map(|c| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = tasks::claim_ready(&pool, &format!("claimer-{c}"), 7, LEASE, &[])
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|t| t.id));
            }
        })
    });
    let mut seen = HashSet::new();
    let mut total = 0;
    for claimer in claimers {
        for id in claimer.await.expect("claimer") {
            total += 1;
            assert!(seen.insert(id), "task {id} claimed twice");
        }
    }
    assert_eq!(total, 300);
}

#[tokio::test]
async fn claims_take_the_best_priority_first() {
    let pool = guild_testkit::database().await;
    let project_id = fullstack_after_scaffold(&pool).await;

    // database_schema and environment_config (priority 3) before ui_components (4).
    let first_two = tasks::claim_ready(&pool, "w", 2, LEASE, &[])
        .await
        .expect("claim");
    let keys: HashSet<_> = first_two.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys,
        HashSet::from(["database_schema", "environment_config"])
    );
    assert_eq!(
        projects::get(&pool, project_id)
            .await
            .expect("get")
            .expect("exists")
            .status,
        ProjectStatus::Running
    );
}

#[tokio::test]
async fn completing_releases_dependents_and_is_fenced_by_attempt() {
    let pool = guild_testkit::database().await;
    let plan = ProjectType::Fullstack.template();
    let project_id = create(&pool, &plan).await;

    let analysis = claim_one(&pool, "requirements_analysis").await;
    assert_eq!(analysis.attempt, 1);
    let stale = Completion {
        attempt: 2,
        ..completion(&analysis)
    };
    assert!(matches!(
        settle::complete(&pool, stale).await,
        Err(StoreError::NotRunning { attempt: 2, .. })
    ));

    let requirements = json!({"core_features": ["todos"]});
    let settled = settle::complete(
        &pool,
        Completion {
            requirements: Some(requirements.clone()),
            ..completion(&analysis)
        },
    )
    .await
    .expect("complete");
    assert_eq!(settled.released, 1);
    assert_eq!(settled.project_finished, None);

    // A second completion of the same attempt is refused: it completes exactly once.
    assert!(matches!(
        settle::complete(&pool, completion(&analysis)).await,
        Err(StoreError::NotRunning { .. })
    ));

    let all = statuses(&pool, project_id).await;
    assert_eq!(status_of(&all, "system_design"), TaskStatus::Ready);
    assert_eq!(status_of(&all, "database_schema"), TaskStatus::Blocked);
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.requirements, Some(requirements));

    // The design is stored as the project's version 1, and every later task sees it.
    let design_task = claim_one(&pool, "system_design").await;
    let design =
        json!({"contract": {}, "data_model": {"tables": []}, "components": [], "files": []});
    let settled = settle::complete(
        &pool,
        Completion {
            design: Some(design.clone()),
            ..completion(&design_task)
        },
    )
    .await
    .expect("complete");
    assert_eq!(settled.released, 1);
    let stored = designs::design(&pool, project_id, None)
        .await
        .expect("read")
        .expect("a design");
    assert_eq!(
        (stored.version, stored.task_id, &stored.design),
        (1, design_task.id, &design)
    );
    assert_eq!(
        designs::versions(&pool, project_id)
            .await
            .expect("versions"),
        [1]
    );
    assert_eq!(
        designs::design(&pool, project_id, Some(2))
            .await
            .expect("read"),
        None
    );
    let scaffold = claim_one(&pool, "scaffold").await;
    let context = tasks::context(&pool, project_id, scaffold.id)
        .await
        .expect("context");
    assert_eq!(context.design, Some(design));
    assert_eq!(context.graph.len(), 21);
    assert_eq!(
        (
            context.graph[0].key.as_str(),
            context.graph[0].kind.as_str(),
            context.graph[0].agent
        ),
        (
            "requirements_analysis",
            "requirements_analysis",
            AgentKind::Analyst
        )
    );
}

#[tokio::test]
async fn a_whole_graph_runs_in_dependency_order_and_completes_the_project() {
    let pool = guild_testkit::database().await;
    let plan = ProjectType::Fullstack.template();
    let project_id = create(&pool, &plan).await;
    drain(&pool, None).await;

    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Completed);
    assert!(project.finished_at.is_some());
    let all = tasks::list(&pool, project_id).await.expect("list");
    for task in &all {
        assert_eq!(task.status, TaskStatus::Completed, "{}", task.key);
        for dep in &task.depends_on {
            let dep = all.iter().find(|t| &t.key == dep).expect("dependency");
            assert!(
                dep.completed_at.expect("completed") <= task.started_at.expect("started"),
                "{} started before {} completed",
                task.key,
                dep.key
            );
        }
    }
    let log = events::list(&pool, project_id, 0, 1000)
        .await
        .expect("events");
    assert_eq!(
        log.iter()
            .filter(|e| e.kind == EventKind::TaskCompleted)
            .count(),
        21
    );
    assert_eq!(
        log.last().expect("events").kind,
        EventKind::ProjectCompleted
    );
}

#[tokio::test]
async fn a_failed_task_skips_its_dependents_and_the_rest_completes() {
    let pool = guild_testkit::database().await;
    let plan = ProjectType::Fullstack.template();
    let project_id = create(&pool, &plan).await;
    drain(&pool, Some("ui_components")).await;

    let all = statuses(&pool, project_id).await;
    assert_eq!(status_of(&all, "ui_components"), TaskStatus::Failed);
    for key in [
        "page_layouts",
        "state_management",
        "api_integration",
        "frontend_tests",
        "verify",
        "code_review",
        "performance_testing",
        "readme",
    ] {
        assert_eq!(status_of(&all, key), TaskStatus::Skipped, "{key}");
    }
    for key in [
        "database_schema",
        "business_logic",
        "security_audit",
        "monitoring_setup",
    ] {
        assert_eq!(status_of(&all, key), TaskStatus::Completed, "{key}");
    }
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Failed);
    assert_eq!(
        project.error.as_deref(),
        Some("9 of 21 tasks did not complete: 1 failed, 8 skipped, 0 cancelled")
    );
}

#[tokio::test]
async fn a_failed_critical_task_fails_the_project_and_cancels_unstarted_work() {
    let pool = guild_testkit::database().await;
    let project_id = fullstack_after_scaffold(&pool).await;
    let ready = tasks::claim_ready(&pool, "w", 10, LEASE, &[])
        .await
        .expect("claim");
    let schema = ready
        .iter()
        .find(|t| t.key == "database_schema")
        .expect("schema");
    let env = ready
        .iter()
        .find(|t| t.key == "environment_config")
        .expect("env");

    let settled = settle::fail(&pool, failure(schema, false))
        .await
        .expect("fail");
    assert_eq!(settled.project_finished, Some(ProjectStatus::Failed));
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Failed);
    assert!(project.error.expect("error").contains("database_schema"));

    let all = statuses(&pool, project_id).await;
    assert_eq!(status_of(&all, "api_structure"), TaskStatus::Skipped);
    assert_eq!(status_of(&all, "ci_cd_pipeline"), TaskStatus::Cancelled);
    // Tasks already running finish, but nothing new becomes claimable.
    assert_eq!(status_of(&all, "environment_config"), TaskStatus::Running);
    settle::complete(&pool, completion(env))
        .await
        .expect("complete running task");
    assert!(
        tasks::claim_ready(&pool, "w", 10, LEASE, &[])
            .await
            .expect("claim")
            .is_empty()
    );
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Failed);
}

#[tokio::test]
async fn a_retryable_failure_requeues_until_attempts_run_out() {
    let pool = guild_testkit::database().await;
    let plan = ProjectType::Fullstack.template();
    let project_id = create(&pool, &plan).await;
    let first = claim_one(&pool, "requirements_analysis").await;
    let settled = settle::fail(&pool, failure(&first, true))
        .await
        .expect("fail");
    assert!(settled.retrying);
    // Back to ready, but not claimable before its backoff has passed.
    assert_eq!(
        status_of(&statuses(&pool, project_id).await, "requirements_analysis"),
        TaskStatus::Ready
    );
    assert!(
        tasks::claim_ready(&pool, "w", 10, LEASE, &[])
            .await
            .expect("claim")
            .is_empty()
    );

    sqlx::query("UPDATE tasks SET run_after = now() WHERE id = $1")
        .bind(first.id)
        .execute(&pool)
        .await
        .expect("skip the backoff");
    let second = claim_one(&pool, "requirements_analysis").await;
    assert_eq!(second.attempt, 2);
    let settled = settle::fail(&pool, failure(&second, true))
        .await
        .expect("fail");
    assert!(!settled.retrying, "max_attempts is 2");
    assert_eq!(settled.skipped, 20);
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(project.status, ProjectStatus::Failed);
}

#[tokio::test]
async fn files_get_versions_and_rewrites_of_the_same_content_are_idempotent() {
    let pool = guild_testkit::database().await;
    let plan = ProjectType::Fullstack.template();
    let project_id = create(&pool, &plan).await;
    let file = |content: &str| guild_testkit::new_file("db/schema.sql", content, "sql");
    let analysis = claim_one(&pool, "requirements_analysis").await;
    let written = [file("CREATE TABLE a (id int);")];
    let settled = settle::complete(
        &pool,
        Completion {
            files: written.to_vec(),
            ..completion(&analysis)
        },
    )
    .await
    .expect("complete");
    assert_eq!(settled.files_written, 1);

    for key in ["system_design", "scaffold"] {
        let task = claim_one(&pool, key).await;
        settle::complete(&pool, completion(&task))
            .await
            .expect("complete");
    }
    let schema = claim_one(&pool, "database_schema").await;
    let rewritten = [file("CREATE TABLE a (id int, name text);")];
    settle::complete(
        &pool,
        Completion {
            files: rewritten.to_vec(),
            ..completion(&schema)
        },
    )
    .await
    .expect("complete");
    let latest = files::latest(&pool, project_id).await.expect("files");
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].version, 2);
    assert_eq!(latest[0].task_key.as_deref(), Some("database_schema"));
    assert_eq!(latest[0].size_bytes, 35);

    // The dependent's context sees the upstream file and summary.
    let api = claim_one(&pool, "api_structure").await;
    let context = tasks::context(&pool, project_id, api.id)
        .await
        .expect("context");
    assert_eq!(context.files.len(), 1);
    assert_eq!(
        context.files[0].content,
        "CREATE TABLE a (id int, name text);"
    );
    let upstream: Vec<_> = context.upstream.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(
        upstream,
        [
            "requirements_analysis",
            "system_design",
            "scaffold",
            "database_schema"
        ]
    );
}

#[tokio::test]
async fn the_schema_refuses_unsafe_paths_and_impossible_states() {
    let pool = guild_testkit::database().await;
    let plan = ProjectType::Fullstack.template();
    let project_id = create(&pool, &plan).await;
    for path in ["/etc/passwd", "../up", "a/../../b", "a\\b"] {
        let result = sqlx::query(
            "INSERT INTO project_files (project_id, path, version, content, sha256, size_bytes)
             VALUES ($1, $2, 1, '', repeat('0', 64), 0)",
        )
        .bind(project_id)
        .bind(path)
        .execute(&pool)
        .await;
        assert!(result.is_err(), "{path} was accepted");
    }
    let ready_with_pending = sqlx::query(
        "UPDATE tasks SET status = 'ready' WHERE project_id = $1 AND key = 'api_structure'",
    )
    .bind(project_id)
    .execute(&pool)
    .await;
    assert!(ready_with_pending.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_event_ids_misses_nothing_under_concurrent_settlement() {
    let pool = guild_testkit::database_with_connections(20).await;
    let tasks: Vec<TaskSpec> = (0..80)
        .map(|i| TaskSpec {
            key: format!("t{i}"),
            kind: "database_schema".into(),
            agent: AgentKind::Backend,
            description: "independent".into(),
            depends_on: vec![],
            priority: 1,
            critical: false,
            estimated_minutes: 1,
            max_attempts: None,
        })
        .collect();
    let project_id = create(&pool, &Plan::new(tasks).expect("plan")).await;
    let claimed = tasks::claim_ready(&pool, "w", 100, LEASE, &[])
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 80);

    // Eight settlers complete tasks concurrently while a reader pages with `after`.
    let settlers: Vec<_> = claimed
        .chunks(10)
        .map(|chunk| {
            let pool = pool.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for task in &chunk {
                    settle::complete(&pool, completion(task))
                        .await
                        .expect("complete");
                }
            })
        })
        .collect();
    let reader = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            loop {
                let page = events::list(&pool, project_id, after, 1000)
                    .await
                    .expect("events");
                if let Some(last) = page.last() {
                    after = last.id;
                }
                seen.extend(page.iter().map(|e| e.id));
                // project_created, then a task_claimed and a task_completed per task,
                // then project_completed.
                let expected = 1 + 80 + 80 + 1;
                if seen.len() >= expected {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for settler in settlers {
        settler.await.expect("settler");
    }
    let seen = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the reader saw every event")
        .expect("reader");
    let all: Vec<i64> = events::list(&pool, project_id, 0, 1000)
        .await
        .expect("events")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(seen, all);
}

#[tokio::test]
async fn heartbeats_keep_leases_and_expired_ones_are_found() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, &ProjectType::Fullstack.template()).await;
    // A claim whose lease is already over, as if its worker died at once.
    let claimed = tasks::claim_ready(&pool, "dead-worker", 1, Duration::ZERO, &[])
        .await
        .expect("claim");
    let expired = tasks::expired_leases(&pool, 10).await.expect("expired");
    assert_eq!(
        expired.iter().map(|t| t.id).collect::<Vec<_>>(),
        [claimed[0].id]
    );

    // A heartbeat from its worker extends it; another worker's heartbeat does not.
    let ids = [claimed[0].id];
    assert_eq!(
        tasks::heartbeat(&pool, "someone-else", &ids, LEASE)
            .await
            .expect("beat"),
        Vec::<TaskId>::new()
    );
    assert_eq!(
        tasks::heartbeat(&pool, "dead-worker", &ids, LEASE)
            .await
            .expect("beat"),
        ids
    );
    assert!(
        tasks::expired_leases(&pool, 10)
            .await
            .expect("expired")
            .is_empty()
    );
    let all = statuses(&pool, project_id).await;
    assert_eq!(
        status_of(&all, "requirements_analysis"),
        TaskStatus::Running
    );
}
