//! How a slot's task ended, and the one place that reports it: a metric, a progress event
//! for displays in the same process, and a log line.

use std::time::{Duration, Instant};

use guild_store::settle::Settled;
use guild_store::tasks::ClaimedTask;

use crate::{Inner, WorkerEvent};

/// How one slot's task ended: reported in one place ([`Inner::report`]) as a metric, an
/// event for progress displays and a log line.
pub(crate) enum SlotOutcome {
    /// Stored as completed (or awaiting approval).
    Completed {
        settled: Settled,
        files_written: u64,
        tokens: u64,
        duration: Duration,
    },
    /// Stored as failed: retrying, or for good.
    Failed { settled: Settled, error: String },
    /// The task stopped being this worker's while it ran: its result was dropped (its
    /// calls counted).
    Dropped,
    /// The agent was stopped midway: its project was cancelled or its lease was lost.
    Interrupted,
    /// Released to another process at shutdown.
    Released,
    /// The outcome could not be stored; the lease will expire and the task runs again.
    Unsettled(String),
}

impl Inner {
    /// Turns a slot's outcome into its metric, its progress event and its log line.
    pub(crate) fn report(&self, task: &ClaimedTask, outcome: SlotOutcome) {
        let (project_id, task_id, key) = (task.project_id, task.id, task.key.clone());
        let agent = task.agent.as_str();
        let settled = match outcome {
            SlotOutcome::Completed {
                settled,
                files_written,
                tokens,
                duration,
            } => {
                metrics::counter!("guild_tasks_completed_total", "agent" => agent, "kind" => task.kind.clone()).increment(1);
                tracing::info!(
                    files_written,
                    released = settled.released,
                    duration_ms = duration.as_millis() as u64,
                    "task completed"
                );
                self.emit(WorkerEvent::TaskCompleted {
                    project_id,
                    task_id,
                    key,
                    agent: task.agent,
                    files_written,
                    tokens,
                    duration,
                    at: Instant::now(),
                });
                settled
            }
            SlotOutcome::Failed { settled, error } => {
                let counter = if settled.retrying {
                    "guild_tasks_retried_total"
                } else {
                    "guild_tasks_failed_total"
                };
                metrics::counter!(counter, "agent" => agent, "kind" => task.kind.clone())
                    .increment(1);
                tracing::warn!(%error, retrying = settled.retrying, "task failed");
                self.emit(WorkerEvent::TaskFailed {
                    project_id,
                    task_id,
                    key,
                    agent: task.agent,
                    error,
                    retrying: settled.retrying,
                });
                settled
            }
            SlotOutcome::Dropped => {
                metrics::counter!("guild_results_dropped_total", "agent" => agent).increment(1);
                tracing::warn!(
                    "the task is no longer ours (lease lost or cancelled); its result is dropped, its calls counted"
                );
                return self.emit(WorkerEvent::ResultDropped {
                    project_id,
                    task_id,
                    key,
                });
            }
            SlotOutcome::Interrupted => {
                metrics::counter!("guild_tasks_interrupted_total", "agent" => agent).increment(1);
                tracing::info!(
                    "the task is no longer ours (cancelled, or its lease was lost); its agent was stopped"
                );
                return self.emit(WorkerEvent::TaskInterrupted {
                    project_id,
                    task_id,
                    key,
                });
            }
            SlotOutcome::Released => return,
            SlotOutcome::Unsettled(error) => {
                return tracing::error!(%error, "settling the task failed; the lease will expire");
            }
        };
        if let Some(status) = settled.project_finished {
            tracing::info!(%status, "project finished");
            self.emit(WorkerEvent::ProjectFinished { project_id, status });
        }
    }
}
