//! `/projects/{id}/changes`: change requests on a finished project, each a revision with
//! its own tasks, budget and diff.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use guild_core::options::{MAX_DESCRIPTION_CHARS, TOKEN_BUDGET, check_cost, check_text, outside};
use guild_core::{ProjectId, ProjectOptions, ProjectStatus};
use guild_store::changes::{self, NewChange, Revision};
use guild_store::files;
use guild_store::projects::Idempotency;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::diff;
use crate::error::{ApiError, FieldError, Problem, Result};
use crate::extract::{ApiPath, AppJson};
use crate::routes::projects::{existing, idempotency_key};
use crate::state::AppState;
use crate::views::UsageView;

/// What a change may bound: its own spend, on top of what the project spent before it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeOptions {
    /// Tokens the change may use (prompt and completion, 1 to 10^12); the server's
    /// default when absent.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_u64)]
    pub max_tokens: Option<u64>,
    /// US dollars the change may cost (over 0, at most 100000); the server's default when
    /// absent. Refused (409) when the project's cost is unknown.
    #[schema(exclusive_minimum = 0, maximum = 100_000)]
    pub max_cost_usd: Option<f64>,
}

/// A change to a finished project, in plain language.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "Add a due date to todos, shown in the list and settable when adding one"}))]
pub struct CreateChange {
    /// What to change (1 to 20,000 characters).
    #[schema(min_length = 1, max_length = 20000, pattern = "\\S")]
    pub description: String,
    #[serde(default)]
    pub options: Option<ChangeOptions>,
}

/// A revision of a project: the first generation (1) or a change request (2 on).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    pub project_id: ProjectId,
    /// 1 for the first generation, one more per change.
    pub revision: i32,
    /// What the revision asked for: the project's description for revision 1.
    pub description: String,
    /// The project's status while this is its current revision, the status it ended with
    /// once a later one superseded it.
    pub status: ProjectStatus,
    pub created_at: DateTime<Utc>,
    /// What its tasks used.
    pub usage: UsageView,
    /// The keys of the tasks it added, in priority order.
    pub tasks: Vec<String>,
}

impl From<Revision> for ChangeView {
    fn from(r: Revision) -> Self {
        Self {
            project_id: r.project_id,
            revision: r.number,
            description: r.description,
            status: r.status,
            created_at: r.created_at,
            usage: r.usage.into(),
            tasks: r.tasks,
        }
    }
}

/// Every revision of a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeList {
    /// First to last.
    pub changes: Vec<ChangeView>,
}

/// Request a change
///
/// Makes revision `n + 1` of a finished project (completed, or failed with files): an
/// analysis of what the change touches, a design update (a new design version), then
/// tasks for the affected agents only, each seeing the files it owns and the change,
/// then verification (when this server verifies) and review, with fix rounds as for a
/// first generation. Earlier tasks never run again. The project runs until the change
/// finishes; `POST /projects/{id}/cancel` cancels it. The change's budget is its own.
#[utoipa::path(
    post, path = "/projects/{id}/changes", operation_id = "create_change", tag = "changes",
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 200, description = "Makes retries of this request safe (1 to 200 characters, trimmed)")
    ),
    request_body = CreateChange,
    responses(
        (status = 202, description = "Requested; work has started", body = ChangeView,
         headers(("Location" = String, description = "The change's URL"))),
        (status = 200, description = "An earlier request with this Idempotency-Key made it", body = ChangeView),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is pending or running, has no file to change, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_change(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    headers: HeaderMap,
    AppJson(request): AppJson<CreateChange>,
) -> Result<Response> {
    let mut invalid: Vec<_> =
        check_text("description", &request.description, MAX_DESCRIPTION_CHARS)
            .into_iter()
            .collect();
    let requested = request.options.as_ref();
    if let Some(reason) = outside(requested.and_then(|o| o.max_tokens), &TOKEN_BUDGET) {
        invalid.push(FieldError::new("options.max_tokens", reason));
    }
    if let Some(reason) = check_cost(requested.and_then(|o| o.max_cost_usd)) {
        invalid.push(FieldError::new("options.max_cost_usd", reason));
    }
    if !invalid.is_empty() {
        return Err(ApiError::invalid_all(invalid));
    }
    let key = idempotency_key(&headers)?;
    let request_hash: String = Sha256::digest(serde_json::to_vec(&request).unwrap_or_default())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let options = ProjectOptions {
        max_tokens: requested.and_then(|o| o.max_tokens),
        max_cost_usd: requested.and_then(|o| o.max_cost_usd),
        ..ProjectOptions::default()
    };
    let (revision, new) = changes::request(
        &state.pool,
        id,
        &NewChange {
            description: request.description.trim(),
            options: &options,
            default_max_tokens: state.default_max_tokens,
            default_max_cost_usd: state.default_max_cost_usd,
            idempotency: key.as_deref().map(|key| Idempotency {
                key,
                request_hash: &request_hash,
            }),
        },
    )
    .await?;
    let status = if new {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let location = format!("/projects/{id}/changes/{}", revision.number);
    Ok((
        status,
        [(header::LOCATION, location)],
        axum::Json(ChangeView::from(revision)),
    )
        .into_response())
}

/// List a project's revisions
///
/// Its first generation and every change, with status, usage and the tasks each added.
#[utoipa::path(
    get, path = "/projects/{id}/changes", operation_id = "list_changes", tag = "changes",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "The revisions", body = ChangeList),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_changes(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
) -> Result<axum::Json<ChangeList>> {
    let revisions = changes::list(&state.pool, id).await?;
    if revisions.is_empty() {
        existing(&state.pool, id).await?;
    }
    Ok(axum::Json(ChangeList {
        changes: revisions.into_iter().map(ChangeView::from).collect(),
    }))
}

async fn revision(state: &AppState, id: ProjectId, number: i32) -> Result<Revision> {
    if number < 1 {
        return Err(ApiError::invalid("revision", "must be 1 or more"));
    }
    match changes::revision(&state.pool, id, number).await? {
        Some(revision) => Ok(revision),
        None => {
            existing(&state.pool, id).await?;
            Err(ApiError::NotFound("revision"))
        }
    }
}

/// Get a revision
#[utoipa::path(
    get, path = "/projects/{id}/changes/{revision}", operation_id = "get_change", tag = "changes",
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("revision" = i32, Path, minimum = 1, description = "The revision: 1 for the first generation")
    ),
    responses(
        (status = 200, description = "The revision", body = ChangeView),
        (status = 404, description = "No such project or revision", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A revision under 1", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_change(
    State(state): State<AppState>,
    ApiPath((id, number)): ApiPath<(ProjectId, i32)>,
) -> Result<axum::Json<ChangeView>> {
    Ok(axum::Json(revision(&state, id, number).await?.into()))
}

/// The files of a project as they stood at `revision`, by path.
pub(crate) async fn tree_at(
    state: &AppState,
    id: ProjectId,
    revision: i32,
) -> Result<BTreeMap<String, String>> {
    if revision < 1 {
        return Ok(BTreeMap::new());
    }
    Ok(files::at_revision(&state.pool, id, revision)
        .await?
        .into_iter()
        .map(|f| (f.path, f.content))
        .collect())
}

/// A text/x-diff response.
pub(crate) fn diff_response(diff: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/x-diff; charset=utf-8")],
        diff,
    )
        .into_response()
}

/// Get a revision's diff
///
/// Everything the revision changed as one unified diff with git's headers, paths relative
/// to the project's root (`a/…`, `b/…`): it applies with `git apply` or `patch -p1` to the
/// previous revision's files (`GET /projects/{id}/archive?revision=n-1`) and yields this
/// revision's. Revision 1's diff adds every file. Empty while a change has written
/// nothing yet.
#[utoipa::path(
    get, path = "/projects/{id}/changes/{revision}/diff", operation_id = "get_change_diff", tag = "changes",
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("revision" = i32, Path, minimum = 1, description = "The revision: 1 for the first generation")
    ),
    responses(
        (status = 200, description = "The unified diff", content((String = "text/x-diff"))),
        (status = 404, description = "No such project or revision", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A revision under 1", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_change_diff(
    State(state): State<AppState>,
    ApiPath((id, number)): ApiPath<(ProjectId, i32)>,
) -> Result<Response> {
    revision(&state, id, number).await?;
    let before = tree_at(&state, id, number - 1).await?;
    let after = tree_at(&state, id, number).await?;
    Ok(diff_response(diff::tree(&before, &after)))
}
