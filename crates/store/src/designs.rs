//! A project's designs: version 1 from its design step, one more per change request.

use chrono::{DateTime, Utc};
use guild_core::{ProjectId, TaskId};
use serde_json::Value;
use sqlx::PgPool;

use crate::Result;

/// One version of a project's design.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredDesign {
    /// 1, 2, ...: the latest is the one tasks code against.
    pub version: i32,
    /// The design step that wrote it.
    pub task_id: TaskId,
    /// The design (see the `guild-design` crate for its shape).
    pub design: Value,
    pub created_at: DateTime<Utc>,
}

/// The project's design at `version`, or its latest when `version` is `None`; `None`
/// when it has none (yet).
///
/// # Errors
///
/// A database error.
pub async fn design(
    pool: &PgPool,
    project_id: ProjectId,
    version: Option<i32>,
) -> Result<Option<StoredDesign>> {
    let design = sqlx::query_as::<_, StoredDesign>(
        "SELECT version, task_id, design, created_at FROM designs
         WHERE project_id = $1 AND ($2::int4 IS NULL OR version = $2)
         ORDER BY version DESC LIMIT 1",
    )
    .bind(project_id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    Ok(design)
}

/// The versions of the project's design, oldest first.
///
/// # Errors
///
/// A database error.
pub async fn versions(pool: &PgPool, project_id: ProjectId) -> Result<Vec<i32>> {
    let versions =
        sqlx::query_scalar("SELECT version FROM designs WHERE project_id = $1 ORDER BY version")
            .bind(project_id)
            .fetch_all(pool)
            .await?;
    Ok(versions)
}
