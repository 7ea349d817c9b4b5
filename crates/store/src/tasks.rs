//! Tasks: claiming ready ones, reading a task's context, listing a project's graph.

use std::time::Duration;

use chrono::{DateTime, Utc};
use guild_core::{AgentKind, ProjectType, TaskStatus};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Result, StoreError, parse};

/// A task a worker has claimed: it is `running` at `attempt` under the worker's lease.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub id: Uuid,
    pub project_id: Uuid,
    pub key: String,
    pub kind: String,
    pub agent: AgentKind,
    pub description: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub critical: bool,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: Uuid,
    project_id: Uuid,
    key: String,
    kind: String,
    agent: String,
    description: String,
    attempt: i32,
    max_attempts: i32,
    critical: bool,
}

impl TryFrom<ClaimedRow> for ClaimedTask {
    type Error = StoreError;

    fn try_from(row: ClaimedRow) -> Result<Self> {
        Ok(Self {
            id: row.id,
            project_id: row.project_id,
            key: row.key,
            kind: row.kind,
            agent: parse(&row.agent)?,
            description: row.description,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
            critical: row.critical,
        })
    }
}

/// Claims up to `limit` ready tasks, best priority first, for `worker_id`, with a lease of
/// `lease`. Tasks locked by another claimer are skipped, so two claimers never get the same
/// task. Then, under the projects' locks (see [`crate::projects::lock`]), marks their
/// projects running and records `task_claimed`.
pub async fn claim_ready(
    pool: &PgPool,
    worker_id: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<ClaimedTask>> {
    let rows = sqlx::query_as::<_, ClaimedRow>(
        "WITH picked AS (
             SELECT id FROM tasks
             WHERE status = 'ready' AND run_after <= now()
             ORDER BY priority, created_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED
         ), claimed AS (
             UPDATE tasks t
             SET status = 'running', attempt = t.attempt + 1, worker_id = $2,
                 started_at = now(), lease_expires_at = now() + make_interval(secs => $3)
             FROM picked WHERE t.id = picked.id
             RETURNING t.id, t.project_id, t.key, t.kind, t.agent, t.description, t.attempt,
                       t.max_attempts, t.critical
         )
         SELECT * FROM claimed",
    )
    .bind(limit)
    .bind(worker_id)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    if !rows.is_empty() {
        record_claims(pool, worker_id, &rows).await?;
    }
    rows.into_iter().map(ClaimedTask::try_from).collect()
}

/// Marks the claimed tasks' projects running and records `task_claimed`, holding the
/// projects' locks (taken in id order, so concurrent claimers cannot deadlock).
async fn record_claims(pool: &PgPool, worker_id: &str, claimed: &[ClaimedRow]) -> Result<()> {
    let mut projects: Vec<Uuid> = claimed.iter().map(|t| t.project_id).collect();
    projects.sort_unstable();
    projects.dedup();
    let mut tx = pool.begin().await?;
    crate::projects::lock_many(&mut tx, &projects).await?;
    sqlx::query(
        "WITH started AS (
             UPDATE projects SET status = 'running', started_at = now()
             WHERE id = ANY($1) AND status = 'pending'
         )
         INSERT INTO events (project_id, task_id, kind, data)
         SELECT c.project_id, c.task_id, 'task_claimed',
                jsonb_build_object('worker_id', $5::text, 'attempt', c.attempt)
         FROM unnest($2::uuid[], $3::uuid[], $4::int4[]) WITH ORDINALITY AS c(project_id, task_id, attempt, n)
         ORDER BY c.n",
    )
    .bind(&projects)
    .bind(claimed.iter().map(|t| t.project_id).collect::<Vec<_>>())
    .bind(claimed.iter().map(|t| t.id).collect::<Vec<_>>())
    .bind(claimed.iter().map(|t| t.attempt).collect::<Vec<_>>())
    .bind(worker_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Gives a running task back without counting the attempt (a worker shutting down): it is
/// `ready` again for any worker. Fenced like settling: a no-op once the task moved on.
pub async fn release(pool: &PgPool, project_id: Uuid, task_id: Uuid, attempt: i32) -> Result<()> {
    let mut tx = pool.begin().await?;
    crate::projects::lock(&mut tx, project_id).await?;
    let released: Option<(Uuid,)> = sqlx::query_as(
        "UPDATE tasks
         SET status = 'ready', attempt = attempt - 1, worker_id = NULL, lease_expires_at = NULL,
             session_id = NULL, started_at = NULL
         WHERE id = $1 AND status = 'running' AND attempt = $2
         RETURNING project_id",
    )
    .bind(task_id)
    .bind(attempt)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((project_id,)) = released {
        crate::events::record(
            &mut tx,
            project_id,
            &[crate::events::NewEvent {
                task_id: Some(task_id),
                kind: "task_released",
                data: serde_json::json!({"attempt": attempt}),
            }],
        )
        .await?;
        crate::listener::notify_ready(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What an agent needs to know to run a task.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub description: String,
    pub project_type: ProjectType,
    pub technology_stack: Option<String>,
    pub requirements: Option<Value>,
    /// A reviewer's feedback from a rejected approval of this task.
    pub feedback: Option<String>,
    /// Summaries of the tasks this one depends on, directly or not, by key.
    pub upstream: Vec<UpstreamResult>,
    /// The latest version of each file those tasks wrote.
    pub files: Vec<UpstreamFile>,
}

/// A completed upstream task's summary.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UpstreamResult {
    pub key: String,
    pub agent: String,
    pub summary: Option<String>,
}

/// A file written by an upstream task.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UpstreamFile {
    pub path: String,
    pub content: String,
    pub task_key: String,
}

/// Reads the context of `task_id`: its project and everything upstream of it.
pub async fn context(pool: &PgPool, project_id: Uuid, task_id: Uuid) -> Result<TaskContext> {
    let (description, project_type, technology_stack, requirements, feedback): (
        String,
        String,
        Option<String>,
        Option<Value>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT p.description, p.project_type, p.technology_stack, p.requirements, t.feedback
         FROM projects p JOIN tasks t ON t.project_id = p.id
         WHERE p.id = $1 AND t.id = $2",
    )
    .bind(project_id)
    .bind(task_id)
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound("task"))?;

    // Every task upstream of $1, directly or not.
    macro_rules! upstream {
        () => {
            "WITH RECURSIVE upstream AS (
                 SELECT depends_on AS id FROM task_dependencies WHERE task_id = $1
                 UNION
                 SELECT d.depends_on FROM task_dependencies d JOIN upstream u ON d.task_id = u.id
             ) "
        };
    }
    let upstream = sqlx::query_as::<_, UpstreamResult>(concat!(
        upstream!(),
        "SELECT t.key, t.agent, t.result->>'summary' AS summary
         FROM tasks t JOIN upstream u ON u.id = t.id
         ORDER BY t.priority, t.key"
    ))
    .bind(task_id)
    .fetch_all(pool)
    .await?;
    let files = sqlx::query_as::<_, UpstreamFile>(concat!(
        upstream!(),
        "SELECT DISTINCT ON (f.path) f.path, f.content, t.key AS task_key
         FROM project_files f JOIN upstream u ON u.id = f.task_id JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $2
         ORDER BY f.path, f.version DESC"
    ))
    .bind(task_id)
    .bind(project_id)
    .fetch_all(pool)
    .await?;

    Ok(TaskContext {
        description,
        project_type: parse(&project_type)?,
        technology_stack,
        requirements,
        feedback,
        upstream,
        files,
    })
}

/// A task as stored, with the keys it depends on.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub key: String,
    pub kind: String,
    pub agent: AgentKind,
    pub description: String,
    pub status: TaskStatus,
    pub depends_on: Vec<String>,
    pub priority: i16,
    pub critical: bool,
    pub estimated_minutes: i32,
    pub attempt: i32,
    pub max_attempts: i32,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// A reviewer's feedback from the last rejected approval.
    pub feedback: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    project_id: Uuid,
    key: String,
    kind: String,
    agent: String,
    description: String,
    status: String,
    depends_on: Vec<String>,
    priority: i16,
    critical: bool,
    estimated_minutes: i32,
    attempt: i32,
    max_attempts: i32,
    result: Option<Value>,
    error: Option<String>,
    feedback: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

/// Every task of a project, by priority then key.
pub async fn list(pool: &PgPool, project_id: Uuid) -> Result<Vec<Task>> {
    list_filtered(pool, project_id, None, None).await
}

/// The tasks of a project, optionally only one task or those in one status.
pub async fn list_filtered(
    pool: &PgPool,
    project_id: Uuid,
    task_id: Option<Uuid>,
    status: Option<TaskStatus>,
) -> Result<Vec<Task>> {
    let rows = sqlx::query_as::<_, TaskRow>(
        "SELECT t.id, t.project_id, t.key, t.kind, t.agent, t.description, t.status,
                coalesce(array_agg(dep.key ORDER BY dep.key) FILTER (WHERE dep.key IS NOT NULL),
                         '{}') AS depends_on,
                t.priority, t.critical, t.estimated_minutes, t.attempt, t.max_attempts,
                t.result, t.error, t.feedback, t.created_at, t.started_at, t.completed_at
         FROM tasks t
         LEFT JOIN task_dependencies d ON d.task_id = t.id
         LEFT JOIN tasks dep ON dep.id = d.depends_on
         WHERE t.project_id = $1 AND ($2::uuid IS NULL OR t.id = $2)
           AND ($3::text IS NULL OR t.status = $3)
         GROUP BY t.id
         ORDER BY t.priority, t.key",
    )
    .bind(project_id)
    .bind(task_id)
    .bind(status.map(TaskStatus::as_str))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Task {
                id: row.id,
                project_id: row.project_id,
                key: row.key,
                kind: row.kind,
                agent: parse(&row.agent)?,
                description: row.description,
                status: parse(&row.status)?,
                depends_on: row.depends_on,
                priority: row.priority,
                critical: row.critical,
                estimated_minutes: row.estimated_minutes,
                attempt: row.attempt,
                max_attempts: row.max_attempts,
                result: row.result,
                error: row.error,
                feedback: row.feedback,
                created_at: row.created_at,
                started_at: row.started_at,
                completed_at: row.completed_at,
            })
        })
        .collect()
}

/// One task of a project.
pub async fn get(pool: &PgPool, project_id: Uuid, task_id: Uuid) -> Result<Option<Task>> {
    Ok(list_filtered(pool, project_id, Some(task_id), None)
        .await?
        .pop())
}

/// Extends the leases of `worker_id`'s running tasks among `task_ids`, in one statement.
/// Returns how many were extended (fewer when some were cancelled or re-queued).
pub async fn heartbeat(
    pool: &PgPool,
    worker_id: &str,
    task_ids: &[Uuid],
    lease: Duration,
) -> Result<u64> {
    if task_ids.is_empty() {
        return Ok(0);
    }
    let extended = sqlx::query(
        "UPDATE tasks SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = ANY($1) AND worker_id = $2 AND status = 'running'",
    )
    .bind(task_ids)
    .bind(worker_id)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(extended)
}

/// Running tasks whose lease has expired: their worker stopped heartbeating (it crashed or
/// lost the database). At most `limit`, oldest expiry first.
pub async fn expired_leases(pool: &PgPool, limit: i64) -> Result<Vec<ClaimedTask>> {
    let rows = sqlx::query_as::<_, ClaimedRow>(
        "SELECT id, project_id, key, kind, agent, description, attempt, max_attempts, critical
         FROM tasks
         WHERE status = 'running' AND lease_expires_at < now()
         ORDER BY lease_expires_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ClaimedTask::try_from).collect()
}
