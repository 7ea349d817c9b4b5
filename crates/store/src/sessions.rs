//! Agent sessions: a worker's slot for one agent kind, and what it is doing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use guild_core::{AgentKind, TaskId};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;

/// An agent session: one worker slot for one agent kind, and what it is doing.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub id: Uuid,
    pub worker_id: String,
    pub slot: i32,
    pub agent: AgentKind,
    pub current_task_id: Option<TaskId>,
    pub tasks_completed: i64,
    pub tasks_failed: i64,
    pub busy_ms: i64,
    pub last_activity_at: DateTime<Utc>,
    /// The last heartbeat of the session's worker process.
    pub heartbeat_at: DateTime<Utc>,
    /// The worker process stopped heartbeating for longer than its lease: it is gone, and
    /// tasks it held are recovered by the other processes.
    pub stale: bool,
}

/// A task starting in one of a worker's slots.
#[derive(Debug, Clone, Copy)]
pub struct SlotTask {
    pub slot: i32,
    pub agent: AgentKind,
    pub task_id: TaskId,
}

/// Marks each slot's session for its task's agent as working on that task (creating the
/// session on first use) and links the task to it, in one statement. Returns the session
/// of each task.
pub async fn begin_tasks(
    pool: &PgPool,
    worker_id: &str,
    starting: &[SlotTask],
    lease: std::time::Duration,
) -> Result<HashMap<TaskId, Uuid>> {
    if starting.is_empty() {
        return Ok(HashMap::new());
    }
    let linked: Vec<(TaskId, Uuid)> = sqlx::query_as(
        "WITH session AS (
             INSERT INTO agent_sessions (id, worker_id, slot, agent, current_task_id, lease_secs)
             SELECT s.id, $1, s.slot, s.agent, s.task_id, $6
             FROM unnest($2::uuid[], $3::int4[], $4::text[], $5::uuid[]) AS s(id, slot, agent, task_id)
             ON CONFLICT (worker_id, slot, agent) DO UPDATE
                 SET current_task_id = EXCLUDED.current_task_id, last_activity_at = now(),
                     heartbeat_at = now(), lease_secs = EXCLUDED.lease_secs
             RETURNING id, current_task_id
         )
         UPDATE tasks t SET session_id = session.id
         FROM session WHERE t.id = session.current_task_id
         RETURNING t.id, t.session_id",
    )
    .bind(worker_id)
    .bind(starting.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(starting.iter().map(|s| s.slot).collect::<Vec<_>>())
    .bind(starting.iter().map(|s| s.agent).collect::<Vec<_>>())
    .bind(starting.iter().map(|s| s.task_id).collect::<Vec<_>>())
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(linked.into_iter().collect())
}

/// The session's task stopped without settling (its project was cancelled, or its lease was
/// lost): the session is idle again.
pub async fn clear_task(pool: &PgPool, session_id: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE agent_sessions SET current_task_id = NULL, last_activity_at = now() WHERE id = $1",
    )
    .bind(session_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every session, most recently active first.
pub async fn list(pool: &PgPool) -> Result<Vec<Session>> {
    let sessions = sqlx::query_as::<_, Session>(
        "SELECT id, worker_id, slot, agent, current_task_id, tasks_completed, tasks_failed,
                busy_ms, last_activity_at, heartbeat_at,
                heartbeat_at < now() - make_interval(secs => lease_secs) AS stale
         FROM agent_sessions ORDER BY last_activity_at DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(sessions)
}

/// Figures per agent kind over every task it ran.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentStats {
    pub agent: AgentKind,
    pub tasks_completed: i64,
    pub tasks_failed: i64,
    pub mean_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// Completed and failed counts, duration mean and p95 of completed tasks, and tokens.
pub async fn agent_stats(pool: &PgPool) -> Result<Vec<AgentStats>> {
    let stats = sqlx::query_as::<_, AgentStats>(
        "SELECT agent,
                count(*) FILTER (WHERE status = 'completed') AS tasks_completed,
                count(*) FILTER (WHERE status = 'failed') AS tasks_failed,
                avg(extract(epoch FROM completed_at - started_at) * 1000)::float8 AS mean_duration_ms,
                percentile_cont(0.95) WITHIN GROUP
                    (ORDER BY extract(epoch FROM completed_at - started_at) * 1000)::float8
                    AS p95_duration_ms,
                coalesce(sum((result->>'prompt_tokens')::bigint), 0)::bigint AS prompt_tokens,
                coalesce(sum((result->>'completion_tokens')::bigint), 0)::bigint AS completion_tokens
         FROM tasks
         GROUP BY agent ORDER BY agent",
    )
    .fetch_all(pool)
    .await?;
    Ok(stats)
}
