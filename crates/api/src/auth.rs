//! Bearer-key access: when keys are configured, every route but health, readiness and the
//! API description needs `Authorization: Bearer <key>`.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Paths anyone may read.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json")
        || path == "/docs"
        || path.starts_with("/docs/")
}

pub async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.keys.is_enabled() || is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(key) if state.keys.accepts(key.trim()) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}
