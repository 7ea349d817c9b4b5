//! What the HTTP providers share: the client with its timeouts, sending a JSON request, and
//! turning a provider's answer or failure into an [`LlmError`] without its credentials.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::{LlmError, Secret};

/// How an HTTP provider reaches its server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole answer.
    pub timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(300),
        }
    }
}

/// How much of a provider's error message is kept.
const MESSAGE_CHARS: usize = 300;

/// Makes rustls use the `ring` cryptography (no C toolchain needed beyond ring's own).
/// Every HTTP client of the process needs it before it is built; installing twice is
/// harmless.
pub fn install_crypto() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client with the settings' timeouts.
pub(crate) fn client(settings: &HttpSettings) -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .user_agent(concat!("guild/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's settings are valid")
}

/// `base` and `path` joined with one slash.
pub(crate) fn endpoint(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Sends the request and reads a successful answer as `T`. Every failure becomes an
/// [`LlmError`] whose message has the key redacted.
pub(crate) async fn send<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    key: &Secret,
    key_variable: &'static str,
    timeout: Duration,
) -> Result<T, LlmError> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(e, key, timeout))?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(e, key, timeout))?;
    if !status.is_success() {
        return Err(status_error(status, retry_after, &body, key, key_variable));
    }
    serde_json::from_slice(&body).map_err(|e| LlmError::BadResponse(key.redact(&e.to_string())))
}

fn transport_error(error: reqwest::Error, key: &Secret, timeout: Duration) -> LlmError {
    if error.is_timeout() {
        LlmError::Timeout(timeout)
    } else {
        // The URL is left out: a key could be in it (some gateways take it as a parameter).
        let error = error.without_url();
        LlmError::Transport(key.redact(&error_chain(&error)))
    }
}

/// An error and its sources, joined: reqwest's own message alone ("error sending request")
/// does not say what went wrong.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The error for a non-2xx answer. A refused key says so without the server's message,
/// which often quotes part of the key.
fn status_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    key: &Secret,
    key_variable: &'static str,
) -> LlmError {
    match status.as_u16() {
        401 | 403 => LlmError::Unauthorized {
            status: status.as_u16(),
            variable: key_variable,
        },
        429 => LlmError::RateLimited { retry_after },
        // Anthropic's "overloaded" answer: a rate limit of the whole service.
        529 => LlmError::RateLimited { retry_after },
        code => LlmError::Provider {
            status: code,
            message: key.redact(&error_message(body)),
            retry_after,
        },
    }
}

/// The message of an error body. OpenAI-compatible servers and Anthropic both answer
/// `{"error": {"message": ...}}`; anything else is kept as text, shortened.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .or_else(|| v.get("error"))
                .and_then(|m| m.as_str().map(str::to_owned))
        });
    let text = parsed.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    text.chars().take(MESSAGE_CHARS).collect()
}

/// A token count from a provider's usage object: a non-negative number (an integer, or a
/// float rounded up), or `None` when the field is missing, `null` or anything else (some
/// gateways send `null` counts or strings).
pub(crate) fn token_count(usage: Option<&serde_json::Value>, field: &str) -> Option<u32> {
    let value = usage?.get(field)?;
    let count = match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.ceil() as u64)
        }),
        serde_json::Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    }?;
    Some(u32::try_from(count).unwrap_or(u32::MAX))
}

/// `Retry-After` as seconds or as an HTTP date (a date in the past means now).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        assert_eq!(retry_after(&headers("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(&headers("0.5")),
            Some(Duration::from_millis(500))
        );
        let in_a_minute = (chrono::Utc::now() + chrono::Duration::seconds(60))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = retry_after(&headers(&in_a_minute)).expect("a date");
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&headers("-1")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn token_counts_are_read_leniently() {
        let usage = serde_json::json!({
            "prompt_tokens": 120, "completion_tokens": null, "total_tokens": "130",
            "cached": 2.4, "negative": -3, "text": "many"
        });
        let usage = Some(&usage);
        assert_eq!(token_count(usage, "prompt_tokens"), Some(120));
        assert_eq!(token_count(usage, "completion_tokens"), None);
        assert_eq!(token_count(usage, "total_tokens"), Some(130));
        assert_eq!(token_count(usage, "cached"), Some(3));
        assert_eq!(token_count(usage, "negative"), None);
        assert_eq!(token_count(usage, "text"), None);
        assert_eq!(token_count(usage, "absent"), None);
        assert_eq!(token_count(None, "prompt_tokens"), None);
    }

    #[test]
    fn error_bodies_are_read_and_keys_redacted() {
        let key = Secret::new("sk-secret");
        let body =
            br#"{"error": {"message": "model sk-secret overloaded", "type": "server_error"}}"#;
        assert_eq!(
            status_error(StatusCode::BAD_GATEWAY, None, body, &key, "K"),
            LlmError::Provider {
                status: 502,
                message: "model *** overloaded".into(),
                retry_after: None,
            }
        );
        let anthropic = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens too large"}}"#;
        assert_eq!(error_message(anthropic), "max_tokens too large");
        assert_eq!(error_message(b"  upstream down \n"), "upstream down");
        let refused = status_error(
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"error":{"message":"Incorrect API key provided: sk-secret"}}"#,
            &key,
            "OPENAI_API_KEY",
        );
        assert!(!refused.to_string().contains("sk-secret"));
        assert!(refused.to_string().contains("OPENAI_API_KEY"));
    }
}
