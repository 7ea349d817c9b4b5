//! `/projects/{id}/verification`: whether the generated project installs, builds, passes
//! its tests and serves its contract, round by round.

use axum::extract::State;
use guild_core::verification::{Report, Verdict};
use guild_core::{Finding, ProjectId, TaskId, TaskStatus, VERIFY};
use guild_store::tasks;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Problem, Result};
use crate::extract::ApiPath;
use crate::routes::projects::existing;
use crate::state::AppState;

/// Where a project's verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// The project has no verification stage (planned with verification off, or a custom
    /// workflow without a `verify` task).
    Off,
    /// No round has finished yet.
    Pending,
    Passed,
    Failed,
    /// It could not run (no sandbox, a toolchain missing): never a pass.
    Unavailable,
}

/// A project's verification: the outcome of its latest round, and every round.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    pub status: VerificationStatus,
    /// The latest finished round's one-line summary.
    pub summary: Option<String>,
    /// Round 0 is the planned verification; round n verifies again after fix round n.
    pub rounds: Vec<VerificationRound>,
}

/// One verify task.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationRound {
    pub task_id: TaskId,
    pub key: String,
    pub round: i32,
    /// The verify task's own status.
    pub task_status: TaskStatus,
    /// Its report, once it ran: each component's steps (command, status, exit code,
    /// duration, output tail) and smoke calls.
    pub report: Option<Report>,
    /// The failures it sent back to the files' authors.
    pub findings: Vec<Finding>,
}

/// Get a project's verification
///
/// Whether the generated project works, as run in a sandbox: for each round (the planned
/// verification, and each one after a fix round), each component's install, type-check,
/// lint, build and test steps with their command, status, exit code, duration and the end
/// of their output (secrets redacted), the server started and every contract operation
/// called (status and body checked against the contract), and the findings sent back to
/// the files' authors.
#[utoipa::path(
    get, path = "/projects/{id}/verification", operation_id = "get_verification", tag = "projects",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "The verification", body = VerificationView),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_verification(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
) -> Result<axum::Json<VerificationView>> {
    existing(&state.pool, id).await?;
    let mut rounds: Vec<VerificationRound> = tasks::list(&state.pool, id)
        .await?
        .into_iter()
        .filter(|t| t.kind == VERIFY)
        .map(|t| {
            let result = t.result.unwrap_or_default();
            VerificationRound {
                task_id: t.id,
                key: t.key,
                round: t.review_round,
                task_status: t.status,
                report: result
                    .get("verification")
                    .and_then(|r| serde_json::from_value(r.clone()).ok()),
                findings: result
                    .get("findings")
                    .and_then(|f| serde_json::from_value(f.clone()).ok())
                    .unwrap_or_default(),
            }
        })
        .collect();
    rounds.sort_by_key(|r| r.round);
    let latest = rounds.iter().rev().find_map(|r| r.report.as_ref());
    let status = match (rounds.is_empty(), latest.map(|r| r.status)) {
        (true, _) => VerificationStatus::Off,
        (false, None) => VerificationStatus::Pending,
        (false, Some(Verdict::Passed)) => VerificationStatus::Passed,
        (false, Some(Verdict::Unavailable | Verdict::Skipped)) => VerificationStatus::Unavailable,
        (false, Some(Verdict::Failed | Verdict::TimedOut)) => VerificationStatus::Failed,
    };
    Ok(axum::Json(VerificationView {
        status,
        summary: latest.map(|r| r.summary.clone()),
        rounds,
    }))
}
