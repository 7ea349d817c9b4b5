//! Guild's PostgreSQL store: the migrations, and one module per aggregate.
//!
//! Orchestrating functions here own their transactions: creating a project writes the
//! project and its whole task graph in one; settling a task writes its result, files,
//! events, its dependents' release and the project's status in one. Callers never hold a
//! connection: every function takes the pool and returns before any slow work.

pub mod budget;
pub mod changes;
mod claims;
pub mod designs;
pub mod events;
pub mod files;
pub mod listener;
pub mod llm_cache;
mod locks;
pub mod oversight;
pub mod projects;
pub mod retention;
pub mod review;
pub mod sessions;
pub mod settle;
pub mod tasks;
mod text;

use std::time::Duration;

pub use guild_core::{ProjectId, TaskId};
pub use sqlx;
pub use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

/// The schema migrations, embedded once; used by the binary and by tests.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A fenced write found the task no longer running at this attempt: another worker
    /// owns it now, or it was cancelled. The late result is dropped.
    #[error("task {task_id} is no longer running at attempt {attempt}")]
    NotRunning { task_id: TaskId, attempt: i32 },
    /// The request conflicts with the resource's current state (e.g. cancelling a finished
    /// project); the message says how.
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// The database could not be reached or went away (a restart, a network cut): the same
    /// operation can succeed later.
    pub fn is_unavailable(&self) -> bool {
        let Self::Database(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => true,
            // Connection exceptions (08) and operator intervention: shutdown, restart (57P).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        }
    }
}

/// The crate-wide result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Connects a pool to `url` with at most `max_connections` connections.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await?;
    Ok(pool)
}

/// Checks that the database answers.
pub async fn ping(pool: &PgPool) -> Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
