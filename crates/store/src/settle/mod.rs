//! Settling a claimed task: completing it or failing it, with everything that follows, in
//! one transaction.
//!
//! Both are fenced: they apply only while the task is still `running` at the attempt the
//! worker claimed, so a late result can never overwrite a newer attempt. A late result is
//! not stored, but the calls it made are counted: money spent is money spent.
//!
//! Lock order, in every settling transaction: the projects' rows first, in id order, then
//! their tasks' rows (the `locks` module). The heartbeat, which locks running
//! tasks without their projects, skips rows that are locked instead of waiting for them.

mod accounting;
mod complete;
mod fail;
mod release;

use std::time::Duration;

use guild_core::{Finding, ModelCall, ProjectId, ProjectStatus, RejectedFile, TaskId};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Result;
use crate::files::NewFile;

pub use accounting::record_dropped_result;
pub use complete::complete_many;
pub use fail::fail;
pub(crate) use release::{finish_project_if_done, release_dependents};

/// A task's successful outcome: what its attempt made, owned, on its way to the store.
#[derive(Debug, Clone)]
pub struct Completion {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub attempt: i32,
    pub session_id: Option<Uuid>,
    pub duration_ms: i64,
    /// The task's result: at least `summary`.
    pub result: Value,
    pub files: Vec<NewFile>,
    /// Blocks refused (unsafe path, no path, ...): each is recorded as a `file_rejected` event.
    pub rejected_files: Vec<RejectedFile>,
    /// The requirements analysis, stored on the project when this task produced it.
    pub requirements: Option<Value>,
    /// The application's design, stored as the project's next design version when this
    /// task produced it.
    pub design: Option<Value>,
    pub llm_calls: Vec<ModelCall>,
    /// A review's findings, stored in the result as `findings`; blocking ones start a fix
    /// round (see [`crate::review`]).
    pub findings: Vec<Finding>,
    /// Files the model's answer was cut off in (its length limit), kept incomplete:
    /// recorded as an `answer_truncated` event.
    pub cut_off: Vec<String>,
}

impl Completion {
    /// A completion of `task_id` at `attempt` with `result` and nothing else: no files,
    /// no calls, no findings.
    pub fn new(project_id: ProjectId, task_id: TaskId, attempt: i32, result: Value) -> Self {
        Self {
            project_id,
            task_id,
            attempt,
            session_id: None,
            duration_ms: 0,
            result,
            files: Vec::new(),
            rejected_files: Vec::new(),
            requirements: None,
            design: None,
            llm_calls: Vec::new(),
            findings: Vec::new(),
            cut_off: Vec::new(),
        }
    }
}

/// A task's failed attempt.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub attempt: i32,
    pub session_id: Option<Uuid>,
    pub duration_ms: i64,
    pub error: &'a str,
    /// Whether another attempt could succeed (a transport error, say); a task with
    /// attempts left is then re-queued after `retry_delay`.
    pub retryable: bool,
    pub retry_delay: Duration,
    pub llm_calls: &'a [ModelCall],
    /// The model's unusable answer, kept (truncated) in the failure's event.
    pub raw_answer: Option<&'a str>,
    /// The project must stop (its budget would be exceeded): it fails, and its other
    /// tasks, running ones included, are cancelled.
    pub stops_project: bool,
}

/// What settling a task changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub project_id: ProjectId,
    /// Dependents that became ready.
    pub released: u64,
    /// File versions written.
    pub files_written: u64,
    /// The task waits for a human's approval before its dependents run.
    pub awaiting_approval: bool,
    /// The task went back to `ready` for another attempt.
    pub retrying: bool,
    /// Dependents skipped or tasks cancelled because this task failed.
    pub skipped: u64,
    pub cancelled: u64,
    /// The project's final status, when this settled it.
    pub project_finished: Option<ProjectStatus>,
}

impl Settled {
    /// Nothing changed yet for `project_id`.
    pub(crate) fn nothing(project_id: ProjectId) -> Self {
        Self {
            project_id,
            released: 0,
            files_written: 0,
            awaiting_approval: false,
            retrying: false,
            skipped: 0,
            cancelled: 0,
            project_finished: None,
        }
    }
}

/// How much of an unusable answer an event keeps.
const RAW_ANSWER_CHARS: usize = 4000;

fn truncated(text: Option<&str>) -> Option<String> {
    text.map(|t| t.chars().take(RAW_ANSWER_CHARS).collect())
}

/// Completes a running task: stores its result and files, records its events and usage,
/// releases dependents whose dependencies are now all complete, and finishes the project
/// when nothing is left to run. [`complete_many`] for one task.
///
/// # Errors
///
/// [`crate::StoreError::NotRunning`] when the task is no longer running at this attempt
/// (its result is dropped, its calls counted); a database error otherwise.
pub async fn complete(pool: &PgPool, completion: Completion) -> Result<Settled> {
    complete_many(pool, std::slice::from_ref(&completion))
        .await?
        .pop()
        .expect("one outcome per completion")
}
