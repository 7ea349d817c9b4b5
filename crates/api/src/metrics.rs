//! Prometheus metrics: the process-wide recorder, the HTTP request metrics, and the
//! `/metrics` scrape, which also reads the scheduler's state (ready queue, oldest ready
//! task, running tasks) and the database pool's.
//!
//! Other crates record through the `metrics` facade (`guild_tasks_*` in the worker,
//! `guild_llm_*` in the agents); this process's recorder collects them once installed.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use guild_store::{PgPool, tasks};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets of every `*_seconds` histogram: from 5 ms (an API read) to 10 min (a long task).
const SECONDS_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 180.0, 600.0,
];

/// Installs this process's recorder (once; later calls return the same handle). Call it
/// at start-up, before any work is recorded.
pub fn install() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// The route that answered, put on the response by [`remember_route`] for [`record_http`].
#[derive(Clone)]
struct RoutePattern(Arc<str>);

/// Inner layer (on matched routes only): notes the route's pattern on the response, so the
/// request metrics are labelled `/projects/{id}` rather than by each id.
pub(crate) async fn remember_route(request: Request, next: Next) -> Response {
    let pattern = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| RoutePattern(Arc::from(path.as_str())));
    let mut response = next.run(request).await;
    if let Some(pattern) = pattern {
        response.extensions_mut().insert(pattern);
    }
    response
}

/// Outer layer: counts every request by method, route and status, with its latency.
pub(crate) async fn record_http(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RoutePattern>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.to_string());
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    counter!("guild_http_requests_total", &labels).increment(1);
    histogram!("guild_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Metrics
///
/// Prometheus text: HTTP requests, tasks, LLM calls, the ready queue, the database pool.
#[utoipa::path(get, path = "/metrics", tag = "health",
    security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn get_metrics(State(state): State<AppState>) -> Response {
    scrape(&state.pool).await
}

/// Reads the gauges that live in the database and renders every metric.
async fn scrape(pool: &PgPool) -> Response {
    match tasks::queue_stats(pool).await {
        Ok(stats) => {
            gauge!("guild_ready_tasks").set(stats.ready as f64);
            gauge!("guild_oldest_ready_task_age_seconds").set(stats.oldest_ready_age_secs);
            gauge!("guild_running_tasks").set(stats.running as f64);
        }
        Err(error) => tracing::warn!(%error, "reading the queue for metrics failed"),
    }
    let idle = pool.num_idle() as f64;
    gauge!("guild_db_pool_connections", "state" => "idle").set(idle);
    gauge!("guild_db_pool_connections", "state" => "in_use").set(f64::from(pool.size()) - idle);
    gauge!("guild_db_pool_max_connections").set(f64::from(pool.options().get_max_connections()));
    let handle = install();
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `/metrics` and `/healthz` alone, for a `guild worker` process (which serves no API).
pub fn worker_router(pool: PgPool) -> Router {
    install();
    Router::new()
        .route(
            "/metrics",
            get(|State(pool): State<PgPool>| async move { scrape(&pool).await }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(pool)
}
