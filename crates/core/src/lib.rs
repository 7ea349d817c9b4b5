//! Guild's domain: statuses, agent kinds, task graphs and their checks, workflow templates.
//!
//! Nothing here does IO; the store, the worker and the API build on these types.

mod agent;
pub mod paths;
mod plan;
mod review;
mod status;
mod workflow;

pub use agent::AgentKind;
pub use plan::{Plan, PlanError, PlanErrors, TaskSpec, is_valid_key};
pub use review::{FIX_FINDINGS, Finding, Severity, is_review_kind, parse_findings};
pub use status::{ProjectStatus, TaskStatus, UnknownValue};
pub use workflow::{ProjectType, REQUIREMENTS_ANALYSIS};
