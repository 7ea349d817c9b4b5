//! The HTTP providers against fake servers speaking each provider's wire format, with the
//! retry policy and limits of [`Guarded`] around them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use guild_llm::{
    AnthropicProvider, CallPurpose, Guarded, HttpSettings, Limits, LlmClient, LlmError, LlmRequest,
    LlmResponse, Message, OpenAiProvider, PriceTable, RetryPolicy, Secret, Usage,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-test-0123456789-secret";

fn request(json: bool) -> LlmRequest {
    LlmRequest {
        model: "gpt-4o-mini".into(),
        system: "You are a backend engineer.".into(),
        messages: vec![Message::user("Write the schema.")],
        temperature: 0.0,
        max_tokens: 500,
        json,
        cacheable_prefix: 0,
        purpose: CallPurpose::default(),
    }
}

fn quick_retries(max_retries: usize) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(30),
    }
}

fn openai(server: &MockServer, timeout: Duration) -> Arc<dyn LlmClient> {
    Arc::new(OpenAiProvider::new(
        &format!("{}/v1", server.uri()),
        Secret::new(KEY),
        "gpt-4o-mini",
        HttpSettings {
            connect_timeout: Duration::from_secs(5),
            timeout,
        },
    ))
}

fn guarded(inner: Arc<dyn LlmClient>, retries: usize) -> Guarded {
    Guarded::new(inner, &Limits::default(), quick_retries(retries))
}

fn chat_answer(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
    })
}

fn openai_error(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

#[tokio::test]
async fn openai_sends_the_wire_format_and_reads_the_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(body_partial_json(json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a backend engineer."},
                {"role": "user", "content": "Write the schema."}
            ],
            "temperature": 0.0,
            "max_tokens": 500,
            "response_format": {"type": "json_object"}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat_answer("{\"ok\": true}")))
        .expect(1)
        .mount(&server)
        .await;
    let answer = openai(&server, Duration::from_secs(5))
        .complete(&request(true))
        .await
        .expect("answers");
    assert_eq!(answer.content, "{\"ok\": true}");
    assert_eq!(answer.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(answer.usage, Usage::new(42, 7));
}

#[tokio::test]
async fn anthropic_sends_the_wire_format_and_reads_the_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(json!({
            "model": "claude-sonnet-4-5",
            "system": [{"type": "text", "text": "You are a backend engineer.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Write the schema."}]}],
            "max_tokens": 500
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "Here "}, {"type": "text", "text": "it is."}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 30, "output_tokens": 5}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = AnthropicProvider::new(
        &server.uri(),
        Secret::new(KEY),
        "claude-sonnet-4-5",
        HttpSettings::default(),
    );
    let mut call = request(false);
    call.model = "claude-sonnet-4-5".into();
    let answer = provider.complete(&call).await.expect("answers");
    assert_eq!(answer.content, "Here it is.");
    assert_eq!(answer.model, "claude-sonnet-4-5-20250929");
    assert_eq!(answer.usage.prompt_tokens, 30);
    assert_eq!(answer.usage.completion_tokens, 5);
}

#[tokio::test]
async fn anthropic_overload_with_an_http_date_is_retried() {
    let server = MockServer::start().await;
    let now = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(529)
                .insert_header("retry-after", now.as_str())
                .set_body_json(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "ok"}],
            "usage": {"input_tokens": 1, "output_tokens": 1}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = Arc::new(AnthropicProvider::new(
        &server.uri(),
        Secret::new(KEY),
        "claude-sonnet-4-5",
        HttpSettings::default(),
    ));
    let answer = guarded(provider, 2).complete(&request(false)).await;
    assert_eq!(answer.expect("retried").content, "ok");
}

#[tokio::test]
async fn server_errors_are_retried_until_the_budget_is_spent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(openai_error("The server had an error", "server_error")),
        )
        .expect(3)
        .mount(&server)
        .await;
    let error = guarded(openai(&server, Duration::from_secs(5)), 2)
        .complete(&request(false))
        .await
        .expect_err("fails");
    assert_eq!(
        error,
        LlmError::Provider {
            status: 500,
            message: "The server had an error".into(),
            retry_after: None,
        }
    );
    assert!(error.is_retryable(), "the task may still try again later");
}

#[tokio::test]
async fn a_slow_server_times_out_and_the_timeout_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(chat_answer("late"))
                .set_delay(Duration::from_secs(5)),
        )
        .expect(2)
        .mount(&server)
        .await;
    let error = guarded(openai(&server, Duration::from_millis(200)), 1)
        .complete(&request(false))
        .await
        .expect_err("times out");
    assert_eq!(error, LlmError::Timeout(Duration::from_millis(200)));
}

#[tokio::test]
async fn a_bad_key_fails_at_once_without_the_key_in_the_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(openai_error(
            &format!("Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com/account/api-keys."),
            "invalid_request_error",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let error = guarded(openai(&server, Duration::from_secs(5)), 4)
        .complete(&request(false))
        .await
        .expect_err("refused");
    assert!(!error.is_retryable());
    let text = format!("{error} {error:?}");
    assert!(
        !text.contains(KEY) && !text.contains("0123456789"),
        "{text}"
    );
    assert!(text.contains("OPENAI_API_KEY"), "{text}");
}

#[tokio::test]
async fn a_request_the_provider_rejects_is_not_retried_and_says_why() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "max_tokens: 500000 > 64000, the maximum for this model"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = Arc::new(AnthropicProvider::new(
        &server.uri(),
        Secret::new(KEY),
        "claude-sonnet-4-5",
        HttpSettings::default(),
    ));
    let error = guarded(provider, 4)
        .complete(&request(false))
        .await
        .expect_err("rejected");
    assert_eq!(
        error.to_string(),
        "provider error 400: max_tokens: 500000 > 64000, the maximum for this model"
    );
}

#[tokio::test]
async fn an_unreadable_answer_is_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway</html>"))
        .mount(&server)
        .await;
    let error = openai(&server, Duration::from_secs(5))
        .complete(&request(false))
        .await
        .expect_err("unreadable");
    assert!(matches!(error, LlmError::BadResponse(_)), "{error:?}");
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_transport_error() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let provider = Arc::new(OpenAiProvider::new(
        &format!("http://127.0.0.1:{port}/v1"),
        Secret::new(KEY),
        "gpt-4o-mini",
        HttpSettings::default(),
    ));
    let error = guarded(provider, 1)
        .complete(&request(false))
        .await
        .expect_err("no server");
    assert!(matches!(error, LlmError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
}

/// A provider that answers at once and counts the calls in flight.
#[derive(Default)]
struct Counting {
    in_flight: AtomicUsize,
    most: AtomicUsize,
    calls: AtomicUsize,
    release: tokio::sync::Notify,
    hold: bool,
}

#[async_trait]
impl LlmClient for Counting {
    fn provider(&self) -> &'static str {
        "counting"
    }

    fn default_model(&self) -> &str {
        "m"
    }

    async fn complete(&self, _request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hold {
            self.release.notified().await;
        } else {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(LlmResponse {
            content: String::new(),
            model: "m".into(),
            usage: Usage::default(),
            stop_reason: guild_llm::StopReason::Complete,
        })
    }
}

#[tokio::test]
async fn the_concurrency_cap_makes_calls_wait_their_turn() {
    let counting = Arc::new(Counting {
        hold: true,
        ..Counting::default()
    });
    let limits = Limits {
        max_concurrency: Some(2),
        ..Limits::default()
    };
    let guard = Arc::new(Guarded::new(
        counting.clone(),
        &limits,
        RetryPolicy::default(),
    ));
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let guard = guard.clone();
            tokio::spawn(async move { guard.complete(&request(false)).await })
        })
        .collect();
    // Release the held calls one at a time until all five ran.
    while counting.calls.load(Ordering::SeqCst) < 5 || counting.in_flight.load(Ordering::SeqCst) > 0
    {
        counting.release.notify_one();
        tokio::task::yield_now().await;
    }
    for call in calls {
        call.await.expect("joins").expect("every call succeeds");
    }
    assert_eq!(counting.most.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn requests_and_tokens_per_minute_wait_rather_than_fail() {
    // 120 requests a minute: a burst of 120, then one every 500 ms.
    let counting = Arc::new(Counting::default());
    let limits = Limits {
        requests_per_minute: std::num::NonZeroU32::new(120),
        ..Limits::default()
    };
    let guard = Guarded::new(counting.clone(), &limits, RetryPolicy::default());
    let started = Instant::now();
    for _ in 0..121 {
        guard
            .complete(&request(false))
            .await
            .expect("waits, then calls");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    // 120,000 tokens a minute, each call's worst case 1,000 tokens (1 of prompt, 999 of
    // completion allowance): 120 calls at once, then one every 500 ms.
    let limits = Limits {
        tokens_per_minute: std::num::NonZeroU32::new(120_000),
        ..Limits::default()
    };
    let guard = Guarded::new(counting.clone(), &limits, RetryPolicy::default());
    let mut small = request(false);
    small.system = String::new();
    small.messages = vec![Message::user("x")];
    small.max_tokens = 999;
    assert_eq!(small.worst_case_tokens(), 1000);
    let started = Instant::now();
    for _ in 0..121 {
        guard.complete(&small).await.expect("waits, then calls");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(counting.calls.load(Ordering::SeqCst), 242);
}

#[tokio::test]
async fn retry_after_is_honoured_on_every_retryable_status() {
    for status in [429, 503, 500, 529] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("retry-after", "1")
                    .set_body_json(openai_error("Service Unavailable", "server_error")),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(chat_answer("done")))
            .expect(1)
            .mount(&server)
            .await;
        let started = Instant::now();
        let answer = guarded(openai(&server, Duration::from_secs(5)), 3)
            .complete(&request(false))
            .await
            .expect("succeeds after the wait");
        assert_eq!(answer.content, "done");
        // The backoff alone would have waited at most 50 ms.
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{status}: waited only {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_retry_after_longer_than_the_call_may_wait_fails_the_call_with_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "300")
                .set_body_json(openai_error("Service Unavailable", "server_error")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let error = guarded(openai(&server, Duration::from_secs(5)), 3)
        .complete(&request(false))
        .await
        .expect_err("the server asked for more than the call may wait");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(error.is_retryable());
    // The task's retry must wait that long: the error carries the server's wish.
    assert_eq!(error.retry_after(), Some(Duration::from_secs(300)));
}

#[tokio::test]
async fn null_or_missing_usage_counts_are_estimated_not_refused() {
    let server = MockServer::start().await;
    let mut answer = chat_answer("Wrote the schema.");
    answer["usage"] =
        json!({"prompt_tokens": 120, "completion_tokens": null, "total_tokens": null});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let mut no_prompt = chat_answer("Wrote the schema.");
    no_prompt["usage"] = json!({"completion_tokens": "7"});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(no_prompt))
        .mount(&server)
        .await;
    let provider = openai(&server, Duration::from_secs(5));
    let first = provider.complete(&request(false)).await.expect("usable");
    assert_eq!(first.usage.prompt_tokens, 120);
    assert_eq!(
        first.usage.completion_tokens,
        guild_llm::estimate_tokens("Wrote the schema.")
    );
    let second = provider.complete(&request(false)).await.expect("usable");
    assert_eq!(second.usage.completion_tokens, 7);
    assert_eq!(
        second.usage.prompt_tokens,
        request(false).worst_case_tokens() - 500
    );
}

#[tokio::test]
async fn stop_reasons_say_when_an_answer_was_cut() {
    let server = MockServer::start().await;
    let mut cut = chat_answer("```markdown path=README.md\n# Todo\n\nInstall with npm ins");
    cut["choices"][0]["finish_reason"] = json!("length");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cut))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "# Todo\n\nInst"}],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 10, "output_tokens": null}
        })))
        .mount(&server)
        .await;
    let openai_answer = openai(&server, Duration::from_secs(5))
        .complete(&request(false))
        .await
        .expect("answers");
    assert_eq!(openai_answer.stop_reason, guild_llm::StopReason::MaxTokens);
    assert!(openai_answer.stop_reason.is_cut());
    let anthropic = AnthropicProvider::new(
        &server.uri(),
        Secret::new(KEY),
        "claude-sonnet-4-5",
        HttpSettings::default(),
    );
    let anthropic_answer = anthropic.complete(&request(false)).await.expect("answers");
    assert_eq!(
        anthropic_answer.stop_reason,
        guild_llm::StopReason::MaxTokens
    );
    assert_eq!(anthropic_answer.usage.prompt_tokens, 10);
    assert_eq!(
        anthropic_answer.usage.completion_tokens,
        guild_llm::estimate_tokens("# Todo\n\nInst")
    );
}

/// A request whose first message starts with a prefix shared by a project's tasks.
fn shared_prefix_request(model: &str) -> LlmRequest {
    let shared = "# Project\n\nA todo app.\n\n# Design\n\n{}\n";
    let mut call = request(false);
    call.model = model.into();
    call.messages = vec![Message::user(format!(
        "{shared}# Your task: `api_structure`\n"
    ))];
    call.cacheable_prefix = shared.len();
    call
}

#[tokio::test]
async fn anthropic_marks_the_shared_prefix_and_prices_cached_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(body_partial_json(json!({
            "system": [{"type": "text", "text": "You are a backend engineer.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "# Project\n\nA todo app.\n\n# Design\n\n{}\n", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "# Your task: `api_structure`\n"}
            ]}]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "done"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 100, "cache_read_input_tokens": 3000,
                      "cache_creation_input_tokens": 900, "output_tokens": 50}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let provider = AnthropicProvider::new(
        &server.uri(),
        Secret::new(KEY),
        "claude-sonnet-4-5",
        HttpSettings::default(),
    );
    let answer = provider
        .complete(&shared_prefix_request("claude-sonnet-4-5"))
        .await
        .expect("answers");
    assert_eq!(
        answer.usage,
        Usage {
            prompt_tokens: 4000,
            completion_tokens: 50,
            cached_prompt_tokens: 3000,
            cache_write_tokens: 900
        }
    );
    let cost = PriceTable::default()
        .cost("claude-sonnet-4-5", answer.usage)
        .expect("priced");
    let expected = (100.0 * 3.00 + 3000.0 * 0.30 + 900.0 * 3.75 + 50.0 * 15.00) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    let uncached = PriceTable::default()
        .cost("claude-sonnet-4-5", Usage::new(4000, 50))
        .expect("priced");
    assert!(cost < uncached, "{cost} is not below {uncached}");
}

#[tokio::test]
async fn openai_cached_tokens_are_read_and_priced() {
    let server = MockServer::start().await;
    let mut answer = chat_answer("done");
    answer["usage"] = json!({"prompt_tokens": 2048, "completion_tokens": 10, "total_tokens": 2058,
                             "prompt_tokens_details": {"cached_tokens": 1024}});
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        // OpenAI caches prefixes itself: the messages go as plain strings.
        .and(body_partial_json(json!({"messages": [
            {"role": "system", "content": "You are a backend engineer."},
            {"role": "user", "content": "# Project\n\nA todo app.\n\n# Design\n\n{}\n# Your task: `api_structure`\n"}
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    let answer = openai(&server, Duration::from_secs(5))
        .complete(&shared_prefix_request("gpt-4o-mini"))
        .await
        .expect("answers");
    assert_eq!(
        answer.usage,
        Usage {
            cached_prompt_tokens: 1024,
            ..Usage::new(2048, 10)
        }
    );
    let cost = PriceTable::default()
        .cost("gpt-4o-mini", answer.usage)
        .expect("priced");
    let expected = (1024.0 * 0.15 + 1024.0 * 0.075 + 10.0 * 0.60) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
}
