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
    #[serde(skip_serializing_if = "str::is_empty")]
    system: &'a str,
    messages: &'a [crate::Message],
    max_tokens: u32,
    temperature: f32,
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
        let body = MessagesRequest {
            model: &request.model,
            system: &request.system,
            messages: &request.messages,
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
        Ok(LlmResponse {
            usage: Usage {
                prompt_tokens: http::token_count(usage, "input_tokens")
                    .unwrap_or_else(|| request.worst_case_tokens() - request.max_tokens),
                completion_tokens: http::token_count(usage, "output_tokens")
                    .unwrap_or_else(|| crate::estimate_tokens(&content)),
            },
            content,
            model: answer.model.unwrap_or_else(|| request.model.clone()),
            stop_reason: stop_reason(answer.stop_reason.as_deref()),
        })
    }
}
