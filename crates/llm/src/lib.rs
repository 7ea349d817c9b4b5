//! Guild's LLM layer: one client trait every provider implements, and the providers.
//!
//! The offline provider needs no network and answers deterministically; it is the default
//! when no provider is configured.

pub mod offline;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use offline::OfflineProvider;

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
    pub purpose: CallPurpose,
}

/// Tokens a call consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmResponse {
    pub content: String,
    /// The model that actually answered.
    pub model: String,
    pub usage: Usage,
}

/// Why a call failed. Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("transport error: {0}")]
    Transport(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("rate limited by the provider")]
    RateLimited { retry_after: Option<Duration> },
    #[error("provider error {status}: {message}")]
    Provider { status: u16, message: String },
    #[error("request refused: {0}")]
    Refused(String),
}

impl LlmError {
    /// Whether the same call could succeed if made again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) | Self::RateLimited { .. } => true,
            Self::Provider { status, .. } => *status >= 500,
            Self::Refused(_) => false,
        }
    }
}

/// A chat model provider.
#[async_trait]
pub trait LlmClient: Send + Sync {
    /// The provider's name, recorded with every call (`offline`, `openai`, ...).
    fn provider(&self) -> &'static str;

    /// The model used when a request does not name one.
    fn default_model(&self) -> &str;

    /// Sends one request and waits for the whole answer.
    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError>;
}

/// What a call cost in US dollars, when the model's price is known. The offline provider
/// is free; other providers' prices come with their price table.
pub fn cost_usd(provider: &str, _model: &str, _usage: Usage) -> Option<f64> {
    (provider == "offline").then_some(0.0)
}

/// A rough token count for text, about four characters a token, as providers bill English
/// and code. Used where a provider reports no usage.
pub fn estimate_tokens(text: &str) -> u32 {
    let chars = text.chars().count() as u32;
    chars.div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcdefghi"), 3);
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(LlmError::Transport("reset".into()).is_retryable());
        assert!(LlmError::RateLimited { retry_after: None }.is_retryable());
        assert!(
            LlmError::Provider {
                status: 503,
                message: String::new()
            }
            .is_retryable()
        );
        assert!(
            !LlmError::Provider {
                status: 401,
                message: String::new()
            }
            .is_retryable()
        );
        assert!(!LlmError::Refused("budget".into()).is_retryable());
    }
}
