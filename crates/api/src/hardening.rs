//! What protects the API from its clients: a request id on every request and response, a
//! deadline per request, a rate limit per API key (or per client address when the API is
//! open), CORS for dashboards, compression.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;

/// How the API guards itself.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A request that has not answered by then gets `503`. Event streams are not cut: the
    /// deadline is for the response to start.
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser; `*` for any. Empty: no CORS.
    pub cors_origins: Vec<String>,
    /// Requests a minute per API key, or per client address when the API is open. `None`:
    /// no limit.
    pub rate_limit_per_minute: Option<NonZeroU32>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            rate_limit_per_minute: None,
        }
    }
}

/// The header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Ends a request that has not answered within the deadline with a problem document.
pub(crate) async fn deadline(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TimedOut(limit).into_response(),
    }
}

/// Requests a minute per key.
pub(crate) struct RequestLimiter {
    limiter: RateLimiter<String, HashMapStateStore<String>, DefaultClock>,
    /// Count by API key (keys are required and checked first), else by client address.
    by_key: bool,
    /// Keys kept before forgetting the idle ones.
    cleanup_at: Mutex<usize>,
}

impl RequestLimiter {
    pub fn new(per_minute: NonZeroU32, by_key: bool) -> Self {
        Self {
            limiter: RateLimiter::hashmap(Quota::per_minute(per_minute)),
            by_key,
            cleanup_at: Mutex::new(10_000),
        }
    }

    /// `Err(wait)` when `key` has used its allowance.
    fn check(&self, key: String) -> Result<(), Duration> {
        {
            let mut cleanup_at = self.cleanup_at.lock().expect("limiter lock");
            if self.limiter.len() >= *cleanup_at {
                self.limiter.retain_recent();
                *cleanup_at = (self.limiter.len() * 2).max(10_000);
            }
        }
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Who a request counts against: its API key when keys are required (by digest: keys are
/// not kept), else its client address.
fn rate_key(request: &Request, by_key: bool) -> String {
    if by_key
        && let Some(key) = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    {
        let digest = Sha256::digest(key.trim().as_bytes());
        return digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "anonymous".to_owned(), |info| info.0.ip().to_string())
}

/// `429` with `Retry-After` once a key has used its requests of the minute. Health,
/// readiness and metrics are not limited.
pub(crate) async fn rate_limit(
    State(limiter): State<Option<Arc<RequestLimiter>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = limiter else {
        return next.run(request).await;
    };
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    match limiter.check(rate_key(&request, limiter.by_key)) {
        Ok(()) => next.run(request).await,
        Err(wait) => ApiError::TooManyRequests(wait).into_response(),
    }
}

/// CORS for the configured origins, or none.
pub(crate) fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::ETAG,
                REQUEST_ID,
            ])
            .max_age(Duration::from_secs(600)),
    )
}
