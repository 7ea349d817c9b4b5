//! `/projects`: create (from a template or a custom graph), list, read, plan, cancel.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guild_core::{AgentKind, Plan, ProjectStatus, ProjectType, TaskSpec};
use guild_store::PgPool;
use guild_store::projects::{self, Created, Idempotency, NewProject, Project};
use guild_store::tasks::{self, Task};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, FieldError, Problem, Result};
use crate::extract::{ApiPath, ApiQuery, AppJson};
use crate::state::AppState;
use crate::views::{
    AgentUsageView, PlanNode, PlanSummary, PlanView, ProjectPage, ProjectSummary, ProjectView,
};

/// The largest `options.max_tokens`.
const MAX_TOKENS_BUDGET: u64 = 1_000_000_000_000;
/// The largest `options.max_cost_usd`.
const MAX_COST_BUDGET_USD: f64 = 100_000.0;

/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// Most tasks a custom workflow may have.
pub const MAX_WORKFLOW_TASKS: usize = 200;

/// A project to generate.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "A todo list app with user accounts and sharing", "project_type": "fullstack"}))]
pub struct CreateProject {
    /// What to build, in plain language (1 to 20,000 characters).
    pub description: String,
    /// The workflow template; `fullstack` when absent. Ignored for planning when `workflow` is given.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "fullstack")]
    pub project_type: Option<ProjectType>,
    /// Preferred technology stack, e.g. "Python FastAPI".
    #[serde(default)]
    pub technology_stack: Option<String>,
    /// A custom task graph replacing the template.
    #[serde(default)]
    pub workflow: Option<Vec<WorkflowTask>>,
    #[serde(default)]
    pub options: Option<ProjectOptions>,
}

/// One task of a custom workflow.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowTask {
    /// Unique in the graph: 1 to 64 of a-z, 0-9, _.
    pub key: String,
    /// The task type, which picks the prompt template; the key when absent.
    #[serde(default)]
    pub kind: Option<String>,
    #[schema(value_type = String, example = "backend")]
    pub agent: AgentKind,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Lower runs first among ready tasks (default 3).
    #[serde(default)]
    pub priority: Option<i16>,
    /// A failed critical task fails the project (default false).
    #[serde(default)]
    pub critical: Option<bool>,
    /// Default 30.
    #[serde(default)]
    pub estimated_minutes: Option<u32>,
    /// Attempts this task gets before it fails for good (1 to 10); the project's when
    /// absent.
    #[serde(default)]
    pub max_attempts: Option<u16>,
}

/// Options of a project.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectOptions {
    /// Task keys that wait for a human's approval after they run.
    #[serde(default)]
    pub require_approval: Vec<String>,
    /// Attempts per task before it fails for good (1 to 10).
    #[serde(default)]
    pub max_attempts: Option<u16>,
    /// At most this many of the project's tasks run at once (1 to 1000); unset, as many
    /// as the workers have slots for.
    #[serde(default)]
    pub max_parallel: Option<u16>,
    /// Most tokens (prompt and completion) the project's model calls may use, 1 to 10^12.
    /// Each call's worst case (its prompt and whole completion allowance) is checked
    /// before it is made; a call that would pass it is not made, its task fails with
    /// `budget_exceeded` and the project stops. Unset: the server's `GUILD_MAX_TOKENS`.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Most US dollars the project's model calls may cost (over 0, at most 100000),
    /// checked like `max_tokens`. A model without a known price cannot be used under it.
    /// Unset: the server's `GUILD_MAX_COST_USD`.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    /// Answer identical model calls at temperature 0 from the response cache, at no cost
    /// (default true).
    #[serde(default)]
    pub cache: Option<bool>,
    /// Fix rounds per review (0 to 5, default 1): a `code_review` or `security_audit` with
    /// blocking (critical or high) findings adds a fix task for each agent that owns a file
    /// at fault and a re-review after them, at most this many times. 0 turns the loop off.
    #[serde(default)]
    pub max_fix_rounds: Option<u8>,
}

/// PostgreSQL text cannot hold NUL: refuse it at the edge rather than fail in the database.
pub(crate) fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(ApiError::invalid(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Checks a request and turns it into a plan, or names every invalid field.
fn validate(request: &CreateProject) -> Result<Plan> {
    no_nul("description", &request.description)?;
    if let Some(stack) = &request.technology_stack {
        no_nul("technology_stack", stack)?;
    }
    for (i, task) in request.workflow.iter().flatten().enumerate() {
        if let Some(description) = &task.description {
            no_nul(&format!("workflow[{i}].description"), description)?;
        }
    }
    let description = request.description.trim();
    if description.is_empty() {
        return Err(ApiError::invalid("description", "must not be empty"));
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::invalid(
            "description",
            "must be at most 20000 characters",
        ));
    }
    if request
        .technology_stack
        .as_ref()
        .is_some_and(|s| s.chars().count() > 200)
    {
        return Err(ApiError::invalid(
            "technology_stack",
            "must be at most 200 characters",
        ));
    }
    let plan = match &request.workflow {
        None => request.project_type.unwrap_or_default().template(),
        Some(workflow) => custom_plan(workflow)?,
    };
    let options = request.options.as_ref();
    if let Some(options) = options {
        let unknown: Vec<&String> = options
            .require_approval
            .iter()
            .filter(|key| !plan.tasks().iter().any(|t| &t.key == *key))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::invalid(
                "options.require_approval",
                format!("not tasks of this project: {}", join(&unknown)),
            ));
        }
        if options.max_fix_rounds.is_some_and(|n| n > 5) {
            return Err(ApiError::invalid(
                "options.max_fix_rounds",
                "must be from 0 to 5",
            ));
        }
        if options.max_attempts.is_some_and(|n| !(1..=10).contains(&n)) {
            return Err(ApiError::invalid(
                "options.max_attempts",
                "must be from 1 to 10",
            ));
        }
        if options
            .max_parallel
            .is_some_and(|n| !(1..=1000).contains(&n))
        {
            return Err(ApiError::invalid(
                "options.max_parallel",
                "must be from 1 to 1000",
            ));
        }
        if options
            .max_tokens
            .is_some_and(|n| !(1..=MAX_TOKENS_BUDGET).contains(&n))
        {
            return Err(ApiError::invalid(
                "options.max_tokens",
                "must be from 1 to 1000000000000",
            ));
        }
        if options
            .max_cost_usd
            .is_some_and(|usd| !(usd > 0.0 && usd <= MAX_COST_BUDGET_USD))
        {
            return Err(ApiError::invalid(
                "options.max_cost_usd",
                "must be over 0 and at most 100000",
            ));
        }
    }
    Ok(plan)
}

fn join(keys: &[&String]) -> String {
    keys.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn custom_plan(workflow: &[WorkflowTask]) -> Result<Plan> {
    if workflow.len() > MAX_WORKFLOW_TASKS {
        return Err(ApiError::invalid("workflow", "must have at most 200 tasks"));
    }
    let mut errors = Vec::new();
    for (i, task) in workflow.iter().enumerate() {
        if let Some(kind) = &task.kind
            && !guild_core::is_valid_key(kind)
        {
            errors.push(FieldError {
                field: format!("workflow[{i}].kind"),
                reason: "use 1 to 64 of a-z, 0-9, _".into(),
            });
        }
        if task
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2000)
        {
            errors.push(FieldError {
                field: format!("workflow[{i}].description"),
                reason: "must be at most 2000 characters".into(),
            });
        }
        if task.max_attempts.is_some_and(|n| !(1..=10).contains(&n)) {
            errors.push(FieldError {
                field: format!("workflow[{i}].max_attempts"),
                reason: "must be from 1 to 10".into(),
            });
        }
        if task.estimated_minutes.is_some_and(|m| m > 100_000) {
            errors.push(FieldError {
                field: format!("workflow[{i}].estimated_minutes"),
                reason: "must be at most 100000".into(),
            });
        }
    }
    if !errors.is_empty() {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::Validation { detail, errors });
    }
    let specs = workflow
        .iter()
        .map(|t| TaskSpec {
            key: t.key.clone(),
            kind: t.kind.clone().unwrap_or_else(|| t.key.clone()),
            agent: t.agent,
            description: t
                .description
                .clone()
                .unwrap_or_else(|| format!("Complete `{}`", t.key)),
            depends_on: t.depends_on.clone(),
            priority: t.priority.unwrap_or(3),
            critical: t.critical.unwrap_or(false),
            estimated_minutes: t.estimated_minutes.unwrap_or(30),
            max_attempts: t.max_attempts,
        })
        .collect();
    Plan::new(specs).map_err(|errors| ApiError::Validation {
        detail: format!("workflow: {errors}"),
        errors: errors
            .problems()
            .iter()
            .flat_map(|problem| {
                problem.keys().into_iter().map(move |key| FieldError {
                    field: "workflow".into(),
                    reason: format!("`{key}`: {problem}"),
                })
            })
            .collect(),
    })
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=200).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1 to 200 visible ASCII characters".into())
        })?;
    Ok(Some(key.to_owned()))
}

/// The plan of a stored project, from its tasks.
pub(crate) fn plan_of(tasks: &[Task]) -> Result<Plan> {
    let specs = tasks
        .iter()
        .map(|t| TaskSpec {
            key: t.key.clone(),
            kind: t.kind.clone(),
            agent: t.agent,
            description: t.description.clone(),
            depends_on: t.depends_on.clone(),
            priority: t.priority,
            critical: t.critical,
            estimated_minutes: t.estimated_minutes.max(0) as u32,
            max_attempts: u16::try_from(t.max_attempts).ok(),
        })
        .collect();
    Plan::new(specs).map_err(|error| {
        tracing::error!(%error, "a stored graph does not plan");
        ApiError::Internal
    })
}

pub(crate) async fn project_view(pool: &PgPool, project: Project) -> Result<ProjectView> {
    let tasks = tasks::list(pool, project.id).await?;
    let mut progress = BTreeMap::new();
    for task in &tasks {
        *progress.entry(task.status.as_str().to_owned()).or_insert(0) += 1;
    }
    let plan = plan_of(&tasks)?;
    Ok(ProjectView {
        options: project.options.clone(),
        requirements: project.requirements.clone(),
        progress,
        plan: PlanSummary::from(&plan),
        usage_by_agent: projects::usage_by_agent(&tasks)
            .into_iter()
            .map(|a| AgentUsageView {
                agent: a.agent,
                usage: a.usage.into(),
            })
            .collect(),
        summary: project.into(),
    })
}

pub(crate) async fn existing(pool: &PgPool, id: Uuid) -> Result<Project> {
    projects::get(pool, id)
        .await?
        .ok_or(ApiError::NotFound("project"))
}

/// Create a project
///
/// Plans the project's task graph and stores it with the project in one transaction; the
/// workers start at once. With an `Idempotency-Key`, repeating the same request returns the
/// first project (200) and the same key with another body is a conflict.
#[utoipa::path(
    post, path = "/projects", operation_id = "create_project", tag = "projects",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this request safe")),
    request_body = CreateProject,
    responses(
        (status = 202, description = "Created; work has started", body = ProjectView,
         headers(("Location" = String, description = "The project's URL"))),
        (status = 200, description = "An earlier request with this Idempotency-Key created it", body = ProjectView),
        (status = 400, description = "Malformed JSON or header", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or workflow", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(request): AppJson<CreateProject>,
) -> Result<Response> {
    let plan = validate(&request)?;
    let key = idempotency_key(&headers)?;
    let request_hash: String = Sha256::digest(serde_json::to_vec(&request).unwrap_or_default())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut options = request.options.unwrap_or_default();
    options.max_tokens = options.max_tokens.or(state.default_max_tokens);
    options.max_cost_usd = options.max_cost_usd.or(state.default_max_cost_usd);
    let max_attempts = options
        .max_attempts
        .map_or(state.default_max_attempts, i32::from);
    let created = projects::create(
        &state.pool,
        NewProject {
            description: request.description.trim(),
            project_type: request.project_type.unwrap_or_default(),
            technology_stack: request
                .technology_stack
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty()),
            options: serde_json::to_value(&options).unwrap_or_default(),
            plan: &plan,
            max_attempts,
            idempotency: key.as_deref().map(|key| Idempotency {
                key,
                request_hash: &request_hash,
            }),
        },
    )
    .await?;
    let (status, project) = match created {
        Created::New(project) => (StatusCode::ACCEPTED, project),
        Created::Existing(project) => (StatusCode::OK, project),
    };
    let location = format!("/projects/{}", project.id);
    let view = project_view(&state.pool, project).await?;
    Ok((status, [(header::LOCATION, location)], axum::Json(view)).into_response())
}

/// Delete a project
///
/// Removes a finished (completed, failed or cancelled) project and everything it owns:
/// tasks, events, files. A pending or running project must be cancelled first.
#[utoipa::path(
    delete, path = "/projects/{id}", operation_id = "delete_project", tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is still pending or running", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_project(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    guild_store::retention::delete_project(&state.pool, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListProjects {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only projects in this status.
    pub status: Option<String>,
}

/// List projects
///
/// Newest first, a page at a time.
#[utoipa::path(
    get, path = "/projects", operation_id = "list_projects", tag = "projects",
    params(ListProjects),
    responses(
        (status = 200, description = "A page of projects", body = ProjectPage),
        (status = 400, description = "Invalid limit, cursor or status", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_projects(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListProjects>,
) -> Result<axum::Json<ProjectPage>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be from 1 to 100".into()));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<Uuid>()
                .map_err(|_| ApiError::BadRequest("cursor is not one this API gave".into()))
        })
        .transpose()?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            s.parse::<ProjectStatus>()
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        })
        .transpose()?;
    let items = projects::list(&state.pool, status, cursor, limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|p| p.id.to_string()))
        .flatten();
    Ok(axum::Json(ProjectPage {
        items: items.into_iter().map(ProjectSummary::from).collect(),
        next_cursor,
    }))
}

/// Get a project
///
/// Its status, progress (task counts by status), plan figures, usage and error.
#[utoipa::path(
    get, path = "/projects/{id}", operation_id = "get_project", tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "The project", body = ProjectView),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_project(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<ProjectView>> {
    let project = existing(&state.pool, id).await?;
    Ok(axum::Json(project_view(&state.pool, project).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanFormat {
    /// `mermaid` for a Mermaid diagram (same as `Accept: text/vnd.mermaid`).
    pub format: Option<String>,
}

/// Get a project's plan
///
/// The task graph with each task's status, as JSON or as a Mermaid `graph TD`.
#[utoipa::path(
    get, path = "/projects/{id}/plan", operation_id = "get_plan", tag = "projects",
    params(("id" = Uuid, Path, description = "Project id"), PlanFormat),
    responses(
        (status = 200, description = "The plan", body = PlanView, content(
            (PlanView = "application/json"),
            (String = "text/vnd.mermaid", example = "graph TD\n  database_schema[\"database_schema<br/>backend\"]:::completed")
        )),
        (status = 400, description = "Invalid id or format", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_plan(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<PlanFormat>,
    headers: HeaderMap,
) -> Result<Response> {
    let mermaid = match query.format.as_deref() {
        Some("mermaid") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown format `{other}`: use json or mermaid"
            )));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/vnd.mermaid")),
    };
    let tasks = tasks::list(&state.pool, id).await?;
    if tasks.is_empty() {
        return Err(ApiError::NotFound("project"));
    }
    let plan = plan_of(&tasks)?;
    if mermaid {
        return Ok((
            [(header::CONTENT_TYPE, "text/vnd.mermaid; charset=utf-8")],
            mermaid_graph(&tasks),
        )
            .into_response());
    }
    let nodes = tasks
        .iter()
        .map(|t| PlanNode {
            key: t.key.clone(),
            agent: t.agent,
            status: t.status,
            depends_on: t.depends_on.clone(),
            priority: t.priority,
            critical: t.critical,
            estimated_minutes: t.estimated_minutes,
        })
        .collect();
    Ok(axum::Json(PlanView {
        nodes,
        summary: PlanSummary::from(&plan),
    })
    .into_response())
}

/// A Mermaid `graph TD`: a node per task labelled with its agent and styled by status, an
/// edge from each dependency to its dependent.
fn mermaid_graph(tasks: &[Task]) -> String {
    let mut out = String::from("graph TD\n");
    for task in tasks {
        out.push_str(&format!(
            "  {key}[\"{key}<br/>{agent}\"]:::{status}\n",
            key = task.key,
            agent = task.agent,
            status = task.status
        ));
    }
    for task in tasks {
        for dep in &task.depends_on {
            out.push_str(&format!("  {dep} --> {}\n", task.key));
        }
    }
    for (status, style) in [
        ("blocked", "fill:#eeeeee"),
        ("ready", "fill:#fff3cd"),
        ("running", "fill:#cfe2ff"),
        ("awaiting_approval", "fill:#e2d9f3"),
        ("completed", "fill:#d1e7dd"),
        ("failed", "fill:#f8d7da"),
        ("skipped", "fill:#f5f5f5,stroke-dasharray: 3"),
        ("cancelled", "fill:#f5f5f5"),
    ] {
        out.push_str(&format!("  classDef {status} {style}\n"));
    }
    out
}

/// Cancel a project
///
/// Unstarted and waiting tasks are cancelled; running tasks are cancelled too, so their
/// results are dropped when they finish.
#[utoipa::path(
    post, path = "/projects/{id}/cancel", operation_id = "cancel_project", tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "Cancelled", body = ProjectView),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project already ended", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_project(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<ProjectView>> {
    let project = projects::cancel(&state.pool, id).await?;
    Ok(axum::Json(project_view(&state.pool, project).await?))
}
