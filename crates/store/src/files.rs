//! Generated files: every version a task wrote, keyed by project, path and version.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Result;

/// A file a task produced, already checked for a safe path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub path: String,
    pub content: String,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
    pub language: Option<String>,
}

/// The latest version of a stored file.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredFile {
    pub path: String,
    pub version: i32,
    pub content: String,
    pub sha256: String,
    pub size_bytes: i32,
    pub language: Option<String>,
    pub task_key: Option<String>,
    pub agent: Option<String>,
}

/// Who wrote a batch of files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Writer<'a> {
    pub project_id: Uuid,
    pub task_id: Uuid,
    pub agent: &'a str,
    pub attempt: i32,
}

/// Stores each writer's files as new versions of their paths, in one statement. Idempotent
/// per task: a file whose content this task already stored at that path is not stored
/// again. Two writers of one path in the same call get consecutive versions. Returns how
/// many versions each task wrote.
pub(crate) async fn write_versions(
    conn: &mut PgConnection,
    writes: &[(Writer<'_>, &[NewFile])],
) -> Result<HashMap<Uuid, u64>> {
    let rows: Vec<(&Writer<'_>, &NewFile)> = writes
        .iter()
        .flat_map(|(writer, files)| files.iter().map(move |file| (writer, file)))
        .collect();
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let written: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO project_files
             (project_id, path, version, content, sha256, size_bytes, language, task_id, agent, attempt)
         SELECT f.project_id, f.path,
                coalesce((SELECT max(version) FROM project_files pf
                          WHERE pf.project_id = f.project_id AND pf.path = f.path), 0)
                    + row_number() OVER (PARTITION BY f.project_id, f.path ORDER BY f.n),
                f.content, f.sha256, octet_length(f.content), f.language, f.task_id, f.agent, f.attempt
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int4[],
                     $5::text[], $6::text[], $7::text[], $8::text[])
              WITH ORDINALITY AS f(project_id, task_id, agent, attempt, path, content, sha256, language, n)
         WHERE NOT EXISTS (SELECT 1 FROM project_files pf
                           WHERE pf.project_id = f.project_id AND pf.path = f.path
                             AND pf.task_id = f.task_id AND pf.sha256 = f.sha256)
         RETURNING task_id",
    )
    .bind(rows.iter().map(|(w, _)| w.project_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|(w, _)| w.task_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|(w, _)| w.agent).collect::<Vec<_>>())
    .bind(rows.iter().map(|(w, _)| w.attempt).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.path.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.content.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.sha256.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.language.as_deref()).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    let mut counts = HashMap::new();
    for (task_id,) in written {
        *counts.entry(task_id).or_insert(0) += 1;
    }
    Ok(counts)
}

/// The latest version of every file of a project, by path.
pub async fn latest(pool: &PgPool, project_id: Uuid) -> Result<Vec<StoredFile>> {
    let files = sqlx::query_as::<_, StoredFile>(
        "SELECT DISTINCT ON (f.path)
                f.path, f.version, f.content, f.sha256, f.size_bytes, f.language,
                t.key AS task_key, f.agent
         FROM project_files f LEFT JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $1
         ORDER BY f.path, f.version DESC",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?;
    Ok(files)
}

/// A file version's description, without its content.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FileMeta {
    pub path: String,
    pub version: i32,
    pub sha256: String,
    pub size_bytes: i32,
    pub language: Option<String>,
    pub task_id: Option<Uuid>,
    pub task_key: Option<String>,
    pub agent: Option<String>,
    pub attempt: Option<i32>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The latest version of every file of a project, by path, without content.
pub async fn list_latest(pool: &PgPool, project_id: Uuid) -> Result<Vec<FileMeta>> {
    let files = sqlx::query_as::<_, FileMeta>(
        "SELECT DISTINCT ON (f.path)
                f.path, f.version, f.sha256, f.size_bytes, f.language, f.task_id,
                t.key AS task_key, f.agent, f.attempt, f.created_at
         FROM project_files f LEFT JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $1
         ORDER BY f.path, f.version DESC",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?;
    Ok(files)
}

/// Every file version a task wrote, by path.
pub async fn written_by(pool: &PgPool, task_id: Uuid) -> Result<Vec<FileMeta>> {
    let files = sqlx::query_as::<_, FileMeta>(
        "SELECT f.path, f.version, f.sha256, f.size_bytes, f.language, f.task_id,
                t.key AS task_key, f.agent, f.attempt, f.created_at
         FROM project_files f JOIN tasks t ON t.id = f.task_id
         WHERE f.task_id = $1
         ORDER BY f.path, f.version",
    )
    .bind(task_id)
    .fetch_all(pool)
    .await?;
    Ok(files)
}

/// One version of a file (the latest when `version` is `None`), with its content.
pub async fn get(
    pool: &PgPool,
    project_id: Uuid,
    path: &str,
    version: Option<i32>,
) -> Result<Option<StoredFile>> {
    let file = sqlx::query_as::<_, StoredFile>(
        "SELECT f.path, f.version, f.content, f.sha256, f.size_bytes, f.language,
                t.key AS task_key, f.agent
         FROM project_files f LEFT JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $1 AND f.path = $2 AND ($3::int IS NULL OR f.version = $3)
         ORDER BY f.version DESC LIMIT 1",
    )
    .bind(project_id)
    .bind(path)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    Ok(file)
}
