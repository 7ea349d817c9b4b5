//! The settler: stores completions in batches. Slots hand their completions over and wait
//! for the answer; while batches are being stored, the next one gathers, so a busy pool
//! settles many tasks per transaction and an idle one settles each at once.

use std::time::{Duration, Instant};

use guild_store::StoreError;
use guild_store::files::NewFile;
use guild_store::settle::{self, Completion, LlmCall, RejectedFile, Settled};
use serde_json::Value;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::{Inner, WorkerPool};

/// Completions stored in one transaction, at most.
const MAX_BATCH: usize = 64;

/// Batches being stored at once.
const BATCHES_IN_FLIGHT: usize = 3;

/// A completed task's outcome, owned, on its way to the settler.
pub(crate) struct OwnedCompletion {
    pub project_id: Uuid,
    pub task_id: Uuid,
    pub attempt: i32,
    pub session_id: Option<Uuid>,
    pub duration_ms: i64,
    pub result: Value,
    pub files: Vec<NewFile>,
    pub rejected_files: Vec<RejectedFile>,
    pub requirements: Option<Value>,
    pub llm_calls: Vec<LlmCall>,
    pub findings: Vec<guild_core::Finding>,
    pub cut_off: Vec<String>,
}

impl OwnedCompletion {
    fn as_completion(&self) -> Completion<'_> {
        Completion {
            project_id: self.project_id,
            task_id: self.task_id,
            attempt: self.attempt,
            session_id: self.session_id,
            duration_ms: self.duration_ms,
            result: self.result.clone(),
            files: &self.files,
            rejected_files: &self.rejected_files,
            requirements: self.requirements.as_ref(),
            llm_calls: &self.llm_calls,
            findings: &self.findings,
            cut_off: &self.cut_off,
        }
    }
}

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
    pub completion: OwnedCompletion,
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
        let completions: Vec<Completion<'_>> =
            batch.iter().map(|c| c.completion.as_completion()).collect();
        let stored = while_unavailable(self.config.lease, || {
            settle::complete_many(&self.pool, &completions)
        })
        .await;
        drop(completions);
        match stored {
            // One completion the database refuses must not fail the others with it.
            Err(error) if batch.len() > 1 && !error.is_unavailable() => {
                tracing::warn!(%error, size = batch.len(), "storing a batch failed; storing its completions one by one");
                for item in batch {
                    let outcome =
                        settle::complete(&self.pool, item.completion.as_completion()).await;
                    let _ = item.reply.send(outcome.map_err(SettleError::from));
                }
            }
            Ok(outcomes) => {
                for (item, outcome) in batch.into_iter().zip(outcomes) {
                    // A slot that stopped waiting (shutdown) does not need the answer.
                    let _ = item.reply.send(outcome.map_err(SettleError::from));
                }
            }
            Err(error) => {
                let error = SettleError::from(error);
                for item in batch {
                    let _ = item.reply.send(Err(error.clone()));
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
