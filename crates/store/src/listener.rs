//! Waking workers: `NOTIFY` when tasks become ready, `LISTEN` on a dedicated connection.
//!
//! A notification is a hint, not a delivery guarantee: workers also poll.

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::Result;

/// The channel notified when tasks become ready.
pub const READY_CHANNEL: &str = "guild_tasks_ready";

/// Sends the ready hint; inside a transaction it is delivered at commit.
pub(crate) async fn notify_ready(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(READY_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// A dedicated connection listening for the ready hint.
pub struct ReadyListener {
    listener: PgListener,
}

impl ReadyListener {
    /// Subscribes; do this before the first claim so no hint is missed in between.
    pub async fn connect(pool: &PgPool) -> Result<Self> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(READY_CHANNEL).await?;
        Ok(Self { listener })
    }

    /// Waits for the next hint. After a lost connection it reconnects and returns, since
    /// hints sent meanwhile are lost: the caller should look for work either way.
    pub async fn recv(&mut self) -> Result<()> {
        self.listener.try_recv().await?;
        Ok(())
    }
}
