//! Settling a claimed task: completing it or failing it, with everything that follows, in
//! one transaction.
//!
//! Both are fenced: they apply only while the task is still `running` at the attempt the
//! worker claimed, so a late result can never overwrite a newer attempt.

use std::collections::HashMap;
use std::time::Duration;

use guild_core::{Finding, ProjectStatus};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::events::{self, NewEvent};
use crate::files::{self, NewFile, Writer};
use crate::listener::notify_ready;
use crate::review::{self, CompletedReview};
use crate::{Result, StoreError, parse};

/// One call to a model, for usage accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmCall {
    pub provider: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms: i64,
    /// `None` when the model's price is unknown.
    pub cost_usd: Option<f64>,
    /// Answered from the response cache (no tokens, no cost).
    pub cached: bool,
    /// The version of the prompt template the call was made with.
    pub prompt_version: Option<String>,
}

/// A code block an agent wrote that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedFile {
    pub path: Option<String>,
    pub reason: String,
}

/// A task's successful outcome.
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    pub project_id: Uuid,
    pub task_id: Uuid,
    pub attempt: i32,
    pub session_id: Option<Uuid>,
    pub duration_ms: i64,
    /// The task's result: at least `summary`.
    pub result: Value,
    pub files: &'a [NewFile],
    /// Blocks refused (unsafe path, no path, ...): each is recorded as a `file_rejected` event.
    pub rejected_files: &'a [RejectedFile],
    /// The requirements analysis, stored on the project when this task produced it.
    pub requirements: Option<&'a Value>,
    pub llm_calls: &'a [LlmCall],
    /// A review's findings, stored in the result as `findings`; blocking ones start a fix
    /// round (see [`crate::review`]).
    pub findings: &'a [Finding],
}

/// A task's failed attempt.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    pub project_id: Uuid,
    pub task_id: Uuid,
    pub attempt: i32,
    pub session_id: Option<Uuid>,
    pub duration_ms: i64,
    pub error: &'a str,
    /// Whether another attempt could succeed (a transport error, say); a task with
    /// attempts left is then re-queued after `retry_delay`.
    pub retryable: bool,
    pub retry_delay: Duration,
    pub llm_calls: &'a [LlmCall],
    /// The model's unusable answer, kept (truncated) in the failure's event.
    pub raw_answer: Option<&'a str>,
    /// The project must stop (its budget would be exceeded): it fails, and its other
    /// tasks, running ones included, are cancelled.
    pub stops_project: bool,
}

/// How much of an unusable answer an event keeps.
const RAW_ANSWER_CHARS: usize = 4000;

fn truncated(text: Option<&str>) -> Option<String> {
    text.map(|t| t.chars().take(RAW_ANSWER_CHARS).collect())
}

/// What settling a task changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub project_id: Uuid,
    /// Dependents that became ready.
    pub released: u64,
    /// File versions written.
    pub files_written: u64,
    /// The task waits for a human's approval before its dependents run.
    pub awaiting_approval: bool,
    /// The task went back to `ready` for another attempt.
    pub retrying: bool,
    /// Dependents skipped or tasks cancelled because this task failed.
    pub skipped: u64,
    pub cancelled: u64,
    /// The project's final status, when this settled it.
    pub project_finished: Option<ProjectStatus>,
}

/// Completes a running task: stores its result and files, records its events and usage,
/// releases dependents whose dependencies are now all complete, and finishes the project
/// when nothing is left to run. [`complete_many`] for one task.
pub async fn complete(pool: &PgPool, completion: Completion<'_>) -> Result<Settled> {
    complete_many(pool, std::slice::from_ref(&completion))
        .await?
        .pop()
        .expect("one outcome per completion")
}

/// Completes many running tasks (of any projects) in one transaction of a fixed number of
/// statements, whatever their number: what a busy worker pool does with the results that
/// finished while its last batch was being stored. Each task is fenced on its attempt: one
/// that is no longer running at that attempt gets [`StoreError::NotRunning`] in its place
/// of the answer, and the others complete.
pub async fn complete_many(
    pool: &PgPool,
    completions: &[Completion<'_>],
) -> Result<Vec<Result<Settled>>> {
    if completions.is_empty() {
        return Ok(Vec::new());
    }
    let mut projects: Vec<Uuid> = completions.iter().map(|c| c.project_id).collect();
    projects.sort_unstable();
    projects.dedup();

    let mut tx = pool.begin().await?;
    // Event order: the projects' locks first, in id order so that batches cannot deadlock.
    sqlx::query("SELECT id FROM projects WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(&projects)
        .execute(&mut *tx)
        .await?;
    // A task the project listed in `options.require_approval` waits for a human with its
    // result stored; its dependents are released when it is approved.
    let rows: Vec<UpdatedRow> = sqlx::query_as(
        "UPDATE tasks t
         SET status = CASE WHEN p.options->'require_approval' ? t.key
                           THEN 'awaiting_approval' ELSE 'completed' END,
             completed_at = CASE WHEN p.options->'require_approval' ? t.key
                                 THEN NULL ELSE now() END,
             result = u.result || jsonb_build_object('findings', u.findings),
             error = NULL, lease_expires_at = NULL
         FROM unnest($1::uuid[], $2::int4[], $3::jsonb[], $4::jsonb[])
              AS u(id, attempt, result, findings), projects p
         WHERE t.id = u.id AND t.status = 'running' AND t.attempt = u.attempt
           AND p.id = t.project_id
         RETURNING t.id, t.key, t.agent, t.status, t.kind, t.priority, t.critical, t.review_round",
    )
    .bind(completions.iter().map(|c| c.task_id).collect::<Vec<_>>())
    .bind(completions.iter().map(|c| c.attempt).collect::<Vec<_>>())
    .bind(
        completions
            .iter()
            .map(|c| c.result.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        completions
            .iter()
            .map(|c| json!(c.findings))
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *tx)
    .await?;
    let updated: HashMap<Uuid, (String, String, bool)> = rows
        .iter()
        .map(|u| {
            (
                u.id,
                (
                    u.key.clone(),
                    u.agent.clone(),
                    u.status == "awaiting_approval",
                ),
            )
        })
        .collect();
    let done: Vec<&Completion<'_>> = completions
        .iter()
        .filter(|c| updated.contains_key(&c.task_id))
        .collect();

    let written = files::write_versions(
        &mut tx,
        &done
            .iter()
            .map(|c| {
                (
                    Writer {
                        project_id: c.project_id,
                        task_id: c.task_id,
                        agent: &updated[&c.task_id].1,
                        attempt: c.attempt,
                    },
                    c.files,
                )
            })
            .collect::<Vec<_>>(),
    )
    .await?;
    let conflicts = files::record_conflicts(&mut tx, &written).await?;
    let written = files::counts(&written);
    let reviews: Vec<CompletedReview<'_>> = completions
        .iter()
        .filter_map(|c| {
            let row = rows.iter().find(|u| u.id == c.task_id)?;
            (row.status == "completed" && !c.findings.is_empty()).then(|| CompletedReview {
                project_id: c.project_id,
                task_id: c.task_id,
                key: &row.key,
                kind: &row.kind,
                priority: row.priority,
                critical: row.critical,
                review_round: row.review_round,
                findings: c.findings,
            })
        })
        .collect();
    let grown = review::start_fix_rounds(&mut tx, &reviews).await?;
    let completed: Vec<Uuid> = done
        .iter()
        .filter(|c| !updated[&c.task_id].2)
        .map(|c| c.task_id)
        .collect();
    let released = release_dependents(&mut tx, &completed).await?;

    let analyses: Vec<(Uuid, &Value)> = done
        .iter()
        .filter_map(|c| c.requirements.map(|r| (c.project_id, r)))
        .collect();
    if !analyses.is_empty() {
        sqlx::query(
            "UPDATE projects p SET requirements = u.requirements
             FROM unnest($1::uuid[], $2::jsonb[]) AS u(id, requirements) WHERE p.id = u.id",
        )
        .bind(analyses.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(
            analyses
                .iter()
                .map(|(_, r)| (*r).clone())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    }

    // A late result (the task was re-queued after its lease expired, or cancelled) is not
    // stored, but its arrival is.
    let mut log: Vec<(Uuid, NewEvent)> = completions
        .iter()
        .filter(|c| !updated.contains_key(&c.task_id))
        .map(|c| (c.project_id, result_dropped(c.task_id, c.attempt)))
        .collect();
    log.extend(grown);
    log.extend(conflicts.iter().map(|c| {
        (
            c.project_id,
            NewEvent {
                task_id: Some(c.task_id),
                kind: "file_conflict",
                data: json!({
                    "path": c.path,
                    "version": c.version,
                    "other_version": c.other_version,
                    "other_task_key": c.other_task_key,
                    "other_agent": c.other_agent,
                    "reason": "written by tasks the graph does not order: both versions are kept",
                }),
            },
        )
    }));
    for c in &done {
        let (key, agent, awaiting_approval) = &updated[&c.task_id];
        let event = |kind, data| {
            (
                c.project_id,
                NewEvent {
                    task_id: Some(c.task_id),
                    kind,
                    data,
                },
            )
        };
        log.push(event(
            if *awaiting_approval {
                "task_awaiting_approval"
            } else {
                "task_completed"
            },
            json!({
                "key": key,
                "agent": agent,
                "attempt": c.attempt,
                "duration_ms": c.duration_ms,
                "files_written": written.get(&c.task_id).copied().unwrap_or(0),
                "released": released.get(&c.task_id).copied().unwrap_or(0),
            }),
        ));
        log.extend(
            c.files
                .iter()
                .filter(|f| f.validation["status"] == "invalid")
                .map(|f| {
                    event(
                        "file_invalid",
                        json!({
                            "path": f.path,
                            "repair_round": f.repair_round,
                            "errors": f.validation["errors"],
                        }),
                    )
                }),
        );
        log.extend(c.rejected_files.iter().map(|r| {
            event(
                "file_rejected",
                json!({"path": r.path, "reason": r.reason, "attempt": c.attempt}),
            )
        }));
        log.extend(
            llm_call_events(c.task_id, c.llm_calls)
                .into_iter()
                .map(|e| (c.project_id, e)),
        );
    }
    events::record_across(&mut tx, &log).await?;
    add_usage(
        &mut tx,
        &done
            .iter()
            .map(|c| (c.project_id, c.task_id, c.llm_calls))
            .collect::<Vec<_>>(),
    )
    .await?;
    end_sessions(
        &mut tx,
        &done
            .iter()
            .filter_map(|c| c.session_id.map(|s| (s, c.duration_ms, true)))
            .collect::<Vec<_>>(),
    )
    .await?;
    let finished = finish_projects_if_done(&mut tx, &projects).await?;
    // Wake the workers even when nothing was released: a claim skips the tasks of a project
    // locked by a settling transaction, and this commit is when they can be claimed.
    notify_ready(&mut tx).await?;
    tx.commit().await?;

    // A project that ended is reported once, with the last of its tasks in the batch.
    let last_of_project: HashMap<Uuid, usize> = completions
        .iter()
        .enumerate()
        .filter(|(_, c)| updated.contains_key(&c.task_id))
        .map(|(i, c)| (c.project_id, i))
        .collect();
    Ok(completions
        .iter()
        .enumerate()
        .map(|(i, c)| match updated.get(&c.task_id) {
            None => Err(StoreError::NotRunning {
                task_id: c.task_id,
                attempt: c.attempt,
            }),
            Some((_, _, awaiting_approval)) => Ok(Settled {
                project_id: c.project_id,
                released: released.get(&c.task_id).copied().unwrap_or(0),
                files_written: written.get(&c.task_id).copied().unwrap_or(0),
                awaiting_approval: *awaiting_approval,
                retrying: false,
                skipped: 0,
                cancelled: 0,
                project_finished: finished
                    .get(&c.project_id)
                    .copied()
                    .filter(|_| last_of_project[&c.project_id] == i),
            }),
        })
        .collect())
}

/// A task `complete_many` completed.
#[derive(sqlx::FromRow)]
struct UpdatedRow {
    id: Uuid,
    key: String,
    agent: String,
    status: String,
    kind: String,
    priority: i16,
    critical: bool,
    review_round: i32,
}

/// Fails a running task's attempt. With attempts left and a retryable error it goes back to
/// `ready` after the delay; otherwise it fails for good, its transitive dependents are
/// skipped, and when it is critical the project fails and its unstarted tasks are cancelled.
pub async fn fail(pool: &PgPool, failure: Failure<'_>) -> Result<Settled> {
    let mut tx = pool.begin().await?;
    crate::projects::lock(&mut tx, failure.project_id).await?;
    let row: Option<(Uuid, String, String, bool, i32)> = sqlx::query_as(
        "SELECT project_id, key, agent, critical, max_attempts FROM tasks
         WHERE id = $1 AND status = 'running' AND attempt = $2
         FOR UPDATE",
    )
    .bind(failure.task_id)
    .bind(failure.attempt)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((project_id, key, agent, critical, max_attempts)) = row else {
        return Err(StoreError::NotRunning {
            task_id: failure.task_id,
            attempt: failure.attempt,
        });
    };
    let retrying = failure.retryable && failure.attempt < max_attempts;
    let mut settled = Settled {
        project_id,
        released: 0,
        files_written: 0,
        awaiting_approval: false,
        retrying,
        skipped: 0,
        cancelled: 0,
        project_finished: None,
    };
    let mut log = llm_call_events(failure.task_id, failure.llm_calls);

    if retrying {
        sqlx::query(
            "UPDATE tasks
             SET status = 'ready', error = $2, lease_expires_at = NULL, worker_id = NULL,
                 run_after = now() + make_interval(secs => $3), queue_at = now() + make_interval(secs => $3),
                 errors = errors || jsonb_build_array(jsonb_build_object(
                     'attempt', $4::int4, 'error', $2::text, 'at', now()))
             WHERE id = $1",
        )
        .bind(failure.task_id)
        .bind(failure.error)
        .bind(failure.retry_delay.as_secs_f64())
        .bind(failure.attempt)
        .execute(&mut *tx)
        .await?;
        log.push(NewEvent {
            task_id: Some(failure.task_id),
            kind: "task_retried",
            data: json!({
                "key": key, "agent": agent, "attempt": failure.attempt, "error": failure.error,
                "retry_in_ms": failure.retry_delay.as_millis() as u64,
                "raw_answer": truncated(failure.raw_answer),
            }),
        });
    } else {
        sqlx::query(
            "UPDATE tasks
             SET status = 'failed', error = $2, lease_expires_at = NULL,
                 errors = errors || jsonb_build_array(jsonb_build_object(
                     'attempt', $3::int4, 'error', $2::text, 'at', now()))
             WHERE id = $1",
        )
        .bind(failure.task_id)
        .bind(failure.error)
        .bind(failure.attempt)
        .execute(&mut *tx)
        .await?;
        log.push(NewEvent {
            task_id: Some(failure.task_id),
            kind: "task_failed",
            data: json!({
                "key": key, "agent": agent, "attempt": failure.attempt, "error": failure.error,
                "critical": critical, "raw_answer": truncated(failure.raw_answer),
            }),
        });
        // The failure's own events come before its consequences (skips, the project's end).
        events::record(&mut tx, project_id, &std::mem::take(&mut log)).await?;
        settled.skipped = skip_downstream(&mut tx, project_id, failure.task_id, &key).await?;
        if failure.stops_project {
            settled.cancelled = fail_project(
                &mut tx,
                project_id,
                &format!("task `{key}` stopped the project: {}", failure.error),
                &format!("cancelled: task `{key}` stopped the project"),
                true,
            )
            .await?;
            settled.project_finished = Some(ProjectStatus::Failed);
        } else if critical {
            settled.cancelled = fail_project(
                &mut tx,
                project_id,
                &format!("critical task `{key}` failed: {}", failure.error),
                &format!("cancelled: critical task `{key}` failed"),
                false,
            )
            .await?;
            settled.project_finished = Some(ProjectStatus::Failed);
        }
    }
    events::record(&mut tx, project_id, &log).await?;
    add_usage(&mut tx, &[(project_id, failure.task_id, failure.llm_calls)]).await?;
    end_sessions(
        &mut tx,
        &failure
            .session_id
            .map(|s| (s, failure.duration_ms, false))
            .into_iter()
            .collect::<Vec<_>>(),
    )
    .await?;
    if !retrying && !critical && !failure.stops_project {
        settled.project_finished = finish_project_if_done(&mut tx, project_id).await?;
    }
    notify_ready(&mut tx).await?; // as in `complete`
    tx.commit().await?;
    Ok(settled)
}

/// Counts the tasks `completed` as completed for each of their dependents and makes those
/// with no pending dependency left `ready`: they queue from now, a second apart within a
/// project (see the scheduling migration). Returns, per completed task, how many of its
/// dependents became ready.
pub(crate) async fn release_dependents(
    conn: &mut PgConnection,
    completed: &[Uuid],
) -> Result<HashMap<Uuid, u64>> {
    if completed.is_empty() {
        return Ok(HashMap::new());
    }
    let released: Vec<(Uuid, i64)> = sqlx::query_as(
        "WITH hits AS (
             SELECT d.task_id AS id, count(*)::int4 AS n
             FROM task_dependencies d WHERE d.depends_on = ANY($1)
             GROUP BY d.task_id
         ), dependents AS (
             SELECT t.id, t.project_id, t.pending_deps, t.priority, t.key, h.n
             FROM hits h JOIN tasks t ON t.id = h.id
             WHERE t.status = 'blocked'
         ), turns AS (
             SELECT id, row_number() OVER (PARTITION BY project_id ORDER BY priority, key) - 1 AS turn
             FROM dependents WHERE pending_deps = n
         ), released AS (
             UPDATE tasks t
             SET pending_deps = t.pending_deps - d.n,
                 status = CASE WHEN t.pending_deps = d.n THEN 'ready' ELSE 'blocked' END,
                 run_after = now(),
                 queue_at = now() + coalesce(turns.turn, 0) * interval '1 second'
             FROM dependents d LEFT JOIN turns ON turns.id = d.id
             WHERE t.id = d.id
             RETURNING t.id, t.status
         )
         SELECT e.depends_on, count(*)
         FROM released r JOIN task_dependencies e ON e.task_id = r.id
         WHERE r.status = 'ready' AND e.depends_on = ANY($1)
         GROUP BY e.depends_on",
    )
    .bind(completed)
    .fetch_all(&mut *conn)
    .await?;
    Ok(released.into_iter().map(|(id, n)| (id, n as u64)).collect())
}

/// Records that a worker's late failure of `task_id` at `attempt` was refused by the fence
/// (a late success is recorded by [`complete_many`] itself).
pub async fn record_dropped_result(
    pool: &PgPool,
    project_id: Uuid,
    task_id: Uuid,
    attempt: i32,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    crate::projects::lock(&mut tx, project_id).await?;
    events::record(&mut tx, project_id, &[result_dropped(task_id, attempt)]).await?;
    tx.commit().await?;
    Ok(())
}

/// The event of a late result: the task is no longer running at `attempt`.
fn result_dropped(task_id: Uuid, attempt: i32) -> NewEvent {
    NewEvent {
        task_id: Some(task_id),
        kind: "result_dropped",
        data: json!({
            "attempt": attempt,
            "reason": "the task was no longer running at this attempt (its lease expired or it was cancelled)",
        }),
    }
}

fn llm_call_events(task_id: Uuid, calls: &[LlmCall]) -> Vec<NewEvent> {
    calls
        .iter()
        .map(|call| NewEvent {
            task_id: Some(task_id),
            kind: "llm_call",
            data: json!({
                "provider": call.provider,
                "model": call.model,
                "prompt_tokens": call.prompt_tokens,
                "completion_tokens": call.completion_tokens,
                "latency_ms": call.latency_ms,
                "cost_usd": call.cost_usd,
                "cached": call.cached,
                "prompt_version": call.prompt_version,
            }),
        })
        .collect()
}

/// Adds the calls' tokens, cost, count and cache hits to their tasks' and projects'
/// totals, and clears the tasks' budget reservations (the totals now hold what they
/// stood for). One unknown cost makes a total unknown: a partial sum would understate what
/// was spent.
async fn add_usage(conn: &mut PgConnection, calls: &[(Uuid, Uuid, &[LlmCall])]) -> Result<()> {
    let calls: Vec<_> = calls.iter().filter(|(_, _, c)| !c.is_empty()).collect();
    if calls.is_empty() {
        return Ok(());
    }
    let totals: Vec<Usage> = calls.iter().map(|(_, _, c)| Usage::of(c)).collect();
    sqlx::query(
        "WITH u AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::int8[], $5::float8[],
                                  $6::int4[], $7::int4[])
                 AS u(project_id, task_id, prompt, completion, cost, calls, hits)
         ), per_task AS (
             UPDATE tasks t
             SET prompt_tokens = t.prompt_tokens + u.prompt,
                 completion_tokens = t.completion_tokens + u.completion,
                 cost_usd = t.cost_usd + u.cost::numeric,
                 llm_calls = t.llm_calls + u.calls,
                 cache_hits = t.cache_hits + u.hits,
                 reserved_tokens = 0, reserved_cost_usd = 0
             FROM u WHERE t.id = u.task_id
         ), per_project AS (
             SELECT project_id, sum(prompt) AS prompt, sum(completion) AS completion,
                    CASE WHEN bool_and(cost IS NOT NULL) THEN sum(cost) END AS cost,
                    sum(calls) AS calls, sum(hits) AS hits
             FROM u GROUP BY project_id
         )
         UPDATE projects p
         SET prompt_tokens = p.prompt_tokens + pp.prompt,
             completion_tokens = p.completion_tokens + pp.completion,
             cost_usd = p.cost_usd + pp.cost::numeric,
             llm_calls = p.llm_calls + pp.calls,
             cache_hits = p.cache_hits + pp.hits
         FROM per_project pp WHERE p.id = pp.project_id",
    )
    .bind(calls.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.1).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.prompt).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.completion).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.cost).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.calls).collect::<Vec<_>>())
    .bind(totals.iter().map(|t| t.hits).collect::<Vec<_>>())
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
}

impl Usage {
    fn of(calls: &[LlmCall]) -> Self {
        Self {
            prompt: calls.iter().map(|c| c.prompt_tokens).sum(),
            completion: calls.iter().map(|c| c.completion_tokens).sum(),
            cost: calls.iter().map(|c| c.cost_usd).sum(),
            calls: calls.len() as i32,
            hits: calls.iter().filter(|c| c.cached).count() as i32,
        }
    }
}

/// Ends the sessions' current tasks: `(session, busy ms, completed)`.
async fn end_sessions(conn: &mut PgConnection, ended: &[(Uuid, i64, bool)]) -> Result<()> {
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

/// Skips every task downstream of `task_id` that has not started. Returns how many.
async fn skip_downstream(
    conn: &mut PgConnection,
    project_id: Uuid,
    task_id: Uuid,
    key: &str,
) -> Result<u64> {
    let (skipped,): (i64,) = sqlx::query_as(
        "WITH RECURSIVE downstream AS (
             SELECT task_id AS id FROM task_dependencies WHERE depends_on = $2
             UNION
             SELECT d.task_id FROM task_dependencies d JOIN downstream ds ON d.depends_on = ds.id
         ), skipped AS (
             UPDATE tasks SET status = 'skipped', error = $3
             WHERE id IN (SELECT id FROM downstream) AND status IN ('blocked', 'ready')
             RETURNING id, key
         ), logged AS (
             INSERT INTO events (project_id, task_id, kind, data)
             SELECT $1, id, 'task_skipped', jsonb_build_object('key', key, 'because', $4::text)
             FROM skipped
         )
         SELECT count(*) FROM skipped",
    )
    .bind(project_id)
    .bind(task_id)
    .bind(format!("skipped: upstream task `{key}` failed"))
    .bind(key)
    .fetch_one(conn)
    .await?;
    Ok(skipped as u64)
}

/// Fails the project with `error` and cancels its unstarted tasks, and its running ones
/// too when `running_too` (their workers stop them at their next heartbeat). Returns how
/// many were cancelled.
async fn fail_project(
    conn: &mut PgConnection,
    project_id: Uuid,
    error: &str,
    cancel_reason: &str,
    running_too: bool,
) -> Result<u64> {
    let (cancelled,): (i64,) = sqlx::query_as(
        "WITH failed AS (
             UPDATE projects SET status = 'failed', finished_at = now(), error = $2
             WHERE id = $1 AND status IN ('pending', 'running')
             RETURNING id
         ), cancelled AS (
             UPDATE tasks SET status = 'cancelled', error = $3, lease_expires_at = NULL
             WHERE project_id = $1
               AND (status IN ('blocked', 'ready')
                    OR ($4 AND status IN ('running', 'awaiting_approval')))
             RETURNING id
         ), logged AS (
             INSERT INTO events (project_id, kind, data)
             SELECT id, 'project_failed', jsonb_build_object('error', $2::text) FROM failed
         )
         SELECT count(*) FROM cancelled",
    )
    .bind(project_id)
    .bind(error)
    .bind(cancel_reason)
    .bind(running_too)
    .fetch_one(conn)
    .await?;
    Ok(cancelled as u64)
}

/// Ends each of `projects` whose tasks can no longer run: `completed` when every task
/// completed, `failed` (naming what did not) otherwise. Returns the projects it ended.
pub(crate) async fn finish_projects_if_done(
    conn: &mut PgConnection,
    projects: &[Uuid],
) -> Result<HashMap<Uuid, ProjectStatus>> {
    let finished: Vec<(Uuid, String)> = sqlx::query_as(
        "WITH counts AS (
             SELECT project_id,
                    count(*) FILTER (WHERE status IN ('blocked', 'ready', 'running',
                                                      'awaiting_approval')) AS open,
                    count(*) FILTER (WHERE status <> 'completed') AS incomplete,
                    count(*) FILTER (WHERE status = 'failed') AS failed,
                    count(*) FILTER (WHERE status = 'skipped') AS skipped,
                    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                    count(*) AS total
             FROM tasks WHERE project_id = ANY($1)
             GROUP BY project_id
         ), finished AS (
             UPDATE projects p
             SET status = CASE WHEN c.incomplete = 0 THEN 'completed' ELSE 'failed' END,
                 finished_at = now(),
                 error = CASE WHEN c.incomplete = 0 THEN NULL
                              ELSE format('%s of %s tasks did not complete: %s failed, %s skipped, %s cancelled',
                                          c.incomplete, c.total, c.failed, c.skipped, c.cancelled)
                         END
             FROM counts c
             WHERE p.id = c.project_id AND p.status IN ('pending', 'running') AND c.open = 0
             RETURNING p.id, p.status, p.error
         ), logged AS (
             INSERT INTO events (project_id, kind, data)
             SELECT id, 'project_' || status, jsonb_build_object('error', error)
             FROM finished ORDER BY id
         )
         SELECT id, status FROM finished",
    )
    .bind(projects)
    .fetch_all(conn)
    .await?;
    finished
        .into_iter()
        .map(|(id, status)| Ok((id, parse(&status)?)))
        .collect()
}

/// [`finish_projects_if_done`] for one project.
pub(crate) async fn finish_project_if_done(
    conn: &mut PgConnection,
    project_id: Uuid,
) -> Result<Option<ProjectStatus>> {
    Ok(finish_projects_if_done(conn, &[project_id])
        .await?
        .remove(&project_id))
}
