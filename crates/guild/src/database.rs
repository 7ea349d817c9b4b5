//! Opening the database: the server at `DATABASE_URL`, or a private PostgreSQL started
//! for this process and stopped when it ends. Either way the schema is migrated.

use std::process::ExitCode;

use anyhow::Context;
use guild_pg::{Cluster, Storage};
use guild_store::PgPool;

use crate::cli::DatabaseArgs;

/// A migrated database, and the private server behind it if we started one.
pub struct Database {
    pub pool: PgPool,
    cluster: Option<Cluster>,
}

impl Database {
    /// Connects (starting the private server first when no URL is set) and migrates.
    pub async fn open(args: &DatabaseArgs, max_connections: u32) -> anyhow::Result<Self> {
        let storage = Storage::Persistent(args.data_dir.clone());
        Self::open_or_start(args.database_url.as_deref(), storage, max_connections).await
    }

    /// Connects to `url`, or starts a private server on `storage` when there is none.
    pub async fn open_or_start(
        url: Option<&str>,
        storage: Storage,
        max_connections: u32,
    ) -> anyhow::Result<Self> {
        let (url, cluster) = match url {
            Some(url) => (url.to_owned(), None),
            None => {
                let cluster = tokio::task::spawn_blocking(move || Cluster::start(&storage))
                    .await
                    .context("starting the private PostgreSQL")??;
                tracing::info!(port = cluster.port(), data_dir = %cluster.data_dir().display(), "private PostgreSQL ready");
                (cluster.url("postgres"), Some(cluster))
            }
        };
        let pool = guild_store::connect(&url, max_connections)
            .await
            .context("connecting to PostgreSQL (check DATABASE_URL)")?;
        guild_store::migrate(&pool)
            .await
            .context("migrating the database")?;
        Ok(Self { pool, cluster })
    }

    /// Closes the pool, then stops the private server if we started one.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
    }
}

/// `guild migrate`.
pub async fn migrate_command(args: DatabaseArgs) -> anyhow::Result<ExitCode> {
    let database = Database::open(&args, 2).await?;
    let applied = guild_store::MIGRATOR.iter().count();
    database.close().await;
    println!("database schema is up to date ({applied} migrations)");
    Ok(ExitCode::SUCCESS)
}

/// `guild prune`: deletes the events and superseded file versions of projects that
/// finished longer ago than `--older-than`.
pub async fn prune_command(args: crate::cli::PruneArgs) -> anyhow::Result<ExitCode> {
    let database = Database::open(&args.database, 2).await?;
    let pruned = guild_store::retention::prune(&database.pool, args.older_than).await;
    database.close().await;
    let pruned = pruned.context("pruning")?;
    println!(
        "pruned {} project(s) finished more than {} ago: {} event(s), {} superseded file version(s)",
        pruned.projects,
        humantime::format_duration(args.older_than),
        pruned.events,
        pruned.file_versions
    );
    Ok(ExitCode::SUCCESS)
}
