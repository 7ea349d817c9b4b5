//! Keeping leases: extending this process's, recovering those of processes that died.

use std::collections::HashSet;
use std::time::Duration;

use guild_core::TaskId;
use guild_store::StoreError;
use guild_store::settle::{self, Failure};
use guild_store::tasks;
use tokio_util::sync::CancellationToken;

use crate::{Inner, WorkerEvent};

/// Expired leases recovered per round.
const RECOVER_BATCH: i64 = 100;

impl Inner {
    /// Every third of the lease: extend the leases of the tasks running here in one
    /// statement, stop the agents of those that are no longer ours (their project was
    /// cancelled, or their lease was lost), then re-queue tasks whose lease expired elsewhere.
    pub(crate) async fn maintain(&self, shutdown: CancellationToken) {
        let every = (self.config.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
            let running: Vec<_> = self
                .running
                .lock()
                .expect("running lock")
                .keys()
                .copied()
                .collect();
            match tasks::heartbeat(
                &self.pool,
                &self.config.worker_id,
                &running,
                self.config.lease,
            )
            .await
            {
                Ok(extended) => self.stop_lost_tasks(&running, &extended),
                Err(error) => tracing::warn!(%error, "extending leases failed"),
            }
            self.recover_expired_leases().await;
        }
    }

    /// Cancels the agents of the tasks among `heartbeat` whose lease was not extended.
    fn stop_lost_tasks(&self, heartbeat: &[TaskId], extended: &[TaskId]) {
        let extended: HashSet<&TaskId> = extended.iter().collect();
        let running = self.running.lock().expect("running lock");
        for id in heartbeat.iter().filter(|id| !extended.contains(id)) {
            if let Some(task) = running.get(id) {
                task.cancel.cancel();
            }
        }
    }

    /// A task whose lease expired lost its worker: its attempt counts as failed with a
    /// retryable error, so it runs again (or fails for good when its attempts are used up).
    /// Fenced on the attempt: when two processes recover the same task, one wins.
    pub(crate) async fn recover_expired_leases(&self) {
        let expired = match tasks::expired_leases(&self.pool, RECOVER_BATCH).await {
            Ok(expired) => expired,
            Err(error) => {
                tracing::warn!(%error, "looking for expired leases failed");
                return;
            }
        };
        for task in expired {
            if self
                .running
                .lock()
                .expect("running lock")
                .contains_key(&task.id)
            {
                continue; // ours and alive: the next heartbeat extends it
            }
            let error = "lease expired: the worker running it stopped heartbeating";
            let failure = Failure {
                project_id: task.project_id,
                task_id: task.id,
                attempt: task.attempt,
                session_id: None,
                duration_ms: 0,
                error,
                retryable: true,
                retry_delay: Duration::ZERO,
                llm_calls: &[],
                raw_answer: None,
                stops_project: false,
            };
            match settle::fail(&self.pool, failure).await {
                Ok(settled) => {
                    metrics::counter!("guild_lease_expiries_total", "agent" => task.agent.as_str())
                        .increment(1);
                    tracing::warn!(task_id = %task.id, key = %task.key, retrying = settled.retrying, "recovered an expired lease");
                    self.emit(WorkerEvent::TaskFailed {
                        project_id: task.project_id,
                        task_id: task.id,
                        key: task.key.clone(),
                        agent: task.agent,
                        error: error.to_owned(),
                        retrying: settled.retrying,
                    });
                    if let Some(status) = settled.project_finished {
                        self.emit(WorkerEvent::ProjectFinished {
                            project_id: task.project_id,
                            status,
                        });
                    }
                }
                Err(StoreError::NotRunning { .. }) => {} // another process got there first
                Err(error) => tracing::warn!(%error, "recovering an expired lease failed"),
            }
        }
    }
}
