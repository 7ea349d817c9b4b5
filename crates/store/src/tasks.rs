//! Tasks: what a claimed task's agent needs to know, and a project's graph as stored.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
pub use guild_core::TaskContext;
use guild_core::{
    AgentKind, Finding, GraphNode, ProjectId, ProjectType, TaskId, TaskStatus, UpstreamFile,
    UpstreamSummary,
};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use crate::{Result, StoreError};

pub use crate::claims::{
    ClaimedTask, QueueStats, claim_ready, expired_leases, heartbeat, queue_stats, release,
};

/// A task with what its context needs of its project.
#[derive(sqlx::FromRow)]
struct Head {
    id: TaskId,
    description: String,
    project_type: ProjectType,
    project_id: ProjectId,
    technology_stack: Option<String>,
    requirements: Option<Value>,
    design: Option<Value>,
    revision: i32,
    change_description: Option<String>,
    change_analysis: Option<Value>,
    feedback: Option<String>,
    use_cache: bool,
    budgeted: bool,
    #[sqlx(json)]
    findings: Vec<Finding>,
}

/// A task of a project's graph, for walking it.
#[derive(sqlx::FromRow)]
struct GraphRow {
    id: TaskId,
    project_id: ProjectId,
    #[sqlx(flatten)]
    summary: UpstreamSummary,
    kind: String,
    priority: i16,
    depends_on: Vec<TaskId>,
}

/// A version an upstream task wrote.
#[derive(sqlx::FromRow)]
struct WrittenRow {
    task_id: TaskId,
    path: String,
    version: i32,
    content: String,
    key: String,
    validation: Option<Value>,
    conflict: Option<Value>,
}

/// Reads the context of `task_id`: its project and everything upstream of it.
///
/// # Errors
///
/// [`StoreError::NotFound`] when there is no such task; a database error otherwise.
pub async fn context(pool: &PgPool, project_id: ProjectId, task_id: TaskId) -> Result<TaskContext> {
    contexts(pool, &[(project_id, task_id)])
        .await?
        .remove(&task_id)
        .ok_or(StoreError::NotFound("task"))
}

/// Reads the contexts of many tasks `(project_id, task_id)` in three queries, whatever
/// their number: the tasks with their projects, the projects' graphs (small: walked here,
/// which costs index lookups whatever the planner's statistics say), and the files written
/// upstream. Tasks not found are missing from the answer.
///
/// # Errors
///
/// A database error.
#[tracing::instrument(level = "debug", skip_all, fields(tasks = tasks.len()), err(level = "debug"))]
pub async fn contexts(
    pool: &PgPool,
    tasks: &[(ProjectId, TaskId)],
) -> Result<HashMap<TaskId, TaskContext>> {
    if tasks.is_empty() {
        return Ok(HashMap::new());
    }
    let task_ids: Vec<TaskId> = tasks.iter().map(|(_, t)| *t).collect();
    let mut project_ids: Vec<ProjectId> = tasks.iter().map(|(p, _)| *p).collect();
    project_ids.sort_unstable();
    project_ids.dedup();

    let heads: Vec<Head> = sqlx::query_as(
        "SELECT t.id, p.id AS project_id, p.description, p.project_type, p.technology_stack,
                p.requirements, t.feedback,
                (SELECT d.design FROM designs d WHERE d.project_id = p.id
                 ORDER BY d.version DESC LIMIT 1) AS design,
                t.revision,
                (SELECT r.description FROM revisions r
                 WHERE r.project_id = p.id AND r.number = t.revision AND t.revision > 1) AS change_description,
                (SELECT a.result->'change' FROM tasks a
                 WHERE a.project_id = p.id AND a.revision = t.revision AND a.kind = 'change_analysis'
                   AND a.status = 'completed') AS change_analysis, coalesce((p.options->>'cache')::boolean, true) AS use_cache,
                (p.max_tokens IS NOT NULL OR p.max_cost_usd IS NOT NULL) AS budgeted,
                coalesce(t.findings, '[]') AS findings
         FROM tasks t JOIN projects p ON p.id = t.project_id
         WHERE t.id = ANY($1)",
    )
    .bind(&task_ids)
    .fetch_all(pool)
    .await?;
    let graph: Vec<GraphRow> = sqlx::query_as(
        "SELECT t.id, t.project_id, t.key, t.kind, t.agent, t.priority, t.result->>'summary' AS summary,
                array(SELECT d.depends_on FROM task_dependencies d WHERE d.task_id = t.id) AS depends_on
         FROM tasks t WHERE t.project_id = ANY($1)",
    )
    .bind(&project_ids)
    .fetch_all(pool)
    .await?;
    let by_id: HashMap<TaskId, &GraphRow> = graph.iter().map(|row| (row.id, row)).collect();
    let upstream: HashMap<TaskId, HashSet<TaskId>> = task_ids
        .iter()
        .map(|id| (*id, upstream_of(*id, &by_id)))
        .collect();
    let writers: Vec<TaskId> = upstream
        .values()
        .flatten()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // Every version the upstream tasks wrote; each task takes, per path, the latest one
    // written by its own upstream.
    let written: Vec<WrittenRow> = sqlx::query_as(
        "SELECT f.task_id, f.path, f.version, f.content, t.key, f.conflict,
                CASE WHEN f.validation->>'status' = 'invalid' THEN f.validation END AS validation
         FROM project_files f JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = ANY($1) AND f.task_id = ANY($2)",
    )
    .bind(&project_ids)
    .bind(&writers)
    .fetch_all(pool)
    .await?;
    Ok(heads
        .into_iter()
        .map(|head| {
            let ups = &upstream[&head.id];
            (head.id, context_of(head, ups, &by_id, &written))
        })
        .collect())
}

/// A task's context from its head, its upstream tasks, and the versions they wrote.
fn context_of(
    head: Head,
    ups: &HashSet<TaskId>,
    by_id: &HashMap<TaskId, &GraphRow>,
    written: &[WrittenRow],
) -> TaskContext {
    let mut rows: Vec<&GraphRow> = ups.iter().filter_map(|id| by_id.get(id).copied()).collect();
    rows.sort_by(|a, b| (a.priority, &a.summary.key).cmp(&(b.priority, &b.summary.key)));
    let mut latest: HashMap<&str, &WrittenRow> = HashMap::new();
    for file in written.iter().filter(|f| ups.contains(&f.task_id)) {
        let newest = latest.entry(file.path.as_str()).or_insert(file);
        if file.version > newest.version {
            *newest = file;
        }
    }
    let mut files: Vec<UpstreamFile> = latest
        .into_values()
        .map(|f| UpstreamFile {
            path: f.path.clone(),
            version: f.version,
            content: f.content.clone(),
            task_key: f.key.clone(),
            validation: f.validation.clone(),
            conflict: f.conflict.clone(),
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut graph: Vec<&GraphRow> = by_id
        .values()
        .copied()
        .filter(|row| row.project_id == head.project_id)
        .collect();
    graph.sort_by(|a, b| (a.priority, &a.summary.key).cmp(&(b.priority, &b.summary.key)));
    TaskContext {
        description: head.description,
        project_type: head.project_type,
        technology_stack: head.technology_stack,
        requirements: head.requirements,
        design: head.design,
        change: head
            .change_description
            .map(|description| guild_core::ChangeContext {
                revision: head.revision,
                description,
                analysis: head.change_analysis,
            }),
        graph: graph
            .into_iter()
            .map(|row| GraphNode {
                key: row.summary.key.clone(),
                kind: row.kind.clone(),
                agent: row.summary.agent,
            })
            .collect(),
        feedback: head.feedback,
        upstream: rows.into_iter().map(|row| row.summary.clone()).collect(),
        files,
        use_cache: head.use_cache,
        budgeted: head.budgeted,
        findings: head.findings,
    }
}

/// Every task `task_id` depends on, directly or not.
fn upstream_of(task_id: TaskId, by_id: &HashMap<TaskId, &GraphRow>) -> HashSet<TaskId> {
    let mut seen = HashSet::new();
    let mut stack: Vec<TaskId> = by_id
        .get(&task_id)
        .map(|row| row.depends_on.clone())
        .unwrap_or_default();
    while let Some(id) = stack.pop() {
        if seen.insert(id)
            && let Some(row) = by_id.get(&id)
        {
            stack.extend(&row.depends_on);
        }
    }
    seen
}

/// Why one attempt at a task failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AttemptError {
    pub attempt: i32,
    pub error: String,
    pub at: DateTime<Utc>,
}

/// A task as stored, with the keys it depends on, decoded straight from its row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Task {
    pub id: TaskId,
    pub project_id: ProjectId,
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
    /// The error of each failed attempt, oldest first.
    #[sqlx(json)]
    pub errors: Vec<AttemptError>,
    /// A reviewer's feedback from the last rejected approval.
    pub feedback: Option<String>,
    /// 0 for planned tasks; n for the fix tasks and re-review of fix round n.
    pub review_round: i32,
    /// The project revision that added it: 1 for the first generation.
    pub revision: i32,
    /// The review findings this task fixes (a fix task) or verifies (a re-review).
    #[sqlx(json)]
    pub findings: Vec<Finding>,
    /// What the task's model calls used, over all its attempts.
    #[sqlx(flatten)]
    pub usage: crate::projects::Usage,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Every task of a project, by priority then key.
///
/// # Errors
///
/// A database error.
pub async fn list(pool: &PgPool, project_id: ProjectId) -> Result<Vec<Task>> {
    list_filtered(pool, project_id, None, None).await
}

/// The tasks of a project, optionally only one task or those in one status.
///
/// # Errors
///
/// A database error.
pub async fn list_filtered(
    pool: &PgPool,
    project_id: ProjectId,
    task_id: Option<TaskId>,
    status: Option<TaskStatus>,
) -> Result<Vec<Task>> {
    let tasks = sqlx::query_as::<_, Task>(
        "SELECT t.id, t.project_id, t.key, t.kind, t.agent, t.description, t.status,
                coalesce(array_agg(dep.key ORDER BY dep.key) FILTER (WHERE dep.key IS NOT NULL),
                         '{}') AS depends_on,
                t.priority, t.critical, t.estimated_minutes, t.attempt, t.max_attempts,
                t.result, t.error, t.errors, t.feedback, t.review_round, t.revision,
                coalesce(t.findings, '[]') AS findings,
                t.created_at, t.started_at, t.completed_at, t.prompt_tokens, t.completion_tokens,
                t.cost_usd::float8 AS cost_usd, t.llm_calls::int8 AS llm_calls,
                t.cache_hits::int8 AS cache_hits, t.cached_prompt_tokens, t.cache_write_tokens
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
    .bind(status)
    .fetch_all(pool)
    .await?;
    Ok(tasks)
}

/// One task of a project.
///
/// # Errors
///
/// A database error.
pub async fn get(pool: &PgPool, project_id: ProjectId, task_id: TaskId) -> Result<Option<Task>> {
    Ok(list_filtered(pool, project_id, Some(task_id), None)
        .await?
        .pop())
}
