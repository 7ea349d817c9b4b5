//! Guild's domain: statuses, agent kinds, task graphs and their checks, workflow templates.
//!
//! Nothing here does IO; the store, the worker and the API build on these types.

mod agent;
pub mod change;
mod custom;
mod events;
pub mod fix_round;
mod ids;
pub mod options;
pub mod paths;
mod plan;
mod records;
mod review;
mod status;
mod text_enum;
pub mod verification;
mod workflow;

pub use agent::AgentKind;
pub use custom::WorkflowTask;
pub use events::EventKind;
pub use ids::{ProjectId, TaskId};
pub use options::ProjectOptions;
pub use plan::{Plan, PlanError, PlanErrors, TaskSpec, is_valid_key};
pub use records::{
    ChangeContext, GraphNode, ModelCall, RejectedFile, TaskContext, UpstreamFile, UpstreamSummary,
};
pub use review::{FIX_FINDINGS, Finding, Severity, is_review_kind, parse_findings};
pub use status::{ProjectStatus, TaskStatus};
pub use text_enum::UnknownValue;
pub use workflow::{
    CODE_REVIEW, ProjectType, REQUIREMENTS_ANALYSIS, SCAFFOLD, SYSTEM_DESIGN, VERIFY,
};
