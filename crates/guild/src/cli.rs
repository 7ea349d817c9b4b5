//! The command line: subcommands and their flags, each also settable from the environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use guild_core::ProjectType;

/// Guild plans a graph of tasks for specialised AI agents (backend, frontend, devops,
/// reviewer) from a plain-language description, and runs them to a generated codebase.
#[derive(Debug, Parser)]
#[command(name = "guild", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate one project from a description, showing progress, and write its files.
    Run(RunArgs),
    /// Request a change of a project `run` generated (in the same database), run it, and
    /// print its diff stat; its files replace those in --out.
    Change(ChangeArgs),
    /// Serve the HTTP API, with the worker pool in the same process.
    Serve(ServeArgs),
    /// Run only the worker pool, against the PostgreSQL at DATABASE_URL (many may share it).
    Worker(WorkerArgs),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the OpenAPI description of the HTTP API.
    Openapi,
    /// Measure the scheduler: throughput, release latency, overhead against the ideal
    /// makespan, peak memory. The last line printed is one JSON object.
    Bench(BenchArgs),
    /// Run the evaluation suite (eval/suite.txt): each description as a fullstack project,
    /// reporting whether it verifies, its fix rounds, tokens, cost and wall time. The last
    /// line printed is one JSON object.
    Eval(EvalArgs),
    /// Delete the events and superseded file versions of projects finished long ago.
    Prune(PruneArgs),
    /// Exit 0 when a Guild process answers its health check (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Print the configuration reference: every flag and variable (docs/configuration.md).
    ConfigReference,
}

impl Command {
    /// Log level when `RUST_LOG` is unset: `run` keeps the terminal for its progress.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Self::Run(_)
            | Self::Change(_)
            | Self::Openapi
            | Self::Bench(_)
            | Self::Eval(_)
            | Self::Healthcheck(_)
            | Self::ConfigReference => "warn",
            Self::Serve(_) | Self::Worker(_) | Self::Migrate(_) | Self::Prune(_) => "info",
        }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL to use. Unset: a private PostgreSQL is started from the server binaries
    /// on this machine, with its data in --data-dir, and stopped on exit.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Data directory of the private PostgreSQL (used when no database URL is set).
    #[arg(long, env = "GUILD_DATA_DIR", default_value = ".guild/pg")]
    pub data_dir: PathBuf,
}

/// The model provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// Deterministic answers with no network.
    Offline,
    /// Any OpenAI-compatible chat completions server (OpenAI, Ollama, vLLM, llama.cpp,
    /// LiteLLM).
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
}

/// The model provider and how calls to it are made.
#[derive(Debug, Clone, Args)]
pub struct LlmArgs {
    /// Which provider answers the agents. Unset: `openai` when OPENAI_API_KEY is set, else
    /// `anthropic` when ANTHROPIC_API_KEY is set, else `offline`.
    #[arg(long = "llm-provider", env = "GUILD_LLM_PROVIDER", value_enum)]
    pub provider: Option<Provider>,

    /// The key of the OpenAI-compatible server (local servers need none).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<guild_llm::Secret>,

    /// The OpenAI-compatible server, e.g. http://localhost:11434/v1 for Ollama.
    #[arg(long, env = "OPENAI_BASE_URL", default_value = guild_llm::openai::DEFAULT_BASE_URL)]
    pub openai_base_url: String,

    /// The Anthropic key.
    #[arg(long, env = "ANTHROPIC_API_KEY", hide_env_values = true)]
    pub anthropic_api_key: Option<guild_llm::Secret>,

    /// The Anthropic server.
    #[arg(long, env = "ANTHROPIC_BASE_URL", default_value = guild_llm::anthropic::DEFAULT_BASE_URL)]
    pub anthropic_base_url: String,

    /// The model of every task without a route. Unset: the provider's default
    /// (gpt-4o-mini, claude-sonnet-4-5, offline-1).
    #[arg(long = "llm-model", env = "GUILD_LLM_MODEL")]
    pub model: Option<String>,

    /// Models by task type or agent kind, e.g. `reviewer=gpt-4.1,security_audit=o3`; a
    /// task type's route wins over its agent's.
    #[arg(long = "llm-models", env = "GUILD_LLM_MODELS", default_value = "")]
    pub models: String,

    /// Prices added to or replacing the built-in table, USD per million tokens:
    /// `model=prompt/completion[/cache_read[/cache_write]],...`, e.g. `llama3.1=0/0`. A
    /// model without a price has an unknown cost.
    #[arg(long = "llm-prices", env = "GUILD_LLM_PRICES", default_value = "")]
    pub prices: String,

    /// Sampling temperature. Answers at 0 are cached.
    #[arg(
        long = "llm-temperature",
        env = "GUILD_LLM_TEMPERATURE",
        default_value_t = 0.0
    )]
    pub temperature: f32,

    /// The completion allowance of each call, in tokens.
    #[arg(long = "llm-max-tokens", env = "GUILD_LLM_MAX_TOKENS", default_value_t = 8000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_tokens: u32,

    /// Calls the analysis (and any step answering JSON) may make when its answer is not
    /// valid: the first, then repairs asked with the exact error.
    #[arg(long = "llm-json-attempts", env = "GUILD_LLM_JSON_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub json_attempts: u32,

    /// Times a task is asked again, with the exact errors, when files it wrote fail
    /// validation (or a review's findings block cannot be read). 0: never.
    #[arg(long = "repair-rounds", env = "GUILD_REPAIR_ROUNDS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub repair_rounds: u32,

    /// Most characters of a task's prompt (system, the project's shared part with its
    /// design, and the task's part). Files the task must change come first; others are
    /// trimmed in the middle, then listed by path alone.
    #[arg(long = "context-budget-chars", env = "GUILD_CONTEXT_BUDGET_CHARS", default_value_t = 120_000, value_parser = clap::value_parser!(u64).range(2_000..=10_000_000))]
    pub context_budget_chars: u64,

    /// A directory of prompt templates overriding the embedded ones by relative name
    /// (`system.j2`, `shared.j2`, `base.j2`, `roles/<agent>.j2`, `tasks/<task type>.j2`); new task types may have
    /// their own. Checked at startup.
    #[arg(long = "prompts-dir", env = "GUILD_PROMPTS_DIR")]
    pub prompts_dir: Option<std::path::PathBuf>,

    /// Longest wait for a whole answer, in seconds.
    #[arg(long = "llm-timeout-secs", env = "GUILD_LLM_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,

    /// Longest wait for a connection, in seconds.
    #[arg(long = "llm-connect-timeout-secs", env = "GUILD_LLM_CONNECT_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout_secs: u64,

    /// Retries of a call after a rate limit, a 5xx, a timeout or a connection error, with
    /// exponential backoff and jitter (or the server's Retry-After).
    #[arg(long = "llm-max-retries", env = "GUILD_LLM_MAX_RETRIES", default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub max_retries: u32,

    /// At most this many calls in flight in this process (unset: as many as task slots).
    #[arg(long = "llm-max-concurrency", env = "GUILD_LLM_MAX_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrency: Option<u32>,

    /// At most this many calls a minute from this process; more wait.
    #[arg(long = "llm-rpm", env = "GUILD_LLM_RPM", value_parser = clap::value_parser!(u32).range(1..))]
    pub requests_per_minute: Option<u32>,

    /// At most this many tokens a minute from this process, counting each call's worst
    /// case (prompt and completion allowance); more wait.
    #[arg(long = "llm-tpm", env = "GUILD_LLM_TPM", value_parser = clap::value_parser!(u32).range(1..))]
    pub tokens_per_minute: Option<u32>,

    /// Answer identical calls at temperature 0 from the response cache in PostgreSQL
    /// (projects can opt out with `options.cache: false`). The offline provider is never
    /// cached.
    #[arg(long = "llm-cache", env = "GUILD_LLM_CACHE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cache: bool,

    /// Delay before each offline answer, to model a real model's latency in benchmarks.
    #[arg(long, env = "GUILD_OFFLINE_LATENCY_MS", default_value_t = 0)]
    pub offline_latency_ms: u64,
}

/// Budgets of projects that set none.
#[derive(Debug, Clone, Args)]
pub struct BudgetArgs {
    /// Most tokens a project's model calls may use (unset: no limit).
    #[arg(long = "max-tokens", env = "GUILD_MAX_TOKENS", value_parser = parse_tokens)]
    pub project_max_tokens: Option<u64>,

    /// Most US dollars a project's model calls may cost (unset: no limit).
    #[arg(long = "max-cost-usd", env = "GUILD_MAX_COST_USD", value_parser = parse_cost)]
    pub project_max_cost_usd: Option<f64>,
}

/// A cost budget, held to the same limit as a project's `options.max_cost_usd`.
fn parse_cost(value: &str) -> Result<f64, String> {
    let usd: f64 = value.parse().map_err(|e| format!("{e}"))?;
    match guild_core::options::check_cost(Some(usd)) {
        None => Ok(usd),
        Some(reason) => Err(reason),
    }
}

/// A token budget, held to the same range as a project's `options.max_tokens`.
fn parse_tokens(value: &str) -> Result<u64, String> {
    in_range(value, &guild_core::options::TOKEN_BUDGET)
}

/// Attempts per task, held to the same range as a project's `options.max_attempts`.
fn parse_attempts(value: &str) -> Result<u16, String> {
    in_range(value, &guild_core::options::ATTEMPTS)
}

fn in_range<T>(value: &str, range: &std::ops::RangeInclusive<T>) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let parsed: T = value.parse().map_err(|e: T::Err| e.to_string())?;
    match guild_core::options::outside(Some(parsed), range) {
        None => Ok(parsed),
        Some(reason) => Err(reason),
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// What to build, in plain language.
    pub description: String,

    /// The workflow template to plan with.
    #[arg(long = "type", value_enum, default_value = "fullstack")]
    pub project_type: ProjectTypeArg,

    /// Preferred technology stack, e.g. "Python FastAPI".
    #[arg(long)]
    pub stack: Option<String>,

    /// Where to write the generated files: a new or empty directory, or one Guild wrote
    /// before (its files are replaced; files it did not write are never touched).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,

    /// Write into `--out` even when it holds files Guild did not write, replacing those
    /// with the same paths (other files are left alone).
    #[arg(long)]
    pub force: bool,

    /// Also write the project's history into `--out` as a git repository (`.git`): a
    /// commit per task that wrote files, a tag per revision.
    #[arg(long)]
    pub git: bool,

    /// Tasks run at once.
    #[arg(long, env = "GUILD_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    /// Attempts per task before it fails for good.
    #[arg(long, env = "GUILD_MAX_ATTEMPTS", default_value_t = 3, value_parser = parse_attempts)]
    pub max_attempts: u16,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub llm: LlmArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,

    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// `guild change`.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The project to change (its id, as `guild run` printed it).
    pub project_id: guild_core::ProjectId,

    /// What to change, in plain language.
    pub description: String,

    /// Where to write the project's files after the change (as `guild run --out`).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,

    /// Write into `--out` even when it holds files Guild did not write.
    #[arg(long)]
    pub force: bool,

    /// Also write the project's history into `--out` as a git repository.
    #[arg(long)]
    pub git: bool,

    /// Tasks run at once.
    #[arg(long, env = "GUILD_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub llm: LlmArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,

    /// The change's own budget.
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// Whether and how generated projects are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyMode {
    /// No verification stage: projects are planned without it.
    Off,
    /// Every project is installed, type-checked, built, tested, started and called in the
    /// sandbox.
    Full,
}

/// Where install steps may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyNetwork {
    /// The package registries, during install steps only.
    Install,
    /// Nothing: installs work from the package cache or fail.
    None,
}

/// How generated projects are verified: run in a bubblewrap sandbox, never on the host.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// `off` or `full`. Unset: `full` when the sandbox (bubblewrap) works here, else `off`.
    #[arg(long = "verify", env = "GUILD_VERIFY", value_enum)]
    pub verify: Option<VerifyMode>,

    /// What install steps may reach: `install` (the package registries) or `none`.
    #[arg(
        long = "verify-network",
        env = "GUILD_VERIFY_NETWORK",
        value_enum,
        default_value = "install"
    )]
    pub network: VerifyNetwork,

    /// Longest an install step may take, in seconds.
    #[arg(long = "verify-install-timeout-secs", env = "GUILD_VERIFY_INSTALL_TIMEOUT_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=7200))]
    pub install_timeout_secs: u64,

    /// Longest a type-check, lint, build or test step may take, in seconds.
    #[arg(long = "verify-step-timeout-secs", env = "GUILD_VERIFY_STEP_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=7200))]
    pub step_timeout_secs: u64,

    /// Longest a started server may take to answer its health path, in seconds.
    #[arg(long = "verify-start-timeout-secs", env = "GUILD_VERIFY_START_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub start_timeout_secs: u64,

    /// Verifications at once in this process (each runs installs, compilers and a server).
    #[arg(long = "verify-concurrency", env = "GUILD_VERIFY_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// The sandbox's directory: scratch directories and the shared package cache. Unset:
    /// `/var/lib/guild/sandbox` as root (every parent must be open to the sandbox's user),
    /// else `~/.cache/guild/sandbox`.
    #[arg(long = "sandbox-dir", env = "GUILD_SANDBOX_DIR")]
    pub sandbox_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GUILD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Tasks run at once by this process; 0 serves the API only.
    #[arg(long, env = "GUILD_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(0..=256))]
    pub workers: u16,

    /// Comma-separated API keys; when set, requests need `Authorization: Bearer <key>`.
    #[arg(long, env = "GUILD_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,

    /// Attempts per task before it fails for good, unless a project's options say otherwise.
    #[arg(long, env = "GUILD_MAX_ATTEMPTS", default_value_t = 3, value_parser = parse_attempts)]
    pub max_attempts: u16,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub pool: PoolArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub llm: LlmArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,

    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// How the API guards itself.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// A request that has not started its answer by then gets 503 (event streams are not
    /// cut once started).
    #[arg(long, env = "GUILD_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,

    /// Comma-separated origins allowed to call the API from a browser (dashboards), or `*`.
    /// Unset: no cross-origin access.
    #[arg(long, env = "GUILD_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Requests a minute per API key (per client address when no keys are set); more get
    /// 429 with Retry-After. Health, readiness and metrics are not limited. Unset: no limit.
    #[arg(long, env = "GUILD_RATE_LIMIT_PER_MINUTE", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Prune projects that finished longer ago than this: `30d`, `12h`, `90min`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: std::time::Duration,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The health endpoint to ask.
    #[arg(
        long,
        env = "GUILD_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:8080/healthz"
    )]
    pub url: String,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The PostgreSQL shared with `guild serve` and other workers.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Tasks run at once by this process.
    #[arg(long, env = "GUILD_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    /// Serve `/metrics` and `/healthz` on this address (unset: no HTTP).
    #[arg(long, env = "GUILD_METRICS_BIND")]
    pub metrics_bind: Option<String>,

    #[command(flatten)]
    pub pool: PoolArgs,

    #[command(flatten)]
    pub llm: LlmArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// PostgreSQL to measure against (use an empty database). Unset: a throwaway private
    /// PostgreSQL with fsync off.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Fullstack projects of the throughput runs.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub projects: u32,

    /// Task slots of the throughput runs.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub slots: u32,

    /// Fullstack projects of the overhead run, which gets a slot for every task that can
    /// run at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub makespan_projects: u32,

    /// Latency of each model call in the overhead run.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub latency_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// A suite of its own: one description per line, `#` comments. Unset: the committed
    /// suite (eval/suite.txt, 20 descriptions).
    #[arg(long)]
    pub suite: Option<PathBuf>,

    /// Only the first this many descriptions.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,

    /// Tasks run at once (projects run side by side).
    #[arg(long, env = "GUILD_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub llm: LlmArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,

    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// How a long-running process's worker pool holds and shares its tasks.
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// Seconds a claimed task is this process's without a heartbeat; heartbeats run every
    /// third of it, and any process re-queues tasks whose lease expired.
    #[arg(long, env = "GUILD_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_secs: u64,

    /// On SIGTERM or Ctrl-C, seconds running tasks get to finish before they are released
    /// back to `ready` for another process.
    #[arg(long, env = "GUILD_SHUTDOWN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_secs: u64,

    /// At most this many analyst tasks at once in this process (unset: no cap but the slots).
    #[arg(long, env = "GUILD_MAX_CONCURRENT_ANALYST", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_analyst: Option<u16>,

    /// At most this many backend tasks at once in this process.
    #[arg(long, env = "GUILD_MAX_CONCURRENT_BACKEND", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_backend: Option<u16>,

    /// At most this many frontend tasks at once in this process.
    #[arg(long, env = "GUILD_MAX_CONCURRENT_FRONTEND", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_frontend: Option<u16>,

    /// At most this many devops tasks at once in this process.
    #[arg(long, env = "GUILD_MAX_CONCURRENT_DEVOPS", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_devops: Option<u16>,

    /// At most this many reviewer tasks at once in this process.
    #[arg(long, env = "GUILD_MAX_CONCURRENT_REVIEWER", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reviewer: Option<u16>,
}

impl PoolArgs {
    /// The per-agent caps that are set.
    pub fn agent_caps(&self) -> std::collections::BTreeMap<guild_core::AgentKind, usize> {
        use guild_core::AgentKind;
        [
            (AgentKind::Analyst, self.max_concurrent_analyst),
            (AgentKind::Backend, self.max_concurrent_backend),
            (AgentKind::Frontend, self.max_concurrent_frontend),
            (AgentKind::Devops, self.max_concurrent_devops),
            (AgentKind::Reviewer, self.max_concurrent_reviewer),
        ]
        .into_iter()
        .filter_map(|(agent, cap)| cap.map(|cap| (agent, usize::from(cap))))
        .collect()
    }
}

/// `ProjectType` for clap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProjectTypeArg {
    Fullstack,
    Frontend,
    Backend,
    Api,
}

impl From<ProjectTypeArg> for ProjectType {
    fn from(arg: ProjectTypeArg) -> Self {
        match arg {
            ProjectTypeArg::Fullstack => Self::Fullstack,
            ProjectTypeArg::Frontend => Self::Frontend,
            ProjectTypeArg::Backend => Self::Backend,
            ProjectTypeArg::Api => Self::Api,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_defaults_need_no_configuration() {
        let cli = Cli::try_parse_from(["guild", "run", "A todo app"]).expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        assert_eq!(args.project_type, ProjectTypeArg::Fullstack);
        assert_eq!(args.llm.provider, None);
        assert_eq!(args.out, PathBuf::from("out"));
    }

    #[test]
    fn a_worker_needs_a_database_url() {
        let parsed = Cli::try_parse_from(["guild", "worker", "--database-url", "postgres://x/y"])
            .expect("parses");
        assert!(matches!(parsed.command, Command::Worker(_)));
        // With the variable unset, the flag is required.
        if std::env::var_os("DATABASE_URL").is_none() {
            assert!(Cli::try_parse_from(["guild", "worker"]).is_err());
        }
    }

    #[test]
    fn agent_caps_are_read_per_agent() {
        let cli = Cli::try_parse_from([
            "guild",
            "worker",
            "--database-url",
            "postgres://x/y",
            "--max-concurrent-reviewer",
            "1",
            "--max-concurrent-backend",
            "3",
        ])
        .expect("parses");
        let Command::Worker(args) = cli.command else {
            panic!("worker")
        };
        let caps: Vec<_> = args.pool.agent_caps().into_iter().collect();
        assert_eq!(
            caps,
            [
                (guild_core::AgentKind::Backend, 3),
                (guild_core::AgentKind::Reviewer, 1)
            ]
        );
        assert!(Cli::try_parse_from(["guild", "serve", "--max-concurrent-devops", "0"]).is_err());
    }

    /// The CLI's budgets and attempts take exactly what a project's options take over HTTP
    /// (both check against `guild_core::options`): the same values pass and fail on both.
    #[test]
    fn the_cli_and_the_api_accept_the_same_ranges() {
        let plan = guild_core::ProjectType::Backend.template();
        let api = |options: serde_json::Value| {
            serde_json::from_value::<guild_core::ProjectOptions>(options)
                .is_ok_and(|o| o.check(&plan).is_empty())
        };
        let cli = |flag: &str, value: &str| {
            Cli::try_parse_from(["guild", "run", "x", flag, value]).is_ok()
                && Cli::try_parse_from(["guild", "serve", flag, value]).is_ok()
        };
        let cases: [(&str, &str, &[&str]); 3] = [
            (
                "--max-attempts",
                "max_attempts",
                &["0", "1", "10", "11", "20"],
            ),
            (
                "--max-tokens",
                "max_tokens",
                &["0", "1", "1000000000000", "1000000000001"],
            ),
            (
                "--max-cost-usd",
                "max_cost_usd",
                &["0", "-1", "0.01", "100000", "100000.5"],
            ),
        ];
        for (flag, option, values) in cases {
            for value in values {
                let number: serde_json::Value = serde_json::from_str(value).expect("a number");
                assert_eq!(
                    cli(flag, value),
                    api(serde_json::json!({ option: number })),
                    "{flag} {value}"
                );
            }
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Cli::try_parse_from(["guild", "run", "x", "--type", "mobile"]).is_err());
        assert!(Cli::try_parse_from(["guild", "run", "x", "--workers", "0"]).is_err());
        assert!(Cli::try_parse_from(["guild", "run", "x", "--llm-provider", "gpt"]).is_err());
    }
}
