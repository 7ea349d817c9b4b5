//! Anthropic's Messages API (`POST {base}/v1/messages`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::http::{self, HttpSettings};
use crate::{LlmClient, LlmError, LlmRequest, LlmResponse, Secret, StopReason, Usage};

/// The default server.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The model used when none is configured.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
/// The variable the key comes from, named in errors about it.
pub const KEY_VARIABLE: &str = "ANTHROPIC_API_KEY";
/// The API version every request names.
pub const API_VERSION: &str = "2023-06-01";

#[derive(Debug)]
pub struct AnthropicProvider {
    http: reqwest::Client,
    settings: HttpSettings,
    base_url: String,
    key: Secret,
    default_model: String,
}

impl AnthropicProvider {
    pub fn new(base_url: &str, key: Secret, default_model: &str, settings: HttpSettings) -> Self {
        Self {
            http: http::client(&settings),
            settings,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key,
            default_model: default_model.to_owned(),
        }
    }
}

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    /// Text blocks, the last one marked as the end of a cacheable prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<TextBlock<'a>>,
    messages: Vec<RequestMessage<'a>>,
    max_tokens: u32,
    temperature: f32,
}

#[derive(Serialize)]
struct RequestMessage<'a> {
    role: crate::Role,
    content: Vec<TextBlock<'a>>,
}

/// A `text` content block; `cache_control` marks the end of a prefix the server may cache
/// (<https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>).
#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Serialize)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
}

fn text(text: &str, cached: bool) -> TextBlock<'_> {
    TextBlock {
        kind: "text",
        text,
        cache_control: cached.then_some(CacheControl { kind: "ephemeral" }),
    }
}

/// The request's system prompt and messages as blocks: the system prompt is marked
/// cacheable (it is the same for every task), and the first message is split after its
/// shared prefix, which is marked too.
fn blocks(request: &LlmRequest) -> (Vec<TextBlock<'_>>, Vec<RequestMessage<'_>>) {
    let system = if request.system.is_empty() {
        Vec::new()
    } else {
        vec![text(&request.system, true)]
    };
    let messages = request
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let split = (i == 0)
                .then_some(request.cacheable_prefix)
                .filter(|&at| at > 0 && at < m.content.len() && m.content.is_char_boundary(at));
            let content = match split {
                Some(at) => vec![text(&m.content[..at], true), text(&m.content[at..], false)],
                None => vec![text(&m.content, false)],
            };
            RequestMessage {
                role: m.role,
                content,
            }
        })
        .collect();
    (system, messages)
}

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    model: Option<String>,
    content: Vec<ContentBlock>,
    /// Read field by field, like OpenAI's (see [`http::token_count`]).
    #[serde(default)]
    usage: Option<serde_json::Value>,
    #[serde(default)]
    stop_reason: Option<String>,
}

/// Anthropic's `stop_reason`: `end_turn`, `stop_sequence` (or none) are complete,
/// `max_tokens` is cut; anything else (`refusal`, `pause_turn`, ...) is kept as said.
fn stop_reason(reason: Option<&str>) -> StopReason {
    match reason {
        None | Some("end_turn" | "stop_sequence") => StopReason::Complete,
        Some("max_tokens") => StopReason::MaxTokens,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[async_trait]
impl LlmClient for AnthropicProvider {
    fn provider(&self) -> &'static str {
        "anthropic"
    }

    fn default_model(&self) -> &str {
        &self.default_model
    }

    fn identity(&self) -> String {
        format!("anthropic@{}", self.base_url)
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        // The Messages API has no JSON mode: the prompt asks for JSON, and the answer is
        // checked and repaired by the caller.
        let (system, messages) = blocks(request);
        let body = MessagesRequest {
            model: &request.model,
            system,
            messages,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
        };
        let call = self
            .http
            .post(http::endpoint(&self.base_url, "v1/messages"))
            .header("x-api-key", self.key.expose())
            .header("anthropic-version", API_VERSION)
            .json(&body);
        let answer: MessagesResponse =
            http::send(call, &self.key, KEY_VARIABLE, self.settings.timeout).await?;
        let content: String = answer
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.as_deref())
            .collect();
        if content.is_empty() {
            return Err(LlmError::BadResponse("the answer has no text".into()));
        }
        let usage = answer.usage.as_ref();
        // `input_tokens` counts only what was neither read from nor written to the cache.
        let cached_prompt_tokens = http::token_count(usage, "cache_read_input_tokens").unwrap_or(0);
        let cache_write_tokens =
            http::token_count(usage, "cache_creation_input_tokens").unwrap_or(0);
        let uncached = http::token_count(usage, "input_tokens").unwrap_or_else(|| {
            (request.worst_case_tokens() - request.max_tokens)
                .saturating_sub(cached_prompt_tokens + cache_write_tokens)
        });
        Ok(LlmResponse {
            usage: Usage {
                prompt_tokens: uncached
                    .saturating_add(cached_prompt_tokens)
                    .saturating_add(cache_write_tokens),
                completion_tokens: http::token_count(usage, "output_tokens")
                    .unwrap_or_else(|| crate::estimate_tokens(&content)),
                cached_prompt_tokens,
                cache_write_tokens,
            },
            content,
            model: answer.model.unwrap_or_else(|| request.model.clone()),
            stop_reason: stop_reason(answer.stop_reason.as_deref()),
        })
    }
}
