//! `/projects/{id}/design`: the design every task of the project is held to.

use axum::extract::State;
use chrono::{DateTime, Utc};
use guild_core::{ProjectId, TaskId};
use guild_design::Design;
use guild_store::designs;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem, Result};
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::projects::existing;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DesignQuery {
    /// An earlier version; the latest when absent.
    #[param(minimum = 1)]
    pub version: Option<i32>,
}

/// A version of a project's design.
#[derive(Debug, Serialize, ToSchema)]
pub struct DesignView {
    /// This version: 1 from the design step, one more per change request.
    pub version: i32,
    /// Every version the project has, oldest first.
    pub versions: Vec<i32>,
    /// The design step that wrote it.
    pub task_id: TaskId,
    pub created_at: DateTime<Utc>,
    /// The contract (OpenAPI 3.1), data model, components and file plan.
    pub design: Design,
}

/// Get a project's design
///
/// The design its tasks are held to: the generated application's HTTP contract as an
/// OpenAPI 3.1 document, its data model, its components (directory, commands, packages,
/// environment, port, health path) and its file plan (every file, the task that owns it,
/// its purpose, exports, imports and the operations it implements). 404 until the
/// project's design step has completed.
#[utoipa::path(
    get, path = "/projects/{id}/design", operation_id = "get_design", tag = "projects",
    params(("id" = Uuid, Path, description = "Project id"), DesignQuery),
    responses(
        (status = 200, description = "The design", body = DesignView),
        (status = 404, description = "No such project, no design yet, or no such version", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_design(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    ApiQuery(query): ApiQuery<DesignQuery>,
) -> Result<axum::Json<DesignView>> {
    if query.version.is_some_and(|v| v < 1) {
        return Err(ApiError::invalid("version", "must be 1 or more"));
    }
    let Some(stored) = designs::design(&state.pool, id, query.version).await? else {
        existing(&state.pool, id).await?;
        return Err(ApiError::NotFound(if query.version.is_some() {
            "design version"
        } else {
            "design"
        }));
    };
    let design = Design::from_value(stored.design).map_err(|error| {
        tracing::error!(%id, version = stored.version, %error, "a stored design does not read");
        ApiError::Internal
    })?;
    Ok(axum::Json(DesignView {
        version: stored.version,
        versions: designs::versions(&state.pool, id).await?,
        task_id: stored.task_id,
        created_at: stored.created_at,
        design,
    }))
}
