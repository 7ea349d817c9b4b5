//! Budgets held before each call, usage totals per task, project and agent, a project
//! stopped by its budget, and the response cache.

use std::time::Duration;

use guild_core::ModelCall as LlmCall;
use guild_core::{AgentKind, Plan, ProjectStatus, TaskStatus};
use guild_core::{EventKind, ProjectId};
use guild_store::budget::{self, Amount, Reservation};
use guild_store::settle::{self, Failure};
use guild_store::tasks::{self, ClaimedTask};
use guild_store::{PgPool, llm_cache, projects};
use guild_testkit::task_spec;
use serde_json::{Value, json};

/// Two independent tasks (`a` backend, `b` frontend) and `c` after both.
async fn create(pool: &PgPool, options: Value) -> ProjectId {
    let plan = Plan::new(vec![
        task_spec("a", AgentKind::Backend, &[]),
        task_spec("b", AgentKind::Frontend, &[]),
        task_spec("c", AgentKind::Reviewer, &["a", "b"]),
    ])
    .expect("plan");
    guild_testkit::create_project(pool, &plan, options).await
}

async fn claim_both(pool: &PgPool) -> (ClaimedTask, ClaimedTask) {
    let mut claimed = tasks::claim_ready(pool, "w", 2, Duration::from_secs(30), &[])
        .await
        .expect("claim");
    claimed.sort_by(|x, y| x.key.cmp(&y.key));
    let b = claimed.pop().expect("b");
    let a = claimed.pop().expect("a");
    (a, b)
}

/// Reserves `amount` for `task` and expects it held.
async fn hold(pool: &PgPool, project_id: ProjectId, task: &ClaimedTask, amount: Amount) {
    let reservation = budget::reserve(pool, project_id, task.id, task.attempt, amount)
        .await
        .expect("reserve");
    assert_eq!(reservation, Reservation::Held);
}

/// Reserves `amount` for `task`, expects a refusal and returns why.
async fn refused(
    pool: &PgPool,
    project_id: ProjectId,
    task: &ClaimedTask,
    amount: Amount,
) -> String {
    match budget::reserve(pool, project_id, task.id, task.attempt, amount)
        .await
        .expect("reserve")
    {
        Reservation::Refused(why) => why,
        Reservation::Held => panic!("held, but expected a refusal"),
    }
}

fn tokens(n: i64) -> Amount {
    Amount {
        tokens: n,
        cost_usd: Some(0.0),
    }
}

fn call(prompt: u32, completion: u32, cost: Option<f64>, cached: bool) -> LlmCall {
    LlmCall {
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_prompt_tokens: 0,
        cache_write_tokens: 0,
        shared_prefix_tokens: 0,
        latency_ms: 5,
        cost_usd: cost,
        cached,
        prompt_version: "v1".into(),
    }
}

async fn complete(pool: &PgPool, task: &ClaimedTask, calls: &[LlmCall]) {
    guild_testkit::complete_task(pool, task, calls).await;
}

async fn task_status(
    pool: &PgPool,
    project_id: ProjectId,
    key: &str,
) -> (TaskStatus, projects::Usage) {
    let task = tasks::list(pool, project_id)
        .await
        .expect("tasks")
        .into_iter()
        .find(|t| t.key == key)
        .expect("task");
    (task.status, task.usage)
}

#[tokio::test]
async fn running_calls_hold_their_worst_case_until_they_settle() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, json!({"max_tokens": 1000})).await;
    let (a, b) = claim_both(&pool).await;

    hold(&pool, project_id, &a, tokens(600)).await;
    // 600 more does not fit while a holds 600.
    let refusal = refused(&pool, project_id, &b, tokens(600)).await;
    assert!(
        refusal.contains("max_tokens of 1000") && refusal.contains("600 tokens"),
        "{refusal}"
    );

    // a's call spent 100 of the 600 it held: b's call now fits.
    budget::settle_call(&pool, a.id, a.attempt, tokens(600), tokens(100))
        .await
        .expect("settle");
    hold(&pool, project_id, &b, tokens(600)).await;

    // a completes: its 100 tokens move from its reservation into the totals, with the
    // prompt-cache counts of its call.
    let cached_call = LlmCall {
        cached_prompt_tokens: 30,
        cache_write_tokens: 10,
        ..call(80, 20, Some(0.001), false)
    };
    complete(&pool, &a, &[cached_call]).await;
    let (status, usage) = task_status(&pool, project_id, "a").await;
    assert_eq!(status, TaskStatus::Completed);
    assert_eq!(
        usage,
        projects::Usage {
            prompt_tokens: 80,
            completion_tokens: 20,
            cost_usd: Some(0.001),
            llm_calls: 1,
            cache_hits: 0,
            cached_prompt_tokens: 30,
            cache_write_tokens: 10,
        }
    );
    let project = projects::get(&pool, project_id)
        .await
        .expect("read")
        .expect("project");
    assert_eq!(
        (
            project.usage.cached_prompt_tokens,
            project.usage.cache_write_tokens
        ),
        (30, 10)
    );
    // 100 spent + 600 held by b: 300 left.
    let refusal = refused(&pool, project_id, &b, tokens(301)).await;
    assert!(
        refusal.contains("700 of the project's max_tokens"),
        "{refusal}"
    );
    hold(&pool, project_id, &b, tokens(300)).await;
}

#[tokio::test]
async fn a_cost_budget_refuses_calls_whose_price_is_unknown_or_too_high() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, json!({"max_cost_usd": 0.05})).await;
    let (a, _) = claim_both(&pool).await;
    let unknown = Amount {
        tokens: 10,
        cost_usd: None,
    };
    let refusal = refused(&pool, project_id, &a, unknown).await;
    assert!(refusal.contains("price is unknown"), "{refusal}");
    let dear = Amount {
        tokens: 10,
        cost_usd: Some(0.06),
    };
    let refusal = refused(&pool, project_id, &a, dear).await;
    assert!(refusal.contains("max_cost_usd of $0.05"), "{refusal}");
    let cheap = Amount {
        tokens: 10,
        cost_usd: Some(0.04),
    };
    hold(&pool, project_id, &a, cheap).await;

    // A project without a budget is never refused.
    let free = create(&pool, json!({})).await;
    let (c, _) = claim_both(&pool).await;
    assert_eq!(c.project_id, free);
    hold(&pool, free, &c, tokens(i64::from(i32::MAX))).await;
}

#[tokio::test]
async fn a_budget_stop_fails_the_project_and_cancels_everything_still_open() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, json!({"max_tokens": 100})).await;
    let (a, b) = claim_both(&pool).await;
    let settled = settle::fail(
        &pool,
        Failure {
            project_id,
            task_id: a.id,
            attempt: a.attempt,
            session_id: None,
            duration_ms: 1,
            error: "budget_exceeded: the call could use 900 tokens",
            retryable: false,
            retry_delay: Duration::ZERO,
            llm_calls: &[],
            raw_answer: None,
            stops_project: true,
        },
    )
    .await
    .expect("fail");
    assert_eq!(settled.project_finished, Some(ProjectStatus::Failed));
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(project.status, ProjectStatus::Failed);
    assert_eq!(
        project.error.as_deref(),
        Some("task `a` stopped the project: budget_exceeded: the call could use 900 tokens")
    );
    assert_eq!(
        task_status(&pool, project_id, "a").await.0,
        TaskStatus::Failed
    );
    // b was running: it is cancelled too, so its worker stops it at its next heartbeat.
    assert_eq!(
        task_status(&pool, project_id, "b").await.0,
        TaskStatus::Cancelled
    );
    let stopped = tasks::heartbeat(&pool, "w", &[b.id], Duration::from_secs(30))
        .await
        .expect("heartbeat");
    assert!(stopped.is_empty(), "b's lease is no longer extended");
    assert_eq!(
        task_status(&pool, project_id, "c").await.0,
        TaskStatus::Skipped
    );
}

#[tokio::test]
async fn usage_is_totalled_per_task_project_and_agent_and_an_unknown_cost_stays_unknown() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, json!({})).await;
    let (a, b) = claim_both(&pool).await;
    complete(
        &pool,
        &a,
        &[
            call(100, 50, Some(0.01), false),
            call(0, 0, Some(0.0), true),
        ],
    )
    .await;
    complete(&pool, &b, &[call(10, 5, None, false)]).await;
    let project = projects::get(&pool, project_id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(project.usage.prompt_tokens, 110);
    assert_eq!(project.usage.completion_tokens, 55);
    assert_eq!(project.usage.cost_usd, None, "b's price was unknown");
    assert_eq!(project.usage.llm_calls, 3);
    assert_eq!(project.usage.cache_hits, 1);
    let by_agent = projects::usage_by_agent(&tasks::list(&pool, project_id).await.expect("tasks"));
    let agents: Vec<(&str, i64, Option<f64>, i64)> = by_agent
        .iter()
        .map(|a| {
            (
                a.agent.as_str(),
                a.usage.prompt_tokens,
                a.usage.cost_usd,
                a.usage.cache_hits,
            )
        })
        .collect();
    assert_eq!(
        agents,
        [
            ("backend", 100, Some(0.01), 1),
            ("frontend", 10, None, 0),
            ("reviewer", 0, Some(0.0), 0)
        ]
    );
    let events: Vec<(Value,)> = sqlx::query_as(
        "SELECT data FROM events WHERE project_id = $1 AND kind = 'llm_call' ORDER BY id",
    )
    .bind(project_id)
    .fetch_all(&pool)
    .await
    .expect("events");
    assert_eq!(events.len(), 3);
    assert_eq!(events[1].0["cached"], json!(true));
    assert_eq!(events[2].0["cost_usd"], Value::Null);
}

#[tokio::test]
async fn the_cache_returns_what_was_kept_and_counts_hits() {
    let pool = guild_testkit::database().await;
    let key = [7u8; 32];
    assert_eq!(llm_cache::get(&pool, &key).await.expect("get"), None);
    let answer = llm_cache::CachedAnswer {
        provider: "openai",
        model: "gpt-4o-mini-2024-07-18",
        content: "the answer",
        prompt_tokens: 10,
        completion_tokens: 3,
    };
    llm_cache::put(&pool, &key, answer.clone())
        .await
        .expect("put");
    // The first answer kept stays.
    llm_cache::put(
        &pool,
        &key,
        llm_cache::CachedAnswer {
            content: "another answer",
            ..answer
        },
    )
    .await
    .expect("put again");
    for _ in 0..2 {
        assert_eq!(
            llm_cache::get(&pool, &key).await.expect("get"),
            Some(("the answer".into(), "gpt-4o-mini-2024-07-18".into()))
        );
    }
    let (hits,): (i64,) = sqlx::query_as("SELECT hits FROM llm_cache WHERE key = $1")
        .bind(key.as_slice())
        .fetch_one(&pool)
        .await
        .expect("hits");
    assert_eq!(hits, 2);
}

/// Completes `task` at an attempt that no longer runs, with the `calls` it paid for: the
/// fence refuses it.
async fn complete_too_late(pool: &PgPool, task: &ClaimedTask, calls: &[LlmCall]) {
    let late = settle::complete(
        pool,
        settle::Completion {
            llm_calls: calls.to_vec(),
            ..guild_testkit::completion(task, &[], &[])
        },
    )
    .await;
    assert!(matches!(
        late,
        Err(guild_store::StoreError::NotRunning { .. })
    ));
}

/// The field report: four calls costing 5.4e-05 by their events made the project cost
/// 5.6e-05, each call rounded to the micro-dollar as it was added.
#[tokio::test]
async fn cost_totals_are_the_exact_sum_of_their_calls() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, json!({})).await;
    let (a, b) = claim_both(&pool).await;
    let calls: Vec<LlmCall> = (0..4)
        .map(|_| call(10, 20, Some(1.35e-05), false))
        .collect();
    complete(&pool, &a, &calls[..2]).await;
    complete(&pool, &b, &calls[2..]).await;
    let project = projects::get(&pool, project_id)
        .await
        .expect("read")
        .expect("project");
    let by_events: f64 = guild_store::events::list(&pool, project_id, 0, 100)
        .await
        .expect("events")
        .iter()
        .filter(|e| e.kind == EventKind::LlmCall)
        .map(|e| e.data["cost_usd"].as_f64().expect("a cost"))
        .sum();
    let total = project.usage.cost_usd.expect("known");
    assert!((by_events - 5.4e-05).abs() < 1e-15, "{by_events}");
    assert!(
        (total - by_events).abs() < 1e-15,
        "project {total} vs calls {by_events}"
    );
    let (_, task_a) = task_status(&pool, project_id, "a").await;
    assert!((task_a.cost_usd.expect("known") - 2.7e-05).abs() < 1e-15);
}

/// Money spent is money spent: a result the fence refuses still counts its calls, and a
/// running attempt's budget reservations are left alone by it.
#[tokio::test]
async fn a_dropped_result_counts_its_calls_and_says_so() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, json!({"max_tokens": 100_000})).await;
    let (a, _b) = claim_both(&pool).await;
    // The lease is lost: another worker runs attempt 2 and holds a reservation.
    settle::fail(
        &pool,
        Failure {
            project_id,
            task_id: a.id,
            attempt: a.attempt,
            session_id: None,
            duration_ms: 1,
            error: "lease expired",
            retryable: true,
            retry_delay: Duration::ZERO,
            llm_calls: &[],
            raw_answer: None,
            stops_project: false,
        },
    )
    .await
    .expect("recovered");
    let again = tasks::claim_ready(&pool, "w2", 5, Duration::from_secs(30), &[])
        .await
        .expect("claim")
        .into_iter()
        .find(|t| t.id == a.id)
        .expect("attempt 2");
    hold(&pool, project_id, &again, tokens(500)).await;

    // The first worker's late result arrives with the two calls it paid for.
    let paid = [
        call(100, 50, Some(0.001), false),
        call(10, 5, Some(0.0001), false),
    ];
    complete_too_late(&pool, &a, &paid).await;
    let (status, usage) = task_status(&pool, project_id, "a").await;
    assert_eq!(status, TaskStatus::Running);
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.llm_calls
        ),
        (110, 55, 2)
    );
    let project = projects::get(&pool, project_id)
        .await
        .expect("read")
        .expect("project");
    assert_eq!(project.usage.llm_calls, 2);
    assert!((project.usage.cost_usd.expect("known") - 0.0011).abs() < 1e-12);
    let log = guild_store::events::list(&pool, project_id, 0, 100)
        .await
        .expect("events");
    let dropped = log
        .iter()
        .find(|e| e.kind == EventKind::ResultDropped)
        .expect("dropped");
    assert_eq!(dropped.data["llm_calls"], 2);
    assert_eq!(dropped.data["prompt_tokens"], 110);
    // Attempt 2's reservation still holds: 110 + 55 spent + 500 held.
    let refusal = refused(&pool, project_id, &again, tokens(99_400)).await;
    assert!(
        refusal.contains("665 of the project's max_tokens"),
        "{refusal}"
    );
}

/// A project's last event is its end: a result that arrives after the project ended is
/// counted without an event after the end.
#[tokio::test]
async fn a_result_after_the_end_adds_no_event_after_the_end() {
    let pool = guild_testkit::database().await;
    let project_id = create(&pool, json!({})).await;
    let (a, _b) = claim_both(&pool).await;
    projects::cancel(&pool, project_id)
        .await
        .expect("cancelled");
    let paid = [call(100, 50, Some(0.001), false)];
    complete_too_late(&pool, &a, &paid).await;
    settle::record_dropped_result(&pool, project_id, a.id, a.attempt, &paid, Some("stopped"))
        .await
        .expect("recorded");
    let log = guild_store::events::list(&pool, project_id, 0, 100)
        .await
        .expect("events");
    assert_eq!(
        log.last().expect("events").kind,
        EventKind::ProjectCancelled
    );
    let project = projects::get(&pool, project_id)
        .await
        .expect("read")
        .expect("project");
    assert_eq!(project.usage.llm_calls, 2, "both late results counted");
}
