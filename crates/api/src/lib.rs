//! Guild's HTTP API: an axum router whose OpenAPI description is derived from the
//! handlers (utoipa), with one error type rendered as `application/problem+json`.
//!
//! Handlers never write SQL: they validate input, call the store, and shape its records.

mod auth;
pub mod diff;
pub mod error;
mod extract;
pub mod hardening;
pub mod metrics;
pub mod repository;
pub mod routes;
pub mod state;
pub mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
pub use crate::hardening::HttpSettings;
use crate::routes::{
    changes, designs, events, files, plans, projects, system, tasks, verification,
};
pub use crate::state::{ApiKeys, AppState};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Guild",
        description = "Orchestrates AI agents that write software: POST a description, follow its \
                       task graph, read the generated files. Errors are RFC 9457 problem documents.",
        license(name = "MIT", identifier = "MIT")
    ),
    servers((url = "/", description = "This server")),
    paths(files::get_file),
    components(schemas(error::Problem, error::FieldError)),
    modifiers(&BearerAuth, &CommonResponses),
    tags(
        (name = "projects", description = "Projects, their plans and workflow templates"),
        (name = "tasks", description = "Tasks of a project, and the human controls on them"),
        (name = "changes", description = "Change requests: revisions of a finished project, with their diffs"),
        (name = "files", description = "Generated files, their diffs, archives and git history"),
        (name = "events", description = "The event log, as pages or a live stream"),
        (name = "agents", description = "Agent sessions and figures"),
        (name = "health", description = "Liveness and readiness")
    )
)]
struct ApiDoc;

/// Declares the bearer scheme and requires it everywhere but health and readiness. The
/// server enforces it only when `GUILD_API_KEYS` is set.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A key from GUILD_API_KEYS, as `Authorization: Bearer <key>`",
                    ))
                    .build(),
            ),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
        for (path, item) in &mut openapi.paths.paths {
            if (path == "/healthz" || path == "/readyz" || path == "/metrics")
                && let Some(operation) = item.get.as_mut()
            {
                operation.security = Some(vec![
                    utoipa::openapi::security::SecurityRequirement::default(),
                ]);
            }
        }
    }
}

/// The outcomes every operation shares, described once here so that handlers list only
/// their own: 400 for a malformed id, query or body, 401 without a valid key (when keys are
/// set), 413 and 415 for bodies, 429 over the rate limit (when one is set), and 503 when
/// the database is unreachable or the request's deadline passes.
struct CommonResponses;

/// Paths anyone may call, that never touch the database through a handler's query.
const PUBLIC_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for (path, item) in &mut openapi.paths.paths {
            let public = PUBLIC_PATHS.contains(&path.as_str());
            for operation in [item.get.as_mut(), item.post.as_mut(), item.delete.as_mut()]
                .into_iter()
                .flatten()
            {
                let has_input = operation.parameters.as_ref().is_some_and(|p| !p.is_empty())
                    || operation.request_body.is_some();
                let has_body = operation.request_body.is_some();
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| problem(description));
                };
                if has_input {
                    add(
                        "400",
                        "Malformed request: an id that is not a UUID, a query parameter or header of the wrong type or out of range, or malformed JSON",
                    );
                }
                if public {
                    continue;
                }
                add(
                    "401",
                    "Missing or invalid API key (when the server has keys)",
                );
                if has_body {
                    add("413", "The body is larger than 1 MiB");
                    add("415", "The body is not `application/json`");
                }
                add(
                    "429",
                    "Too many requests for this key (when the server has a rate limit)",
                );
                if path != "/workflows" {
                    add(
                        "503",
                        "The database is unavailable, or the request took longer than its deadline",
                    );
                }
            }
        }
    }
}

/// A response with a problem document.
fn problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

fn build() -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(projects::get_project, projects::delete_project))
        .routes(routes!(plans::get_plan))
        .routes(routes!(projects::cancel_project))
        .routes(routes!(system::list_workflows))
        .routes(routes!(tasks::list_tasks))
        .routes(routes!(tasks::get_task))
        .routes(routes!(tasks::retry_task))
        .routes(routes!(tasks::approve_task))
        .routes(routes!(tasks::reject_task))
        .routes(routes!(designs::get_design))
        .routes(routes!(verification::get_verification))
        .routes(routes!(files::list_files))
        .routes(routes!(files::get_archive))
        .routes(routes!(files::get_repository))
        .routes(routes!(changes::create_change, changes::list_changes))
        .routes(routes!(changes::get_change))
        .routes(routes!(changes::get_change_diff))
        .routes(routes!(events::list_events))
        .routes(routes!(system::list_sessions))
        .routes(routes!(system::list_agents))
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(metrics::get_metrics))
        // A path with slashes: axum's wildcard; its spec entry comes from `ApiDoc`.
        .route("/projects/{id}/files/{*path}", get(files::get_file))
        .split_for_parts()
}

/// The OpenAPI description of the API, as served at `/openapi.json`.
pub fn openapi() -> OpenApiDoc {
    let (_, mut spec) = build();
    BearerAuth.modify(&mut spec);
    CommonResponses.modify(&mut spec);
    spec
}

/// The whole API with its state: routes, `/openapi.json`, `/docs`, and around them, from
/// the outside in: the request id, the request's span, its metrics, CORS, compression, the
/// deadline, access control, the rate limit and the body limit.
pub fn router(state: AppState) -> Router {
    metrics::install();
    let limiter = state
        .http
        .rate_limit_per_minute
        .map(|n| std::sync::Arc::new(hardening::RequestLimiter::new(n, state.keys.is_enabled())));
    let (api, _) = build();
    let cors = hardening::cors(&state.http.cors_origins);
    // The page asks for the spec relative to itself, so it works behind a path prefix.
    let docs = SwaggerUi::new("/docs")
        .url("/openapi.json", openapi())
        .config(utoipa_swagger_ui::Config::new(["../openapi.json"]));
    api.merge(docs)
        .route_layer(middleware::from_fn(metrics::remember_route))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Inside access control: a request counts against its key only once the key is
        // known to be valid, so made-up keys cannot open fresh allowances.
        .layer(middleware::from_fn_with_state(
            limiter,
            hardening::rate_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(middleware::from_fn_with_state(
            state.http.request_timeout,
            hardening::deadline,
        ))
        .layer(CompressionLayer::new().compress_when(
            // The archive is gzip already; event streams and small bodies are skipped too.
            DefaultPredicate::new().and(NotForContentType::const_new("application/gzip")),
        ))
        .layer(tower::util::option_layer(cors))
        .layer(middleware::from_fn(metrics::record_http))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::new(hardening::REQUEST_ID))
        .layer(SetRequestIdLayer::new(
            hardening::REQUEST_ID,
            MakeRequestUuid,
        ))
        .with_state(state)
}

/// The span of a request, carrying its id: every log line of the request names it.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get(hardening::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}
