//! What settlements count: model calls (tokens, cost, calls, cache hits) on tasks and
//! projects, agent sessions' busy time, and the calls of results that came too late.

use std::collections::HashMap;

use guild_core::{EventKind, ModelCall, ProjectId, ProjectStatus, TaskId};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Completion;
use crate::Result;
use crate::events::{self, NewEvent};
use crate::locks::lock_project;

/// The `llm_call` events of a task's calls.
pub(crate) fn llm_call_events(task_id: TaskId, calls: &[ModelCall]) -> Vec<NewEvent> {
    calls
        .iter()
        .map(|call| {
            NewEvent::of_task(
                task_id,
                EventKind::LlmCall,
                json!({
                    "provider": call.provider,
                    "model": call.model,
                    "prompt_tokens": call.prompt_tokens,
                    "completion_tokens": call.completion_tokens,
                    "cached_prompt_tokens": call.cached_prompt_tokens,
                    "cache_write_tokens": call.cache_write_tokens,
                    "shared_prefix_tokens": call.shared_prefix_tokens,
                    "latency_ms": call.latency_ms,
                    "cost_usd": call.cost_usd,
                    "cached": call.cached,
                    "prompt_version": call.prompt_version,
                }),
            )
        })
        .collect()
}

/// One task's calls to add to the totals.
pub(crate) struct UsageRow<'a> {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub calls: &'a [ModelCall],
    /// The calls are the running attempt's, now settled: its budget reservations are
    /// cleared (the totals now hold what they stood for). A late result's calls leave
    /// the reservations of whatever attempt runs now alone.
    pub settles_attempt: bool,
}

/// Adds the calls' tokens, cost, count and cache hits to their tasks' and projects'
/// totals, in one statement. One unknown cost makes a total unknown: a partial sum would
/// understate what was spent. Costs are summed exactly (the columns are unconstrained
/// `numeric`), so a total is the sum of its calls' costs.
pub(crate) async fn add_usage(conn: &mut PgConnection, rows: &[UsageRow<'_>]) -> Result<()> {
    let rows: Vec<&UsageRow<'_>> = rows.iter().filter(|r| !r.calls.is_empty()).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let totals: Vec<Usage> = rows.iter().map(|r| Usage::of(r.calls)).collect();
    sqlx::query(
        "WITH u AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::int8[], $5::float8[],
                                  $6::int4[], $7::int4[], $8::bool[], $9::int8[], $10::int8[])
                 AS u(project_id, task_id, prompt, completion, cost, calls, hits, settles,
                      cached, written)
         ), per_task AS (
             UPDATE tasks t
             SET prompt_tokens = t.prompt_tokens + u.prompt,
                 completion_tokens = t.completion_tokens + u.completion,
                 cost_usd = t.cost_usd + u.cost::numeric,
                 llm_calls = t.llm_calls + u.calls,
                 cache_hits = t.cache_hits + u.hits,
                 cached_prompt_tokens = t.cached_prompt_tokens + u.cached,
                 cache_write_tokens = t.cache_write_tokens + u.written,
                 reserved_tokens = CASE WHEN u.settles THEN 0 ELSE t.reserved_tokens END,
                 reserved_cost_usd = CASE WHEN u.settles THEN 0 ELSE t.reserved_cost_usd END
             FROM u WHERE t.id = u.task_id
         ), per_project AS (
             SELECT project_id, sum(prompt) AS prompt, sum(completion) AS completion,
                    CASE WHEN bool_and(cost IS NOT NULL) THEN sum(cost::numeric) END AS cost,
                    sum(calls) AS calls, sum(hits) AS hits, sum(cached) AS cached,
                    sum(written) AS written
             FROM u GROUP BY project_id
         )
         UPDATE projects p
         SET prompt_tokens = p.prompt_tokens + pp.prompt,
             completion_tokens = p.completion_tokens + pp.completion,
             cost_usd = p.cost_usd + pp.cost,
             llm_calls = p.llm_calls + pp.calls,
             cache_hits = p.cache_hits + pp.hits,
             cached_prompt_tokens = p.cached_prompt_tokens + pp.cached,
             cache_write_tokens = p.cache_write_tokens + pp.written
         FROM per_project pp WHERE p.id = pp.project_id",
    )
    .bind(rows.iter().map(|r| r.project_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.task_id).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.prompt).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.completion).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.cost).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.calls).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.hits).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.settles_attempt).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.cached).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.written).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// The sums of one task's calls.
struct Usage {
    prompt: i64,
    completion: i64,
    /// Unknown once any call's cost is.
    cost: Option<f64>,
    calls: i32,
    hits: i32,
    cached: i64,
    written: i64,
}

impl Usage {
    fn of(calls: &[ModelCall]) -> Self {
        Self {
            prompt: calls.iter().map(|c| i64::from(c.prompt_tokens)).sum(),
            completion: calls.iter().map(|c| i64::from(c.completion_tokens)).sum(),
            cost: calls.iter().map(|c| c.cost_usd).sum(),
            calls: i32::try_from(calls.len()).unwrap_or(i32::MAX),
            hits: i32::try_from(calls.iter().filter(|c| c.cached).count()).unwrap_or(i32::MAX),
            cached: calls
                .iter()
                .map(|c| i64::from(c.cached_prompt_tokens))
                .sum(),
            written: calls.iter().map(|c| i64::from(c.cache_write_tokens)).sum(),
        }
    }
}

/// Ends the sessions' current tasks: `(session, busy ms, completed)`.
pub(crate) async fn end_sessions(
    conn: &mut PgConnection,
    ended: &[(Uuid, i64, bool)],
) -> Result<()> {
    if ended.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE agent_sessions s
         SET current_task_id = NULL, last_activity_at = now(), busy_ms = s.busy_ms + u.ms,
             tasks_completed = s.tasks_completed + CASE WHEN u.ok THEN 1 ELSE 0 END,
             tasks_failed = s.tasks_failed + CASE WHEN u.ok THEN 0 ELSE 1 END
         FROM unnest($1::uuid[], $2::int8[], $3::bool[]) AS u(id, ms, ok)
         WHERE s.id = u.id",
    )
    .bind(ended.iter().map(|e| e.0).collect::<Vec<_>>())
    .bind(ended.iter().map(|e| e.1.max(0)).collect::<Vec<_>>())
    .bind(ended.iter().map(|e| e.2).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Why a result was not stored.
const LATE: &str =
    "the task was no longer running at this attempt (its lease expired or it was cancelled)";

/// The `result_dropped` event of a late result and the calls it counts. A project that
/// already ended gets no event (its last event stays its end); the calls are counted all
/// the same.
fn dropped_event(
    task_id: TaskId,
    attempt: i32,
    calls: &[ModelCall],
    reason: &str,
    project: Option<ProjectStatus>,
) -> Option<NewEvent> {
    if project.is_some_and(ProjectStatus::is_finished) {
        tracing::info!(%task_id, attempt, calls = calls.len(), "a late result of a finished project: its calls are counted, no event is recorded");
        return None;
    }
    let usage = Usage::of(calls);
    Some(NewEvent::of_task(
        task_id,
        EventKind::ResultDropped,
        json!({
            "attempt": attempt,
            "reason": reason,
            "llm_calls": usage.calls,
            "prompt_tokens": usage.prompt,
            "completion_tokens": usage.completion,
            "cost_usd": usage.cost,
            "usage": "the calls this attempt made are counted in the task's and the project's usage",
        }),
    ))
}

/// The `result_dropped` events of the late completions of a batch, each followed by its
/// `llm_call` events.
pub(crate) fn dropped_events<'a>(
    late: impl Iterator<Item = &'a Completion>,
    statuses: &HashMap<ProjectId, ProjectStatus>,
) -> Vec<(ProjectId, NewEvent)> {
    late.flat_map(|c| {
        let status = statuses.get(&c.project_id).copied();
        let event = dropped_event(c.task_id, c.attempt, &c.llm_calls, LATE, status);
        let calls = if event.is_some() {
            llm_call_events(c.task_id, &c.llm_calls)
        } else {
            Vec::new()
        };
        event
            .into_iter()
            .chain(calls)
            .map(|e| (c.project_id, e))
            .collect::<Vec<_>>()
    })
    .collect()
}

/// Records a result that was not stored: a worker's late failure refused by the fence, or
/// an attempt stopped midway because the task stopped being its worker's (a late success
/// is recorded by [`super::complete_many`] itself). The `calls` it made are counted in the
/// task's and the project's usage; the event says why and what they cost, unless the
/// project already ended.
///
/// # Errors
///
/// [`crate::StoreError::NotFound`] when the project is gone; a database error otherwise.
#[tracing::instrument(skip(pool, calls), fields(calls = calls.len()), err(level = "debug"))]
pub async fn record_dropped_result(
    pool: &PgPool,
    project_id: ProjectId,
    task_id: TaskId,
    attempt: i32,
    calls: &[ModelCall],
    reason: Option<&str>,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let status = lock_project(&mut tx, project_id).await?;
    if let Some(event) = dropped_event(
        task_id,
        attempt,
        calls,
        reason.unwrap_or(LATE),
        Some(status),
    ) {
        let mut log = vec![event];
        log.extend(llm_call_events(task_id, calls));
        events::record(&mut tx, project_id, &log).await?;
    }
    add_usage(
        &mut tx,
        &[UsageRow {
            project_id,
            task_id,
            calls,
            settles_attempt: false,
        }],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
