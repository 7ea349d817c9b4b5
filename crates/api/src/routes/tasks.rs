//! `/projects/{id}/tasks`: the graph's tasks, and the human controls on them.

use axum::extract::State;
use guild_core::options::MAX_FEEDBACK_CHARS;
use guild_core::{ProjectId, TaskId, TaskStatus};
use guild_store::files;
use guild_store::oversight;
use guild_store::tasks::{self, Task};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem, Result};
use crate::extract::{ApiPath, ApiQuery, AppJson};
use crate::routes::projects::existing;
use crate::state::AppState;
use crate::views::{FileView, TaskDetail, TaskList, TaskView};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
}

/// List a project's tasks
///
/// The graph's tasks by priority then key: what clients poll to follow a project.
#[utoipa::path(
    get, path = "/projects/{id}/tasks", operation_id = "list_tasks", tag = "tasks",
    params(("id" = Uuid, Path, description = "Project id"), TaskFilter),
    responses(
        (status = 200, description = "The tasks", body = TaskList),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    ApiQuery(filter): ApiQuery<TaskFilter>,
) -> Result<axum::Json<TaskList>> {
    let tasks = tasks::list_filtered(&state.pool, id, None, filter.status).await?;
    // Every project has tasks: an empty answer is a missing project or an empty filter.
    if tasks.is_empty() {
        existing(&state.pool, id).await?;
    }
    Ok(axum::Json(TaskList {
        tasks: tasks.iter().map(TaskView::from).collect(),
    }))
}

async fn task(state: &AppState, project_id: ProjectId, task_id: TaskId) -> Result<Task> {
    tasks::get(&state.pool, project_id, task_id)
        .await?
        .ok_or(ApiError::NotFound("task"))
}

async fn detail(
    state: &AppState,
    project_id: ProjectId,
    task_id: TaskId,
) -> Result<axum::Json<TaskDetail>> {
    let task = task(state, project_id, task_id).await?;
    let files = files::written_by(&state.pool, task_id).await?;
    Ok(axum::Json(TaskDetail {
        task: TaskView::from(&task),
        result: task.result,
        files: files.into_iter().map(FileView::from).collect(),
    }))
}

/// Get a task
///
/// One task with its result and every file version it wrote.
#[utoipa::path(
    get, path = "/projects/{id}/tasks/{task_id}", operation_id = "get_task", tag = "tasks",
    params(("id" = Uuid, Path, description = "Project id"), ("task_id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = TaskDetail),
        (status = 404, description = "No such task in this project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    ApiPath((id, task_id)): ApiPath<(ProjectId, TaskId)>,
) -> Result<axum::Json<TaskDetail>> {
    detail(&state, id, task_id).await
}

/// Retry a task
///
/// Re-runs a failed, skipped or cancelled task with a fresh budget of attempts, re-opens its
/// skipped or cancelled dependents (and, when the project had failed, the tasks its failure
/// cancelled), and sets the project running again.
#[utoipa::path(
    post, path = "/projects/{id}/tasks/{task_id}/retry", operation_id = "retry_task", tag = "tasks",
    params(("id" = Uuid, Path, description = "Project id"), ("task_id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "Queued again", body = TaskDetail),
        (status = 404, description = "No such task in this project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not failed, skipped or cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry_task(
    State(state): State<AppState>,
    ApiPath((id, task_id)): ApiPath<(ProjectId, TaskId)>,
) -> Result<axum::Json<TaskDetail>> {
    oversight::retry(&state.pool, id, task_id).await?;
    detail(&state, id, task_id).await
}

/// Approve a task
///
/// A task listed in `options.require_approval` waits in `awaiting_approval` after it runs;
/// approving completes it and releases its dependents.
#[utoipa::path(
    post, path = "/projects/{id}/tasks/{task_id}/approve", operation_id = "approve_task", tag = "tasks",
    params(("id" = Uuid, Path, description = "Project id"), ("task_id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "Approved and completed", body = TaskDetail),
        (status = 404, description = "No such task in this project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not awaiting approval", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn approve_task(
    State(state): State<AppState>,
    ApiPath((id, task_id)): ApiPath<(ProjectId, TaskId)>,
) -> Result<axum::Json<TaskDetail>> {
    oversight::approve(&state.pool, id, task_id).await?;
    detail(&state, id, task_id).await
}

/// Why a result was rejected.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"feedback": "Use PATCH for partial updates, not PUT."}))]
pub struct Rejection {
    /// What the agent must change (1 to 10,000 characters); shown in its next prompt.
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
    pub feedback: String,
}

/// Reject a task
///
/// Sends a task waiting for approval back to run again, with the feedback in its prompt.
#[utoipa::path(
    post, path = "/projects/{id}/tasks/{task_id}/reject", operation_id = "reject_task", tag = "tasks",
    params(("id" = Uuid, Path, description = "Project id"), ("task_id" = Uuid, Path, description = "Task id")),
    request_body = Rejection,
    responses(
        (status = 200, description = "Queued again with the feedback", body = TaskDetail),
        (status = 404, description = "No such task in this project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not awaiting approval", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing, empty or too long feedback", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reject_task(
    State(state): State<AppState>,
    ApiPath((id, task_id)): ApiPath<(ProjectId, TaskId)>,
    AppJson(rejection): AppJson<Rejection>,
) -> Result<axum::Json<TaskDetail>> {
    if let Some(invalid) =
        guild_core::options::check_text("feedback", &rejection.feedback, MAX_FEEDBACK_CHARS)
    {
        return Err(ApiError::invalid_all(vec![invalid]));
    }
    let feedback = rejection.feedback.trim();
    oversight::reject(&state.pool, id, task_id, feedback).await?;
    detail(&state, id, task_id).await
}
