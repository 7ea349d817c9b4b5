//! Projects: creating one with its whole task graph, and reading it back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use guild_core::{Plan, ProjectStatus, ProjectType, TaskStatus};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::events::{self, NewEvent};
use crate::listener::notify_ready;
use crate::{Result, StoreError, parse};

/// A project to create.
#[derive(Debug, Clone)]
pub struct NewProject<'a> {
    pub description: &'a str,
    pub project_type: ProjectType,
    pub technology_stack: Option<&'a str>,
    pub options: Value,
    pub plan: &'a Plan,
    /// Attempts per task before it fails for good.
    pub max_attempts: i32,
    /// Makes creation idempotent: the same key and request return the first project.
    pub idempotency: Option<Idempotency<'a>>,
}

/// A client's idempotency key and a hash of its request.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
}

/// The result of [`create`].
#[derive(Debug, Clone)]
pub enum Created {
    /// A new project.
    New(Project),
    /// The project an earlier request with the same idempotency key and body created.
    Existing(Project),
}

impl Created {
    /// The project, new or not.
    pub fn into_project(self) -> Project {
        match self {
            Self::New(project) | Self::Existing(project) => project,
        }
    }
}

/// A stored project.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub id: Uuid,
    pub description: String,
    pub project_type: ProjectType,
    pub technology_stack: Option<String>,
    pub status: ProjectStatus,
    pub options: Value,
    pub requirements: Option<Value>,
    pub error: Option<String>,
    /// What the project's model calls used.
    pub usage: Usage,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What model calls used: of a project, a task, or a project's agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// `None` once any call's price was unknown.
    pub cost_usd: Option<f64>,
    /// Calls made, answers from the cache included.
    pub llm_calls: i64,
    /// Calls answered from the response cache.
    pub cache_hits: i64,
}

/// A project's usage by agent kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentUsage {
    pub agent: String,
    #[serde(flatten)]
    pub usage: Usage,
}

/// A project's usage by agent kind, from its tasks: the sums of theirs, by agent name.
pub fn usage_by_agent(tasks: &[crate::tasks::Task]) -> Vec<AgentUsage> {
    let mut by_agent: std::collections::BTreeMap<&str, Usage> = Default::default();
    for task in tasks {
        let total = by_agent.entry(task.agent.as_str()).or_insert(Usage {
            cost_usd: Some(0.0),
            ..Usage::default()
        });
        total.prompt_tokens += task.usage.prompt_tokens;
        total.completion_tokens += task.usage.completion_tokens;
        total.cost_usd = total.cost_usd.zip(task.usage.cost_usd).map(|(a, b)| a + b);
        total.llm_calls += task.usage.llm_calls;
        total.cache_hits += task.usage.cache_hits;
    }
    by_agent
        .into_iter()
        .map(|(agent, usage)| AgentUsage {
            agent: agent.to_owned(),
            usage,
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: Uuid,
    description: String,
    project_type: String,
    technology_stack: Option<String>,
    status: String,
    options: Value,
    requirements: Option<Value>,
    error: Option<String>,
    #[sqlx(flatten)]
    usage: Usage,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<ProjectRow> for Project {
    type Error = StoreError;

    fn try_from(row: ProjectRow) -> Result<Self> {
        Ok(Self {
            id: row.id,
            description: row.description,
            project_type: parse(&row.project_type)?,
            technology_stack: row.technology_stack,
            status: parse(&row.status)?,
            options: row.options,
            requirements: row.requirements,
            error: row.error,
            usage: row.usage,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

/// The columns of [`ProjectRow`], as a literal so queries stay static strings.
macro_rules! project_columns {
    () => {
        "id, description, project_type, technology_stack, status, options, requirements, \
         error, prompt_tokens, completion_tokens, cost_usd::float8 AS cost_usd, llm_calls, \
         cache_hits, created_at, started_at, finished_at"
    };
}

/// Locks a project's row until the transaction ends. Every transaction that records events
/// of a project takes this lock first (before any task of it), so the project's event ids
/// grow in commit order: a reader that has seen event `n` will never later find a smaller
/// id appear. Without it, two workers' transactions could commit out of id order and a
/// stream resuming after the larger id would skip the other. (Claims take the same lock in
/// their single statement, skipping projects locked by others.)
pub(crate) async fn lock(conn: &mut sqlx::PgConnection, project_id: Uuid) -> Result<()> {
    let locked: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM projects WHERE id = $1 FOR NO KEY UPDATE")
            .bind(project_id)
            .fetch_optional(conn)
            .await?;
    locked.map(|_| ()).ok_or(StoreError::NotFound("project"))
}

/// Creates the project and its whole task graph in one transaction, and wakes the workers.
/// With an idempotency key already used, returns that project when the request is the same
/// and a conflict when it is not.
pub async fn create(pool: &PgPool, new: NewProject<'_>) -> Result<Created> {
    if let Some(idempotency) = new.idempotency
        && let Some(existing) = find_idempotent(pool, idempotency).await?
    {
        return Ok(Created::Existing(existing));
    }
    match insert(pool, &new).await {
        Ok(project) => Ok(Created::New(project)),
        // A concurrent request with the same key won the race.
        Err(StoreError::Database(sqlx::Error::Database(e)))
            if e.constraint() == Some("projects_idempotency_key_key") =>
        {
            let idempotency = new
                .idempotency
                .expect("only keyed inserts can collide on the key");
            find_idempotent(pool, idempotency)
                .await?
                .map(Created::Existing)
                .ok_or(StoreError::NotFound("project"))
        }
        Err(error) => Err(error),
    }
}

async fn find_idempotent(pool: &PgPool, idempotency: Idempotency<'_>) -> Result<Option<Project>> {
    let row = sqlx::query_as::<_, (Uuid, Option<String>)>(
        "SELECT id, request_hash FROM projects WHERE idempotency_key = $1",
    )
    .bind(idempotency.key)
    .fetch_optional(pool)
    .await?;
    let Some((id, hash)) = row else {
        return Ok(None);
    };
    if hash.as_deref() != Some(idempotency.request_hash) {
        return Err(StoreError::Conflict(
            "this Idempotency-Key was already used with a different request".into(),
        ));
    }
    get(pool, id).await
}

async fn insert(pool: &PgPool, new: &NewProject<'_>) -> Result<Project> {
    let project_id = Uuid::now_v7();
    let tasks = new.plan.tasks();
    let task_ids: HashMap<&str, Uuid> = tasks
        .iter()
        .map(|t| (t.key.as_str(), Uuid::now_v7()))
        .collect();

    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, ProjectRow>(concat!(
        "INSERT INTO projects (id, description, project_type, technology_stack, options,
                               idempotency_key, request_hash, max_attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING ",
        project_columns!()
    ))
    .bind(project_id)
    .bind(new.description)
    .bind(new.project_type.as_str())
    .bind(new.technology_stack)
    .bind(&new.options)
    .bind(new.idempotency.map(|i| i.key))
    .bind(new.idempotency.map(|i| i.request_hash))
    .bind(new.max_attempts)
    .fetch_one(&mut *tx)
    .await?;

    let ids: Vec<Uuid> = tasks.iter().map(|t| task_ids[t.key.as_str()]).collect();
    let keys: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
    let kinds: Vec<&str> = tasks.iter().map(|t| t.kind.as_str()).collect();
    let agents: Vec<&str> = tasks.iter().map(|t| t.agent.as_str()).collect();
    let descriptions: Vec<&str> = tasks.iter().map(|t| t.description.as_str()).collect();
    let priorities: Vec<i16> = tasks.iter().map(|t| t.priority).collect();
    let critical: Vec<bool> = tasks.iter().map(|t| t.critical).collect();
    let minutes: Vec<i32> = tasks
        .iter()
        .map(|t| i32::try_from(t.estimated_minutes).unwrap_or(i32::MAX))
        .collect();
    let pending: Vec<i32> = tasks.iter().map(|t| t.depends_on.len() as i32).collect();
    let statuses: Vec<&str> = tasks
        .iter()
        .map(|t| {
            if t.depends_on.is_empty() {
                TaskStatus::Ready.as_str()
            } else {
                TaskStatus::Blocked.as_str()
            }
        })
        .collect();
    sqlx::query(
        "INSERT INTO tasks (id, project_id, key, kind, agent, description, priority, critical,
                            estimated_minutes, pending_deps, status, max_attempts, queue_at)
         SELECT t.id, $1, t.key, t.kind, t.agent, t.description, t.priority, t.critical,
                t.minutes, t.pending, t.status, coalesce(t.max_attempts, $12),
                -- Tasks ready together queue a second apart (see the scheduling migration).
                now() + (row_number() OVER (PARTITION BY t.status ORDER BY t.priority, t.key) - 1)
                        * interval '1 second'
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int2[],
                     $8::bool[], $9::int4[], $10::int4[], $11::text[], $13::int4[])
              AS t(id, key, kind, agent, description, priority, critical, minutes, pending, status,
                   max_attempts)",
    )
    .bind(project_id)
    .bind(&ids)
    .bind(keys)
    .bind(kinds)
    .bind(agents)
    .bind(descriptions)
    .bind(priorities)
    .bind(critical)
    .bind(minutes)
    .bind(pending)
    .bind(statuses)
    .bind(new.max_attempts)
    .bind(
        tasks
            .iter()
            .map(|t| t.max_attempts.map(i32::from))
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;

    let (dependents, dependencies): (Vec<Uuid>, Vec<Uuid>) = tasks
        .iter()
        .flat_map(|t| {
            let task_id = task_ids[t.key.as_str()];
            t.depends_on.iter().map(move |d| (task_id, d))
        })
        .map(|(task_id, dep)| (task_id, task_ids[dep.as_str()]))
        .unzip();
    sqlx::query(
        "INSERT INTO task_dependencies (task_id, depends_on)
         SELECT * FROM unnest($1::uuid[], $2::uuid[])",
    )
    .bind(dependents)
    .bind(dependencies)
    .execute(&mut *tx)
    .await?;

    events::record(
        &mut tx,
        project_id,
        &[NewEvent {
            task_id: None,
            kind: "project_created",
            data: json!({
                // The template it was planned from, or `custom`: a custom workflow has no
                // project type of its own.
                "workflow": new.plan.template().map_or("custom", ProjectType::as_str),
                "tasks": tasks.len(),
                "phases": new.plan.phases().len(),
                "estimated_minutes": new.plan.total_minutes(),
                "critical_path_minutes": new.plan.critical_path_minutes(),
            }),
        }],
    )
    .await?;
    notify_ready(&mut tx).await?;
    tx.commit().await?;
    row.try_into()
}

/// One project, if it exists.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Project>> {
    let row = sqlx::query_as::<_, ProjectRow>(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(Project::try_from).transpose()
}

/// How many of a project's tasks are in each status (statuses with none are left out).
pub async fn task_counts(pool: &PgPool, id: Uuid) -> Result<Vec<(TaskStatus, i64)>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM tasks WHERE project_id = $1 GROUP BY status")
            .bind(id)
            .fetch_all(pool)
            .await?;
    let mut counts = rows
        .into_iter()
        .map(|(status, n)| Ok((parse(&status)?, n)))
        .collect::<Result<Vec<(TaskStatus, i64)>>>()?;
    counts.sort_by_key(|(status, _)| TaskStatus::ALL.iter().position(|s| s == status));
    Ok(counts)
}

/// How many of the projects `ids` are in each status (statuses with none are left out).
pub async fn status_counts(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<(ProjectStatus, i64)>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM projects WHERE id = ANY($1) GROUP BY status")
            .bind(ids)
            .fetch_all(pool)
            .await?;
    rows.into_iter()
        .map(|(status, n)| Ok((parse(&status)?, n)))
        .collect()
}

/// Projects newest first, optionally with one status, after the project `before` (the
/// cursor: ids are time-ordered UUIDv7), at most `limit`.
pub async fn list(
    pool: &PgPool,
    status: Option<ProjectStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Project>> {
    let rows = sqlx::query_as::<_, ProjectRow>(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects
          WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR id < $2)
          ORDER BY id DESC LIMIT $3"
    ))
    .bind(status.map(ProjectStatus::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(Project::try_from).collect()
}

/// Cancels a project that has not ended: its unstarted and awaiting tasks are cancelled,
/// and running ones too, so their late results are dropped by the completion fence.
pub async fn cancel(pool: &PgPool, id: Uuid) -> Result<Project> {
    let mut tx = pool.begin().await?;
    let status: Option<(String,)> =
        sqlx::query_as("SELECT status FROM projects WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((status,)) = status else {
        return Err(StoreError::NotFound("project"));
    };
    let status: ProjectStatus = parse(&status)?;
    if status.is_finished() {
        return Err(StoreError::Conflict(format!(
            "the project already ended: it is {status}"
        )));
    }
    sqlx::query(
        "WITH cancelled AS (
             UPDATE tasks SET status = 'cancelled', error = 'cancelled: the project was cancelled',
                              lease_expires_at = NULL
             WHERE project_id = $1 AND status IN ('blocked', 'ready', 'running', 'awaiting_approval')
             RETURNING id, key
         )
         INSERT INTO events (project_id, task_id, kind, data)
         SELECT $1, id, 'task_cancelled', jsonb_build_object('key', key) FROM cancelled",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE projects SET status = 'cancelled', finished_at = now(), error = 'cancelled by request'
         WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    events::record(
        &mut tx,
        id,
        &[NewEvent {
            task_id: None,
            kind: "project_cancelled",
            data: json!({}),
        }],
    )
    .await?;
    tx.commit().await?;
    get(pool, id).await?.ok_or(StoreError::NotFound("project"))
}
