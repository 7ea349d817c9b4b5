//! The records that cross from the agents to the store and back, defined once: what a
//! task sees of the work upstream of it, and what a task's attempt reports besides its
//! files (its model calls, the blocks it refused).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AgentKind, Finding, ProjectType};

/// What an agent needs to know of its task's project and of the work upstream of it: read
/// by the store, passed on by the worker unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskContext {
    pub description: String,
    pub project_type: ProjectType,
    pub technology_stack: Option<String>,
    pub requirements: Option<Value>,
    /// The project's latest design (see the `guild-design` crate), once its design step
    /// completed.
    pub design: Option<Value>,
    /// Every task of the project's graph, in plan order: what a design's files may be
    /// owned by.
    pub graph: Vec<GraphNode>,
    /// The change request the task belongs to (a task of revision 2 or later).
    pub change: Option<ChangeContext>,
    /// A reviewer's feedback from a rejected approval of this task.
    pub feedback: Option<String>,
    /// Summaries of the tasks this one depends on, directly or not, by priority and key.
    pub upstream: Vec<UpstreamSummary>,
    /// The latest version of each file those tasks wrote, by path.
    pub files: Vec<UpstreamFile>,
    /// The project allows answers from the response cache (`options.cache`, default true).
    pub use_cache: bool,
    /// The project has a budget (`max_tokens` or `max_cost_usd`) its calls must reserve.
    pub budgeted: bool,
    /// The review findings the task fixes or verifies.
    pub findings: Vec<Finding>,
}

/// A change request, as its tasks see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeContext {
    /// The revision it makes: 2 for the first change.
    pub revision: i32,
    pub description: String,
    /// Its analysis (components, files, operations it touches), once that step completed.
    pub analysis: Option<Value>,
}

/// A task of a project's graph, as a design step sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct GraphNode {
    pub key: String,
    /// The task type.
    pub kind: String,
    pub agent: AgentKind,
}

/// A completed upstream task's summary, as a later task's prompt shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct UpstreamSummary {
    pub key: String,
    pub agent: AgentKind,
    pub summary: Option<String>,
}

/// The latest version of a file an upstream task wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamFile {
    pub path: String,
    pub version: i32,
    pub content: String,
    /// The task that wrote this version.
    pub task_key: String,
    /// The version's check when it failed (`{status, checker, errors}`).
    pub validation: Option<Value>,
    /// The unordered version this one replaced (`{version, task_key, agent}`).
    pub conflict: Option<Value>,
}

/// One call to a model, as accounted: tokens, cost, time, and what asked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCall {
    /// `offline`, `openai`, `anthropic`, ...
    pub provider: String,
    /// The model that answered, as the provider named it.
    pub model: String,
    /// Every prompt token, those the provider's prompt cache served included.
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens read from the provider's prompt cache.
    #[serde(default)]
    pub cached_prompt_tokens: u32,
    /// Prompt tokens written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u32,
    /// Prompt tokens in the prefix shared by every task of the project (estimated): what
    /// a prompt cache can reuse.
    #[serde(default)]
    pub shared_prefix_tokens: u32,
    pub latency_ms: u64,
    /// US dollars; `None` when the model's price is unknown.
    pub cost_usd: Option<f64>,
    /// Answered from the response cache, at no cost.
    pub cached: bool,
    /// The version of the prompt template the call was made with.
    pub prompt_version: String,
}

impl ModelCall {
    /// Prompt and completion tokens.
    pub fn tokens(&self) -> u64 {
        u64::from(self.prompt_tokens) + u64::from(self.completion_tokens)
    }
}

/// A code block an agent wrote that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedFile {
    /// The `path=` it named, if any.
    pub path: Option<String>,
    pub reason: String,
}
