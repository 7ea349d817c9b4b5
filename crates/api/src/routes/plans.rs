//! `/projects/{id}/plan`: a project's task graph with each task's status, as JSON or as a
//! Mermaid diagram.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use guild_core::{Plan, ProjectId, TaskSpec};
use guild_store::tasks::{self, Task};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem, Result};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::views::{PlanNode, PlanSummary, PlanView};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanFormat {
    /// `mermaid` for a Mermaid diagram (same as `Accept: text/vnd.mermaid`); `json` by
    /// default.
    #[param(inline)]
    pub format: Option<Format>,
}

/// How a plan is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Json,
    Mermaid,
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
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_plan(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    ApiQuery(query): ApiQuery<PlanFormat>,
    headers: HeaderMap,
) -> Result<Response> {
    let mermaid = match query.format {
        Some(Format::Mermaid) => true,
        Some(Format::Json) => false,
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
