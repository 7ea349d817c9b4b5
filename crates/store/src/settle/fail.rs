//! Failing an attempt: a retry after its backoff, or a failure for good with its
//! consequences (dependents skipped, the project failed when the task is critical or
//! stops it).

use guild_core::{AgentKind, EventKind, ProjectId, ProjectStatus, TaskId};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use super::accounting::{self, UsageRow};
use super::release::finish_project_if_done;
use super::{Failure, Settled, truncated};
use crate::events::{self, NewEvent};
use crate::listener::notify_ready;
use crate::text::storable_str;
use crate::{Result, StoreError};

/// The running task a failure is about, locked.
#[derive(sqlx::FromRow)]
struct Failing {
    project_id: ProjectId,
    key: String,
    agent: AgentKind,
    critical: bool,
    max_attempts: i32,
}

/// Fails a running task's attempt. With attempts left and a retryable error it goes back to
/// `ready` after the delay; otherwise it fails for good, its transitive dependents are
/// skipped, and when it is critical the project fails and its unstarted tasks are cancelled.
///
/// # Errors
///
/// [`StoreError::NotRunning`] when the task is no longer running at this attempt (another
/// worker recovered it, or it was cancelled); a database error otherwise.
#[tracing::instrument(skip_all, fields(task_id = %failure.task_id, attempt = failure.attempt, retryable = failure.retryable), err(level = "debug"))]
pub async fn fail(pool: &PgPool, failure: Failure<'_>) -> Result<Settled> {
    let mut tx = pool.begin().await?;
    crate::locks::lock_project(&mut tx, failure.project_id).await?;
    let task: Option<Failing> = sqlx::query_as(
        "SELECT project_id, key, agent, critical, max_attempts FROM tasks
         WHERE id = $1 AND status = 'running' AND attempt = $2
         FOR UPDATE",
    )
    .bind(failure.task_id)
    .bind(failure.attempt)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(task) = task else {
        return Err(StoreError::NotRunning {
            task_id: failure.task_id,
            attempt: failure.attempt,
        });
    };
    let error = storable_str(failure.error);
    let retrying = failure.retryable && failure.attempt < task.max_attempts;
    let mut settled = Settled {
        retrying,
        ..Settled::nothing(task.project_id)
    };
    let mut log = accounting::llm_call_events(failure.task_id, failure.llm_calls);
    if retrying {
        requeue(&mut tx, &failure, &error).await?;
        log.push(attempt_event(
            EventKind::TaskRetried,
            &task,
            &failure,
            &error,
        ));
    } else {
        mark_failed(&mut tx, &failure, &error).await?;
        log.push(attempt_event(
            EventKind::TaskFailed,
            &task,
            &failure,
            &error,
        ));
        // The failure's own events come before its consequences (skips, the project's end).
        events::record(&mut tx, task.project_id, &std::mem::take(&mut log)).await?;
        settled.skipped =
            skip_downstream(&mut tx, task.project_id, failure.task_id, &task.key).await?;
        settled.cancelled = stop_project_if_needed(&mut tx, &task, &failure, &error).await?;
        if failure.stops_project || task.critical {
            settled.project_finished = Some(ProjectStatus::Failed);
        }
    }
    events::record(&mut tx, task.project_id, &log).await?;
    accounting::add_usage(
        &mut tx,
        &[UsageRow {
            project_id: task.project_id,
            task_id: failure.task_id,
            calls: failure.llm_calls,
            settles_attempt: true,
        }],
    )
    .await?;
    let session = failure.session_id.map(|s| (s, failure.duration_ms, false));
    accounting::end_sessions(&mut tx, session.as_slice()).await?;
    if !retrying && !task.critical && !failure.stops_project {
        settled.project_finished = finish_project_if_done(&mut tx, task.project_id).await?;
    }
    notify_ready(&mut tx).await?; // as in `complete`
    tx.commit().await?;
    Ok(settled)
}

/// `task_retried` or `task_failed`, with the attempt's error and the model's last answer.
fn attempt_event(kind: EventKind, task: &Failing, failure: &Failure<'_>, error: &str) -> NewEvent {
    let mut data = json!({
        "key": task.key, "agent": task.agent, "attempt": failure.attempt, "error": error,
        "raw_answer": truncated(failure.raw_answer),
    });
    if kind == EventKind::TaskRetried {
        data["retry_in_ms"] =
            json!(u64::try_from(failure.retry_delay.as_millis()).unwrap_or(u64::MAX));
    } else {
        data["critical"] = json!(task.critical);
    }
    NewEvent::of_task(failure.task_id, kind, data)
}

/// Puts the task back in the queue after the failure's delay.
async fn requeue(conn: &mut PgConnection, failure: &Failure<'_>, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE tasks
         SET status = 'ready', error = $2, lease_expires_at = NULL, worker_id = NULL,
             run_after = now() + make_interval(secs => $3), queue_at = now() + make_interval(secs => $3),
             errors = errors || jsonb_build_array(jsonb_build_object(
                 'attempt', $4::int4, 'error', $2::text, 'at', now()))
         WHERE id = $1",
    )
    .bind(failure.task_id)
    .bind(error)
    .bind(failure.retry_delay.as_secs_f64())
    .bind(failure.attempt)
    .execute(conn)
    .await?;
    Ok(())
}

/// Fails the task for good.
async fn mark_failed(conn: &mut PgConnection, failure: &Failure<'_>, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE tasks
         SET status = 'failed', error = $2, lease_expires_at = NULL,
             errors = errors || jsonb_build_array(jsonb_build_object(
                 'attempt', $3::int4, 'error', $2::text, 'at', now()))
         WHERE id = $1",
    )
    .bind(failure.task_id)
    .bind(error)
    .bind(failure.attempt)
    .execute(conn)
    .await?;
    Ok(())
}

/// Fails the project when the failed task stops it (its budget) or is critical. Returns
/// how many tasks were cancelled.
async fn stop_project_if_needed(
    conn: &mut PgConnection,
    task: &Failing,
    failure: &Failure<'_>,
    error: &str,
) -> Result<u64> {
    let key = &task.key;
    if failure.stops_project {
        fail_project(
            conn,
            task.project_id,
            &format!("task `{key}` stopped the project: {error}"),
            &format!("cancelled: task `{key}` stopped the project"),
            true,
        )
        .await
    } else if task.critical {
        fail_project(
            conn,
            task.project_id,
            &format!("critical task `{key}` failed: {error}"),
            &format!("cancelled: critical task `{key}` failed"),
            false,
        )
        .await
    } else {
        Ok(0)
    }
}

/// Skips every task downstream of `task_id` that has not started. Returns how many.
async fn skip_downstream(
    conn: &mut PgConnection,
    project_id: ProjectId,
    task_id: TaskId,
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
             SELECT $1, id, $5, jsonb_build_object('key', key, 'because', $4::text)
             FROM skipped
         )
         SELECT count(*) FROM skipped",
    )
    .bind(project_id)
    .bind(task_id)
    .bind(format!("skipped: upstream task `{key}` failed"))
    .bind(key)
    .bind(EventKind::TaskSkipped)
    .fetch_one(conn)
    .await?;
    Ok(skipped.unsigned_abs())
}
/// Fails the project with `error` and cancels its unstarted tasks, and its running ones
/// too when `running_too` (their workers stop them at their next heartbeat). Returns how
/// many were cancelled.
async fn fail_project(
    conn: &mut PgConnection,
    project_id: ProjectId,
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
             SELECT id, $5, jsonb_build_object('error', $2::text) FROM failed
         )
         SELECT count(*) FROM cancelled",
    )
    .bind(project_id)
    .bind(error)
    .bind(cancel_reason)
    .bind(running_too)
    .bind(EventKind::ProjectFailed)
    .fetch_one(conn)
    .await?;
    Ok(cancelled.unsigned_abs())
}
