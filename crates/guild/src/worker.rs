//! `guild worker`: the worker pool alone, next to `guild serve --workers 0` and other
//! workers on one PostgreSQL.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cli::{DatabaseArgs, WorkerArgs};
use crate::database::Database;
use crate::serve::worker_pool;
use crate::signals::ShutdownSignals;

pub async fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    guild_api::metrics::install();
    let mut signals = ShutdownSignals::register().context("registering signal handlers")?;
    let database_args = DatabaseArgs {
        database_url: Some(args.database_url.clone()),
        data_dir: PathBuf::new(),
    };
    let database = Database::open(&database_args, u32::from(args.workers) + 4).await?;
    let (verifier, verification) = crate::verify::verifier(&args.verify).await;
    tracing::info!("{verification}");
    let pool = worker_pool(
        database.pool.clone(),
        &args.llm,
        verifier,
        usize::from(args.workers),
        &args.pool,
    )?;
    say!(
        "Guild worker {} running {} task slots",
        pool.config().worker_id,
        args.workers
    );
    let shutdown = CancellationToken::new();
    if let Some(bind) = &args.metrics_bind {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding {bind}"))?;
        say!(
            "Metrics at http://{}/metrics",
            listener.local_addr().context("reading the bound address")?
        );
        let app = guild_api::metrics::worker_router(database.pool.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the metrics server stopped");
            }
        });
    }
    let mut running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { pool.run(shutdown).await }
    });
    let result = tokio::select! {
        () = signals.recv() => {
            shutdown.cancel();
            (&mut running).await
        }
        finished = &mut running => finished,
    };
    database.close().await;
    result.context("the worker pool crashed")??;
    Ok(ExitCode::SUCCESS)
}
