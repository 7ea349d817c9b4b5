//! Human oversight: approving or rejecting a task waiting at its gate, and retrying a task
//! that failed, was skipped or was cancelled. Each is one transaction.

use guild_core::{EventKind, Finding, ProjectId, ProjectStatus, TaskId, TaskStatus};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::events::{self, NewEvent};
use crate::listener::notify_ready;
use crate::locks::lock_project;
use crate::review::{self, CompletedReview};
use crate::settle::{Settled, finish_project_if_done, release_dependents};
use crate::{Result, StoreError};

/// Locks a task of a project and returns its key and status.
async fn lock_task(
    conn: &mut PgConnection,
    project_id: ProjectId,
    task_id: TaskId,
) -> Result<(String, TaskStatus)> {
    let row: Option<(String, TaskStatus)> = sqlx::query_as(
        "SELECT key, status FROM tasks WHERE id = $1 AND project_id = $2 FOR UPDATE",
    )
    .bind(task_id)
    .bind(project_id)
    .fetch_optional(conn)
    .await?;
    row.ok_or(StoreError::NotFound("task"))
}

/// Begins a review of a task waiting at its gate: locks its project, then the task, and
/// returns the transaction and the task's key, or a conflict if it is not waiting.
async fn begin_review(
    pool: &PgPool,
    project_id: ProjectId,
    task_id: TaskId,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, String)> {
    let mut tx = pool.begin().await?;
    lock_project(&mut tx, project_id).await?;
    let (key, status) = lock_task(&mut tx, project_id, task_id).await?;
    if status != TaskStatus::AwaitingApproval {
        return Err(StoreError::Conflict(format!(
            "task `{key}` is {status}, not awaiting approval"
        )));
    }
    Ok((tx, key))
}

/// Approves a task waiting at its gate: it completes and its dependents are released. An
/// approved review with blocking findings starts its fix round now, as it would have
/// without the gate.
///
/// # Errors
///
/// [`StoreError::NotFound`] for an unknown project or task; [`StoreError::Conflict`]
/// when the task is not awaiting approval; a database error otherwise.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn approve(pool: &PgPool, project_id: ProjectId, task_id: TaskId) -> Result<Settled> {
    let (mut tx, key) = begin_review(pool, project_id, task_id).await?;
    let (kind, priority, critical, review_round, findings): (
        String,
        i16,
        bool,
        i32,
        Option<sqlx::types::Json<Vec<Finding>>>,
    ) = sqlx::query_as(
        "UPDATE tasks SET status = 'completed', completed_at = now() WHERE id = $1
         RETURNING kind, priority, critical, review_round,
                   CASE WHEN jsonb_typeof(result->'findings') = 'array' THEN result->'findings' END",
    )
    .bind(task_id)
    .fetch_one(&mut *tx)
    .await?;
    let findings = findings.map(|f| f.0).unwrap_or_default();
    let grown = review::start_fix_rounds(
        &mut tx,
        &[CompletedReview {
            project_id,
            task_id,
            key: &key,
            kind: &kind,
            priority,
            critical,
            review_round,
            findings: &findings,
        }],
    )
    .await?;
    let released = release_dependents(&mut tx, &[task_id])
        .await?
        .remove(&task_id)
        .unwrap_or(0);
    let mut log = vec![NewEvent::of_task(
        task_id,
        EventKind::ApprovalGiven,
        json!({"key": key, "released": released}),
    )];
    log.extend(grown.into_iter().map(|(_, event)| event));
    events::record(&mut tx, project_id, &log).await?;
    let project_finished = finish_project_if_done(&mut tx, project_id).await?;
    notify_ready(&mut tx).await?;
    tx.commit().await?;
    Ok(Settled {
        released,
        project_finished,
        ..Settled::nothing(project_id)
    })
}

/// Rejects a task waiting at its gate: it runs again with `feedback` in its prompt. The
/// re-run does not use up one of its attempts.
///
/// # Errors
///
/// As [`approve`].
#[tracing::instrument(skip(pool, feedback), err(level = "debug"))]
pub async fn reject(
    pool: &PgPool,
    project_id: ProjectId,
    task_id: TaskId,
    feedback: &str,
) -> Result<()> {
    let (mut tx, key) = begin_review(pool, project_id, task_id).await?;
    sqlx::query(
        "UPDATE tasks
         SET status = 'ready', feedback = $2, result = NULL, run_after = now(),
             worker_id = NULL, max_attempts = max_attempts + 1
         WHERE id = $1",
    )
    .bind(task_id)
    .bind(feedback)
    .execute(&mut *tx)
    .await?;
    events::record(
        &mut tx,
        project_id,
        &[NewEvent::of_task(
            task_id,
            EventKind::ApprovalRejected,
            json!({"key": key, "feedback": feedback}),
        )],
    )
    .await?;
    notify_ready(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Re-runs a failed, skipped or cancelled task with a fresh budget of attempts. Its skipped
/// or cancelled dependents are re-opened, and so, when the project had failed, are the
/// tasks its failure cancelled; the project runs again.
///
/// # Errors
///
/// [`StoreError::NotFound`] for an unknown project or task; [`StoreError::Conflict`]
/// when the task did not fail, skip or get cancelled; a database error otherwise.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn retry(pool: &PgPool, project_id: ProjectId, task_id: TaskId) -> Result<()> {
    let mut tx = pool.begin().await?;
    let project_status = lock_project(&mut tx, project_id).await?;
    let (key, status) = lock_task(&mut tx, project_id, task_id).await?;
    let (task_revision, project_revision): (i32, i32) = sqlx::query_as(
        "SELECT t.revision, p.revision FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.id = $1",
    )
    .bind(task_id)
    .fetch_one(&mut *tx)
    .await?;
    if task_revision != project_revision {
        return Err(StoreError::Conflict(format!(
            "task `{key}` belongs to revision {task_revision}; the project is at revision {project_revision}, and earlier revisions' tasks never run again"
        )));
    }
    if !matches!(
        status,
        TaskStatus::Failed | TaskStatus::Skipped | TaskStatus::Cancelled
    ) {
        return Err(StoreError::Conflict(format!(
            "task `{key}` is {status}: only failed, skipped or cancelled tasks can be retried"
        )));
    }
    let (reopened,): (i64,) = sqlx::query_as(
        "WITH RECURSIVE downstream AS (
             SELECT task_id AS id FROM task_dependencies WHERE depends_on = $1
             UNION
             SELECT d.task_id FROM task_dependencies d JOIN downstream ds ON d.depends_on = ds.id
         ), reopen AS (
             SELECT id FROM tasks WHERE id = $1
             UNION
             SELECT t.id FROM tasks t JOIN downstream ds ON ds.id = t.id
             WHERE t.status IN ('skipped', 'cancelled')
             UNION
             SELECT id FROM tasks WHERE project_id = $2 AND status = 'cancelled' AND $3
                 AND revision = (SELECT revision FROM projects WHERE id = $2)
         ), pending AS (
             SELECT r.id, (SELECT count(*) FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on
                           WHERE d.task_id = r.id AND dep.status <> 'completed')::int AS n
             FROM reopen r
         ), reopened AS (
             UPDATE tasks t
             SET status = CASE WHEN p.n = 0 THEN 'ready' ELSE 'blocked' END,
                 pending_deps = p.n, error = NULL, result = NULL, run_after = now(),
                 worker_id = NULL, lease_expires_at = NULL,
                 max_attempts = t.attempt + (SELECT max_attempts FROM projects WHERE id = $2)
             FROM pending p WHERE t.id = p.id
             RETURNING t.id
         )
         SELECT count(*) FROM reopened",
    )
    .bind(task_id)
    .bind(project_id)
    .bind(project_status == ProjectStatus::Failed)
    .fetch_one(&mut *tx)
    .await?;
    if project_status.is_finished() {
        sqlx::query("UPDATE projects SET status = 'running', finished_at = NULL, error = NULL WHERE id = $1")
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
    }
    events::record(
        &mut tx,
        project_id,
        &[NewEvent::of_task(
            task_id,
            EventKind::TaskRetryRequested,
            json!({"key": key, "reopened": reopened}),
        )],
    )
    .await?;
    notify_ready(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}
