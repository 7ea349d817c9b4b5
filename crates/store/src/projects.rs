//! Projects: creating one with its whole task graph, and reading it back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use guild_core::{
    AgentKind, EventKind, Plan, ProjectId, ProjectOptions, ProjectStatus, ProjectType, TaskId,
    TaskStatus,
};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use crate::events::{self, NewEvent};
use crate::listener::notify_ready;
use crate::locks::lock_project;
use crate::{Result, StoreError};

/// A project to create.
#[derive(Debug, Clone)]
pub struct NewProject<'a> {
    pub description: &'a str,
    pub project_type: ProjectType,
    pub technology_stack: Option<&'a str>,
    pub options: &'a ProjectOptions,
    pub plan: &'a Plan,
    /// Attempts per task before it fails for good, when neither the task nor the options
    /// say.
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

/// A stored project, decoded straight from its row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Project {
    pub id: ProjectId,
    pub description: String,
    pub project_type: ProjectType,
    pub technology_stack: Option<String>,
    pub status: ProjectStatus,
    pub options: Value,
    pub requirements: Option<Value>,
    pub error: Option<String>,
    /// What the project's model calls used.
    #[sqlx(flatten)]
    pub usage: Usage,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// 1 for the first generation, one more per change request.
    pub revision: i32,
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
    /// Prompt tokens the provider's prompt cache served (part of `prompt_tokens`).
    pub cached_prompt_tokens: i64,
    /// Prompt tokens written to the provider's prompt cache (part of `prompt_tokens`).
    pub cache_write_tokens: i64,
}

impl Usage {
    /// Nothing used yet, at a known cost of zero.
    fn zero() -> Self {
        Self {
            cost_usd: Some(0.0),
            ..Self::default()
        }
    }

    /// Adds `other`; an unknown cost makes the sum's cost unknown.
    fn add(&mut self, other: &Self) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost_usd = self.cost_usd.zip(other.cost_usd).map(|(a, b)| a + b);
        self.llm_calls += other.llm_calls;
        self.cache_hits += other.cache_hits;
        self.cached_prompt_tokens += other.cached_prompt_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }
}

/// A project's usage by agent kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentUsage {
    pub agent: AgentKind,
    #[serde(flatten)]
    pub usage: Usage,
}

/// A project's usage by agent kind, from its tasks: the sums of theirs, by agent name.
pub fn usage_by_agent(tasks: &[crate::tasks::Task]) -> Vec<AgentUsage> {
    let mut by_agent: BTreeMap<AgentKind, Usage> = BTreeMap::new();
    for task in tasks {
        by_agent
            .entry(task.agent)
            .or_insert_with(Usage::zero)
            .add(&task.usage);
    }
    let mut by_agent: Vec<AgentUsage> = by_agent
        .into_iter()
        .map(|(agent, usage)| AgentUsage { agent, usage })
        .collect();
    by_agent.sort_by_key(|a| a.agent.as_str());
    by_agent
}

/// The columns of [`Project`], as a literal so queries stay static strings.
macro_rules! project_columns {
    () => {
        "id, description, project_type, technology_stack, status, options, requirements, \
         error, prompt_tokens, completion_tokens, cost_usd::float8 AS cost_usd, llm_calls, \
         cached_prompt_tokens, cache_write_tokens, \
         cache_hits, created_at, started_at, finished_at, revision"
    };
}

/// Creates the project and its whole task graph in one transaction, and wakes the workers.
/// With an idempotency key already used, returns that project when the request is the same.
///
/// # Errors
///
/// [`StoreError::Conflict`] when the idempotency key was used with another request; a
/// database error otherwise.
#[tracing::instrument(skip_all, fields(tasks = new.plan.tasks().len()), err(level = "debug"))]
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
    let row = sqlx::query_as::<_, (ProjectId, Option<String>)>(
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
    let project_id = ProjectId::new();
    let options = serde_json::to_value(new.options).expect("options serialise");
    let mut tx = pool.begin().await?;
    let project = sqlx::query_as::<_, Project>(concat!(
        "INSERT INTO projects (id, description, project_type, technology_stack, options,
                               idempotency_key, request_hash, max_attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING ",
        project_columns!()
    ))
    .bind(project_id)
    .bind(new.description)
    .bind(new.project_type)
    .bind(new.technology_stack)
    .bind(&options)
    .bind(new.idempotency.map(|i| i.key))
    .bind(new.idempotency.map(|i| i.request_hash))
    .bind(new.max_attempts)
    .fetch_one(&mut *tx)
    .await?;
    insert_graph(&mut tx, project_id, new.plan, new.max_attempts).await?;
    sqlx::query(
        "INSERT INTO revisions (project_id, number, description, options) VALUES ($1, 1, $2, $3)",
    )
    .bind(project_id)
    .bind(new.description)
    .bind(&options)
    .execute(&mut *tx)
    .await?;
    events::record(
        &mut tx,
        project_id,
        &[NewEvent {
            task_id: None,
            kind: EventKind::ProjectCreated,
            data: json!({
                // The template it was planned from, or `custom`: a custom workflow has no
                // project type of its own.
                "workflow": new.plan.template().map_or("custom", ProjectType::as_str),
                "tasks": new.plan.tasks().len(),
                "phases": new.plan.phases().len(),
                "estimated_minutes": new.plan.total_minutes(),
                "critical_path_minutes": new.plan.critical_path_minutes(),
            }),
        }],
    )
    .await?;
    notify_ready(&mut tx).await?;
    tx.commit().await?;
    Ok(project)
}

/// Stores a plan's tasks and their dependencies, two statements whatever its size.
async fn insert_graph(
    conn: &mut PgConnection,
    project_id: ProjectId,
    plan: &Plan,
    max_attempts: i32,
) -> Result<()> {
    let ids: BTreeMap<&str, TaskId> = plan
        .tasks()
        .iter()
        .map(|t| (t.key.as_str(), TaskId::new()))
        .collect();
    insert_tasks(&mut *conn, project_id, plan, &ids, max_attempts).await?;
    let (dependents, dependencies): (Vec<TaskId>, Vec<TaskId>) = plan
        .tasks()
        .iter()
        .flat_map(|t| {
            let task_id = ids[t.key.as_str()];
            t.depends_on.iter().map(move |d| (task_id, d))
        })
        .map(|(task_id, dep)| (task_id, ids[dep.as_str()]))
        .unzip();
    sqlx::query(
        "INSERT INTO task_dependencies (task_id, depends_on)
         SELECT * FROM unnest($1::uuid[], $2::uuid[])",
    )
    .bind(dependents)
    .bind(dependencies)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a plan's tasks with their `ids`. Tasks without dependencies are ready and queue
/// a second apart (see the scheduling migration).
async fn insert_tasks(
    conn: &mut PgConnection,
    project_id: ProjectId,
    plan: &Plan,
    ids: &BTreeMap<&str, TaskId>,
    max_attempts: i32,
) -> Result<()> {
    let tasks = plan.tasks();
    let status = |deps: &[String]| {
        if deps.is_empty() {
            TaskStatus::Ready
        } else {
            TaskStatus::Blocked
        }
    };
    sqlx::query(
        "INSERT INTO tasks (id, project_id, key, kind, agent, description, priority, critical,
                            estimated_minutes, pending_deps, status, max_attempts, queue_at)
         SELECT t.id, $1, t.key, t.kind, t.agent, t.description, t.priority, t.critical,
                t.minutes, t.pending, t.status, coalesce(t.max_attempts, $12),
                now() + (row_number() OVER (PARTITION BY t.status ORDER BY t.priority, t.key) - 1)
                        * interval '1 second'
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int2[],
                     $8::bool[], $9::int4[], $10::int4[], $11::text[], $13::int4[])
              AS t(id, key, kind, agent, description, priority, critical, minutes, pending, status,
                   max_attempts)",
    )
    .bind(project_id)
    .bind(
        tasks
            .iter()
            .map(|t| ids[t.key.as_str()])
            .collect::<Vec<_>>(),
    )
    .bind(tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>())
    .bind(tasks.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>())
    .bind(tasks.iter().map(|t| t.agent).collect::<Vec<_>>())
    .bind(
        tasks
            .iter()
            .map(|t| t.description.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(tasks.iter().map(|t| t.priority).collect::<Vec<_>>())
    .bind(tasks.iter().map(|t| t.critical).collect::<Vec<_>>())
    .bind(
        tasks
            .iter()
            .map(|t| i32::try_from(t.estimated_minutes).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
    )
    .bind(
        tasks
            .iter()
            .map(|t| i32::try_from(t.depends_on.len()).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
    )
    .bind(
        tasks
            .iter()
            .map(|t| status(&t.depends_on))
            .collect::<Vec<_>>(),
    )
    .bind(max_attempts)
    .bind(
        tasks
            .iter()
            .map(|t| t.max_attempts.map(i32::from))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One project, if it exists.
///
/// # Errors
///
/// A database error.
pub async fn get(pool: &PgPool, id: ProjectId) -> Result<Option<Project>> {
    let project = sqlx::query_as::<_, Project>(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(project)
}

/// How many of a project's tasks are in each status (statuses with none are left out).
///
/// # Errors
///
/// A database error.
pub async fn task_counts(pool: &PgPool, id: ProjectId) -> Result<Vec<(TaskStatus, i64)>> {
    let mut counts: Vec<(TaskStatus, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM tasks WHERE project_id = $1 GROUP BY status")
            .bind(id)
            .fetch_all(pool)
            .await?;
    counts.sort_by_key(|(status, _)| *status);
    Ok(counts)
}

/// How many of the projects `ids` are in each status (statuses with none are left out).
///
/// # Errors
///
/// A database error.
pub async fn status_counts(pool: &PgPool, ids: &[ProjectId]) -> Result<Vec<(ProjectStatus, i64)>> {
    let counts =
        sqlx::query_as("SELECT status, count(*) FROM projects WHERE id = ANY($1) GROUP BY status")
            .bind(ids)
            .fetch_all(pool)
            .await?;
    Ok(counts)
}

/// Projects newest first, optionally with one status, after the project `before` (the
/// cursor: ids are time-ordered UUIDv7), at most `limit`.
///
/// # Errors
///
/// A database error.
pub async fn list(
    pool: &PgPool,
    status: Option<ProjectStatus>,
    before: Option<ProjectId>,
    limit: i64,
) -> Result<Vec<Project>> {
    let projects = sqlx::query_as::<_, Project>(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects
          WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR id < $2)
          ORDER BY id DESC LIMIT $3"
    ))
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(projects)
}

/// Cancels a project that has not ended: its unstarted and awaiting tasks are cancelled,
/// and running ones too, so their late results are dropped by the completion fence.
///
/// # Errors
///
/// [`StoreError::NotFound`] when there is no such project; [`StoreError::Conflict`] when
/// it already ended; a database error otherwise.
#[tracing::instrument(skip(pool), err(level = "debug"))]
pub async fn cancel(pool: &PgPool, id: ProjectId) -> Result<Project> {
    let mut tx = pool.begin().await?;
    let status = lock_project(&mut tx, id).await?;
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
         SELECT $1, id, $2, jsonb_build_object('key', key) FROM cancelled",
    )
    .bind(id)
    .bind(EventKind::TaskCancelled)
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
            kind: EventKind::ProjectCancelled,
            data: json!({}),
        }],
    )
    .await?;
    tx.commit().await?;
    get(pool, id).await?.ok_or(StoreError::NotFound("project"))
}
