//! `/projects`: create (from a template or a custom graph), list, read, plan, cancel.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guild_core::options::{MAX_DESCRIPTION_CHARS, MAX_STACK_CHARS, check_text};
use guild_core::{
    Plan, ProjectId, ProjectOptions, ProjectStatus, ProjectType, TaskStatus, WorkflowTask,
};
use guild_store::PgPool;
use guild_store::projects::{self, Created, Idempotency, NewProject, Project};
use guild_store::tasks;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem, Result};
use crate::extract::{ApiPath, ApiQuery, AppJson};
use crate::routes::plans::plan_of;
use crate::state::AppState;
use crate::views::{AgentUsageView, PlanSummary, ProjectPage, ProjectSummary, ProjectView};

/// A project to generate.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "A todo list app with user accounts and sharing", "project_type": "fullstack"}))]
pub struct CreateProject {
    /// What to build, in plain language (1 to 20,000 characters).
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    pub description: String,
    /// The workflow template; `fullstack` when absent. Ignored for planning when `workflow` is given.
    #[serde(default)]
    pub project_type: Option<ProjectType>,
    /// Preferred technology stack, e.g. "Python FastAPI" (at most 200 characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub technology_stack: Option<String>,
    /// A custom task graph replacing the template (at most 200 tasks).
    #[serde(default)]
    #[schema(max_items = 200)]
    pub workflow: Option<Vec<WorkflowTask>>,
    #[serde(default)]
    pub options: Option<ProjectOptions>,
}

/// The plan of a template on this server: with its verification stage when the
/// deployment verifies, without it otherwise.
pub(crate) fn template_plan(project_type: guild_core::ProjectType, verification: bool) -> Plan {
    let plan = project_type.template();
    if verification {
        plan
    } else {
        plan.without(guild_core::VERIFY)
    }
}

/// Checks a request and turns it into a plan (a template's without its verification stage
/// when this deployment does not verify), or names every invalid field at once.
fn validate(request: &CreateProject, verification: bool) -> Result<Plan> {
    let mut invalid: Vec<_> =
        check_text("description", &request.description, MAX_DESCRIPTION_CHARS)
            .into_iter()
            .collect();
    if let Some(stack) = request
        .technology_stack
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        invalid.extend(check_text("technology_stack", stack, MAX_STACK_CHARS));
    }
    let plan = match &request.workflow {
        None => template_plan(request.project_type.unwrap_or_default(), verification),
        Some(workflow) => match Plan::custom(workflow) {
            Ok(plan) => plan,
            Err(errors) => {
                invalid.extend(errors);
                return Err(ApiError::invalid_all(invalid));
            }
        },
    };
    if let Some(options) = &request.options {
        invalid.extend(options.check(&plan));
    }
    if invalid.is_empty() {
        Ok(plan)
    } else {
        Err(ApiError::invalid_all(invalid))
    }
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
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

pub(crate) async fn project_view(pool: &PgPool, project: Project) -> Result<ProjectView> {
    let tasks = tasks::list(pool, project.id).await?;
    let mut progress: BTreeMap<TaskStatus, i64> = BTreeMap::new();
    for task in &tasks {
        *progress.entry(task.status).or_insert(0) += 1;
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

pub(crate) async fn existing(pool: &PgPool, id: ProjectId) -> Result<Project> {
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
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200, description = "Makes retries of this request safe (1 to 200 characters, trimmed)")),
    request_body = CreateProject,
    responses(
        (status = 202, description = "Created; work has started", body = ProjectView,
         headers(("Location" = String, description = "The project's URL"))),
        (status = 200, description = "An earlier request with this Idempotency-Key created it", body = ProjectView),
        (status = 409, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or workflow", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_project(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(request): AppJson<CreateProject>,
) -> Result<Response> {
    let plan = validate(&request, state.verification)?;
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
            options: &options,
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
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is still pending or running", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_project(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
) -> Result<StatusCode> {
    guild_store::retention::delete_project(&state.pool, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListProjects {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// Only projects in this status.
    pub status: Option<ProjectStatus>,
}

/// List projects
///
/// Newest first, a page at a time.
#[utoipa::path(
    get, path = "/projects", operation_id = "list_projects", tag = "projects",
    params(ListProjects),
    responses(
        (status = 200, description = "A page of projects", body = ProjectPage),
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
            c.parse::<ProjectId>()
                .map_err(|_| ApiError::BadRequest("cursor is not one this API gave".into()))
        })
        .transpose()?;
    let items = projects::list(&state.pool, query.status, cursor, limit).await?;
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
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_project(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
) -> Result<axum::Json<ProjectView>> {
    let project = existing(&state.pool, id).await?;
    Ok(axum::Json(project_view(&state.pool, project).await?))
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
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project already ended", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_project(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
) -> Result<axum::Json<ProjectView>> {
    let project = projects::cancel(&state.pool, id).await?;
    Ok(axum::Json(project_view(&state.pool, project).await?))
}
