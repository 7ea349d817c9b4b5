//! The life cycle states of projects and tasks, and their text form in the database.

use crate::text_enum::text_enum;

text_enum! {
    /// Where a project is in its life: it ends `completed`, `failed` or `cancelled`.
    ProjectStatus ("project status") {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// Where a task is: `blocked → ready → running → completed`, or it ends `failed`,
    /// `skipped` (an upstream task failed) or `cancelled`.
    TaskStatus ("task status") {
        Blocked => "blocked",
        Ready => "ready",
        Running => "running",
        AwaitingApproval => "awaiting_approval",
        Completed => "completed",
        Failed => "failed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
}

impl ProjectStatus {
    /// A finished project never changes status again.
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl TaskStatus {
    /// A task in a terminal state never runs again (unless a human retries it).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Skipped | Self::Cancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::UnknownValue;

    #[test]
    fn statuses_round_trip_through_text() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>(), Ok(*status));
        }
        for status in ProjectStatus::ALL {
            assert_eq!(status.as_str().parse::<ProjectStatus>(), Ok(*status));
        }
        assert_eq!(
            "done".parse::<TaskStatus>(),
            Err(UnknownValue {
                what: "task status",
                value: "done".into(),
                known: TaskStatus::ALL.iter().map(|s| s.as_str()).collect(),
            })
        );
    }

    #[test]
    fn terminal_states_are_the_four_endings() {
        let terminal: Vec<_> = TaskStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(terminal, ["completed", "failed", "skipped", "cancelled"]);
    }
}
