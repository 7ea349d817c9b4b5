//! The append-only event log: what happened to a project and its tasks, in order.

use chrono::{DateTime, Utc};
use guild_core::{EventKind, ProjectId, TaskId};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::Result;

/// One recorded event.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub project_id: ProjectId,
    pub task_id: Option<TaskId>,
    pub kind: EventKind,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub task_id: Option<TaskId>,
    pub kind: EventKind,
    pub data: Value,
}

impl NewEvent {
    /// An event of task `task_id`.
    pub(crate) fn of_task(task_id: TaskId, kind: EventKind, data: Value) -> Self {
        Self {
            task_id: Some(task_id),
            kind,
            data,
        }
    }
}

/// Records `events` for `project_id` in one statement.
pub(crate) async fn record(
    conn: &mut PgConnection,
    project_id: ProjectId,
    events: &[NewEvent],
) -> Result<()> {
    let events: Vec<(ProjectId, NewEvent)> =
        events.iter().map(|e| (project_id, e.clone())).collect();
    record_across(conn, &events).await
}

/// Records events of several projects in one statement, in the order given. Model output
/// in their data is made storable first (see [`crate::text`]).
pub(crate) async fn record_across(
    conn: &mut PgConnection,
    events: &[(ProjectId, NewEvent)],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO events (project_id, task_id, kind, data)
         SELECT e.project_id, e.task_id, e.kind, e.data
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[])
              WITH ORDINALITY AS e(project_id, task_id, kind, data, n)
         ORDER BY e.n",
    )
    .bind(events.iter().map(|(p, _)| *p).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.task_id).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, e)| e.kind).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|(_, e)| crate::text::storable(&e.data))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The events of a project after event id `after`, oldest first, at most `limit`.
///
/// # Errors
///
/// A database error.
pub async fn list(
    pool: &PgPool,
    project_id: ProjectId,
    after: i64,
    limit: i64,
) -> Result<Vec<Event>> {
    let events = sqlx::query_as::<_, Event>(
        "SELECT id, project_id, task_id, kind, data, created_at
         FROM events WHERE project_id = $1 AND id > $2
         ORDER BY id LIMIT $3",
    )
    .bind(project_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(events)
}
