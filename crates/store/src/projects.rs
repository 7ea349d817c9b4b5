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
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
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
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_usd: Option<f64>,
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
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            cost_usd: row.cost_usd,
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
         error, prompt_tokens, completion_tokens, cost_usd::float8 AS cost_usd, created_at, \
         started_at, finished_at"
    };
}

/// Creates the project and its whole task graph in one transaction, and wakes the workers.
pub async fn create(pool: &PgPool, new: NewProject<'_>) -> Result<Project> {
    let project_id = Uuid::now_v7();
    let tasks = new.plan.tasks();
    let task_ids: HashMap<&str, Uuid> = tasks
        .iter()
        .map(|t| (t.key.as_str(), Uuid::now_v7()))
        .collect();

    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, ProjectRow>(concat!(
        "INSERT INTO projects (id, description, project_type, technology_stack, options)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING ",
        project_columns!()
    ))
    .bind(project_id)
    .bind(new.description)
    .bind(new.project_type.as_str())
    .bind(new.technology_stack)
    .bind(&new.options)
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
                            estimated_minutes, pending_deps, status, max_attempts)
         SELECT t.id, $1, t.key, t.kind, t.agent, t.description, t.priority, t.critical,
                t.minutes, t.pending, t.status, $12
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int2[],
                     $8::bool[], $9::int4[], $10::int4[], $11::text[])
              AS t(id, key, kind, agent, description, priority, critical, minutes, pending, status)",
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
                "project_type": new.project_type.as_str(),
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
