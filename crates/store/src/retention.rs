//! Retention: deleting a finished project with everything it owns, and pruning the events
//! and superseded file versions of projects finished long ago.

use std::time::Duration;

use guild_core::ProjectId;
use sqlx::PgPool;

use crate::{Result, StoreError};

/// Deletes a finished (`completed`, `failed` or `cancelled`) project and everything it owns:
/// tasks, dependencies, events, files. A project still pending or running is a conflict:
/// cancel it first.
///
/// # Errors
///
/// [`StoreError::NotFound`] for an unknown project, [`StoreError::Conflict`] for one not
/// finished; a database error otherwise.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn delete_project(pool: &PgPool, project_id: ProjectId) -> Result<()> {
    let mut tx = pool.begin().await?;
    let status: Option<(String,)> =
        sqlx::query_as("SELECT status FROM projects WHERE id = $1 FOR UPDATE")
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?;
    match status {
        None => return Err(StoreError::NotFound("project")),
        Some((status,)) if status == "pending" || status == "running" => {
            return Err(StoreError::Conflict(format!(
                "the project is {status}: cancel it before deleting it"
            )));
        }
        Some(_) => {}
    }
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(project_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Projects finished before the cut-off.
    pub projects: i64,
    pub events: i64,
    /// File versions superseded by a later version of the same path.
    pub file_versions: i64,
}

/// For projects that finished more than `older_than` ago: deletes their events and every
/// file version but the latest of each path. The projects, their tasks and results and
/// their latest files stay. One transaction.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn prune(pool: &PgPool, older_than: Duration) -> Result<Pruned> {
    let (projects, events, file_versions): (i64, i64, i64) = sqlx::query_as(
        "WITH old AS (
             SELECT id FROM projects
             WHERE finished_at < now() - make_interval(secs => $1)
         ), gone_events AS (
             DELETE FROM events e USING old WHERE e.project_id = old.id
             RETURNING 1
         ), latest AS (
             SELECT f.project_id, f.path, max(f.version) AS version
             FROM project_files f JOIN old ON old.id = f.project_id
             GROUP BY f.project_id, f.path
         ), gone_files AS (
             DELETE FROM project_files f USING latest l
             WHERE f.project_id = l.project_id AND f.path = l.path AND f.version < l.version
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM old), (SELECT count(*) FROM gone_events),
                (SELECT count(*) FROM gone_files)",
    )
    .bind(older_than.as_secs_f64())
    .fetch_one(pool)
    .await?;
    Ok(Pruned {
        projects,
        events,
        file_versions,
    })
}
