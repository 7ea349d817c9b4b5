//! What the API answers with: the store's records shaped for clients, with their schemas.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use guild_core::{
    AgentKind, EventKind, Finding, Plan, ProjectId, ProjectStatus, ProjectType, TaskId, TaskSpec,
    TaskStatus,
};
use guild_store::files::FileMeta;
use guild_store::projects::{Project, Usage};
use guild_store::tasks::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Tokens, cost and calls of a project, a task or an agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// US dollars; `null` once the price of a model used is unknown.
    pub cost_usd: Option<f64>,
    /// Model calls, answers from the response cache included.
    pub llm_calls: i64,
    /// Calls answered from the response cache, at no cost.
    pub cache_hits: i64,
    /// Prompt tokens the provider's prompt cache served, priced at its cache-read rate
    /// (part of `prompt_tokens`).
    pub cached_prompt_tokens: i64,
    /// Prompt tokens written to the provider's prompt cache, priced at its cache-write
    /// rate (part of `prompt_tokens`).
    pub cache_write_tokens: i64,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens + u.completion_tokens,
            cost_usd: u.cost_usd,
            llm_calls: u.llm_calls,
            cache_hits: u.cache_hits,
            cached_prompt_tokens: u.cached_prompt_tokens,
            cache_write_tokens: u.cache_write_tokens,
        }
    }
}

/// What one agent kind's tasks of a project used.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentUsageView {
    pub agent: AgentKind,
    #[serde(flatten)]
    pub usage: UsageView,
}

/// A plan's shape and durations.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanSummary {
    /// Task keys by phase: phase `n` holds tasks whose longest dependency chain has `n` links.
    pub phases: Vec<Vec<String>>,
    /// Sum of all estimates.
    pub estimated_minutes: u32,
    /// The longest chain of estimates.
    pub critical_path_minutes: u32,
    pub critical_path: Vec<String>,
}

impl From<&Plan> for PlanSummary {
    fn from(plan: &Plan) -> Self {
        Self {
            phases: plan.phases().to_vec(),
            estimated_minutes: plan.total_minutes(),
            critical_path_minutes: plan.critical_path_minutes(),
            critical_path: plan.critical_path().to_vec(),
        }
    }
}

/// A project as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectSummary {
    pub id: ProjectId,
    pub status: ProjectStatus,
    pub description: String,
    pub project_type: ProjectType,
    pub technology_stack: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// 1 for the first generation, one more per change request
    /// (`GET /projects/{id}/changes`).
    pub revision: i32,
    pub usage: UsageView,
}

impl From<Project> for ProjectSummary {
    fn from(p: Project) -> Self {
        Self {
            id: p.id,
            status: p.status,
            description: p.description,
            project_type: p.project_type,
            technology_stack: p.technology_stack,
            error: p.error,
            created_at: p.created_at,
            started_at: p.started_at,
            finished_at: p.finished_at,
            revision: p.revision,
            usage: p.usage.into(),
        }
    }
}

/// A project in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    #[serde(flatten)]
    pub summary: ProjectSummary,
    #[schema(value_type = Object)]
    pub options: Value,
    /// The requirements analysis, once done.
    #[schema(value_type = Option<Object>)]
    pub requirements: Option<Value>,
    /// Task counts by status (statuses with none are left out).
    #[schema(value_type = BTreeMap<String, i64>)]
    pub progress: BTreeMap<TaskStatus, i64>,
    pub plan: PlanSummary,
    /// Usage by agent kind: the sums of its tasks'.
    pub usage_by_agent: Vec<AgentUsageView>,
}

/// A page of projects.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectPage {
    pub items: Vec<ProjectSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: TaskId,
    pub key: String,
    pub kind: String,
    pub agent: AgentKind,
    pub description: String,
    pub status: TaskStatus,
    /// Keys of the tasks it waits for.
    pub depends_on: Vec<String>,
    pub priority: i16,
    pub critical: bool,
    pub estimated_minutes: i32,
    pub attempt: i32,
    pub max_attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The last error.
    pub error: Option<String>,
    /// The error of each failed attempt, oldest first (attempts that lost their worker
    /// included).
    pub errors: Vec<AttemptErrorView>,
    /// The feedback of the last rejected approval.
    pub feedback: Option<String>,
    /// 0 for planned tasks; n for the fix tasks and re-review a review's blocking findings
    /// added in fix round n.
    pub review_round: i32,
    /// The project revision that added it: 1 for the first generation, n for change n.
    pub revision: i32,
    /// The review findings this task fixes (a `fix_findings` task) or verifies (a
    /// re-review). A review's own findings are in its `result.findings`.
    pub findings: Vec<Finding>,
    /// What the task's model calls used, over all its attempts.
    pub usage: UsageView,
}

/// Why one attempt at a task failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptErrorView {
    pub attempt: i32,
    pub error: String,
    pub at: DateTime<Utc>,
}

impl From<&Task> for TaskView {
    fn from(t: &Task) -> Self {
        Self {
            id: t.id,
            key: t.key.clone(),
            kind: t.kind.clone(),
            agent: t.agent,
            description: t.description.clone(),
            status: t.status,
            depends_on: t.depends_on.clone(),
            priority: t.priority,
            critical: t.critical,
            estimated_minutes: t.estimated_minutes,
            attempt: t.attempt,
            max_attempts: t.max_attempts,
            started_at: t.started_at,
            completed_at: t.completed_at,
            error: t.error.clone(),
            errors: t
                .errors
                .iter()
                .map(|e| AttemptErrorView {
                    attempt: e.attempt,
                    error: e.error.clone(),
                    at: e.at,
                })
                .collect(),
            feedback: t.feedback.clone(),
            review_round: t.review_round,
            revision: t.revision,
            findings: t.findings.clone(),
            usage: t.usage.into(),
        }
    }
}

/// A project's tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<TaskView>,
}

/// A task with its result and the files it wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: TaskView,
    /// Summary, files (the last version of each), `invalid_files` (still invalid after
    /// the last repair round), `repair_rounds`, `unresolved` problems, a review's
    /// `findings`, refused blocks, prompt version, models and tokens.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub files: Vec<FileView>,
}

/// A stored file version, without its content.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    pub path: String,
    pub version: i32,
    pub size_bytes: i32,
    pub sha256: String,
    pub language: Option<String>,
    pub task_id: Option<TaskId>,
    pub task_key: Option<String>,
    pub agent: Option<AgentKind>,
    pub attempt: Option<i32>,
    /// The model whose answer held this version.
    pub model: Option<String>,
    /// The version of the prompt template the task was asked with.
    pub prompt_version: Option<String>,
    /// 0 for the task's first answer; n for its n-th repair round.
    pub repair_round: i32,
    /// The check of this version by its type; absent for versions stored before checks.
    pub validation: Option<ValidationView>,
    /// Set when this version replaced one written by a task the graph does not order
    /// before its own: both are kept.
    pub conflict: Option<ConflictView>,
    pub created_at: DateTime<Utc>,
}

/// A file version's check.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidationView {
    pub status: ValidationStatus,
    /// What checked it: tree-sitter-python, tree-sitter-typescript, serde_json, yaml-rust2,
    /// toml, sql-statements, ...
    pub checker: Option<String>,
    pub errors: Vec<ProblemView>,
}

/// A file version's check: `unchecked` when no checker knows its type.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    Valid,
    Invalid,
    Unchecked,
}

/// One validation error, at a 1-based line and column.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProblemView {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// The other side of a conflict.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConflictView {
    /// The version replaced.
    pub version: i32,
    /// The task that wrote it.
    pub task_key: String,
    pub agent: Option<AgentKind>,
}

impl From<FileMeta> for FileView {
    fn from(f: FileMeta) -> Self {
        Self {
            path: f.path,
            version: f.version,
            size_bytes: f.size_bytes,
            sha256: f.sha256,
            language: f.language,
            task_id: f.task_id,
            task_key: f.task_key,
            agent: f.agent,
            attempt: f.attempt,
            model: f.model,
            prompt_version: f.prompt_version,
            repair_round: f.repair_round,
            validation: f.validation.and_then(|v| serde_json::from_value(v).ok()),
            conflict: f.conflict.and_then(|c| serde_json::from_value(c).ok()),
            created_at: f.created_at,
        }
    }
}

/// A project's files.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileView>,
}

/// One recorded event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    pub task_id: Option<TaskId>,
    pub kind: EventKind,
    #[schema(value_type = Object)]
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

impl From<guild_store::events::Event> for EventView {
    fn from(e: guild_store::events::Event) -> Self {
        Self {
            id: e.id,
            task_id: e.task_id,
            kind: e.kind,
            data: e.data,
            created_at: e.created_at,
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
}

/// A plan's node.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanNode {
    pub key: String,
    pub agent: AgentKind,
    pub status: TaskStatus,
    pub depends_on: Vec<String>,
    pub priority: i16,
    pub critical: bool,
    pub estimated_minutes: i32,
}

/// A project's graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub nodes: Vec<PlanNode>,
    #[serde(flatten)]
    pub summary: PlanSummary,
}

/// A workflow template's task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateTask {
    pub key: String,
    pub agent: AgentKind,
    pub description: String,
    pub depends_on: Vec<String>,
    pub priority: i16,
    pub critical: bool,
    pub estimated_minutes: u32,
}

impl From<&TaskSpec> for TemplateTask {
    fn from(t: &TaskSpec) -> Self {
        Self {
            key: t.key.clone(),
            agent: t.agent,
            description: t.description.clone(),
            depends_on: t.depends_on.clone(),
            priority: t.priority,
            critical: t.critical,
            estimated_minutes: t.estimated_minutes,
        }
    }
}

/// A workflow template.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    pub project_type: ProjectType,
    pub tasks: Vec<TemplateTask>,
    #[serde(flatten)]
    pub plan: PlanSummary,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowList {
    pub workflows: Vec<WorkflowView>,
}

/// The agent sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<guild_store::sessions::Session>,
}

/// Figures per agent kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<guild_store::sessions::AgentStats>,
}

/// Liveness or readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Bytes, for a binary body (the archive): a `string` of `format: binary`, which client
/// generators read as a file or a blob.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for Binary {}

/// Any document: the body of a generated file that is itself JSON or YAML, which a client
/// may parse as it likes.
pub struct AnyDocument;

impl utoipa::PartialSchema for AnyDocument {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::empty().into()
    }
}

impl ToSchema for AnyDocument {}
