//! The settler: stores completions in batches. Slots hand their completions over and wait
//! for the answer; while batches are being stored, the next one gathers, so a busy pool
//! settles many tasks per transaction and an idle one settles each at once.

use std::time::{Duration, Instant};

use std::sync::Arc;

use guild_store::StoreError;
use guild_store::settle::{self, Completion, Settled};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::{Inner, WorkerPool};

/// Completions stored in one transaction, at most.
const MAX_BATCH: usize = 64;

/// Batches being stored at once.
const BATCHES_IN_FLIGHT: usize = 3;

/// Why a task's outcome was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SettleError {
    /// The task is no longer this worker's at this attempt: the result is dropped.
    NotRunning,
    /// The database could not be reached for longer than a lease; the lease will expire.
    Unavailable(String),
    /// The database refused this completion for a reason that will not go away.
    Refused(String),
}

impl From<StoreError> for SettleError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotRunning { .. } => Self::NotRunning,
            other if other.is_unavailable() => Self::Unavailable(other.to_string()),
            other => Self::Refused(other.to_string()),
        }
    }
}

pub(crate) type Settlement = Result<Settled, SettleError>;

/// A completion and where to send what became of it.
pub(crate) struct ToSettle {
    pub completion: Completion,
    pub reply: oneshot::Sender<Settlement>,
}

impl WorkerPool {
    /// Stores completions as they come: every one that arrived since the last batch went
    /// out, in one transaction, with a few transactions in flight at once (batches lock
    /// their projects in id order, so they cannot deadlock). Runs until every sender is gone
    /// and the last batch is stored.
    pub(crate) async fn settle_completions(&self, mut incoming: mpsc::UnboundedReceiver<ToSettle>) {
        let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
        let storing = TaskTracker::new();
        loop {
            let permit = Arc::clone(&in_flight)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let mut batch = Vec::with_capacity(MAX_BATCH);
            if incoming.recv_many(&mut batch, MAX_BATCH).await == 0 {
                break;
            }
            let pool = self.clone();
            storing.spawn(async move {
                pool.inner.store_batch(batch).await;
                drop(permit);
            });
        }
        storing.close();
        storing.wait().await;
    }
}

impl Inner {
    /// Stores one batch and answers each of its slots.
    async fn store_batch(&self, batch: Vec<ToSettle>) {
        let (completions, replies): (Vec<Completion>, Vec<_>) = batch
            .into_iter()
            .map(|item| (item.completion, item.reply))
            .unzip();
        let stored = while_unavailable(self.config.lease, || {
            settle::complete_many(&self.pool, &completions)
        })
        .await;
        match stored {
            // One completion the database refuses must not fail the others with it.
            Err(error) if completions.len() > 1 && !error.is_unavailable() => {
                tracing::warn!(%error, size = completions.len(), "storing a batch failed; storing its completions one by one");
                for (completion, reply) in completions.into_iter().zip(replies) {
                    let outcome = settle::complete(&self.pool, completion).await;
                    let _ = reply.send(outcome.map_err(SettleError::from));
                }
            }
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A slot that stopped waiting (shutdown) does not need the answer.
                    let _ = reply.send(outcome.map_err(SettleError::from));
                }
            }
            Err(error) => {
                let error = SettleError::from(error);
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Runs `op` again while the database is unavailable (a restart, a network cut), backing
/// off, for at most `patience`: a finished task's result is worth waiting for. Settling is
/// fenced, so a retry after a commit whose answer was lost is refused, not applied twice.
pub(crate) async fn while_unavailable<T, F, Fut>(
    patience: Duration,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + patience;
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Err(error) if error.is_unavailable() && Instant::now() + delay < deadline => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "the database is unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}
