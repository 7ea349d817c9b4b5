//! Running claimed tasks: a batch's sessions and contexts are read together, then each task
//! runs its agent in its slot, and its completion goes to the settler, which stores the
//! completions that finished meanwhile in one transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use guild_agents::{AgentError, AgentOutcome, CallLog, ModelCall, TaskInput};
use guild_store::StoreError;
use guild_store::files::NewFile;
use guild_store::sessions::{self, SlotTask};
use guild_store::settle::{self, Completion, Failure};
use guild_store::tasks::{self, ClaimedTask, TaskContext};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

use crate::ledger::ProjectBudget;
use crate::outcome::SlotOutcome;
use crate::settler::{SettleError, ToSettle, while_unavailable};
use crate::{Inner, WorkerEvent, WorkerPool};

/// A claimed task with its slot: the semaphore permit, the slot number for its session,
/// and the token that stops its agent.
pub(crate) struct Slotted {
    pub task: ClaimedTask,
    pub slot: i32,
    pub permit: OwnedSemaphorePermit,
    pub cancel: CancellationToken,
}

impl WorkerPool {
    /// Starts a claimed batch: records its sessions and reads its contexts (one statement
    /// each for the whole batch), then runs each task in a task of its own.
    pub(crate) async fn start_batch(
        &self,
        batch: Vec<Slotted>,
        abort: CancellationToken,
        settler: mpsc::UnboundedSender<ToSettle>,
        tracker: TaskTracker,
    ) {
        let inner = &self.inner;
        let starting: Vec<SlotTask> = batch
            .iter()
            .map(|s| SlotTask {
                slot: s.slot,
                agent: s.task.agent,
                task_id: s.task.id,
            })
            .collect();
        let sessions = sessions::begin_tasks(
            &inner.pool,
            &inner.config.worker_id,
            &starting,
            inner.config.lease,
        )
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "recording the agent sessions failed");
            Default::default()
        });
        let keys: Vec<_> = batch
            .iter()
            .map(|s| (s.task.project_id, s.task.id))
            .collect();
        let mut contexts =
            while_unavailable(inner.config.lease, || tasks::contexts(&inner.pool, &keys)).await;
        for slotted in batch {
            let context = match &mut contexts {
                Ok(found) => found
                    .remove(&slotted.task.id)
                    .ok_or_else(|| "the task was deleted".to_owned()),
                Err(error) => Err(format!("reading the task's context failed: {error}")),
            };
            let session_id = sessions.get(&slotted.task.id).copied();
            let pool = self.clone();
            let abort = abort.clone();
            let settler = settler.clone();
            tracker.spawn(async move {
                let Slotted {
                    task,
                    slot,
                    permit,
                    cancel,
                } = slotted;
                let task_id = task.id;
                pool.inner
                    .execute(task, session_id, context, abort, cancel, settler)
                    .await;
                pool.inner
                    .running
                    .lock()
                    .expect("running lock")
                    .remove(&task_id);
                pool.inner.return_slot_id(slot);
                drop(permit);
                pool.inner.slot_freed.notify_one();
            });
        }
    }
}

/// The longest retry delay, whatever the attempt.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

impl Inner {
    #[tracing::instrument(skip_all, fields(project_id = %task.project_id, task_id = %task.id, key = %task.key, agent = %task.agent, attempt = task.attempt))]
    pub(crate) async fn execute(
        &self,
        task: ClaimedTask,
        session_id: Option<uuid::Uuid>,
        context: Result<TaskContext, String>,
        abort: CancellationToken,
        cancel: CancellationToken,
        settler: mpsc::UnboundedSender<ToSettle>,
    ) {
        let started = Instant::now();
        self.emit(WorkerEvent::TaskStarted {
            project_id: task.project_id,
            task_id: task.id,
            key: task.key.clone(),
            agent: task.agent,
            attempt: task.attempt,
            at: started,
        });
        let spent = CallLog::default();
        let outcome = tokio::select! {
            outcome = self.run_agent(&task, context, spent.clone()) => outcome,
            () = abort.cancelled() => {
                match tasks::release(&self.pool, task.project_id, task.id, task.attempt).await {
                    Ok(()) => tracing::info!("released at shutdown"),
                    Err(error) => tracing::warn!(%error, "releasing at shutdown failed; the lease will expire"),
                }
                return self.report(&task, SlotOutcome::Released);
            }
            () = cancel.cancelled() => {
                self.interrupted(&task, session_id, &spent).await;
                return self.report(&task, SlotOutcome::Interrupted);
            }
        };
        let duration = started.elapsed();
        let label = if outcome.is_ok() {
            "completed"
        } else {
            "failed"
        };
        metrics::histogram!("guild_task_duration_seconds", "agent" => task.agent.as_str(), "kind" => task.kind.clone(), "outcome" => label)
            .record(duration.as_secs_f64());
        let outcome = match outcome {
            Ok(outcome) => {
                self.complete(&task, session_id, duration, outcome, &settler)
                    .await
            }
            Err(error) => {
                self.fail(&task, session_id, duration, &error, &error.calls)
                    .await
            }
        };
        self.report(&task, outcome);
    }

    /// An agent stopped midway: its session is freed and the calls it made are counted.
    async fn interrupted(
        &self,
        task: &ClaimedTask,
        session_id: Option<uuid::Uuid>,
        spent: &CallLog,
    ) {
        if let Some(session_id) = session_id
            && let Err(error) = sessions::clear_task(&self.pool, session_id).await
        {
            tracing::warn!(%error, "clearing the agent session failed");
        }
        let calls = spent.calls();
        if calls.is_empty() {
            return;
        }
        let reason = "the task stopped being this worker's while its agent ran (its project was cancelled, or its lease was lost): the agent was stopped";
        if let Err(error) = settle::record_dropped_result(
            &self.pool,
            task.project_id,
            task.id,
            task.attempt,
            &calls,
            Some(reason),
        )
        .await
        {
            tracing::warn!(%error, "counting the calls of a stopped attempt failed");
        }
    }

    /// Settles a failed attempt. It retries after the backoff, or after the provider's
    /// `Retry-After` when that is longer. A refused late failure is recorded as dropped,
    /// with its calls counted.
    async fn fail(
        &self,
        task: &ClaimedTask,
        session_id: Option<uuid::Uuid>,
        duration: Duration,
        error: &AgentError,
        calls: &[ModelCall],
    ) -> SlotOutcome {
        let backoff = retry_delay(self.config.retry_base_delay, task.attempt);
        let failure = Failure {
            project_id: task.project_id,
            task_id: task.id,
            attempt: task.attempt,
            session_id,
            duration_ms: duration.as_millis() as i64,
            error: &error.message,
            retryable: error.retryable,
            retry_delay: error
                .retry_after
                .map_or(backoff, |asked| asked.max(backoff)),
            llm_calls: calls,
            raw_answer: error.raw_answer.as_deref(),
            stops_project: error.stops_project,
        };
        let settled = while_unavailable(self.config.lease, || {
            settle::fail(&self.pool, failure.clone())
        })
        .await;
        match settled {
            Ok(settled) => SlotOutcome::Failed {
                settled,
                error: error.message.clone(),
            },
            Err(StoreError::NotRunning { .. }) => {
                if let Err(error) = settle::record_dropped_result(
                    &self.pool,
                    task.project_id,
                    task.id,
                    task.attempt,
                    calls,
                    None,
                )
                .await
                {
                    tracing::warn!(%error, "recording the dropped result failed");
                }
                SlotOutcome::Dropped
            }
            Err(error) => SlotOutcome::Unsettled(error.to_string()),
        }
    }

    /// Runs the agent on the task's context in a task of its own, so a panic becomes a
    /// failed task. No connection is held while the agent runs. Dropping the returned
    /// future aborts the agent, and with it any model call in flight; the calls it made
    /// are in `spent`.
    async fn run_agent(
        &self,
        task: &ClaimedTask,
        context: Result<TaskContext, String>,
        spent: CallLog,
    ) -> Result<AgentOutcome, AgentError> {
        let context = context.map_err(AgentError::retryable)?;
        let input = TaskInput {
            project_id: task.project_id.to_string(),
            task_id: task.id.to_string(),
            attempt: task.attempt.max(0) as u32,
            key: task.key.clone(),
            kind: task.kind.clone(),
            agent: task.agent,
            task_description: task.description.clone(),
            budget: context.budgeted.then(|| {
                Arc::new(ProjectBudget {
                    pool: self.pool.clone(),
                    project_id: task.project_id,
                    task_id: task.id,
                    attempt: task.attempt,
                }) as Arc<dyn guild_agents::Budget>
            }),
            spent,
            context,
        };
        let agent = self.agent.clone();
        let running = AbortOnDropHandle::new(tokio::spawn(async move { agent.run(&input).await }));
        match running.await {
            Ok(outcome) => outcome,
            Err(join_error) => Err(AgentError::permanent(format!(
                "the agent crashed: {join_error}"
            ))),
        }
    }

    /// Hands a completed task to the settler and waits for its answer. A completion the
    /// database refuses for a reason that will not go away (not a lost connection) fails
    /// the task at once with that reason, its calls counted: waiting for the lease to
    /// expire would only repeat the refusal and hide the reason.
    async fn complete(
        &self,
        task: &ClaimedTask,
        session_id: Option<uuid::Uuid>,
        duration: Duration,
        outcome: AgentOutcome,
        settler: &mpsc::UnboundedSender<ToSettle>,
    ) -> SlotOutcome {
        let completion = owned_completion(task, session_id, duration, outcome);
        let calls = completion.llm_calls.clone();
        let tokens: u64 = calls.iter().map(ModelCall::tokens).sum();
        let (reply, answer) = oneshot::channel();
        if settler.send(ToSettle { completion, reply }).is_err() {
            return SlotOutcome::Unsettled("the settler stopped".into());
        }
        let settled = answer
            .await
            .unwrap_or_else(|_| Err(SettleError::Unavailable("the settler stopped".into())));
        match settled {
            Ok(settled) => SlotOutcome::Completed {
                files_written: settled.files_written,
                settled,
                tokens,
                duration,
            },
            Err(SettleError::NotRunning) => SlotOutcome::Dropped,
            Err(SettleError::Unavailable(error)) => SlotOutcome::Unsettled(error),
            Err(SettleError::Refused(reason)) => {
                let error = AgentError::permanent(format!(
                    "the database refused to store the task's result: {reason}"
                ));
                // The calls were paid: the failure counts them.
                self.fail(task, session_id, duration, &error, &calls).await
            }
        }
    }
}

/// What the settler stores for a completed task: its result (the summary, its files, what
/// was refused or cut off, its calls), files and usage.
fn owned_completion(
    task: &ClaimedTask,
    session_id: Option<uuid::Uuid>,
    duration: Duration,
    outcome: AgentOutcome,
) -> Completion {
    let files: Vec<NewFile> = outcome
        .files
        .iter()
        .map(|f| NewFile {
            path: f.path.clone(),
            content: f.content.clone(),
            sha256: f.sha256.clone(),
            language: f.language.clone(),
            validation: json!(f.validation),
            model: Some(f.model.clone()),
            prompt_version: Some(outcome.prompt_version.clone()),
            repair_round: i32::try_from(f.repair_round).unwrap_or(i32::MAX),
        })
        .collect();
    // The last version of each path, as the task leaves it.
    let mut last: std::collections::BTreeMap<&str, &guild_agents::GeneratedFile> =
        std::collections::BTreeMap::new();
    for file in &outcome.files {
        last.insert(&file.path, file);
    }
    let mut result = json!({
        "summary": outcome.summary,
        "files": last.keys().collect::<Vec<_>>(),
        "invalid_files": last.values().filter(|f| f.validation.is_invalid()).map(|f| &f.path).collect::<Vec<_>>(),
        "repair_rounds": outcome.repair_rounds,
        "unresolved": outcome.unresolved,
        "rejected_files": outcome.rejected,
        "cut_off": outcome.cut_off,
        "prompt_version": outcome.prompt_version,
        "models": outcome.calls.iter().map(|c| &c.model).collect::<std::collections::BTreeSet<_>>(),
        "llm_calls": outcome.calls.len(),
        "cache_hits": outcome.calls.iter().filter(|c| c.cached).count(),
        "prompt_tokens": outcome.calls.iter().map(|c| u64::from(c.prompt_tokens)).sum::<u64>(),
        "completion_tokens": outcome.calls.iter().map(|c| u64::from(c.completion_tokens)).sum::<u64>(),
    });
    if let Some(report) = outcome.verification {
        result["verification"] = report;
    }
    if let Some(change) = outcome.change {
        result["change"] = change;
    }
    Completion {
        session_id,
        duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        files,
        rejected_files: outcome.rejected,
        requirements: outcome.requirements,
        design: outcome.design,
        llm_calls: outcome.calls,
        findings: outcome.findings,
        cut_off: outcome.cut_off,
        ..Completion::new(task.project_id, task.id, task.attempt, result)
    }
}

/// Exponential backoff with jitter: `base × 2^(attempt-1)`, capped, then a random point in
/// its upper half, so tasks that failed together (a provider outage) do not retry together.
fn retry_delay(base: Duration, attempt: i32) -> Duration {
    let exponent = attempt.clamp(1, 16) as u32 - 1;
    let ceiling = base.saturating_mul(1 << exponent).min(MAX_RETRY_DELAY);
    ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_is_capped_and_jittered() {
        let base = Duration::from_secs(2);
        let within = |attempt, ceiling: Duration| {
            let delays: Vec<Duration> = (0..200).map(|_| retry_delay(base, attempt)).collect();
            assert!(
                delays.iter().all(|d| *d >= ceiling / 2 && *d <= ceiling),
                "attempt {attempt}: {delays:?} not within [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            // Jittered: not all the same.
            assert!(delays.iter().any(|d| *d != delays[0]));
        };
        within(1, Duration::from_secs(2));
        within(3, Duration::from_secs(8));
        within(30, MAX_RETRY_DELAY);
    }
}
