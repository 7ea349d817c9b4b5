//! Tasks: claiming ready ones, reading a task's context, listing a project's graph.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use guild_core::{AgentKind, Finding, ProjectType, TaskStatus};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Result, StoreError, parse};

/// A task a worker has claimed: it is `running` at `attempt` under the worker's lease.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub id: Uuid,
    pub project_id: Uuid,
    pub key: String,
    pub kind: String,
    pub agent: AgentKind,
    pub description: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub critical: bool,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: Uuid,
    project_id: Uuid,
    key: String,
    kind: String,
    agent: String,
    description: String,
    attempt: i32,
    max_attempts: i32,
    critical: bool,
}

impl TryFrom<ClaimedRow> for ClaimedTask {
    type Error = StoreError;

    fn try_from(row: ClaimedRow) -> Result<Self> {
        Ok(Self {
            id: row.id,
            project_id: row.project_id,
            key: row.key,
            kind: row.kind,
            agent: parse(&row.agent)?,
            description: row.description,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
            critical: row.critical,
        })
    }
}

/// Claims up to `limit` ready tasks for `worker_id`, with a lease of `lease`, in one
/// statement, in queue order (`queue_at`, then priority): a project's tasks that became
/// ready together queue a second apart, so one large project cannot starve the others (see
/// the scheduling migration). Each project's `max_parallel` and each agent kind's room in
/// `agent_room` (kinds not listed are unlimited) are respected.
///
/// The claimed tasks' project rows are locked with them, so the `task_claimed` events are
/// written under the project lock like every other event (see [`crate::projects::lock`]).
/// Tasks or projects locked by someone else are skipped, never waited for: two claimers
/// never get the same task, and a claim never blocks behind a settling transaction (which
/// wakes the workers when it commits).
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
    let rows = sqlx::query_as::<_, ClaimedRow>(
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
             SELECT project_id, id, 'task_claimed',
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
    // Planned for each call with its limit: a cached generic plan cannot know the limit
    // is small and sorts the whole ready set instead of reading the queue index in order.
    .persistent(false)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ClaimedTask::try_from).collect()
}

/// Gives a running task back without counting the attempt (a worker shutting down): it is
/// `ready` again for any worker. Fenced like settling: a no-op once the task moved on.
pub async fn release(pool: &PgPool, project_id: Uuid, task_id: Uuid, attempt: i32) -> Result<()> {
    let mut tx = pool.begin().await?;
    crate::projects::lock(&mut tx, project_id).await?;
    let released: Option<(Uuid,)> = sqlx::query_as(
        "UPDATE tasks
         SET status = 'ready', attempt = attempt - 1, worker_id = NULL, lease_expires_at = NULL,
             session_id = NULL, started_at = NULL
         WHERE id = $1 AND status = 'running' AND attempt = $2
         RETURNING project_id",
    )
    .bind(task_id)
    .bind(attempt)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((project_id,)) = released {
        crate::events::record(
            &mut tx,
            project_id,
            &[crate::events::NewEvent {
                task_id: Some(task_id),
                kind: "task_released",
                data: serde_json::json!({"attempt": attempt}),
            }],
        )
        .await?;
        crate::listener::notify_ready(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What an agent needs to know to run a task.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub description: String,
    pub project_type: ProjectType,
    pub technology_stack: Option<String>,
    pub requirements: Option<Value>,
    /// A reviewer's feedback from a rejected approval of this task.
    pub feedback: Option<String>,
    /// Summaries of the tasks this one depends on, directly or not, by key.
    pub upstream: Vec<UpstreamResult>,
    /// The latest version of each file those tasks wrote.
    pub files: Vec<UpstreamFile>,
    /// The project allows answers from the response cache (`options.cache`, default true).
    pub use_cache: bool,
    /// The project has a budget (`max_tokens` or `max_cost_usd`) its calls must reserve.
    pub budgeted: bool,
    /// The review findings the task fixes or verifies.
    pub findings: Vec<Finding>,
}

/// A completed upstream task's summary.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UpstreamResult {
    pub key: String,
    pub agent: String,
    pub summary: Option<String>,
}

/// A file written by an upstream task.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UpstreamFile {
    pub path: String,
    pub version: i32,
    pub content: String,
    pub task_key: String,
    /// The version's check, when it failed: `{status, checker, errors}`.
    pub validation: Option<Value>,
    /// The unordered version this one replaced: `{version, task_key, agent}`.
    pub conflict: Option<Value>,
}

/// A version an upstream task wrote.
#[derive(sqlx::FromRow)]
struct WrittenRow {
    task_id: Uuid,
    path: String,
    version: i32,
    content: String,
    key: String,
    validation: Option<Value>,
    conflict: Option<Value>,
}

/// A task with what its context needs of its project.
#[derive(sqlx::FromRow)]
struct Head {
    id: Uuid,
    description: String,
    project_type: String,
    technology_stack: Option<String>,
    requirements: Option<Value>,
    feedback: Option<String>,
    use_cache: bool,
    budgeted: bool,
    findings: Option<sqlx::types::Json<Vec<Finding>>>,
}

/// Reads the context of `task_id`: its project and everything upstream of it.
pub async fn context(pool: &PgPool, project_id: Uuid, task_id: Uuid) -> Result<TaskContext> {
    contexts(pool, &[(project_id, task_id)])
        .await?
        .remove(&task_id)
        .ok_or(StoreError::NotFound("task"))
}

/// Reads the contexts of many tasks `(project_id, task_id)` in three queries, whatever
/// their number: the tasks with their projects, the projects' graphs (small: walked here,
/// which costs index lookups whatever the planner's statistics say), and the files written
/// upstream. Tasks not found are missing from the answer.
pub async fn contexts(pool: &PgPool, tasks: &[(Uuid, Uuid)]) -> Result<HashMap<Uuid, TaskContext>> {
    if tasks.is_empty() {
        return Ok(HashMap::new());
    }
    let task_ids: Vec<Uuid> = tasks.iter().map(|(_, t)| *t).collect();
    let mut project_ids: Vec<Uuid> = tasks.iter().map(|(p, _)| *p).collect();
    project_ids.sort_unstable();
    project_ids.dedup();

    let heads: Vec<Head> = sqlx::query_as(
        "SELECT t.id, p.description, p.project_type, p.technology_stack, p.requirements,
                    t.feedback, coalesce((p.options->>'cache')::boolean, true) AS use_cache,
                    (p.max_tokens IS NOT NULL OR p.max_cost_usd IS NOT NULL) AS budgeted,
                    t.findings
             FROM tasks t JOIN projects p ON p.id = t.project_id
             WHERE t.id = ANY($1)",
    )
    .bind(&task_ids)
    .fetch_all(pool)
    .await?;
    let graph: Vec<GraphRow> = sqlx::query_as(
        "SELECT t.id, t.key, t.agent, t.priority, t.result->>'summary' AS summary,
                array(SELECT d.depends_on FROM task_dependencies d WHERE d.task_id = t.id) AS depends_on
         FROM tasks t WHERE t.project_id = ANY($1)",
    )
    .bind(&project_ids)
    .fetch_all(pool)
    .await?;
    let by_id: HashMap<Uuid, &GraphRow> = graph.iter().map(|row| (row.id, row)).collect();
    let upstream: HashMap<Uuid, HashSet<Uuid>> = task_ids
        .iter()
        .map(|id| (*id, upstream_of(*id, &by_id)))
        .collect();
    let writers: Vec<Uuid> = upstream
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

    heads
        .into_iter()
        .map(
            |Head {
                 id: task_id,
                 description,
                 project_type,
                 technology_stack,
                 requirements,
                 feedback,
                 use_cache,
                 budgeted,
                 findings,
             }| {
                let ups = &upstream[&task_id];
                let mut rows: Vec<&GraphRow> =
                    ups.iter().filter_map(|id| by_id.get(id).copied()).collect();
                rows.sort_by(|a, b| (a.priority, &a.key).cmp(&(b.priority, &b.key)));
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
                let context = TaskContext {
                    use_cache,
                    budgeted,
                    findings: findings.map(|f| f.0).unwrap_or_default(),
                    description,
                    project_type: parse(&project_type)?,
                    technology_stack,
                    requirements,
                    feedback,
                    upstream: rows
                        .into_iter()
                        .map(|row| UpstreamResult {
                            key: row.key.clone(),
                            agent: row.agent.clone(),
                            summary: row.summary.clone(),
                        })
                        .collect(),
                    files,
                };
                Ok((task_id, context))
            },
        )
        .collect()
}

/// Why one attempt at a task failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AttemptError {
    pub attempt: i32,
    pub error: String,
    pub at: DateTime<Utc>,
}

/// A task of a project's graph, for walking it.
#[derive(sqlx::FromRow)]
struct GraphRow {
    id: Uuid,
    key: String,
    agent: String,
    priority: i16,
    summary: Option<String>,
    depends_on: Vec<Uuid>,
}

/// Every task `task_id` depends on, directly or not.
fn upstream_of(task_id: Uuid, by_id: &HashMap<Uuid, &GraphRow>) -> HashSet<Uuid> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Uuid> = by_id
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

/// A task as stored, with the keys it depends on.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
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
    pub errors: Vec<AttemptError>,
    /// A reviewer's feedback from the last rejected approval.
    pub feedback: Option<String>,
    /// 0 for planned tasks; n for the fix tasks and re-review of fix round n.
    pub review_round: i32,
    /// The review findings this task fixes (a fix task) or verifies (a re-review).
    pub findings: Vec<Finding>,
    /// What the task's model calls used, over all its attempts.
    pub usage: crate::projects::Usage,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    project_id: Uuid,
    key: String,
    kind: String,
    agent: String,
    description: String,
    status: String,
    depends_on: Vec<String>,
    priority: i16,
    critical: bool,
    estimated_minutes: i32,
    attempt: i32,
    max_attempts: i32,
    result: Option<Value>,
    error: Option<String>,
    errors: sqlx::types::Json<Vec<AttemptError>>,
    feedback: Option<String>,
    review_round: i32,
    findings: Option<sqlx::types::Json<Vec<Finding>>>,
    #[sqlx(flatten)]
    usage: crate::projects::Usage,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
}

/// Every task of a project, by priority then key.
pub async fn list(pool: &PgPool, project_id: Uuid) -> Result<Vec<Task>> {
    list_filtered(pool, project_id, None, None).await
}

/// The tasks of a project, optionally only one task or those in one status.
pub async fn list_filtered(
    pool: &PgPool,
    project_id: Uuid,
    task_id: Option<Uuid>,
    status: Option<TaskStatus>,
) -> Result<Vec<Task>> {
    let rows = sqlx::query_as::<_, TaskRow>(
        "SELECT t.id, t.project_id, t.key, t.kind, t.agent, t.description, t.status,
                coalesce(array_agg(dep.key ORDER BY dep.key) FILTER (WHERE dep.key IS NOT NULL),
                         '{}') AS depends_on,
                t.priority, t.critical, t.estimated_minutes, t.attempt, t.max_attempts,
                t.result, t.error, t.errors, t.feedback, t.review_round, t.findings,
                t.created_at, t.started_at, t.completed_at, t.prompt_tokens, t.completion_tokens, t.cost_usd::float8 AS cost_usd,
                t.llm_calls::int8 AS llm_calls, t.cache_hits::int8 AS cache_hits
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
    .bind(status.map(TaskStatus::as_str))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Task {
                id: row.id,
                project_id: row.project_id,
                key: row.key,
                kind: row.kind,
                agent: parse(&row.agent)?,
                description: row.description,
                status: parse(&row.status)?,
                depends_on: row.depends_on,
                priority: row.priority,
                critical: row.critical,
                estimated_minutes: row.estimated_minutes,
                attempt: row.attempt,
                max_attempts: row.max_attempts,
                result: row.result,
                error: row.error,
                errors: row.errors.0,
                feedback: row.feedback,
                review_round: row.review_round,
                findings: row.findings.map(|f| f.0).unwrap_or_default(),
                usage: row.usage,
                created_at: row.created_at,
                started_at: row.started_at,
                completed_at: row.completed_at,
            })
        })
        .collect()
}

/// One task of a project.
pub async fn get(pool: &PgPool, project_id: Uuid, task_id: Uuid) -> Result<Option<Task>> {
    Ok(list_filtered(pool, project_id, Some(task_id), None)
        .await?
        .pop())
}

/// The heartbeat of worker process `worker_id`, in one statement: extends the leases of its
/// running tasks among `task_ids` and marks its sessions alive. Returns the tasks that are
/// still this worker's; the others are not (their project was cancelled, or the lease
/// expired and another process re-queued them).
///
/// A task or session row locked by another transaction (a settlement storing it right
/// now, a batch starting) is skipped rather than waited for: settlements lock projects and then tasks, and a
/// heartbeat that waited on task rows in its own order could deadlock with them (a field
/// report: a batch of 53 completions and the heartbeat of the same process). Such a task
/// is still this worker's; its lease is extended at the next beat, a third of a lease later.
///
/// # Errors
///
/// A database error; the leases are then not extended this time.
pub async fn heartbeat(
    pool: &PgPool,
    worker_id: &str,
    task_ids: &[Uuid],
    lease: Duration,
) -> Result<Vec<Uuid>> {
    let mine: Vec<(Uuid,)> = sqlx::query_as(
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
pub async fn expired_leases(pool: &PgPool, limit: i64) -> Result<Vec<ClaimedTask>> {
    let rows = sqlx::query_as::<_, ClaimedRow>(
        "SELECT id, project_id, key, kind, agent, description, attempt, max_attempts, critical
         FROM tasks
         WHERE status = 'running' AND lease_expires_at < now()
         ORDER BY lease_expires_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ClaimedTask::try_from).collect()
}

/// The scheduler's state at a glance, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueueStats {
    /// Tasks waiting to be claimed (retries in their backoff included).
    pub ready: i64,
    /// Seconds since the oldest claimable ready task queued; 0 when none waits.
    pub oldest_ready_age_secs: f64,
    pub running: i64,
}

/// Counts ready and running tasks over the partial indexes on those statuses.
pub async fn queue_stats(pool: &PgPool) -> Result<QueueStats> {
    let (ready, oldest_ready_age_secs, running): (i64, f64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'ready'),
                coalesce(greatest(0, extract(epoch FROM now() - min(queue_at)
                    FILTER (WHERE status = 'ready' AND run_after <= now()))), 0)::float8,
                count(*) FILTER (WHERE status = 'running')
         FROM tasks WHERE status IN ('ready', 'running')",
    )
    .fetch_one(pool)
    .await?;
    Ok(QueueStats {
        ready,
        oldest_ready_age_secs,
        running,
    })
}
