//! The model provider a process uses, and the agents around it, from the LLM settings.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use guild_agents::{AgentSettings, Agents, Prompts};
use guild_llm::{
    AnthropicProvider, Guarded, HttpSettings, Limits, LlmClient, ModelRoutes, OpenAiProvider,
    PriceTable, RetryPolicy, Secret, anthropic, openai,
};
use guild_offline::OfflineProvider;
use guild_store::PgPool;
use guild_worker::PgResponseCache;

use crate::cli::{LlmArgs, Provider};

/// The provider asked for, or else the first whose key is set, or else offline.
pub fn provider(args: &LlmArgs) -> Provider {
    let has = |key: &Option<Secret>| key.as_ref().is_some_and(|k| !k.is_empty());
    args.provider.unwrap_or(if has(&args.openai_api_key) {
        Provider::Openai
    } else if has(&args.anthropic_api_key) {
        Provider::Anthropic
    } else {
        Provider::Offline
    })
}

/// The agents of this process: the provider behind its retries and limits, the model
/// routes and prices, the verifier of `verify` tasks, and (for real providers) the
/// response cache in `pool`.
pub fn agents(
    args: &LlmArgs,
    pool: &PgPool,
    verifier: Option<Arc<guild_verify::Verifier>>,
) -> anyhow::Result<Agents> {
    let provider = provider(args);
    let settings = AgentSettings {
        models: ModelRoutes::parse(args.model.as_deref(), &args.models)
            .map_err(anyhow::Error::msg)
            .context("GUILD_LLM_MODELS")?,
        prices: PriceTable::with_overrides(&args.prices)
            .map_err(anyhow::Error::msg)
            .context("GUILD_LLM_PRICES")?,
        temperature: args.temperature,
        max_tokens: args.max_tokens,
        analysis_attempts: args.json_attempts,
        repair_rounds: args.repair_rounds,
        context_budget_chars: usize::try_from(args.context_budget_chars).unwrap_or(usize::MAX),
    };
    let mut agents = Agents::new(client(args, provider)?, settings);
    if let Some(verifier) = verifier {
        agents = agents.with_verifier(verifier);
    }
    if let Some(dir) = &args.prompts_dir {
        let prompts = Prompts::load(dir)?;
        tracing::info!(dir = %dir.display(), overridden = ?prompts.overridden(), "prompt templates");
        agents = agents.with_prompts(prompts);
    }
    tracing::info!(model = %agents.describe(), cache = args.cache, "model provider");
    Ok(if provider != Provider::Offline && args.cache {
        agents.with_cache(Arc::new(PgResponseCache::new(pool.clone())))
    } else {
        agents
    })
}

fn client(args: &LlmArgs, provider: Provider) -> anyhow::Result<Arc<dyn LlmClient>> {
    let http = HttpSettings {
        connect_timeout: Duration::from_secs(args.connect_timeout_secs),
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let key = |key: &Option<Secret>| key.clone().unwrap_or_else(|| Secret::new(""));
    let model = |default: &str| args.model.clone().unwrap_or_else(|| default.to_owned());
    let inner: Arc<dyn LlmClient> = match provider {
        Provider::Offline => {
            return Ok(Arc::new(OfflineProvider::new(Duration::from_millis(
                args.offline_latency_ms,
            ))));
        }
        Provider::Openai => {
            let key = key(&args.openai_api_key);
            anyhow::ensure!(
                !key.is_empty() || args.openai_base_url != openai::DEFAULT_BASE_URL,
                "the openai provider needs OPENAI_API_KEY (or OPENAI_BASE_URL naming a server that needs no key)"
            );
            Arc::new(OpenAiProvider::new(
                &args.openai_base_url,
                key,
                &model(openai::DEFAULT_MODEL),
                http,
            ))
        }
        Provider::Anthropic => {
            let key = key(&args.anthropic_api_key);
            anyhow::ensure!(
                !key.is_empty(),
                "the anthropic provider needs ANTHROPIC_API_KEY"
            );
            Arc::new(AnthropicProvider::new(
                &args.anthropic_base_url,
                key,
                &model(anthropic::DEFAULT_MODEL),
                http,
            ))
        }
    };
    let limits = Limits {
        max_concurrency: args.max_concurrency.map(|n| n as usize),
        requests_per_minute: args.requests_per_minute.and_then(NonZeroU32::new),
        tokens_per_minute: args.tokens_per_minute.and_then(NonZeroU32::new),
    };
    let retry = RetryPolicy {
        max_retries: args.max_retries as usize,
        ..RetryPolicy::default()
    };
    Ok(Arc::new(Guarded::new(inner, &limits, retry)))
}
