//! Sessions, agent figures, workflow templates, health and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guild_core::ProjectType;
use guild_store::sessions;

use crate::error::Result;
use crate::state::AppState;
use crate::views::{
    AgentList, Health, PlanSummary, SessionList, TemplateTask, WorkflowList, WorkflowView,
};

/// List agent sessions
///
/// One per worker slot and agent kind: current task, completed and failed counts, activity.
#[utoipa::path(
    get, path = "/sessions", operation_id = "list_sessions", tag = "agents",
    responses(
        (status = 200, description = "The sessions, most recently active first", body = SessionList),
    )
)]
pub async fn list_sessions(State(state): State<AppState>) -> Result<axum::Json<SessionList>> {
    let sessions = sessions::list(&state.pool).await?;
    Ok(axum::Json(SessionList { sessions }))
}

/// Figures per agent kind
///
/// Tasks completed and failed, mean and p95 duration of completed tasks, and tokens.
#[utoipa::path(
    get, path = "/agents", operation_id = "list_agents", tag = "agents",
    responses(
        (status = 200, description = "Figures per agent kind", body = AgentList),
    )
)]
pub async fn list_agents(State(state): State<AppState>) -> Result<axum::Json<AgentList>> {
    let agents = sessions::agent_stats(&state.pool).await?;
    Ok(axum::Json(AgentList { agents }))
}

/// List workflow templates
///
/// Each project type's task graph, phases and estimates, as this server plans it (with the
/// `verify` stage when its workers verify).
#[utoipa::path(
    get, path = "/workflows", operation_id = "list_workflows", tag = "projects",
    responses(
        (status = 200, description = "The templates", body = WorkflowList),
    )
)]
pub async fn list_workflows(State(state): State<AppState>) -> axum::Json<WorkflowList> {
    axum::Json(WorkflowList {
        workflows: ProjectType::ALL
            .iter()
            .map(|&project_type| {
                let plan = crate::routes::projects::template_plan(project_type, state.verification);
                WorkflowView {
                    project_type,
                    tasks: plan.tasks().iter().map(TemplateTask::from).collect(),
                    plan: PlanSummary::from(&plan),
                }
            })
            .collect(),
    })
}

/// Liveness
///
/// The process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health", responses((status = 200, description = "The status", body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// Readiness
///
/// The database answers.
#[utoipa::path(
    get, path = "/readyz", operation_id = "readyz", tag = "health",
    responses((status = 200, description = "The status", body = Health), (status = 503, description = "The database does not answer", body = Health))
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        guild_store::ping(&state.pool),
    )
    .await;
    match probe {
        Ok(Ok(())) => (
            StatusCode::OK,
            axum::Json(Health {
                status: "ok".into(),
            }),
        )
            .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Health {
                status: "database unavailable".into(),
            }),
        )
            .into_response(),
    }
}
