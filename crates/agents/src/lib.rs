//! Guild's agents. An agent takes a task's context and returns its outcome: a summary, the
//! files it wrote, what it refused, and the LLM calls it made. Agents never touch the
//! database; the worker reads the context before and persists the outcome after, so no
//! connection is held while a model thinks.
//!
//! The analysis and design steps answer JSON that is checked (the analysis's fields; the
//! design's contract, plan and ownership) and repaired or re-asked when broken; every
//! other task answers markdown whose fenced blocks are files, held to the design's plan.

pub mod analysis;
pub mod blocks;
pub mod change_analysis;
mod context;
pub mod design_step;
pub mod files;
pub mod prompts;
mod structured;
mod writer;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use guild_core::change::{CHANGE_ANALYSIS, DESIGN_UPDATE};
use guild_core::{AgentKind, Finding, REQUIREMENTS_ANALYSIS, SYSTEM_DESIGN, VERIFY};
use guild_llm::{
    CallPurpose, LlmClient, LlmError, LlmRequest, LlmResponse, Message, ModelRoutes, PriceTable,
    Usage,
};
use serde_json::Value;

pub use files::GeneratedFile;
pub use guild_core::{ModelCall, RejectedFile, TaskContext, UpstreamFile, UpstreamSummary, paths};
pub use prompts::{Prompts, PromptsError};

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
    /// The project and the work upstream, as the store read them.
    pub context: TaskContext,
    /// The project's budget, when it has one: every call is checked against it first.
    pub budget: Option<Arc<dyn Budget>>,
    /// Every call this attempt has made so far, kept outside the agent so that the calls
    /// of an attempt that is stopped midway (its project cancelled, its lease lost) are
    /// still counted: money spent is money spent.
    pub spent: CallLog,
}

/// The calls an attempt has made so far, shared between the agent that makes them and the
/// worker that runs it.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<std::sync::Mutex<Vec<ModelCall>>>);

impl CallLog {
    fn push(&self, call: ModelCall) {
        self.0.lock().expect("call log lock").push(call);
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<ModelCall> {
        self.0.lock().expect("call log lock").clone()
    }
}

/// Tokens and dollars, spent or reserved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    pub tokens: u64,
    /// `None` when the model's price is unknown.
    pub cost_usd: Option<f64>,
}

/// A project's budget, checked before each call with the call's worst case. The worker
/// keeps it in the database, so concurrent tasks of a project share it.
#[async_trait]
pub trait Budget: Send + Sync + std::fmt::Debug {
    /// Reserves `worst` for a call, or says why the call would exceed the budget.
    async fn reserve(&self, worst: Spend) -> Result<(), BudgetError>;

    /// Replaces a call's reservation with what it spent.
    async fn settle(&self, reserved: Spend, spent: Spend);
}

/// Why a call was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The call's worst case would exceed the budget.
    #[error("{0}")]
    Exceeded(String),
    /// The budget could not be read (the database is unreachable): the call is not made,
    /// and the task may try again.
    #[error("the budget could not be checked: {0}")]
    Unavailable(String),
}

/// Answers kept from earlier calls, keyed by [`LlmRequest::cache_key`].
#[async_trait]
pub trait ResponseCache: Send + Sync {
    /// The kept answer for `key` (content and model), counting the hit.
    async fn get(&self, key: &[u8; 32]) -> Option<(String, String)>;

    /// Keeps an answer.
    async fn put(&self, key: &[u8; 32], provider: &str, response: &LlmResponse);
}

/// What an agent produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentOutcome {
    pub summary: String,
    pub files: Vec<GeneratedFile>,
    pub rejected: Vec<RejectedFile>,
    /// The requirements analysis, from the analysis step.
    pub requirements: Option<Value>,
    /// The application's design, from the design step.
    pub design: Option<Value>,
    /// A verification's report (see the `guild-verify` crate), from a verify task.
    pub verification: Option<Value>,
    /// A change request's analysis (components, files, operations it touches), from a
    /// change analysis.
    pub change: Option<Value>,
    pub calls: Vec<ModelCall>,
    pub prompt_version: String,
    /// A review's structured findings.
    pub findings: Vec<Finding>,
    /// The repair rounds the answer needed: 0 when its first files were all valid.
    pub repair_rounds: u32,
    /// Problems left after the last repair round (files still invalid, an unreadable
    /// findings block).
    pub unresolved: Vec<String>,
    /// Files the model was still writing when its answer hit the length limit, kept
    /// incomplete (their validation says so).
    pub cut_off: Vec<String>,
}

/// Why an agent failed, with the calls it made before failing (they cost tokens too).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AgentError {
    pub message: String,
    /// Whether another attempt could succeed.
    pub retryable: bool,
    pub calls: Vec<ModelCall>,
    /// The model's last answer, kept when it could not be used.
    pub raw_answer: Option<String>,
    /// The project must stop: its budget would be exceeded.
    pub stops_project: bool,
    /// The provider asked not to be called again before this long (its `Retry-After`,
    /// longer than a call waits): the task's next attempt must not start earlier.
    pub retry_after: Option<std::time::Duration>,
}

impl AgentError {
    /// A failure that another attempt could get past, with no call made.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            calls: Vec::new(),
            raw_answer: None,
            stops_project: false,
            retry_after: None,
        }
    }

    /// A failure that would repeat on every attempt, with no call made.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            ..Self::retryable(message)
        }
    }

    /// The model's answers could not be used after the calls made: another attempt may
    /// get a better one. The last answer is kept.
    fn unusable(message: String, calls: Vec<ModelCall>, raw_answer: String) -> Self {
        Self {
            calls,
            raw_answer: Some(raw_answer),
            ..Self::retryable(message)
        }
    }

    fn call(error: CallError, calls: Vec<ModelCall>) -> Self {
        let (message, retryable, stops_project, retry_after) = match error {
            CallError::Llm(error) => (
                format!("LLM call failed: {error}"),
                error.is_retryable(),
                false,
                error.retry_after(),
            ),
            CallError::Budget(BudgetError::Exceeded(why)) => {
                (format!("budget_exceeded: {why}"), false, true, None)
            }
            CallError::Budget(error @ BudgetError::Unavailable(_)) => {
                (error.to_string(), true, false, None)
            }
        };
        Self {
            message,
            retryable,
            calls,
            raw_answer: None,
            stops_project,
            retry_after,
        }
    }
}

/// Runs tasks.
#[async_trait]
pub trait Agent: Send + Sync {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError>;
}

/// Why a call was not answered.
#[derive(Debug)]
enum CallError {
    Llm(LlmError),
    Budget(BudgetError),
}

/// How the agents call the model.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The model each task asks; unrouted tasks use the provider's default.
    pub models: ModelRoutes,
    /// Prices of the models, for each call's cost and worst case.
    pub prices: PriceTable,
    pub temperature: f32,
    pub max_tokens: u32,
    /// Upstream file content beyond this many characters is listed by path only.
    pub context_budget_chars: usize,
    /// Calls the analysis may make when its answer is not valid JSON for the analysis.
    pub analysis_attempts: u32,
    /// Times a task is asked again to fix files that failed validation.
    pub repair_rounds: u32,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            models: ModelRoutes::default(),
            prices: PriceTable::default(),
            temperature: 0.0,
            max_tokens: 8000,
            context_budget_chars: 120_000,
            analysis_attempts: 3,
            repair_rounds: 2,
        }
    }
}

/// The team: the analyst and the code-writing agents (backend, frontend, devops,
/// reviewer), which differ by system prompt and task templates.
pub struct Agents {
    llm: Arc<dyn LlmClient>,
    /// Runs `verify` tasks (the `guild-verify` crate's verifier); without one they report
    /// verification as unavailable here.
    verifier: Option<Arc<dyn Agent>>,
    /// The provider's identity, part of every cache key.
    identity: String,
    prompts: Prompts,
    settings: AgentSettings,
    cache: Option<Arc<dyn ResponseCache>>,
}

impl Agents {
    pub fn new(llm: Arc<dyn LlmClient>, settings: AgentSettings) -> Self {
        Self {
            identity: llm.identity(),
            llm,
            verifier: None,
            prompts: Prompts::embedded(),
            settings,
            cache: None,
        }
    }

    /// The provider and its default model, for people: `openai@https://api.openai.com/v1
    /// (gpt-4o-mini)`. Never holds credentials.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.identity, self.llm.default_model())
    }

    /// Renders prompts from `prompts` (the embedded library by default).
    pub fn with_prompts(mut self, prompts: Prompts) -> Self {
        self.prompts = prompts;
        self
    }

    /// Runs `verify` tasks with `verifier`.
    pub fn with_verifier(mut self, verifier: Arc<dyn Agent>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Answers calls at temperature 0 from `cache` when it has them, and keeps new answers
    /// there.
    pub fn with_cache(mut self, cache: Arc<dyn ResponseCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// A request for the task's model with the settings' completion allowance: the
    /// prompt's system part, then `messages` (the first of which starts with the prompt's
    /// shared part).
    fn request(
        &self,
        input: &TaskInput,
        prompt: &prompts::RenderedPrompt,
        messages: Vec<Message>,
        json: bool,
    ) -> LlmRequest {
        LlmRequest {
            model: self
                .settings
                .models
                .model_for(&input.kind, input.agent.as_str())
                .unwrap_or_else(|| self.llm.default_model())
                .to_owned(),
            system: prompt.system.clone(),
            messages,
            temperature: self.settings.temperature,
            max_tokens: self.settings.max_tokens,
            json,
            cacheable_prefix: prompt.shared.len(),
            purpose: CallPurpose {
                task_id: input.task_id.clone(),
                attempt: input.attempt,
                task_key: input.key.clone(),
                task_kind: input.kind.clone(),
                description: input.context.description.clone(),
                technology_stack: input.context.technology_stack.clone(),
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

    /// Makes one call and records it: from the cache when it may and can, otherwise
    /// against the project's budget (checked with the call's worst case first).
    async fn call(
        &self,
        input: &TaskInput,
        request: &LlmRequest,
        prompt_version: &str,
        calls: &mut Vec<ModelCall>,
    ) -> Result<LlmResponse, CallError> {
        let started = Instant::now();
        // A retried task asks the model afresh: the kept answer may be why it failed.
        let cache = self
            .cache
            .as_ref()
            .filter(|_| input.context.use_cache && request.temperature == 0.0 && input.attempt <= 1)
            .map(|cache| (cache, request.cache_key(&self.identity)));
        if let Some((cache, key)) = &cache
            && let Some((content, model)) = cache.get(key).await
        {
            metrics::counter!("guild_llm_cache_hits_total", "provider" => self.llm.provider(), "model" => model.clone()).increment(1);
            record(
                input,
                calls,
                ModelCall {
                    provider: self.llm.provider().to_owned(),
                    model: model.clone(),
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    cached_prompt_tokens: 0,
                    cache_write_tokens: 0,
                    shared_prefix_tokens: 0,
                    latency_ms: elapsed_ms(started),
                    cost_usd: Some(0.0),
                    cached: true,
                    prompt_version: prompt_version.to_owned(),
                },
            );
            return Ok(LlmResponse {
                content,
                model,
                usage: Usage::default(),
                stop_reason: guild_llm::StopReason::Complete,
            });
        }
        let worst = Spend {
            tokens: u64::from(request.worst_case_tokens()),
            cost_usd: self
                .settings
                .prices
                .cost(&request.model, request.worst_case_usage()),
        };
        if let Some(budget) = &input.budget {
            budget.reserve(worst).await.map_err(CallError::Budget)?;
        }
        let answered = self.llm.complete(request).await;
        let spent = match &answered {
            Ok(response) => Spend {
                tokens: u64::from(response.usage.prompt_tokens)
                    + u64::from(response.usage.completion_tokens),
                cost_usd: self.cost(request, response),
            },
            Err(_) => Spend {
                tokens: 0,
                cost_usd: Some(0.0),
            },
        };
        if let Some(budget) = &input.budget {
            budget.settle(worst, spent).await;
        }
        let response = match answered {
            Ok(response) => response,
            Err(error) => {
                metrics::counter!("guild_llm_call_errors_total", "provider" => self.llm.provider(), "model" => request.model.clone()).increment(1);
                return Err(CallError::Llm(error));
            }
        };
        record_call_metrics(
            self.llm.provider(),
            &response,
            started.elapsed(),
            spent.cost_usd,
        );
        record(
            input,
            calls,
            ModelCall {
                provider: self.llm.provider().to_owned(),
                model: response.model.clone(),
                prompt_tokens: response.usage.prompt_tokens,
                completion_tokens: response.usage.completion_tokens,
                cached_prompt_tokens: response.usage.cached_prompt_tokens,
                cache_write_tokens: response.usage.cache_write_tokens,
                shared_prefix_tokens: shared_prefix_tokens(request),
                latency_ms: elapsed_ms(started),
                cost_usd: spent.cost_usd,
                cached: false,
                prompt_version: prompt_version.to_owned(),
            },
        );
        // A cut answer is not worth keeping: the same call would be cut the same way.
        if let Some((cache, key)) = &cache
            && !response.stop_reason.is_cut()
        {
            cache.put(key, self.llm.provider(), &response).await;
        }
        Ok(response)
    }

    /// The call's cost: priced by the model that answered, or else by the one asked.
    fn cost(&self, request: &LlmRequest, response: &LlmResponse) -> Option<f64> {
        let prices = &self.settings.prices;
        prices
            .cost(&response.model, response.usage)
            .or_else(|| prices.cost(&request.model, response.usage))
    }
}

#[async_trait]
impl Agent for Agents {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        match input.kind.as_str() {
            REQUIREMENTS_ANALYSIS => analysis::run(self, input).await,
            SYSTEM_DESIGN | DESIGN_UPDATE => design_step::run(self, input).await,
            CHANGE_ANALYSIS => change_analysis::run(self, input).await,
            VERIFY => match &self.verifier {
                Some(verifier) => verifier.run(input).await,
                None => Ok(verification_off()),
            },
            _ => writer::run(self, input).await,
        }
    }
}

/// The estimated tokens of the part of a request every task of its project shares: the
/// system prompt and the first message's shared prefix.
fn shared_prefix_tokens(request: &LlmRequest) -> u32 {
    let prefix = request
        .messages
        .first()
        .and_then(|m| m.content.get(..request.cacheable_prefix))
        .unwrap_or_default();
    guild_llm::estimate_tokens(&request.system) + guild_llm::estimate_tokens(prefix)
}

/// The outcome of a verify task on a worker that does not verify: unavailable, never
/// passed.
fn verification_off() -> AgentOutcome {
    let report = guild_core::verification::Report::unavailable(
        "verification is off on this worker (GUILD_VERIFY=off, or no sandbox)",
    );
    AgentOutcome {
        summary: format!("Verification unavailable: {}", report.summary),
        verification: Some(serde_json::to_value(&report).expect("a report serialises")),
        prompt_version: "verify-off".to_owned(),
        ..AgentOutcome::default()
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Keeps a call in the attempt's list and in its shared log.
fn record(input: &TaskInput, calls: &mut Vec<ModelCall>, call: ModelCall) {
    input.spent.push(call.clone());
    calls.push(call);
}

/// The `guild_llm_*` metrics of a call the provider answered.
fn record_call_metrics(
    provider: &'static str,
    response: &LlmResponse,
    latency: std::time::Duration,
    cost_usd: Option<f64>,
) {
    let model = response.model.clone();
    metrics::counter!("guild_llm_calls_total", "provider" => provider, "model" => model.clone())
        .increment(1);
    metrics::histogram!("guild_llm_call_duration_seconds", "provider" => provider, "model" => model.clone())
        .record(latency.as_secs_f64());
    metrics::counter!("guild_llm_tokens_total", "provider" => provider, "model" => model.clone(), "type" => "prompt")
        .increment(u64::from(response.usage.prompt_tokens));
    metrics::counter!("guild_llm_tokens_total", "provider" => provider, "model" => model.clone(), "type" => "completion")
        .increment(u64::from(response.usage.completion_tokens));
    metrics::counter!("guild_llm_tokens_total", "provider" => provider, "model" => model.clone(), "type" => "cached_prompt")
        .increment(u64::from(response.usage.cached_prompt_tokens));
    match cost_usd {
        // Micro-dollars: Prometheus counters are integers here.
        Some(usd) => metrics::counter!("guild_llm_cost_microusd_total", "provider" => provider, "model" => model)
            .increment((usd * 1e6).round() as u64),
        None => metrics::counter!("guild_llm_unpriced_calls_total", "provider" => provider, "model" => model)
            .increment(1),
    }
}
