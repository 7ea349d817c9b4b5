//! The kinds of event the log records, one name each: the store binds them as parameters,
//! the API publishes them as an enumeration, and `docs/architecture.md` lists them (a test
//! holds the two lists together).

use crate::text_enum::text_enum;

text_enum! {
    /// What happened: the `kind` of an event in a project's log.
    EventKind ("event kind") {
        /// A project and its whole task graph were stored.
        ProjectCreated => "project_created",
        /// A worker took a task (`worker_id`, `attempt`).
        TaskClaimed => "task_claimed",
        /// A task completed and its dependents were released.
        TaskCompleted => "task_completed",
        /// A task ran and waits for a human's approval.
        TaskAwaitingApproval => "task_awaiting_approval",
        /// A human approved a waiting task.
        ApprovalGiven => "approval_given",
        /// A human rejected a waiting task, which runs again with the feedback.
        ApprovalRejected => "approval_rejected",
        /// One model call: provider, model, tokens, cost, latency, cache.
        LlmCall => "llm_call",
        /// A code block that did not become a file, and why.
        FileRejected => "file_rejected",
        /// A file version that failed its check.
        FileInvalid => "file_invalid",
        /// A file version that replaced one its task never saw.
        FileConflict => "file_conflict",
        /// The model's answer stayed cut at its length limit: files kept incomplete.
        AnswerTruncated => "answer_truncated",
        /// An attempt failed and the task queues again after its backoff.
        TaskRetried => "task_retried",
        /// A task failed for good.
        TaskFailed => "task_failed",
        /// A task did not run: an upstream task failed.
        TaskSkipped => "task_skipped",
        /// A running task was given back at shutdown, its attempt not counted.
        TaskReleased => "task_released",
        /// A human asked a failed, skipped or cancelled task to run again.
        TaskRetryRequested => "task_retry_requested",
        /// A task was cancelled with its project.
        TaskCancelled => "task_cancelled",
        /// A late result was not stored (its calls are counted).
        ResultDropped => "result_dropped",
        /// A review's blocking findings added fix tasks and a re-review.
        FixRoundStarted => "fix_round_started",
        /// A review still has blocking findings and no fix round is left.
        FixRoundsExhausted => "fix_rounds_exhausted",
        /// Findings on files no task of the project wrote.
        FindingsUnassigned => "findings_unassigned",
        /// A change request added a revision: its analysis and design update.
        ChangeRequested => "change_requested",
        /// A change's updated design added the tasks that own what changes, then its
        /// verification and review.
        ChangePlanned => "change_planned",
        /// Every task completed.
        ProjectCompleted => "project_completed",
        /// A critical task failed, or the graph ran out of runnable work.
        ProjectFailed => "project_failed",
        /// A human cancelled the project.
        ProjectCancelled => "project_cancelled",
    }
}

impl EventKind {
    /// The events that end a project: its last event is always one of these.
    pub const fn ends_project(self) -> bool {
        matches!(
            self,
            Self::ProjectCompleted | Self::ProjectFailed | Self::ProjectCancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/architecture.md` lists every kind in a table whose first column is the kind;
    /// the enumeration and the table must say the same.
    #[test]
    fn the_documented_kinds_are_the_enumeration() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/architecture.md"
        ))
        .expect("docs/architecture.md");
        let section = doc
            .split("### Event kinds")
            .nth(1)
            .expect("an event kinds section");
        let documented: Vec<&str> = section
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .collect();
        let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(documented, kinds);
        assert!(EventKind::ProjectCancelled.ends_project());
        assert!(!EventKind::TaskCompleted.ends_project());
    }
}
