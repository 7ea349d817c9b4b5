//! Guild's LLM layer: one client trait every provider implements, the providers, and what
//! every call needs around it.
//!
//! - [`openai`] (any OpenAI-compatible chat completions server) and [`anthropic`]
//!   (the Messages API) over HTTP.
//! - [`guard`]: retries with backoff and `Retry-After`, and the process-wide limits
//!   (concurrency, requests and tokens per minute) around any provider.
//! - [`prices`]: what a call cost; [`routing`]: which model a task asks.
//!
//! The offline provider (deterministic answers with no network, the default) lives in the
//! `guild-offline` crate, with the application templates it answers from.

pub mod anthropic;
pub mod guard;
mod http;
pub mod openai;
pub mod prices;
pub mod routing;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use anthropic::AnthropicProvider;
pub use guard::{Guarded, Limits, RetryPolicy};
pub use http::{HttpSettings, install_crypto};
pub use openai::OpenAiProvider;
pub use prices::{Price, PriceTable};
pub use routing::ModelRoutes;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What a call is for. Real providers send none of it to the model; it ties the call to its
/// task (for idempotency and accounting), and the offline provider builds its answer from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallPurpose {
    pub task_id: String,
    pub attempt: u32,
    /// The task's key in its project's graph, e.g. `database_schema` or `fix_auth_1`.
    pub task_key: String,
    /// The task type, e.g. `database_schema`.
    pub task_kind: String,
    /// The project's description.
    pub description: String,
    /// The stack the user asked for, if any.
    pub technology_stack: Option<String>,
}

/// A chat completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub temperature: f32,
    pub max_tokens: u32,
    /// Ask for a JSON object as the answer.
    pub json: bool,
    /// How many bytes at the start of the first message are the same for every task of
    /// the project (its description, analysis and design, after the system prompt, which
    /// is the same for every task): the prefix a provider's prompt cache can reuse.
    /// Providers that mark cacheable prefixes explicitly (Anthropic's `cache_control`)
    /// mark the end of the system prompt and of this prefix; OpenAI caches prefixes by
    /// itself. 0: no shared prefix.
    pub cacheable_prefix: usize,
    pub purpose: CallPurpose,
}

/// Tokens a call consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Every prompt token, those read from or written to the provider's prompt cache
    /// included.
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Prompt tokens read from the provider's prompt cache (OpenAI
    /// `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`),
    /// priced at the cache-read rate.
    #[serde(default)]
    pub cached_prompt_tokens: u32,
    /// Prompt tokens written to the prompt cache (Anthropic
    /// `cache_creation_input_tokens`), priced at the cache-write rate.
    #[serde(default)]
    pub cache_write_tokens: u32,
}

impl Usage {
    /// Prompt and completion tokens, no cache accounting.
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            ..Self::default()
        }
    }
}

/// Why the model stopped writing, read from each provider's own field (OpenAI
/// `finish_reason`, Anthropic `stop_reason`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StopReason {
    /// It finished its answer (`stop`, `end_turn`, `stop_sequence`, or not said).
    #[default]
    Complete,
    /// It was cut off at the completion allowance (`length`, `max_tokens`): the answer is
    /// incomplete.
    MaxTokens,
    /// Anything else the provider said (`content_filter`, `refusal`, ...), as it said it.
    Other(String),
}

impl StopReason {
    /// The answer ends where the allowance did, not where the model meant to stop.
    pub fn is_cut(&self) -> bool {
        matches!(self, Self::MaxTokens)
    }
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmResponse {
    pub content: String,
    /// The model that actually answered.
    pub model: String,
    pub usage: Usage,
    /// Why the answer ended.
    pub stop_reason: StopReason,
}

/// Why a call failed. Messages never contain credentials: providers redact their key from
/// anything a server sends back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("transport error: {0}")]
    Transport(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("rate limited by the provider{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The provider refused the credentials (401 or 403): no retry can succeed.
    #[error("the provider refused the API key ({status}); check the {variable} setting")]
    Unauthorized { status: u16, variable: &'static str },
    #[error("provider error {status}: {message}{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Provider {
        status: u16,
        message: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The provider answered 2xx with a body that is not its documented shape.
    #[error("unreadable answer from the provider: {0}")]
    BadResponse(String),
    #[error("request refused: {0}")]
    Refused(String),
}

impl LlmError {
    /// Whether the same call could succeed if made again later: transport failures,
    /// timeouts, rate limits, 5xx and 408/409 answers, and unreadable answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) | Self::RateLimited { .. } => true,
            Self::BadResponse(_) => true,
            Self::Provider { status, .. } => *status >= 500 || matches!(status, 408 | 409),
            Self::Unauthorized { .. } | Self::Refused(_) => false,
        }
    }

    /// How long the provider asked us to wait before the next call, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::Provider { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A credential: shown as `***` by `Debug` and `Display`, so it cannot leak into a log line
/// or an error by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Keys shorter than this are redacted only where they stand alone.
    pub const SHORT: usize = 8;

    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Whether there is no credential at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The credential itself, for the request header that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the credential replaced by `***`. A key shorter
    /// than [`Secret::SHORT`] characters is replaced only where it stands alone (not next
    /// to an ASCII letter, digit, `-` or `_`), so a one-letter key does not blank that
    /// letter out of every word; a longer key is replaced wherever it appears, even inside
    /// a longer token, which would otherwise show it.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_owned();
        }
        if self.0.chars().count() >= Self::SHORT {
            return text.replace(&self.0, "***");
        }
        let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(&self.0) {
            let end = at + self.0.len();
            let before = rest[..at].chars().next_back();
            let after = rest[end..].chars().next();
            let whole = !before.is_some_and(is_key_char) && !after.is_some_and(is_key_char);
            out.push_str(&rest[..at]);
            if whole {
                out.push_str("***");
                rest = &rest[end..];
            } else {
                // Keep this match's first character and look again after it.
                let first = rest[at..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[at..at + first]);
                rest = &rest[at + first..];
            }
        }
        out.push_str(rest);
        out
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(value))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A chat model provider.
#[async_trait]
pub trait LlmClient: Send + Sync {
    /// The provider's name, recorded with every call (`offline`, `openai`, ...).
    fn provider(&self) -> &'static str;

    /// The model used when a request does not name one.
    fn default_model(&self) -> &str;

    /// What answers depend on besides the request: the provider and, for HTTP providers,
    /// the server. Part of the response cache's key.
    fn identity(&self) -> String {
        self.provider().to_owned()
    }

    /// Sends one request and waits for the whole answer.
    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError>;
}

impl LlmRequest {
    /// The most tokens the call can use: its prompt (estimated) and its whole completion
    /// allowance. Budgets and the tokens-per-minute limit count this before the call.
    pub fn worst_case_tokens(&self) -> u32 {
        let prompt = estimate_tokens(&self.system)
            + self
                .messages
                .iter()
                .map(|m| estimate_tokens(&m.content))
                .sum::<u32>();
        prompt.saturating_add(self.max_tokens)
    }

    /// The worst case split as usage, for pricing it.
    pub fn worst_case_usage(&self) -> Usage {
        Usage::new(self.worst_case_tokens() - self.max_tokens, self.max_tokens)
    }

    /// The response cache's key: a SHA-256 of everything the answer depends on (the
    /// provider's identity, model, system prompt, messages and parameters), never the
    /// credentials or the call's purpose.
    pub fn cache_key(&self, identity: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::json!({
            "identity": identity,
            "model": self.model,
            "system": self.system,
            "messages": self.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json": self.json,
        });
        Sha256::digest(canonical.to_string().as_bytes()).into()
    }
}

/// A token count for `text` that does not undercount any script: each character is
/// weighed by its class (ASCII letters 0.3, digits 0.8, whitespace 0.3, punctuation 0.6
/// tokens; other characters by their UTF-8 length: 2 bytes 1.1, 3 bytes (CJK, kana,
/// Hangul, Devanagari, Thai) 1.5, 4 bytes (emoji) 4). Calibrated against OpenAI's
/// `cl100k_base` and `o200k_base` encodings (npm `gpt-tokenizer`) on English, code, JSON
/// and eleven other scripts: it counts 1.07 to 2.6 times what they count, never less (the
/// figures are in docs/providers.md). Anthropic publishes no tokenizer; the margin covers
/// its heavier English tokens. Used for worst cases (budgets, the tokens-per-minute limit)
/// and where a provider reports no usage.
pub fn estimate_tokens(text: &str) -> u32 {
    let tenths: u64 = text
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' => 3,
            '0'..='9' => 8,
            c if c.is_ascii_whitespace() => 3,
            c if c.is_ascii() => 6,
            c => match c.len_utf8() {
                2 => 11,
                3 => 15,
                _ => 40,
            },
        })
        .sum();
    u32::try_from(tenths.div_ceil(10)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimate_rounds_up_and_weighs_scripts() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcdefghi"), 3);
        // 116 Chinese characters: OpenAI's encodings count 98 (cl100k) and 76 (o200k);
        // four characters a token said 29.
        let chinese = "一个待办事项应用，支持用户账户、共享列表和提醒。".repeat(5);
        assert!(estimate_tokens(&chinese) >= chinese.chars().count() as u32);
        // An emoji is up to four byte-level tokens.
        assert_eq!(estimate_tokens("🎉"), 4);
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(LlmError::Transport("reset".into()).is_retryable());
        assert!(LlmError::RateLimited { retry_after: None }.is_retryable());
        assert!(
            LlmError::Provider {
                status: 503,
                message: String::new(),
                retry_after: None,
            }
            .is_retryable()
        );
        assert!(
            !LlmError::Provider {
                status: 401,
                message: String::new(),
                retry_after: None,
            }
            .is_retryable()
        );
        assert!(!LlmError::Refused("budget".into()).is_retryable());
        assert!(
            !LlmError::Unauthorized {
                status: 401,
                variable: "OPENAI_API_KEY"
            }
            .is_retryable()
        );
    }

    #[test]
    fn secrets_never_print() {
        let key = Secret::new("sk-live-123");
        assert_eq!(format!("{key:?} {key}"), "*** ***");
        assert_eq!(
            key.redact("Incorrect API key provided: sk-live-123."),
            "Incorrect API key provided: ***."
        );
        assert_eq!(
            key.redact("\"sk-live-123\" and sk-live-123"),
            "\"***\" and ***"
        );
        // A one-letter key hides itself, not the letter in every word.
        let short = Secret::new("a");
        assert_eq!(
            short.redact("a rate limit at a gateway: key a"),
            "*** rate limit at *** gateway: key ***"
        );
        // A real key is hidden even inside a longer token.
        assert_eq!(key.redact("sk-live-1234"), "***4");
        assert_eq!(Secret::new("ab1").redact("ab1x ab1"), "ab1x ***");
    }

    #[test]
    fn the_cache_key_depends_on_what_the_answer_depends_on() {
        let request = LlmRequest {
            model: "m".into(),
            system: "s".into(),
            messages: vec![Message::user("hello")],
            temperature: 0.0,
            max_tokens: 100,
            json: false,
            cacheable_prefix: 0,
            purpose: CallPurpose::default(),
        };
        let mut other_purpose = request.clone();
        other_purpose.purpose.task_id = "another task".into();
        assert_eq!(
            request.cache_key("openai"),
            other_purpose.cache_key("openai")
        );
        let mut other_message = request.clone();
        other_message.messages[0].content = "hello!".into();
        assert_ne!(
            request.cache_key("openai"),
            other_message.cache_key("openai")
        );
        assert_ne!(request.cache_key("openai"), request.cache_key("anthropic"));
        assert_eq!(request.worst_case_tokens(), 1 + 2 + 100);
    }
}
