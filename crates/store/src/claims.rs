//! Claims and leases: taking ready tasks, keeping them, giving them back, and finding
//! those whose worker died. See [`crate::locks`] for the lock order these keep.

use std::time::Duration;

use guild_core::{AgentKind, EventKind, ProjectId, TaskId};
use serde_json::Value;
use sqlx::PgPool;

use crate::Result;
use crate::events::{self, NewEvent};

/// A task a worker has claimed: it is `running` at `attempt` under the worker's lease.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedTask {
    pub id: TaskId,
    pub project_id: ProjectId,
    pub key: String,
    pub kind: String,
    pub agent: AgentKind,
    pub description: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub critical: bool,
}

/// Claims up to `limit` ready tasks for `worker_id`, with a lease of `lease`, in one
/// statement, in queue order (`queue_at`, then priority): a project's tasks that became
/// ready together queue a second apart, so one large project cannot starve the others (see
/// the scheduling migration). Each project's `max_parallel` and each agent kind's room in
/// `agent_room` (kinds not listed are unlimited) are respected.
///
/// The claimed tasks' project rows are locked with them, so the `task_claimed` events are
/// written under the project lock like every other event. Tasks or projects locked by
/// someone else are skipped, never waited for: two claimers never get the same task, and a
/// claim never blocks behind a settling transaction (which wakes the workers when it
/// commits).
///
/// # Errors
///
/// A database error; nothing is claimed.
#[tracing::instrument(level = "debug", skip(pool, agent_room), err(level = "debug"))]
pub async fn claim_ready(
    pool: &PgPool,
    worker_id: &str,
    limit: i64,
    lease: Duration,
    agent_room: &[(AgentKind, u32)],
) -> Result<Vec<ClaimedTask>> {
    let room: serde_json::Map<String, Value> = agent_room
        .iter()
        .map(|(agent, n)| (agent.as_str().to_owned(), Value::from(*n)))
        .collect();
    let claimed = sqlx::query_as::<_, ClaimedTask>(
        "WITH candidates AS (
             SELECT t.id, t.project_id, t.agent, t.queue_at, t.priority, p.max_parallel
             FROM tasks t JOIN projects p ON p.id = t.project_id
             WHERE t.status = 'ready' AND t.run_after <= now()
               AND coalesce(($4::jsonb ->> t.agent)::int, 1) > 0
               AND (p.max_parallel IS NULL OR p.max_parallel >
                    (SELECT count(*) FROM tasks r WHERE r.project_id = t.project_id AND r.status = 'running'))
             ORDER BY t.queue_at, t.priority
             LIMIT $1
             FOR NO KEY UPDATE OF t, p SKIP LOCKED
         ), ranked AS (
             SELECT c.*,
                    row_number() OVER (PARTITION BY c.project_id ORDER BY c.queue_at, c.priority) AS in_project,
                    row_number() OVER (PARTITION BY c.agent ORDER BY c.queue_at, c.priority) AS in_agent
             FROM candidates c
         ), picked AS (
             SELECT r.id FROM ranked r
             WHERE (r.max_parallel IS NULL OR r.in_project <= r.max_parallel -
                    (SELECT count(*) FROM tasks x WHERE x.project_id = r.project_id AND x.status = 'running'))
               AND (($4::jsonb ->> r.agent) IS NULL OR r.in_agent <= ($4::jsonb ->> r.agent)::int)
         ), claimed AS (
             UPDATE tasks t
             SET status = 'running', attempt = t.attempt + 1, worker_id = $2,
                 started_at = now(), lease_expires_at = now() + make_interval(secs => $3),
                 reserved_tokens = 0, reserved_cost_usd = 0
             FROM picked WHERE t.id = picked.id
             RETURNING t.id, t.project_id, t.key, t.kind, t.agent, t.description, t.attempt,
                       t.max_attempts, t.critical, t.queue_at, t.priority
         ), started AS (
             UPDATE projects SET status = 'running', started_at = now()
             WHERE id IN (SELECT project_id FROM claimed) AND status = 'pending'
         ), logged AS (
             INSERT INTO events (project_id, task_id, kind, data)
             SELECT project_id, id, $5,
                    jsonb_build_object('worker_id', $2::text, 'attempt', attempt)
             FROM claimed ORDER BY queue_at, priority
         )
         SELECT id, project_id, key, kind, agent, description, attempt, max_attempts, critical
         FROM claimed",
    )
    .bind(limit)
    .bind(worker_id)
    .bind(lease.as_secs_f64())
    .bind(Value::Object(room))
    .bind(EventKind::TaskClaimed)
    // Planned for each call with its limit: a cached generic plan cannot know the limit
    // is small and sorts the whole ready set instead of reading the queue index in order.
    .persistent(false)
    .fetch_all(pool)
    .await?;
    Ok(claimed)
}

/// Gives a running task back without counting the attempt (a worker shutting down): it is
/// `ready` again for any worker. Fenced like settling: a no-op once the task moved on.
///
/// # Errors
///
/// A database error; the lease then expires and the task is recovered.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn release(
    pool: &PgPool,
    project_id: ProjectId,
    task_id: TaskId,
    attempt: i32,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    crate::locks::lock_project(&mut tx, project_id).await?;
    let released = sqlx::query(
        "UPDATE tasks
         SET status = 'ready', attempt = attempt - 1, worker_id = NULL, lease_expires_at = NULL,
             session_id = NULL, started_at = NULL
         WHERE id = $1 AND status = 'running' AND attempt = $2",
    )
    .bind(task_id)
    .bind(attempt)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if released > 0 {
        let event = NewEvent::of_task(
            task_id,
            EventKind::TaskReleased,
            serde_json::json!({"attempt": attempt}),
        );
        events::record(&mut tx, project_id, &[event]).await?;
        crate::listener::notify_ready(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The heartbeat of worker process `worker_id`, in one statement: extends the leases of its
/// running tasks among `task_ids` and marks its sessions alive. Returns the tasks that are
/// still this worker's; the others are not (their project was cancelled, or the lease
/// expired and another process re-queued them).
///
/// A task or session row locked by another transaction (a settlement storing it right
/// now, a batch starting) is skipped rather than waited for: settlements lock projects and
/// then tasks, and a heartbeat that waited on task rows in its own order could deadlock
/// with them (a field report: a batch of 53 completions and the heartbeat of the same
/// process). Such a task is still this worker's; its lease is extended at the next beat, a
/// third of a lease later.
///
/// # Errors
///
/// A database error; the leases are then not extended this time.
#[tracing::instrument(level = "debug", skip(pool, task_ids), fields(tasks = task_ids.len()), err(level = "debug"))]
pub async fn heartbeat(
    pool: &PgPool,
    worker_id: &str,
    task_ids: &[TaskId],
    lease: Duration,
) -> Result<Vec<TaskId>> {
    let mine: Vec<(TaskId,)> = sqlx::query_as(
        "WITH mine AS (
             SELECT id FROM tasks WHERE id = ANY($1) AND worker_id = $2 AND status = 'running'
         ), free AS (
             SELECT t.id FROM tasks t JOIN mine USING (id)
             ORDER BY t.id FOR NO KEY UPDATE OF t SKIP LOCKED
         ), extended AS (
             UPDATE tasks t SET lease_expires_at = now() + make_interval(secs => $3)
             FROM free WHERE t.id = free.id AND t.worker_id = $2 AND t.status = 'running'
         ), alive AS (
             UPDATE agent_sessions SET heartbeat_at = now(), lease_secs = $3
             WHERE id IN (SELECT id FROM agent_sessions WHERE worker_id = $2
                          FOR NO KEY UPDATE SKIP LOCKED)
         )
         SELECT id FROM mine",
    )
    .bind(task_ids)
    .bind(worker_id)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(mine.into_iter().map(|(id,)| id).collect())
}

/// Running tasks whose lease has expired: their worker stopped heartbeating (it crashed or
/// lost the database). At most `limit`, oldest expiry first.
///
/// # Errors
///
/// A database error.
pub async fn expired_leases(pool: &PgPool, limit: i64) -> Result<Vec<ClaimedTask>> {
    let expired = sqlx::query_as::<_, ClaimedTask>(
        "SELECT id, project_id, key, kind, agent, description, attempt, max_attempts, critical
         FROM tasks
         WHERE status = 'running' AND lease_expires_at < now()
         ORDER BY lease_expires_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(expired)
}

/// The scheduler's state at a glance, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default, sqlx::FromRow)]
pub struct QueueStats {
    /// Tasks waiting to be claimed (retries in their backoff included).
    pub ready: i64,
    /// Seconds since the oldest claimable ready task queued; 0 when none waits.
    pub oldest_ready_age_secs: f64,
    pub running: i64,
}

/// Counts ready and running tasks over the partial indexes on those statuses.
///
/// # Errors
///
/// A database error.
pub async fn queue_stats(pool: &PgPool) -> Result<QueueStats> {
    let stats = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'ready') AS ready,
                coalesce(greatest(0, extract(epoch FROM now() - min(queue_at)
                    FILTER (WHERE status = 'ready' AND run_after <= now()))), 0)::float8
                    AS oldest_ready_age_secs,
                count(*) FILTER (WHERE status = 'running') AS running
         FROM tasks WHERE status IN ('ready', 'running')",
    )
    .fetch_one(pool)
    .await?;
    Ok(stats)
}
