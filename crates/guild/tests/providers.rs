//! `guild run` against a fake OpenAI-compatible server, as a user would point it at Ollama
//! or OpenAI: a whole project, its structured-output repair, usage and cost, the response
//! cache, a budget that refuses before calling, and keys that never leak.

mod common;

use std::sync::Mutex;

use common::LLM_VARIABLES;
use guild_store::sqlx;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk-proj-TESTKEY-9f8e7d6c5b4a";

/// A chat model speaking OpenAI's wire format: the analysis (JSON mode) and code answers.
/// Its first analysis misses fields, so the agent must ask again with the exact error.
struct FakeModel {
    seen: Mutex<Vec<Value>>,
}

impl wiremock::Respond for FakeModel {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
        let mut seen = self.seen.lock().expect("lock");
        let json_mode = body["response_format"]["type"] == "json_object";
        let json_calls_before = seen
            .iter()
            .filter(|b| b["response_format"]["type"] == "json_object")
            .count();
        // The first analysis misses fields; everything else is the offline model's answer,
        // read from the prompt as a real model would.
        let content = if json_mode && json_calls_before == 0 {
            "```json\n{\"core_features\": [\"lists\"],}\n```".to_owned()
        } else {
            let messages = body["messages"].as_array().expect("messages");
            let system = messages
                .iter()
                .find(|m| m["role"] == "system")
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default();
            let chat: Vec<(bool, &str)> = messages
                .iter()
                .filter(|m| m["role"] != "system")
                .map(|m| {
                    (
                        m["role"] == "user",
                        m["content"].as_str().unwrap_or_default(),
                    )
                })
                .collect();
            guild_offline::chat_answer(system, &chat)
        };
        seen.push(body);
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }))
    }
}

async fn fake_model() -> (MockServer, std::sync::Arc<FakeModel>) {
    let model = std::sync::Arc::new(FakeModel {
        seen: Mutex::new(vec![]),
    });
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(SharedModel(model.clone()))
        .mount(&server)
        .await;
    (server, model)
}

struct SharedModel(std::sync::Arc<FakeModel>);

impl wiremock::Respond for SharedModel {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

/// `guild run` of a backend project against the OpenAI-compatible server at `base_url`,
/// with extra settings.
async fn run(database_url: &str, base_url: &str, env: &[(&str, &str)]) -> std::process::Output {
    let openai = [
        ("GUILD_LLM_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", &format!("{base_url}/v1")),
        ("OPENAI_API_KEY", KEY),
    ];
    run_with(database_url, &[&openai[..], env].concat()).await
}

/// `guild run` of a backend project with these settings and no other model settings.
async fn run_with(database_url: &str, env: &[(&str, &str)]) -> std::process::Output {
    let out = tempfile::tempdir().expect("temp dir");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_guild"));
    for variable in LLM_VARIABLES {
        command.env_remove(variable);
    }
    command
        .env_remove("RUST_LOG")
        .env("GUILD_VERIFY", "off")
        .env("DATABASE_URL", database_url)
        .envs(env.iter().copied())
        .args(["run", "A todo list app", "--type", "backend", "--out"])
        .arg(out.path());
    command.output().await.expect("guild runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn latest_project(pool: &sqlx::PgPool) -> guild_store::projects::Project {
    let (id,): (guild_core::ProjectId,) =
        sqlx::query_as("SELECT id FROM projects ORDER BY created_at DESC LIMIT 1")
            .fetch_one(pool)
            .await
            .expect("a project");
    guild_store::projects::get(pool, id)
        .await
        .expect("read")
        .expect("found")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_runs_against_an_openai_compatible_server_and_reruns_from_the_cache() {
    let (server, model) = fake_model().await;
    let url = guild_testkit::database_url().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");

    let output = run(&url, &server.uri(), &[]).await;
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("tasks:    12 completed"), "{stdout}");

    // 2 analysis calls (the first answer missed fields), the design and 10 code tasks.
    let seen = model.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 13);
    let reask = seen
        .iter()
        .filter(|b| b["response_format"]["type"] == "json_object")
        .nth(1)
        .expect("the analysis was asked again");
    let feedback = reask["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .expect("a last message");
    // The fence and the trailing comma were repaired locally; the missing fields were not.
    assert!(
        feedback.starts_with(
            "That answer cannot be used: `recommended_technology_stack` is missing: give it as a JSON object"
        ),
        "{feedback}"
    );
    assert!(seen.iter().all(|b| b["model"] == "gpt-4o-mini"));

    let first = latest_project(&pool).await;
    assert_eq!(first.usage.llm_calls, 13);
    assert_eq!(first.usage.cache_hits, 0);
    assert_eq!(first.usage.prompt_tokens, 1300);
    assert_eq!(first.usage.completion_tokens, 260);
    // gpt-4o-mini: $0.15 and $0.60 per million prompt and completion tokens.
    let cost = first.usage.cost_usd.expect("a known price");
    assert!(
        (cost - (1300.0 * 0.15 + 260.0 * 0.60) / 1e6).abs() < 1e-9,
        "{cost}"
    );
    let calls: Vec<(Value,)> = sqlx::query_as(
        "SELECT data FROM events WHERE project_id = $1 AND kind = 'llm_call' ORDER BY id",
    )
    .bind(first.id)
    .fetch_all(&pool)
    .await
    .expect("events");
    assert_eq!(calls.len(), 13);
    assert!(
        calls
            .iter()
            .all(|(c,)| c["model"] == "gpt-4o-mini-2024-07-18"
                && c["provider"] == "openai"
                && c["cached"] == false
                && c["prompt_tokens"] == 100)
    );
    let (analysis_calls,): (i32,) = sqlx::query_as(
        "SELECT llm_calls FROM tasks WHERE project_id = $1 AND key = 'requirements_analysis'",
    )
    .bind(first.id)
    .fetch_one(&pool)
    .await
    .expect("task");
    assert_eq!(analysis_calls, 2);

    // The same project again: every call is answered from the cache, at no cost.
    let output = run(&url, &server.uri(), &[]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(model.seen.lock().expect("lock").len(), 13, "no new request");
    let second = latest_project(&pool).await;
    assert_ne!(second.id, first.id);
    assert_eq!(second.usage.cache_hits, 13);
    assert_eq!(
        second.usage.prompt_tokens + second.usage.completion_tokens,
        0
    );
    assert_eq!(second.usage.cost_usd, Some(0.0));

    // With the cache off, the model is asked again.
    let output = run(&url, &server.uri(), &[("GUILD_LLM_CACHE", "false")]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(model.seen.lock().expect("lock").len() > 13);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_over_the_budget_is_never_sent_and_the_project_stops() {
    let (server, model) = fake_model().await;
    let url = guild_testkit::database_url().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let output = run(&url, &server.uri(), &[("GUILD_MAX_TOKENS", "500")]).await;
    assert!(!output.status.success());
    assert!(
        model.seen.lock().expect("lock").is_empty(),
        "no call was made"
    );
    let project = latest_project(&pool).await;
    assert_eq!(project.status, guild_core::ProjectStatus::Failed);
    let error = project.error.expect("an error");
    assert!(
        error.contains("budget_exceeded") && error.contains("max_tokens of 500"),
        "{error}"
    );
    assert_eq!(project.usage.llm_calls, 0);
    let open: Vec<(String, String)> = sqlx::query_as(
        "SELECT key, status FROM tasks WHERE project_id = $1 AND status NOT IN ('failed', 'skipped', 'cancelled')",
    )
    .bind(project.id)
    .fetch_all(&pool)
    .await
    .expect("tasks");
    assert!(open.is_empty(), "{open:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_never_reach_logs_events_or_errors() {
    let server = MockServer::start().await;
    // A refused key, with the key quoted back as OpenAI does.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": format!("Incorrect API key provided: {KEY}."), "type": "invalid_request_error", "code": "invalid_api_key"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let url = guild_testkit::database_url().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let output = run(&url, &server.uri(), &[("RUST_LOG", "debug")]).await;
    assert!(!output.status.success());
    let printed = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        printed.contains("LLM call"),
        "the run logged its calls: {printed}"
    );
    assert!(
        !printed.contains(KEY) && !printed.contains("TESTKEY"),
        "{printed}"
    );

    let project = latest_project(&pool).await;
    let error = project.error.clone().unwrap_or_default();
    let (stored,): (String,) = sqlx::query_as(
        "SELECT concat_ws(' ', (SELECT string_agg(data::text, ' ') FROM events WHERE project_id = $1),
                                (SELECT string_agg(concat(error, errors::text, result::text), ' ') FROM tasks WHERE project_id = $1),
                                (SELECT concat(error, options::text) FROM projects WHERE id = $1))",
    )
    .bind(project.id)
    .fetch_one(&pool)
    .await
    .expect("stored text");
    assert!(stored.contains("refused the API key (401)"), "{stored}");
    assert!(stored.contains("OPENAI_API_KEY"), "{stored}");
    assert!(!stored.contains("TESTKEY"), "{stored}");
    assert!(!error.contains("TESTKEY"));
}

/// Anthropic's Messages API: the analysis for the analyst, code for the others.
/// A Messages API server answering as the offline model would.
struct FakeClaude;

impl wiremock::Respond for FakeClaude {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
        // Messages API blocks: the system prompt and each message's text, joined.
        let joined = |blocks: &Value| -> String {
            blocks
                .as_array()
                .map(|b| b.iter().filter_map(|t| t["text"].as_str()).collect())
                .unwrap_or_default()
        };
        let system = joined(&body["system"]);
        let messages: Vec<(bool, String)> = body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| (m["role"] == "user", joined(&m["content"])))
            .collect();
        let chat: Vec<(bool, &str)> = messages.iter().map(|(u, t)| (*u, t.as_str())).collect();
        let text = guild_offline::chat_answer(&system, &chat);
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_test", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 200, "output_tokens": 50}
        }))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_runs_against_anthropics_messages_api() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(wiremock::matchers::header("x-api-key", KEY))
        .and(wiremock::matchers::header(
            "anthropic-version",
            "2023-06-01",
        ))
        .respond_with(FakeClaude)
        .expect(12)
        .mount(&server)
        .await;
    let url = guild_testkit::database_url().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    // The key alone picks the provider.
    let output = run_with(
        &url,
        &[
            ("ANTHROPIC_API_KEY", KEY),
            ("ANTHROPIC_BASE_URL", server.uri().as_str()),
        ],
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("tasks:    12 completed"), "{stdout}");
    assert!(stdout.contains("model anthropic@"), "{stdout}");
    let project = latest_project(&pool).await;
    assert_eq!(project.usage.llm_calls, 12);
    assert_eq!(project.usage.prompt_tokens, 2400);
    // claude-sonnet-4-5: $3 and $15 per million prompt and completion tokens.
    let cost = project.usage.cost_usd.expect("a known price");
    assert!(
        (cost - (2400.0 * 3.0 + 600.0 * 15.0) / 1e6).abs() < 1e-9,
        "{cost}"
    );
    server.verify().await;
}
