//! OpenAI-compatible chat completions (`POST {base}/chat/completions`): OpenAI itself, and
//! the servers that speak its wire format (Ollama, vLLM, llama.cpp's server, LiteLLM).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::http::{self, HttpSettings};
use crate::{LlmClient, LlmError, LlmRequest, LlmResponse, Secret, StopReason, Usage};

/// The default server.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The model used when none is configured.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// The variable the key comes from, named in errors about it.
pub const KEY_VARIABLE: &str = "OPENAI_API_KEY";

#[derive(Debug)]
pub struct OpenAiProvider {
    http: reqwest::Client,
    settings: HttpSettings,
    base_url: String,
    key: Secret,
    default_model: String,
}

impl OpenAiProvider {
    /// A provider for the server at `base_url` (for example `http://localhost:11434/v1`
    /// for Ollama), answering with `default_model` when a request names none.
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
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    temperature: f32,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<Choice>,
    /// Read field by field: gateways send `null` or odd counts (see [`http::token_count`]).
    #[serde(default)]
    usage: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Option<String>,
}

/// OpenAI's `finish_reason`: `stop` (or none) is complete, `length` is cut at
/// `max_tokens`; anything else (`content_filter`, `tool_calls`) is kept as said.
fn stop_reason(finish_reason: Option<&str>) -> StopReason {
    match finish_reason {
        None | Some("stop") => StopReason::Complete,
        Some("length") => StopReason::MaxTokens,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

#[async_trait]
impl LlmClient for OpenAiProvider {
    fn provider(&self) -> &'static str {
        "openai"
    }

    fn default_model(&self) -> &str {
        &self.default_model
    }

    fn identity(&self) -> String {
        format!("openai@{}", self.base_url)
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if !request.system.is_empty() {
            messages.push(ChatMessage {
                role: "system",
                content: &request.system,
            });
        }
        messages.extend(request.messages.iter().map(|m| ChatMessage {
            role: match m.role {
                crate::Role::User => "user",
                crate::Role::Assistant => "assistant",
            },
            content: &m.content,
        }));
        let body = ChatRequest {
            model: &request.model,
            messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            response_format: request.json.then_some(ResponseFormat {
                kind: "json_object",
            }),
        };
        let mut call = self
            .http
            .post(http::endpoint(&self.base_url, "chat/completions"))
            .json(&body);
        // Local servers (Ollama, llama.cpp) need no key.
        if !self.key.is_empty() {
            call = call.bearer_auth(self.key.expose());
        }
        let answer: ChatResponse =
            http::send(call, &self.key, KEY_VARIABLE, self.settings.timeout).await?;
        let choice = answer
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::BadResponse("the answer has no choices".into()))?;
        let stop_reason = stop_reason(choice.finish_reason.as_deref());
        let content = choice
            .message
            .content
            .ok_or_else(|| LlmError::BadResponse("the answer has no message content".into()))?;
        // Some servers leave usage out, or send null counts: what is missing is estimated
        // rather than called free.
        let usage = answer.usage.as_ref();
        let usage = Usage {
            prompt_tokens: http::token_count(usage, "prompt_tokens")
                .unwrap_or_else(|| request.worst_case_tokens() - request.max_tokens),
            completion_tokens: http::token_count(usage, "completion_tokens")
                .unwrap_or_else(|| crate::estimate_tokens(&content)),
            // Prefixes of 1,024 tokens and more are cached by the server itself.
            cached_prompt_tokens: http::token_count(
                usage.and_then(|u| u.get("prompt_tokens_details")),
                "cached_tokens",
            )
            .unwrap_or(0),
            cache_write_tokens: 0,
        };
        Ok(LlmResponse {
            content,
            model: answer.model.unwrap_or_else(|| request.model.clone()),
            usage,
            stop_reason,
        })
    }
}
