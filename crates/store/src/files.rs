//! Generated files: every version a task wrote, keyed by project, path and version.

use std::collections::HashMap;

use guild_core::{AgentKind, EventKind, ProjectId, TaskId};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::Result;

/// A file a task produced, already checked for a safe path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub path: String,
    pub content: String,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
    pub language: Option<String>,
    /// The file's check (`guild_validate::Validation` as JSON).
    pub validation: Value,
    /// The model that wrote it.
    pub model: Option<String>,
    /// The version of the prompt that asked for it.
    pub prompt_version: Option<String>,
    /// 0 for the task's first answer, n for its n-th repair round.
    pub repair_round: i32,
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
    pub agent: Option<AgentKind>,
    pub validation: Option<Value>,
    pub conflict: Option<Value>,
}

/// Who wrote a batch of files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Writer {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub agent: AgentKind,
    pub attempt: i32,
}

/// A version stored by [`write_versions`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct Written {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub path: String,
    pub version: i32,
}

/// Stores each writer's files as new versions of their paths, in one statement. Idempotent
/// per task: a file whose content this task already stored at that path is not stored
/// again. Two writers of one path in the same call get consecutive versions. Returns the
/// versions stored.
pub(crate) async fn write_versions(
    conn: &mut PgConnection,
    writes: &[(Writer, Vec<&NewFile>)],
) -> Result<Vec<Written>> {
    let rows: Vec<(&Writer, &NewFile)> = writes
        .iter()
        .flat_map(|(writer, files)| files.iter().map(move |file| (writer, *file)))
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let written: Vec<Written> = sqlx::query_as(
        "INSERT INTO project_files
             (project_id, path, version, content, sha256, size_bytes, language, task_id, agent,
              attempt, validation, model, prompt_version, repair_round)
         SELECT f.project_id, f.path,
                coalesce((SELECT max(version) FROM project_files pf
                          WHERE pf.project_id = f.project_id AND pf.path = f.path), 0)
                    + row_number() OVER (PARTITION BY f.project_id, f.path ORDER BY f.n),
                f.content, f.sha256, octet_length(f.content), f.language, f.task_id, f.agent, f.attempt,
                f.validation, f.model, f.prompt_version, f.repair_round
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int4[],
                     $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::jsonb[], $10::text[], $11::text[], $12::int4[])
              WITH ORDINALITY AS f(project_id, task_id, agent, attempt, path, content, sha256, language,
                                   validation, model, prompt_version, repair_round, n)
         WHERE NOT EXISTS (SELECT 1 FROM project_files pf
                           WHERE pf.project_id = f.project_id AND pf.path = f.path
                             AND pf.task_id = f.task_id AND pf.sha256 = f.sha256)
         RETURNING project_id, task_id, path, version",
    )
    .bind(rows.iter().map(|(w, _)| w.project_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|(w, _)| w.task_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|(w, _)| w.agent).collect::<Vec<_>>())
    .bind(rows.iter().map(|(w, _)| w.attempt).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.path.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.content.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.sha256.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.language.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.validation.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.model.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.prompt_version.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, f)| f.repair_round).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    Ok(written)
}

/// A file a settlement refuses because it cannot share the project's tree with another:
/// a file where another needs a directory (`src/config` beside `src/config/index.ts`), or
/// a path that differs from another only in letter case. Written by another task, or by
/// an earlier completion of the same batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clash {
    pub task_id: TaskId,
    pub path: String,
    pub reason: String,
}

/// A file on its way to a project: its project, its writer and its path.
pub(crate) struct Arriving<'a> {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub path: &'a str,
}

/// The arriving files that clash with the project's stored files or with a file that
/// arrived before them in the same batch (from another task). A new version of the same
/// path is no clash. One statement, whatever the batch's size.
pub(crate) async fn clashes(
    conn: &mut PgConnection,
    arriving: &[Arriving<'_>],
) -> Result<Vec<Clash>> {
    let mut found = Vec::new();
    for (i, file) in arriving.iter().enumerate() {
        let earlier = arriving[..i].iter().filter(|e| {
            e.project_id == file.project_id && e.task_id != file.task_id && e.path != file.path
        });
        if let Some(reason) = earlier
            .filter_map(|e| guild_core::paths::path_clash(e.path, file.path))
            .next()
        {
            found.push((i, reason));
        }
    }
    if !arriving.is_empty() {
        let stored: Vec<(i64, String)> = sqlx::query_as(
            "SELECT n.i, s.path
             FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS n(project_id, path, i)
             CROSS JOIN LATERAL (
                 SELECT f.path FROM project_files f
                 WHERE f.project_id = n.project_id
                   AND ((lower(f.path) = lower(n.path) AND f.path <> n.path)
                        OR starts_with(lower(f.path), lower(n.path) || '/')
                        OR starts_with(lower(n.path), lower(f.path) || '/'))
                 LIMIT 1
             ) s",
        )
        .bind(arriving.iter().map(|a| a.project_id).collect::<Vec<_>>())
        .bind(arriving.iter().map(|a| a.path).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
        for (ordinal, stored_path) in stored {
            let i = usize::try_from(ordinal - 1).unwrap_or_default();
            if found.iter().all(|(j, _)| *j != i)
                && let Some(reason) = guild_core::paths::path_clash(&stored_path, arriving[i].path)
            {
                found.push((i, reason));
            }
        }
    }
    found.sort_by_key(|(i, _)| *i);
    Ok(found
        .into_iter()
        .map(|(i, reason)| Clash {
            task_id: arriving[i].task_id,
            path: arriving[i].path.to_owned(),
            reason: format!("{reason}: the other task's file was kept"),
        })
        .collect())
}

/// Versions written per task.
pub(crate) fn counts(written: &[Written]) -> HashMap<TaskId, u64> {
    let mut counts = HashMap::new();
    for w in written {
        *counts.entry(w.task_id).or_insert(0) += 1;
    }
    counts
}

/// A version that replaced one its task never saw.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct Conflict {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub path: String,
    pub version: i32,
    pub other_version: i32,
    pub other_task_key: String,
    pub other_agent: Option<AgentKind>,
}

/// The `file_conflict` event of a conflict, for its project.
pub(crate) fn conflict_event(c: &Conflict) -> (ProjectId, crate::events::NewEvent) {
    (
        c.project_id,
        crate::events::NewEvent::of_task(
            c.task_id,
            EventKind::FileConflict,
            serde_json::json!({
                "path": c.path,
                "version": c.version,
                "other_version": c.other_version,
                "other_task_key": c.other_task_key,
                "other_agent": c.other_agent,
                "reason": "written by tasks the graph does not order: both versions are kept",
            }),
        ),
    )
}

/// Finds, among the versions just written, those whose previous version was written by a
/// task the graph does not order before the writer (neither upstream of it nor itself):
/// the writer could not have seen it, so both are kept and the conflict is recorded on
/// the new version. One statement finds the versions that replaced another task's; only
/// for those (rare) are the projects' graphs read and walked, and the conflicts marked.
pub(crate) async fn record_conflicts(
    conn: &mut PgConnection,
    written: &[Written],
) -> Result<Vec<Conflict>> {
    if written.is_empty() {
        return Ok(Vec::new());
    }
    let replaced: Vec<(Conflict, TaskId)> = sqlx::query_as::<_, ReplacedRow>(
        "SELECT m.project_id, m.task_id, m.path, m.version,
                prev.version AS other_version, t.key AS other_task_key,
                prev.agent AS other_agent, prev.task_id AS other_task_id
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int4[])
              AS m(project_id, task_id, path, version)
         CROSS JOIN LATERAL (
             SELECT p.version, p.task_id, p.agent FROM project_files p
             WHERE p.project_id = m.project_id AND p.path = m.path AND p.version < m.version
             ORDER BY p.version DESC LIMIT 1
         ) prev
         JOIN tasks t ON t.id = prev.task_id
         WHERE prev.task_id <> m.task_id",
    )
    .bind(written.iter().map(|w| w.project_id).collect::<Vec<_>>())
    .bind(written.iter().map(|w| w.task_id).collect::<Vec<_>>())
    .bind(written.iter().map(|w| w.path.as_str()).collect::<Vec<_>>())
    .bind(written.iter().map(|w| w.version).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(ReplacedRow::split)
    .collect();
    if replaced.is_empty() {
        return Ok(Vec::new());
    }

    let mut projects: Vec<ProjectId> = replaced.iter().map(|(c, _)| c.project_id).collect();
    projects.sort_unstable();
    projects.dedup();
    let edges: Vec<(TaskId, TaskId)> = sqlx::query_as(
        "SELECT d.task_id, d.depends_on FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
         WHERE t.project_id = ANY($1)",
    )
    .bind(&projects)
    .fetch_all(&mut *conn)
    .await?;
    let mut depends_on: HashMap<TaskId, Vec<TaskId>> = HashMap::new();
    for (task, dependency) in edges {
        depends_on.entry(task).or_default().push(dependency);
    }
    let conflicts: Vec<Conflict> = replaced
        .into_iter()
        .filter(|(c, other)| !is_upstream(*other, c.task_id, &depends_on))
        .map(|(c, _)| c)
        .collect();
    mark_conflicts(conn, &conflicts).await?;
    Ok(conflicts)
}

/// Records on each new version the unordered version it replaced.
async fn mark_conflicts(conn: &mut PgConnection, conflicts: &[Conflict]) -> Result<()> {
    if !conflicts.is_empty() {
        sqlx::query(
            "UPDATE project_files f
             SET conflict = jsonb_build_object('version', c.other_version,
                                               'task_key', c.other_task_key,
                                               'agent', c.other_agent)
             FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::int4[], $5::text[], $6::text[])
                  AS c(project_id, path, version, other_version, other_task_key, other_agent)
             WHERE f.project_id = c.project_id AND f.path = c.path AND f.version = c.version",
        )
        .bind(conflicts.iter().map(|c| c.project_id).collect::<Vec<_>>())
        .bind(
            conflicts
                .iter()
                .map(|c| c.path.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(conflicts.iter().map(|c| c.version).collect::<Vec<_>>())
        .bind(
            conflicts
                .iter()
                .map(|c| c.other_version)
                .collect::<Vec<_>>(),
        )
        .bind(
            conflicts
                .iter()
                .map(|c| c.other_task_key.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(conflicts.iter().map(|c| c.other_agent).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A version that replaced another task's, with that task's id.
#[derive(sqlx::FromRow)]
struct ReplacedRow {
    #[sqlx(flatten)]
    conflict: Conflict,
    other_task_id: TaskId,
}

impl ReplacedRow {
    fn split(self) -> (Conflict, TaskId) {
        (self.conflict, self.other_task_id)
    }
}

/// Whether `ancestor` is upstream of `task` in the graph `depends_on`.
fn is_upstream(ancestor: TaskId, task: TaskId, depends_on: &HashMap<TaskId, Vec<TaskId>>) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![task];
    while let Some(id) = stack.pop() {
        for dependency in depends_on.get(&id).into_iter().flatten() {
            if *dependency == ancestor {
                return true;
            }
            if seen.insert(*dependency) {
                stack.push(*dependency);
            }
        }
    }
    false
}

/// The latest version of every file of a project, by path.
pub async fn latest(pool: &PgPool, project_id: ProjectId) -> Result<Vec<StoredFile>> {
    let files = sqlx::query_as::<_, StoredFile>(
        "SELECT DISTINCT ON (f.path)
                f.path, f.version, f.content, f.sha256, f.size_bytes, f.language,
                t.key AS task_key, f.agent, f.validation, f.conflict
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
    pub task_id: Option<TaskId>,
    pub task_key: Option<String>,
    pub agent: Option<AgentKind>,
    pub attempt: Option<i32>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub repair_round: i32,
    pub validation: Option<Value>,
    pub conflict: Option<Value>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The latest version of every file of a project, by path, without content.
pub async fn list_latest(pool: &PgPool, project_id: ProjectId) -> Result<Vec<FileMeta>> {
    let files = sqlx::query_as::<_, FileMeta>(
        "SELECT DISTINCT ON (f.path)
                f.path, f.version, f.sha256, f.size_bytes, f.language, f.task_id,
                t.key AS task_key, f.agent, f.attempt, f.model, f.prompt_version,
                f.repair_round, f.validation, f.conflict, f.created_at
         FROM project_files f LEFT JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $1
         ORDER BY f.path, f.version DESC",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?;
    Ok(files)
}

/// Every version of one path, oldest first.
pub async fn history(pool: &PgPool, project_id: ProjectId, path: &str) -> Result<Vec<FileMeta>> {
    let files = sqlx::query_as::<_, FileMeta>(
        "SELECT f.path, f.version, f.sha256, f.size_bytes, f.language, f.task_id,
                t.key AS task_key, f.agent, f.attempt, f.model, f.prompt_version,
                f.repair_round, f.validation, f.conflict, f.created_at
         FROM project_files f LEFT JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $1 AND f.path = $2
         ORDER BY f.version",
    )
    .bind(project_id)
    .bind(path)
    .fetch_all(pool)
    .await?;
    Ok(files)
}

/// Every file version a task wrote, by path.
pub async fn written_by(pool: &PgPool, task_id: TaskId) -> Result<Vec<FileMeta>> {
    let files = sqlx::query_as::<_, FileMeta>(
        "SELECT f.path, f.version, f.sha256, f.size_bytes, f.language, f.task_id,
                t.key AS task_key, f.agent, f.attempt, f.model, f.prompt_version,
                f.repair_round, f.validation, f.conflict, f.created_at
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
    project_id: ProjectId,
    path: &str,
    version: Option<i32>,
) -> Result<Option<StoredFile>> {
    let file = sqlx::query_as::<_, StoredFile>(
        "SELECT f.path, f.version, f.content, f.sha256, f.size_bytes, f.language,
                t.key AS task_key, f.agent, f.validation, f.conflict
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

/// The latest version of each file as the project stood at revision `revision`: written by
/// tasks of that revision or an earlier one, by path.
///
/// # Errors
///
/// A database error.
pub async fn at_revision(
    pool: &PgPool,
    project_id: ProjectId,
    revision: i32,
) -> Result<Vec<StoredFile>> {
    let files = sqlx::query_as::<_, StoredFile>(
        "SELECT DISTINCT ON (f.path)
                f.path, f.version, f.content, f.sha256, f.size_bytes, f.language,
                t.key AS task_key, f.agent, f.validation, f.conflict
         FROM project_files f LEFT JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $1 AND coalesce(t.revision, 1) <= $2
         ORDER BY f.path, f.version DESC",
    )
    .bind(project_id)
    .bind(revision)
    .fetch_all(pool)
    .await?;
    Ok(files)
}

/// A task that wrote files, with what it wrote, for a project's history.
#[derive(Debug, Clone, PartialEq)]
pub struct WritingTask {
    pub task_id: TaskId,
    pub key: String,
    pub agent: AgentKind,
    pub attempt: i32,
    pub revision: i32,
    pub summary: Option<String>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub written_at: chrono::DateTime<chrono::Utc>,
    /// The versions it left, by path.
    pub files: Vec<WrittenFile>,
}

/// One file version a task left.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenFile {
    pub path: String,
    pub version: i32,
    pub content: String,
}

/// Every task that wrote files, in the order its files were settled, with the last
/// version of each file it wrote.
///
/// # Errors
///
/// A database error.
pub async fn writing_tasks(pool: &PgPool, project_id: ProjectId) -> Result<Vec<WritingTask>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        task_id: TaskId,
        key: String,
        agent: AgentKind,
        attempt: i32,
        revision: i32,
        summary: Option<String>,
        model: Option<String>,
        prompt_version: Option<String>,
        written_at: chrono::DateTime<chrono::Utc>,
        path: String,
        version: i32,
        content: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT DISTINCT ON (f.task_id, f.path)
                t.id AS task_id, t.key, t.agent, coalesce(f.attempt, t.attempt) AS attempt, t.revision,
                t.result->>'summary' AS summary, f.model, f.prompt_version,
                min(f.created_at) OVER (PARTITION BY f.task_id) AS written_at, f.path, f.version,
                f.content
         FROM project_files f JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $1
         ORDER BY f.task_id, f.path, f.version DESC",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?;
    let mut tasks: Vec<WritingTask> = Vec::new();
    for row in rows {
        let file = WrittenFile {
            path: row.path,
            version: row.version,
            content: row.content,
        };
        match tasks.iter_mut().find(|t| t.task_id == row.task_id) {
            Some(task) => task.files.push(file),
            None => tasks.push(WritingTask {
                task_id: row.task_id,
                key: row.key,
                agent: row.agent,
                attempt: row.attempt,
                revision: row.revision,
                summary: row.summary,
                model: row.model,
                prompt_version: row.prompt_version,
                written_at: row.written_at,
                files: vec![file],
            }),
        }
    }
    tasks.sort_by(|a, b| {
        (a.written_at, a.revision, &a.key).cmp(&(b.written_at, b.revision, &b.key))
    });
    Ok(tasks)
}
