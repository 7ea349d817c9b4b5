//! The kinds of agent a task can be assigned to.

use crate::text_enum::text_enum;

text_enum! {
    /// The specialised agent that runs a task.
    AgentKind ("agent kind") {
        /// Turns the description into the structured requirements analysis.
        Analyst => "analyst",
        /// Schema, API, authentication, business logic.
        Backend => "backend",
        /// Components, pages, state, API integration.
        Frontend => "frontend",
        /// Environments, CI/CD, monitoring.
        Devops => "devops",
        /// Code review, security audit, performance.
        Reviewer => "reviewer",
    }
}
