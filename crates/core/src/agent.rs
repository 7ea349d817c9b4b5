//! The kinds of agent a task can be assigned to.

use std::fmt;
use std::str::FromStr;

use crate::UnknownValue;

/// The specialised agent that runs a task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Turns the description into the structured requirements analysis.
    Analyst,
    /// Schema, API, authentication, business logic.
    Backend,
    /// Components, pages, state, API integration.
    Frontend,
    /// Environments, CI/CD, monitoring.
    Devops,
    /// Code review, security audit, performance.
    Reviewer,
}

impl AgentKind {
    /// Every agent kind, in the order progress is shown.
    pub const ALL: [AgentKind; 5] = [
        Self::Analyst,
        Self::Backend,
        Self::Frontend,
        Self::Devops,
        Self::Reviewer,
    ];

    /// The text stored in the database and shown by the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Analyst => "analyst",
            Self::Backend => "backend",
            Self::Frontend => "frontend",
            Self::Devops => "devops",
            Self::Reviewer => "reviewer",
        }
    }
}

impl fmt::Display for AgentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentKind {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownValue {
                what: "agent kind",
                value: s.to_owned(),
            })
    }
}
