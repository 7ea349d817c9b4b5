//! Project locks, and the lock order every transaction follows.
//!
//! **The rule**: a transaction that changes a project's tasks or records its events locks
//! the project's row first (`FOR NO KEY UPDATE`), several projects in id order, and only
//! then any of its tasks' rows. So:
//!
//! - a project's event ids grow in commit order: a reader that has seen event `n` never
//!   later finds a smaller id appear (without the lock, two settlements could commit out
//!   of id order and a stream resuming after the larger id would skip the other);
//! - two settlements never deadlock: they meet at the project rows, in one order.
//!
//! Two statements take task rows without their project, and neither ever waits: the
//! claim locks each task with its project in one statement, skipping rows locked by
//! others (`SKIP LOCKED`), and the heartbeat skips task and session rows that are locked.

use std::collections::HashMap;

use guild_core::{ProjectId, ProjectStatus};
use sqlx::PgConnection;

use crate::{Result, StoreError};

/// Locks a project's row until the transaction ends and returns its status.
///
/// # Errors
///
/// [`StoreError::NotFound`] when there is no such project.
pub(crate) async fn lock_project(
    conn: &mut PgConnection,
    project_id: ProjectId,
) -> Result<ProjectStatus> {
    let status: Option<(ProjectStatus,)> =
        sqlx::query_as("SELECT status FROM projects WHERE id = $1 FOR NO KEY UPDATE")
            .bind(project_id)
            .fetch_optional(conn)
            .await?;
    status
        .map(|(status,)| status)
        .ok_or(StoreError::NotFound("project"))
}

/// Locks the rows of `projects` (sorted and without repeats) in id order and returns the
/// status of each that exists.
pub(crate) async fn lock_projects(
    conn: &mut PgConnection,
    projects: &[ProjectId],
) -> Result<HashMap<ProjectId, ProjectStatus>> {
    let rows: Vec<(ProjectId, ProjectStatus)> = sqlx::query_as(
        "SELECT id, status FROM projects WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(projects)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}
