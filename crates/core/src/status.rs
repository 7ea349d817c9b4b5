//! The life cycle states of projects and tasks, and their text form in the database.

use std::fmt;
use std::str::FromStr;

/// A name that is not one of the known values of an enumeration (a status, an agent kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownValue {
    /// What was being parsed, e.g. `task status`.
    pub what: &'static str,
    /// The text that did not match.
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident ($what:literal) { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every state, in life-cycle order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown by the API.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownValue { what: $what, value: other.to_owned() }),
                }
            }
        }
    };
}

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
                value: "done".into()
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
