//! Who gets claimed: projects take turns, `max_parallel` and per-agent room are respected,
//! and every failed attempt's error is kept.

use std::time::Duration;

use guild_core::{AgentKind, Plan, TaskSpec};
use guild_core::{ProjectId, TaskId};
use guild_store::settle::{self, Completion, Failure};
use guild_store::tasks::{self, ClaimedTask};
use guild_store::{PgPool, sqlx};
use serde_json::{Value, json};

const LEASE: Duration = Duration::from_secs(30);

/// `n` independent tasks of `agent`, keyed `{prefix}{i}`.
fn independent(prefix: &str, n: usize, agent: AgentKind) -> Vec<TaskSpec> {
    (0..n)
        .map(|i| TaskSpec {
            key: format!("{prefix}{i}"),
            kind: "database_schema".into(),
            agent,
            description: "independent".into(),
            depends_on: vec![],
            priority: 1,
            critical: false,
            estimated_minutes: 1,
            max_attempts: None,
        })
        .collect()
}

async fn create(pool: &PgPool, tasks: Vec<TaskSpec>, options: Value) -> ProjectId {
    guild_testkit::create_project(pool, &Plan::new(tasks).expect("plan"), options).await
}

async fn claim(pool: &PgPool, limit: i64, room: &[(AgentKind, u32)]) -> Vec<ClaimedTask> {
    tasks::claim_ready(pool, "w", limit, LEASE, room)
        .await
        .expect("claim")
}

fn count_of(claimed: &[ClaimedTask], project_id: ProjectId) -> usize {
    claimed
        .iter()
        .filter(|t| t.project_id == project_id)
        .count()
}

async fn complete(pool: &PgPool, task: &ClaimedTask) {
    guild_testkit::complete_task(pool, task, &[]).await;
}

#[tokio::test]
async fn a_large_project_does_not_starve_one_created_after_it() {
    let pool = guild_testkit::database().await;
    let large = create(&pool, independent("big", 50, AgentKind::Backend), json!({})).await;
    let small_a = create(&pool, independent("a", 2, AgentKind::Backend), json!({})).await;
    let small_b = create(&pool, independent("b", 1, AgentKind::Backend), json!({})).await;

    // Four slots: every project's first task comes before any project's second.
    let first = claim(&pool, 4, &[]).await;
    assert_eq!(first.len(), 4);
    assert_eq!(count_of(&first, large), 2, "{first:?}");
    assert_eq!(count_of(&first, small_a), 1);
    assert_eq!(count_of(&first, small_b), 1);
    // Within a project, first come first served.
    let big_keys: Vec<&str> = first
        .iter()
        .filter(|t| t.project_id == large)
        .map(|t| t.key.as_str())
        .collect();
    assert!(big_keys.contains(&"big0"), "{big_keys:?}");

    let second = claim(&pool, 2, &[]).await;
    assert_eq!(count_of(&second, small_a), 1, "{second:?}");
    assert_eq!(count_of(&second, large), 1);
}

#[tokio::test]
async fn max_parallel_caps_the_running_tasks_of_a_project() {
    let pool = guild_testkit::database().await;
    let capped = create(
        &pool,
        independent("t", 6, AgentKind::Backend),
        json!({"max_parallel": 2}),
    )
    .await;
    let free = create(&pool, independent("u", 4, AgentKind::Backend), json!({})).await;

    let claimed = claim(&pool, 100, &[]).await;
    assert_eq!(count_of(&claimed, capped), 2, "{claimed:?}");
    assert_eq!(count_of(&claimed, free), 4);
    assert!(
        claim(&pool, 100, &[]).await.is_empty(),
        "the cap is reached"
    );

    // One finishes: one more may start.
    let done = claimed
        .iter()
        .find(|t| t.project_id == capped)
        .expect("one");
    complete(&pool, done).await;
    let next = claim(&pool, 100, &[]).await;
    assert_eq!(count_of(&next, capped), 1, "{next:?}");
    assert_eq!(next.len(), 1);
}

#[tokio::test]
async fn agent_room_limits_each_kind_and_leaves_the_others_alone() {
    let pool = guild_testkit::database().await;
    let mut tasks = independent("r", 3, AgentKind::Reviewer);
    tasks.extend(independent("f", 2, AgentKind::Frontend));
    create(&pool, tasks, json!({})).await;

    let claimed = claim(&pool, 100, &[(AgentKind::Reviewer, 1)]).await;
    let reviewers = claimed
        .iter()
        .filter(|t| t.agent == AgentKind::Reviewer)
        .count();
    assert_eq!(reviewers, 1, "{claimed:?}");
    assert_eq!(claimed.len(), 3, "both frontend tasks too");

    // No room for reviewers: none is claimed even though two are ready.
    assert!(
        claim(&pool, 100, &[(AgentKind::Reviewer, 0)])
            .await
            .is_empty()
    );
    assert_eq!(claim(&pool, 100, &[]).await.len(), 2);
}

#[tokio::test]
async fn every_failed_attempt_keeps_its_error() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, independent("t", 1, AgentKind::Backend), json!({})).await;
    for attempt in 1..=3 {
        let task = claim(&pool, 1, &[]).await.pop().expect("ready");
        assert_eq!(task.attempt, attempt);
        let settled = settle::fail(
            &pool,
            Failure {
                project_id,
                task_id: task.id,
                attempt,
                session_id: None,
                duration_ms: 1,
                error: &format!("provider error number {attempt}"),
                retryable: true,
                retry_delay: Duration::ZERO,
                llm_calls: &[],
                raw_answer: None,
                stops_project: false,
            },
        )
        .await
        .expect("fail");
        assert_eq!(settled.retrying, attempt < 3);
    }
    let task = tasks::list(&pool, project_id)
        .await
        .expect("list")
        .pop()
        .expect("task");
    assert_eq!(task.status, guild_core::TaskStatus::Failed);
    let errors: Vec<(i32, &str)> = task
        .errors
        .iter()
        .map(|e| (e.attempt, e.error.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (1, "provider error number 1"),
            (2, "provider error number 2"),
            (3, "provider error number 3")
        ]
    );
}

#[tokio::test]
async fn a_batch_of_completions_settles_together_and_fences_each_task() {
    let pool = guild_testkit::database().await;
    // `join0` waits for `left0` and `right0`; both complete in the same batch.
    let mut specs = independent("left", 1, AgentKind::Backend);
    specs.extend(independent("right", 1, AgentKind::Frontend));
    let mut join = independent("join", 1, AgentKind::Reviewer);
    join[0].depends_on = vec!["left0".into(), "right0".into()];
    specs.extend(join);
    let project_id = create(&pool, specs, json!({})).await;
    create(&pool, independent("solo", 1, AgentKind::Devops), json!({})).await;
    let claimed = claim(&pool, 10, &[]).await;
    assert_eq!(claimed.len(), 3);
    let by_key = |key: &str| claimed.iter().find(|t| t.key == key).expect(key);
    let (left, right, solo) = (by_key("left0"), by_key("right0"), by_key("solo0"));

    let file = |content: &str| guild_testkit::new_file("src/shared.ts", content, "typescript");
    let left_files = [file("left")];
    let right_files = [file("right!")];
    let completion = |task: &ClaimedTask, files| guild_testkit::completion(task, files, &[]);
    // A stale completion of `solo` (an attempt it is not at) is refused; the rest settle.
    let stale = Completion {
        attempt: solo.attempt + 1,
        ..completion(solo, &[])
    };
    let outcomes = settle::complete_many(
        &pool,
        &[
            completion(left, &left_files),
            completion(right, &right_files),
            stale,
        ],
    )
    .await
    .expect("batch");
    assert!(matches!(
        outcomes[2],
        Err(guild_store::StoreError::NotRunning { .. })
    ));
    let settled: Vec<_> = outcomes[..2]
        .iter()
        .map(|o| o.as_ref().expect("settled"))
        .collect();
    // `join` had two pending dependencies; both completed in this batch, so it is ready.
    assert_eq!(settled[0].released + settled[1].released, 2, "{settled:?}");
    let ready = claim(&pool, 10, &[]).await;
    assert_eq!(
        ready.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        ["join0"]
    );
    // Two writers of one path in one batch get consecutive versions.
    let versions: Vec<(i32, String)> = guild_store::sqlx::query_as(
        "SELECT version, content FROM project_files WHERE project_id = $1 ORDER BY version",
    )
    .bind(project_id)
    .fetch_all(&pool)
    .await
    .expect("files");
    assert_eq!(versions, [(1, "left".into()), (2, "right!".into())]);
}

#[tokio::test]
async fn a_task_of_a_plan_may_have_its_own_attempt_budget() {
    let pool = guild_testkit::database().await;
    let mut specs = independent("t", 2, AgentKind::Backend);
    specs[0].max_attempts = Some(1);
    let project_id = create(&pool, specs, json!({})).await;
    let budgets: Vec<(String, i32)> = tasks::list(&pool, project_id)
        .await
        .expect("list")
        .into_iter()
        .map(|t| (t.key, t.max_attempts))
        .collect();
    assert_eq!(budgets, [("t0".to_owned(), 1), ("t1".to_owned(), 3)]);
}

/// The field report: a settling batch and the heartbeat of the same process locked the
/// same task rows in opposite orders, and PostgreSQL broke the deadlock by failing one.
/// Heartbeats now skip rows a settlement holds, so neither ever waits for the other.
#[tokio::test]
async fn heartbeats_and_batched_settlements_of_the_same_tasks_never_deadlock() {
    let pool = guild_testkit::database_with_connections(12).await;
    for p in 0..4 {
        create(
            &pool,
            independent(&format!("p{p}_"), 60, AgentKind::Backend),
            json!({}),
        )
        .await;
    }
    let claimed = claim(&pool, 240, &[]).await;
    assert_eq!(claimed.len(), 240);
    let ids: Vec<TaskId> = claimed.iter().map(|t| t.id).collect();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heartbeats: Vec<_> = (0..3)
        .map(|_| {
            let (pool, ids, stop) = (pool.clone(), ids.clone(), stop.clone());
            tokio::spawn(async move {
                let mut beats = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tasks::heartbeat(&pool, "w", &ids, LEASE).await?;
                    beats += 1;
                }
                Ok::<_, guild_store::StoreError>(beats)
            })
        })
        .collect();
    // Batches of 40, each in descending id order: the opposite of the heartbeat's scan.
    let mut batches: Vec<Vec<ClaimedTask>> = claimed.chunks(40).map(<[_]>::to_vec).collect();
    for batch in &mut batches {
        batch.sort_by_key(|t| std::cmp::Reverse(t.id));
    }
    let settling: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let completions: Vec<Completion> = batch
                    .iter()
                    .map(|t| guild_testkit::completion(t, &[], &[]))
                    .collect();
                settle::complete_many(&pool, &completions).await
            })
        })
        .collect();
    for settled in settling {
        let outcomes = settled.await.expect("joins").expect("no batch fails");
        assert!(outcomes.iter().all(Result::is_ok));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for beats in heartbeats {
        let beats = beats.await.expect("joins").expect("no heartbeat fails");
        assert!(beats > 0);
    }
    let (deadlocks,): (i64,) =
        sqlx::query_as("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&pool)
            .await
            .expect("stats");
    assert_eq!(deadlocks, 0);
}
