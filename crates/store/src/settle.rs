//! Settling a claimed task: completing it or failing it, with everything that follows, in
//! one transaction.
//!
//! Both are fenced: they apply only while the task is still `running` at the attempt the
//! worker claimed, so a late result can never overwrite a newer attempt.

use std::time::Duration;

use guild_core::ProjectStatus;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::events::{self, NewEvent};
use crate::files::{self, NewFile, Writer};
use crate::listener::notify_ready;
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
/// when nothing is left to run.
pub async fn complete(pool: &PgPool, completion: Completion<'_>) -> Result<Settled> {
    let mut tx = pool.begin().await?;
    crate::projects::lock(&mut tx, completion.project_id).await?;
    // A task the project listed in `options.require_approval` waits for a human with its
    // result stored; its dependents are released when it is approved.
    let row: Option<(Uuid, String, String, String)> = sqlx::query_as(
        "UPDATE tasks t
         SET status = CASE WHEN p.options->'require_approval' ? t.key
                           THEN 'awaiting_approval' ELSE 'completed' END,
             completed_at = CASE WHEN p.options->'require_approval' ? t.key
                                 THEN NULL ELSE now() END,
             result = $3, error = NULL, lease_expires_at = NULL
         FROM projects p
         WHERE t.id = $1 AND t.status = 'running' AND t.attempt = $2 AND p.id = t.project_id
         RETURNING t.project_id, t.key, t.agent, t.status",
    )
    .bind(completion.task_id)
    .bind(completion.attempt)
    .bind(&completion.result)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((project_id, key, agent, status)) = row else {
        return Err(StoreError::NotRunning {
            task_id: completion.task_id,
            attempt: completion.attempt,
        });
    };
    let awaiting_approval = status == "awaiting_approval";

    let files_written = files::write_versions(
        &mut tx,
        Writer {
            project_id,
            task_id: completion.task_id,
            agent: &agent,
            attempt: completion.attempt,
        },
        completion.files,
    )
    .await?;

    let released = if awaiting_approval {
        0
    } else {
        release_dependents(&mut tx, completion.task_id).await?
    };

    if let Some(requirements) = completion.requirements {
        sqlx::query("UPDATE projects SET requirements = $2 WHERE id = $1")
            .bind(project_id)
            .bind(requirements)
            .execute(&mut *tx)
            .await?;
    }

    let mut log = vec![NewEvent {
        task_id: Some(completion.task_id),
        kind: if awaiting_approval {
            "task_awaiting_approval"
        } else {
            "task_completed"
        },
        data: json!({
            "key": key,
            "agent": agent,
            "attempt": completion.attempt,
            "duration_ms": completion.duration_ms,
            "files_written": files_written,
            "released": released,
        }),
    }];
    log.extend(completion.rejected_files.iter().map(|r| NewEvent {
        task_id: Some(completion.task_id),
        kind: "file_rejected",
        data: json!({"path": r.path, "reason": r.reason, "attempt": completion.attempt}),
    }));
    log.extend(llm_call_events(completion.task_id, completion.llm_calls));
    events::record(&mut tx, project_id, &log).await?;
    add_usage(&mut tx, project_id, completion.llm_calls).await?;
    end_session(&mut tx, completion.session_id, completion.duration_ms, true).await?;
    let project_finished = finish_project_if_done(&mut tx, project_id).await?;
    // Wake the workers even when nothing was released: a claim skips the tasks of a project
    // locked by a settling transaction, and this commit is when they can be claimed.
    notify_ready(&mut tx).await?;
    tx.commit().await?;

    Ok(Settled {
        project_id,
        released,
        files_written,
        awaiting_approval,
        retrying: false,
        skipped: 0,
        cancelled: 0,
        project_finished,
    })
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
        if critical {
            settled.cancelled = fail_project(&mut tx, project_id, &key, failure.error).await?;
            settled.project_finished = Some(ProjectStatus::Failed);
        }
    }
    events::record(&mut tx, project_id, &log).await?;
    add_usage(&mut tx, project_id, failure.llm_calls).await?;
    end_session(&mut tx, failure.session_id, failure.duration_ms, false).await?;
    if !retrying && !critical {
        settled.project_finished = finish_project_if_done(&mut tx, project_id).await?;
    }
    notify_ready(&mut tx).await?; // as in `complete`
    tx.commit().await?;
    Ok(settled)
}

/// Counts `task_id` as completed for each dependent and makes those with no pending
/// dependency `ready`: they queue from now, a second apart (see the scheduling migration).
/// Returns how many became ready.
pub(crate) async fn release_dependents(conn: &mut PgConnection, task_id: Uuid) -> Result<u64> {
    let (released,): (i64,) = sqlx::query_as(
        "WITH dependents AS (
             SELECT t.id, t.pending_deps, t.priority, t.key
             FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
             WHERE d.depends_on = $1 AND t.status = 'blocked'
         ), turns AS (
             SELECT id, row_number() OVER (ORDER BY priority, key) - 1 AS turn
             FROM dependents WHERE pending_deps = 1
         ), released AS (
             UPDATE tasks t
             SET pending_deps = t.pending_deps - 1,
                 status = CASE WHEN t.pending_deps = 1 THEN 'ready' ELSE 'blocked' END,
                 run_after = now(),
                 queue_at = now() + coalesce(turns.turn, 0) * interval '1 second'
             FROM dependents LEFT JOIN turns ON turns.id = dependents.id
             WHERE t.id = dependents.id
             RETURNING t.status
         )
         SELECT count(*) FILTER (WHERE status = 'ready') FROM released",
    )
    .bind(task_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(released as u64)
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
            }),
        })
        .collect()
}

/// Adds the calls' tokens and cost to the project's totals. One unknown cost makes the
/// total unknown: a partial sum would understate what was spent.
async fn add_usage(conn: &mut PgConnection, project_id: Uuid, calls: &[LlmCall]) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let prompt: i64 = calls.iter().map(|c| c.prompt_tokens).sum();
    let completion: i64 = calls.iter().map(|c| c.completion_tokens).sum();
    let cost: Option<f64> = calls.iter().map(|c| c.cost_usd).sum();
    sqlx::query(
        "UPDATE projects
         SET prompt_tokens = prompt_tokens + $2,
             completion_tokens = completion_tokens + $3,
             cost_usd = CASE WHEN $4::float8 IS NULL THEN NULL
                             ELSE coalesce(cost_usd, 0) + $4::float8::numeric END
         WHERE id = $1",
    )
    .bind(project_id)
    .bind(prompt)
    .bind(completion)
    .bind(cost)
    .execute(conn)
    .await?;
    Ok(())
}

async fn end_session(
    conn: &mut PgConnection,
    session_id: Option<Uuid>,
    duration_ms: i64,
    completed: bool,
) -> Result<()> {
    let Some(session_id) = session_id else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE agent_sessions
         SET current_task_id = NULL, last_activity_at = now(), busy_ms = busy_ms + $2,
             tasks_completed = tasks_completed + CASE WHEN $3 THEN 1 ELSE 0 END,
             tasks_failed = tasks_failed + CASE WHEN $3 THEN 0 ELSE 1 END
         WHERE id = $1",
    )
    .bind(session_id)
    .bind(duration_ms.max(0))
    .bind(completed)
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

/// Fails the project because critical task `key` failed, and cancels its unstarted tasks.
/// Returns how many were cancelled.
async fn fail_project(
    conn: &mut PgConnection,
    project_id: Uuid,
    key: &str,
    error: &str,
) -> Result<u64> {
    let (cancelled,): (i64,) = sqlx::query_as(
        "WITH failed AS (
             UPDATE projects SET status = 'failed', finished_at = now(), error = $2
             WHERE id = $1 AND status IN ('pending', 'running')
             RETURNING id
         ), cancelled AS (
             UPDATE tasks SET status = 'cancelled', error = $3
             WHERE project_id = $1 AND status IN ('blocked', 'ready')
             RETURNING id
         ), logged AS (
             INSERT INTO events (project_id, kind, data)
             SELECT id, 'project_failed', jsonb_build_object('error', $2::text) FROM failed
         )
         SELECT count(*) FROM cancelled",
    )
    .bind(project_id)
    .bind(format!("critical task `{key}` failed: {error}"))
    .bind(format!("cancelled: critical task `{key}` failed"))
    .fetch_one(conn)
    .await?;
    Ok(cancelled as u64)
}

/// Ends the project when none of its tasks can still run: `completed` when every task
/// completed, `failed` (naming what did not) otherwise.
pub(crate) async fn finish_project_if_done(
    conn: &mut PgConnection,
    project_id: Uuid,
) -> Result<Option<ProjectStatus>> {
    let status: Option<(String,)> = sqlx::query_as(
        "WITH counts AS (
             SELECT count(*) FILTER (WHERE status IN ('blocked', 'ready', 'running',
                                                      'awaiting_approval')) AS open,
                    count(*) FILTER (WHERE status <> 'completed') AS incomplete,
                    count(*) FILTER (WHERE status = 'failed') AS failed,
                    count(*) FILTER (WHERE status = 'skipped') AS skipped,
                    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                    count(*) AS total
             FROM tasks WHERE project_id = $1
         ), finished AS (
             UPDATE projects p
             SET status = CASE WHEN c.incomplete = 0 THEN 'completed' ELSE 'failed' END,
                 finished_at = now(),
                 error = CASE WHEN c.incomplete = 0 THEN NULL
                              ELSE format('%s of %s tasks did not complete: %s failed, %s skipped, %s cancelled',
                                          c.incomplete, c.total, c.failed, c.skipped, c.cancelled)
                         END
             FROM counts c
             WHERE p.id = $1 AND p.status IN ('pending', 'running') AND c.open = 0
             RETURNING p.id, p.status, p.error
         ), logged AS (
             INSERT INTO events (project_id, kind, data)
             SELECT id, 'project_' || status, jsonb_build_object('error', error) FROM finished
         )
         SELECT status FROM finished",
    )
    .bind(project_id)
    .fetch_optional(conn)
    .await?;
    status.map(|(s,)| parse(&s)).transpose()
}
