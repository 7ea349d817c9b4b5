//! What every call to a provider goes through: the process-wide limits, then the call, then
//! retries with exponential backoff and jitter on the failures that can pass (rate limits,
//! 5xx, timeouts, connection errors), waiting as long as `Retry-After` says.
//!
//! The limits are shared by all agents of a process, per provider: at most
//! `max_concurrency` calls in flight, `requests_per_minute` and `tokens_per_minute` (each
//! call counts its worst case: prompt plus completion allowance). A call over a limit
//! waits for room; it never fails for it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use crate::{LlmClient, LlmError, LlmRequest, LlmResponse};

/// How failed calls are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first call; 0 never retries.
    pub max_retries: usize,
    /// The first backoff; each next one doubles, with jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for in the call: the call fails (as
    /// retryable), and the task's own retry, after its backoff, asks again.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// Process-wide limits of one provider. `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_concurrency: Option<usize>,
    pub requests_per_minute: Option<NonZeroU32>,
    pub tokens_per_minute: Option<NonZeroU32>,
}

/// A provider behind the limits and the retry policy.
pub struct Guarded {
    inner: Arc<dyn LlmClient>,
    retry: RetryPolicy,
    concurrency: Option<Semaphore>,
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<(DefaultDirectRateLimiter, NonZeroU32)>,
}

impl Guarded {
    pub fn new(inner: Arc<dyn LlmClient>, limits: &Limits, retry: RetryPolicy) -> Self {
        Self {
            inner,
            retry,
            concurrency: limits.max_concurrency.map(|n| Semaphore::new(n.max(1))),
            requests: limits
                .requests_per_minute
                .map(|rpm| RateLimiter::direct(Quota::per_minute(rpm))),
            tokens: limits
                .tokens_per_minute
                .map(|tpm| (RateLimiter::direct(Quota::per_minute(tpm)), tpm)),
        }
    }

    /// One call, once there is room for it.
    async fn attempt(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let _permit = match &self.concurrency {
            Some(semaphore) => Some(semaphore.acquire().await.expect("never closed")),
            None => None,
        };
        if let Some(requests) = &self.requests {
            requests.until_ready().await;
        }
        if let Some((tokens, per_minute)) = &self.tokens {
            // A call larger than a minute's allowance waits for the whole allowance.
            let worst = request.worst_case_tokens().clamp(1, per_minute.get());
            let worst = NonZeroU32::new(worst).expect("at least 1");
            tokens
                .until_n_ready(worst)
                .await
                .expect("clamped to the limiter's capacity");
        }
        self.inner.complete(request).await
    }

    /// The wait before the next try, or `None` to stop: the backoff's delay, or the
    /// provider's `Retry-After` when it gave one.
    fn next_wait(&self, error: &LlmError, backoff: Option<Duration>) -> Option<Duration> {
        let backoff = backoff?;
        match error.retry_after() {
            Some(asked) if asked > self.retry.max_retry_after => None,
            Some(asked) => Some(asked),
            None => Some(backoff),
        }
    }
}

#[async_trait]
impl LlmClient for Guarded {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    fn default_model(&self) -> &str {
        self.inner.default_model()
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries)
            .with_jitter();
        (|| self.attempt(request))
            .retry(backoff)
            .when(LlmError::is_retryable)
            .adjust(|error, backoff| self.next_wait(error, backoff))
            .notify(|error, wait| {
                tracing::warn!(
                    provider = self.inner.provider(),
                    model = %request.model,
                    %error,
                    wait_ms = wait.as_millis() as u64,
                    "LLM call failed; retrying"
                );
            })
            .await
    }
}
