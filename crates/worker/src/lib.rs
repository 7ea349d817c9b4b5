//! Guild's worker pool: a claim loop feeding a fixed number of task slots.
//!
//! The loop claims as many ready tasks as it has free slots in one statement, then waits
//! for a `NOTIFY` hint, a freed slot, or the polling backstop. A claimed batch records its
//! sessions and reads its contexts together; then each task runs its agent in its own slot
//! (no connection held) and hands its completion to the settler, which stores the
//! completions that arrived meanwhile in one transaction. A failure is settled by its slot.
//! An agent that panics fails its task, not the pool; a heartbeat keeps the leases and
//! stops the agents of tasks that are no longer this process's.

mod execute;
mod ledger;
mod maintain;
mod outcome;
mod settler;

use execute::Slotted;
pub use ledger::PgResponseCache;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guild_agents::Agent;
use guild_core::{AgentKind, ProjectId, ProjectStatus, TaskId};
use guild_store::listener::ReadyListener;
use guild_store::{PgPool, StoreError, tasks};
use tokio::sync::{Notify, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// How a pool runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique per process; recorded on the tasks it claims and its sessions.
    pub worker_id: String,
    /// Tasks run at once.
    pub slots: usize,
    /// How long a claim is valid.
    pub lease: Duration,
    /// The backstop when no hint arrives (hints can be lost).
    pub poll_interval: Duration,
    /// The first retry waits this long, doubling with each attempt.
    pub retry_base_delay: Duration,
    /// On shutdown, how long running tasks may take to finish before they are released.
    pub shutdown_grace: Duration,
    /// At most this many tasks of an agent kind run at once in this process; kinds not
    /// listed are limited by the slots alone.
    pub agent_caps: BTreeMap<AgentKind, usize>,
}

impl WorkerConfig {
    /// Defaults with a fresh worker id.
    pub fn new(slots: usize) -> Self {
        Self {
            worker_id: format!("worker-{}", Uuid::new_v4().simple()),
            slots: slots.max(1),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            retry_base_delay: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(10),
            agent_caps: BTreeMap::new(),
        }
    }
}

/// What the pool did, for progress displays in the same process. The database is the
/// record; these are hints and a slow receiver may miss some.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerEvent {
    TaskStarted {
        project_id: ProjectId,
        task_id: TaskId,
        key: String,
        agent: AgentKind,
        attempt: i32,
        /// When the slot began the task (just after its claim).
        at: Instant,
    },
    TaskCompleted {
        project_id: ProjectId,
        task_id: TaskId,
        key: String,
        agent: AgentKind,
        files_written: u64,
        tokens: u64,
        duration: Duration,
        /// When the completion committed (its dependents were released at that moment).
        at: Instant,
    },
    TaskFailed {
        project_id: ProjectId,
        task_id: TaskId,
        key: String,
        agent: AgentKind,
        error: String,
        retrying: bool,
    },
    /// The task stopped being this worker's while its agent ran (the project was
    /// cancelled, or its lease was lost), seen at a heartbeat: the agent was stopped.
    TaskInterrupted {
        project_id: ProjectId,
        task_id: TaskId,
        key: String,
    },
    /// The task stopped being this worker's while it ran (the project was cancelled, or
    /// its lease was lost): its result was dropped.
    ResultDropped {
        project_id: ProjectId,
        task_id: TaskId,
        key: String,
    },
    ProjectFinished {
        project_id: ProjectId,
        status: ProjectStatus,
    },
}

/// Why the pool stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A pool of task slots over one database.
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    agent: Arc<dyn Agent>,
    config: WorkerConfig,
    events: broadcast::Sender<WorkerEvent>,
    slots: Arc<Semaphore>,
    /// Slot numbers not in use, for agent sessions.
    free_slot_ids: Mutex<Vec<i32>>,
    /// Tasks running in this process, whose leases the heartbeat extends.
    running: Mutex<HashMap<TaskId, RunningTask>>,
    slot_freed: Notify,
}

impl WorkerPool {
    pub fn new(pool: PgPool, agent: Arc<dyn Agent>, config: WorkerConfig) -> Self {
        let (events, _) = broadcast::channel(4096);
        let slots = config.slots;
        Self {
            inner: Arc::new(Inner {
                pool,
                agent,
                events,
                slots: Arc::new(Semaphore::new(slots)),
                free_slot_ids: Mutex::new((0..slots as i32).rev().collect()),
                running: Mutex::new(HashMap::new()),
                slot_freed: Notify::new(),
                config,
            }),
        }
    }

    /// Progress events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<WorkerEvent> {
        self.inner.events.subscribe()
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Claims and runs tasks until `shutdown` is cancelled, then lets running tasks finish
    /// within the grace period and releases those that do not.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let inner = &self.inner;
        // Subscribe before the first claim, so no hint sent in between is missed.
        let mut listener = ReadyListener::connect(&inner.pool).await?;
        let tracker = TaskTracker::new();
        let abort = CancellationToken::new();
        let (settler, incoming) = mpsc::unbounded_channel();
        let settling = tokio::spawn({
            let pool = self.clone();
            async move { pool.settle_completions(incoming).await }
        });
        tracker.spawn({
            let pool = self.clone();
            let shutdown = shutdown.clone();
            async move { pool.inner.maintain(shutdown).await }
        });
        tracing::info!(worker_id = %inner.config.worker_id, slots = inner.config.slots, "worker pool started");

        let running = Running {
            abort: abort.clone(),
            settler: settler.clone(),
            tracker: tracker.clone(),
        };
        while !shutdown.is_cancelled() {
            let slots_full = self.claim_and_start(&running).await;
            if slots_full {
                tokio::select! {
                    () = inner.slot_freed.notified() => {}
                    () = shutdown.cancelled() => {}
                }
                continue;
            }
            tokio::select! {
                hint = listener.recv() => {
                    if let Err(error) = hint {
                        tracing::warn!(%error, "listening for ready tasks failed");
                        tokio::select! {
                            () = tokio::time::sleep(inner.config.poll_interval) => {}
                            () = shutdown.cancelled() => {}
                        }
                    }
                }
                () = inner.slot_freed.notified() => {}
                () = tokio::time::sleep(inner.config.poll_interval) => {}
                () = shutdown.cancelled() => {}
            }
        }
        drop(running);

        tracker.close();
        if tokio::time::timeout(inner.config.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "running tasks did not finish within the shutdown grace; releasing them"
            );
            abort.cancel();
            tracker.wait().await;
        }
        // Every slot has its answer: the settler ends once its last sender is gone.
        drop(settler);
        if let Err(error) = settling.await {
            tracing::error!(%error, "the settler crashed");
        }
        tracing::info!(worker_id = %inner.config.worker_id, "worker pool stopped");
        Ok(())
    }
}

/// What a started batch needs of the pool's run: the abort signal of the shutdown grace,
/// the settler's inbox, and the tracker the shutdown waits on.
struct Running {
    abort: CancellationToken,
    settler: mpsc::UnboundedSender<settler::ToSettle>,
    tracker: TaskTracker,
}

impl WorkerPool {
    /// Claims as many ready tasks as there are free slots, in one statement, and starts
    /// them. Returns whether every slot is now taken (nothing more to claim until one is
    /// freed).
    async fn claim_and_start(&self, running: &Running) -> bool {
        let inner = &self.inner;
        let free = inner.slots.available_permits();
        if free == 0 {
            return true;
        }
        let claimed = match tasks::claim_ready(
            &inner.pool,
            &inner.config.worker_id,
            i64::try_from(free).unwrap_or(i64::MAX),
            inner.config.lease,
            &inner.agent_room(),
        )
        .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "claiming tasks failed; retrying after the poll interval");
                return false;
            }
        };
        let slots_full = claimed.len() == free;
        for task in &claimed {
            metrics::counter!("guild_tasks_claimed_total", "agent" => task.agent.as_str(), "kind" => task.kind.clone()).increment(1);
        }
        if !claimed.is_empty() {
            let batch: Vec<Slotted> = claimed
                .into_iter()
                .map(|task| inner.take_slot(task))
                .collect();
            let pool = self.clone();
            let (abort, settler, spawner) = (
                running.abort.clone(),
                running.settler.clone(),
                running.tracker.clone(),
            );
            running.tracker.spawn(async move {
                pool.start_batch(batch, abort, settler, spawner).await;
            });
        }
        slots_full
    }
}

/// A task running in this process.
struct RunningTask {
    agent: AgentKind,
    /// Stops its agent: the task is no longer this worker's.
    cancel: CancellationToken,
}

impl Inner {
    /// Takes a slot for a claimed task: its permit (one is free for every claimed task),
    /// a slot number, and a cancellation token registered with the running tasks.
    fn take_slot(&self, task: tasks::ClaimedTask) -> Slotted {
        let permit = Arc::clone(&self.slots)
            .try_acquire_owned()
            .expect("a slot is free for every claimed task");
        let slot = self.take_slot_id();
        let cancel = CancellationToken::new();
        self.running.lock().expect("running lock").insert(
            task.id,
            RunningTask {
                agent: task.agent,
                cancel: cancel.clone(),
            },
        );
        Slotted {
            task,
            slot,
            permit,
            cancel,
        }
    }

    /// How many more tasks of each capped agent kind may start now.
    fn agent_room(&self) -> Vec<(AgentKind, u32)> {
        if self.config.agent_caps.is_empty() {
            return Vec::new();
        }
        let running = self.running.lock().expect("running lock");
        self.config
            .agent_caps
            .iter()
            .map(|(&agent, &cap)| {
                let busy = running.values().filter(|t| t.agent == agent).count();
                (agent, cap.saturating_sub(busy) as u32)
            })
            .collect()
    }

    fn take_slot_id(&self) -> i32 {
        self.free_slot_ids
            .lock()
            .expect("slot ids lock")
            .pop()
            .unwrap_or_default()
    }

    fn return_slot_id(&self, slot: i32) {
        self.free_slot_ids.lock().expect("slot ids lock").push(slot);
    }

    fn emit(&self, event: WorkerEvent) {
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}
