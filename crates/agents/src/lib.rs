//! Guild's agents. An agent takes a task's context and returns its outcome: a summary, the
//! files it wrote, what it refused, and the LLM calls it made. Agents never touch the
//! database; the worker reads the context before and persists the outcome after, so no
//! connection is held while a model thinks.
//!
//! The analysis step answers JSON that is checked against the analysis fields and repaired
//! or re-asked when broken; every other task answers markdown whose fenced blocks are files.

pub mod analysis;
pub mod blocks;
pub mod files;
pub mod paths;
pub mod prompts;
mod writer;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use guild_core::{AgentKind, ProjectType, REQUIREMENTS_ANALYSIS};
use guild_llm::{CallPurpose, LlmClient, LlmError, LlmRequest, LlmResponse, Message, Usage};
use serde::Serialize;
use serde_json::Value;

pub use files::{GeneratedFile, RejectedBlock};
use prompts::Prompts;

/// Everything an agent may know about its task.
#[derive(Debug, Clone)]
pub struct TaskInput {
    pub project_id: String,
    pub task_id: String,
    pub attempt: u32,
    pub key: String,
    pub kind: String,
    pub agent: AgentKind,
    pub task_description: String,
    pub description: String,
    pub project_type: ProjectType,
    pub technology_stack: Option<String>,
    pub requirements: Option<Value>,
    /// A reviewer's feedback on this task's previous answer (a rejected approval).
    pub feedback: Option<String>,
    /// Tasks upstream of this one, with their summaries.
    pub upstream: Vec<Upstream>,
    /// The latest version of each file upstream tasks wrote.
    pub files: Vec<ContextFile>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub key: String,
    pub agent: String,
    pub summary: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ContextFile {
    pub path: String,
    pub content: String,
    pub task_key: String,
}

/// One model call an agent made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    pub provider: &'static str,
    pub model: String,
    pub usage: Usage,
    pub latency_ms: u64,
}

/// What an agent produced.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutcome {
    pub summary: String,
    pub files: Vec<GeneratedFile>,
    pub rejected: Vec<RejectedBlock>,
    /// The requirements analysis, from the analysis step.
    pub requirements: Option<Value>,
    pub calls: Vec<CallRecord>,
    pub prompt_version: String,
}

/// Why an agent failed, with the calls it made before failing (they cost tokens too).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AgentError {
    pub message: String,
    /// Whether another attempt could succeed.
    pub retryable: bool,
    pub calls: Vec<CallRecord>,
    /// The model's last answer, kept when it could not be used.
    pub raw_answer: Option<String>,
}

impl AgentError {
    /// A failure that another attempt could get past, with no call made.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            calls: Vec::new(),
            raw_answer: None,
        }
    }

    /// A failure that would repeat on every attempt, with no call made.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            calls: Vec::new(),
            raw_answer: None,
        }
    }

    fn llm(error: LlmError, calls: Vec<CallRecord>) -> Self {
        Self {
            retryable: error.is_retryable(),
            message: format!("LLM call failed: {error}"),
            calls,
            raw_answer: None,
        }
    }
}

/// Runs tasks.
#[async_trait]
pub trait Agent: Send + Sync {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError>;
}

/// How the agents call the model.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The model to ask; `None` uses the provider's default.
    pub model: Option<String>,
    pub temperature: f32,
    pub max_tokens: u32,
    /// Upstream file content beyond this many characters is listed by path only.
    pub context_budget_chars: usize,
    /// Calls the analysis may make when its answer is not valid JSON for the analysis.
    pub analysis_attempts: u32,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            model: None,
            temperature: 0.0,
            max_tokens: 8000,
            context_budget_chars: 60_000,
            analysis_attempts: 3,
        }
    }
}

/// The team: the analyst and the code-writing agents (backend, frontend, devops,
/// reviewer), which differ by system prompt and task templates.
pub struct Agents {
    llm: Arc<dyn LlmClient>,
    prompts: Prompts,
    settings: AgentSettings,
}

impl Agents {
    pub fn new(llm: Arc<dyn LlmClient>, settings: AgentSettings) -> Self {
        Self {
            llm,
            prompts: Prompts::embedded(),
            settings,
        }
    }

    fn request(
        &self,
        input: &TaskInput,
        system: String,
        messages: Vec<Message>,
        json: bool,
    ) -> LlmRequest {
        LlmRequest {
            model: self
                .settings
                .model
                .clone()
                .unwrap_or_else(|| self.llm.default_model().to_owned()),
            system,
            messages,
            temperature: self.settings.temperature,
            max_tokens: self.settings.max_tokens,
            json,
            purpose: CallPurpose {
                task_id: input.task_id.clone(),
                attempt: input.attempt,
                task_kind: input.kind.clone(),
                description: input.description.clone(),
                technology_stack: input.technology_stack.clone(),
            },
        }
    }

    /// Renders the task's prompt; a template error fails the task for good.
    fn render(
        &self,
        input: &TaskInput,
        context: &prompts::PromptContext<'_>,
    ) -> Result<prompts::RenderedPrompt, AgentError> {
        self.prompts
            .render(input.agent, &input.kind, context)
            .map_err(|e| AgentError::permanent(format!("prompt template failed: {e}")))
    }

    /// Makes one call and records it.
    async fn call(
        &self,
        request: &LlmRequest,
        calls: &mut Vec<CallRecord>,
    ) -> Result<LlmResponse, LlmError> {
        let started = Instant::now();
        let response = self.llm.complete(request).await?;
        calls.push(CallRecord {
            provider: self.llm.provider(),
            model: response.model.clone(),
            usage: response.usage,
            latency_ms: started.elapsed().as_millis() as u64,
        });
        Ok(response)
    }
}

#[async_trait]
impl Agent for Agents {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        if input.kind == REQUIREMENTS_ANALYSIS {
            analysis::run(self, input).await
        } else {
            writer::run(self, input).await
        }
    }
}
