//! Generated files: every version a task wrote, keyed by project, path and version.

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

/// Stores `files` as new versions of their paths. Idempotent per task: a file whose
/// content this task already stored at that path is not stored again. Returns how many
/// versions were written.
pub(crate) async fn write_versions(
    conn: &mut PgConnection,
    writer: Writer<'_>,
    files: &[NewFile],
) -> Result<u64> {
    if files.is_empty() {
        return Ok(0);
    }
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let contents: Vec<&str> = files.iter().map(|f| f.content.as_str()).collect();
    let hashes: Vec<&str> = files.iter().map(|f| f.sha256.as_str()).collect();
    let languages: Vec<Option<&str>> = files.iter().map(|f| f.language.as_deref()).collect();
    let written = sqlx::query(
        "INSERT INTO project_files
             (project_id, path, version, content, sha256, size_bytes, language, task_id, agent, attempt)
         SELECT $1, f.path,
                coalesce((SELECT max(version) FROM project_files pf
                          WHERE pf.project_id = $1 AND pf.path = f.path), 0) + 1,
                f.content, f.sha256, octet_length(f.content), f.language, $2, $3, $4
         FROM unnest($5::text[], $6::text[], $7::text[], $8::text[]) AS f(path, content, sha256, language)
         WHERE NOT EXISTS (SELECT 1 FROM project_files pf
                           WHERE pf.project_id = $1 AND pf.path = f.path
                             AND pf.task_id = $2 AND pf.sha256 = f.sha256)",
    )
    .bind(writer.project_id)
    .bind(writer.task_id)
    .bind(writer.agent)
    .bind(writer.attempt)
    .bind(paths)
    .bind(contents)
    .bind(hashes)
    .bind(languages)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(written)
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
