//! `guild serve`: the HTTP API and the worker pool in one process.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use guild_api::{ApiKeys, AppState};
use guild_store::PgPool;
use guild_worker::{WorkerConfig, WorkerPool};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{LlmArgs, PoolArgs, ServeArgs};
use crate::database::Database;
use crate::signals::ShutdownSignals;

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    guild_api::metrics::install();
    let mut signals = ShutdownSignals::register().context("registering signal handlers")?;
    let workers = usize::from(args.workers);
    // Bind first: an address in use fails at once, before PostgreSQL and the pool start.
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let database = Database::open(&args.database, u32::from(args.workers) + 10).await?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (verifier, verification) = crate::verify::verifier(&args.verify).await;
    tracing::info!("{verification}");

    let pool_events = if workers > 0 {
        let pool = worker_pool(
            database.pool.clone(),
            &args.llm,
            verifier.clone(),
            workers,
            &args.pool,
        )?;
        let events = pool.subscribe();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            if let Err(error) = pool.run(shutdown).await {
                tracing::error!(%error, "the worker pool stopped");
            }
        });
        Some(events)
    } else {
        None
    };
    let (activity, activity_rx) = watch::channel(0u64);
    tracker.spawn(forward_activity(pool_events, activity, shutdown.clone()));

    let state = AppState {
        pool: database.pool.clone(),
        keys: Arc::new(ApiKeys::from_list(args.api_keys.as_deref().unwrap_or(""))),
        activity: activity_rx,
        default_max_attempts: i32::from(args.max_attempts),
        default_max_tokens: args.budget.project_max_tokens,
        default_max_cost_usd: args.budget.project_max_cost_usd,
        verification: verifier.is_some(),
        http: guild_api::HttpSettings {
            request_timeout: Duration::from_secs(args.http.request_timeout_secs),
            cors_origins: args
                .http
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            rate_limit_per_minute: args
                .http
                .rate_limit_per_minute
                .and_then(std::num::NonZeroU32::new),
        },
    };
    let address = listener.local_addr().context("reading the bound address")?;
    say!(
        "Guild listening on http://{address} ({} worker slots; docs at http://{address}/docs)",
        workers
    );
    let stop = shutdown.clone();
    let app =
        guild_api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = signals.recv() => {}
                () = stop.cancelled() => {}
            }
            stop.cancel();
        })
        .await
        .context("serving HTTP")?;

    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    database.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The worker pool of a long-running process: `slots` task slots with the configured model
/// and, when there is one, the verifier.
pub fn worker_pool(
    database: PgPool,
    llm: &LlmArgs,
    verifier: Option<Arc<guild_verify::Verifier>>,
    slots: usize,
    pool: &PoolArgs,
) -> anyhow::Result<WorkerPool> {
    let agents = crate::llm::agents(llm, &database, verifier)?;
    let config = WorkerConfig {
        lease: Duration::from_secs(pool.lease_secs),
        shutdown_grace: Duration::from_secs(pool.shutdown_grace_secs),
        agent_caps: pool.agent_caps(),
        ..WorkerConfig::new(slots)
    };
    Ok(WorkerPool::new(database, Arc::new(agents), config))
}

/// Bumps `activity` whenever the worker pool reports progress, so event streams look for new
/// events at once. At shutdown the sender is dropped, which ends every open stream.
async fn forward_activity(
    events: Option<broadcast::Receiver<guild_worker::WorkerEvent>>,
    activity: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let Some(mut events) = events else {
        shutdown.cancelled().await;
        return;
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => activity.send_modify(|n| *n += 1),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = shutdown.cancelled() => return,
        }
    }
}
