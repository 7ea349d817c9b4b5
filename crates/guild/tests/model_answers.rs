//! Model answers that are valid but unusual, and text PostgreSQL or a budget cannot take,
//! against `guild serve` with an OpenAI-compatible fake server that answers each call as
//! its scenario says (the field reports of issue 13, each a kind of fault).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Database, completes, create, events_until, get_json, serve};
use guild_offline::OfflineProvider;
use guild_store::sqlx;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

type Answer = dyn Fn(&Value, usize) -> ResponseTemplate + Send + Sync;

/// A chat model whose every answer comes from `answer(request body, calls before)`.
#[derive(Clone)]
struct Fake {
    answer: Arc<Answer>,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl wiremock::Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
        let mut seen = self.seen.lock().expect("lock");
        let answer = (self.answer)(&body, seen.len());
        seen.push(body);
        answer
    }
}

impl Fake {
    async fn start(
        answer: impl Fn(&Value, usize) -> ResponseTemplate + Send + Sync + 'static,
    ) -> (MockServer, Self) {
        let fake = Self {
            answer: Arc::new(answer),
            seen: Arc::default(),
        };
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        (server, fake)
    }

    fn seen(&self) -> Vec<Value> {
        self.seen.lock().expect("lock").clone()
    }
}

/// A well-formed chat completion.
fn chat(content: &str, finish_reason: &str, usage: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": usage,
    }))
}

/// The answer of a code task that writes one small file.
fn one_file_answer() -> ResponseTemplate {
    chat(
        &one_file("src/a.ts", "export const a = 1;"),
        "stop",
        usage(),
    )
}

/// A fake that answers the analysis (JSON mode) with `analysis` and code tasks with one
/// file.
async fn analysis_then_code(analysis: String) -> (MockServer, Fake) {
    Fake::start(move |body, _| {
        if body["response_format"]["type"] == "json_object" {
            chat(&analysis, "stop", usage())
        } else {
            one_file_answer()
        }
    })
    .await
}

/// Runs `body` on a `guild serve` against `fake` until it completes; returns the project.
async fn completed_project(fake: &MockServer, body: Value) -> Value {
    let (guild, base, _pool) = guild_against(fake).await;
    let client = guild_testkit::http_client();
    let id = create(&client, &base, body).await;
    completes(&client, &base, &id).await;
    let project = get_json(&client, &format!("{base}/projects/{id}")).await;
    guild.terminate();
    project
}

fn usage() -> Value {
    json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120})
}

/// A code answer with one file.
fn one_file(path: &str, content: &str) -> String {
    format!("Wrote `{path}`.\n\n```text path={path}\n{content}\n```\n")
}

/// The last user message of a request.
fn last_message(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A `guild serve` (two slots) on a fresh database, calling the fake at `base`.
async fn guild_against(fake: &MockServer) -> (common::Proc, String, sqlx::PgPool) {
    let url = guild_testkit::database_url().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let base_url = format!("{}/v1", fake.uri());
    let (proc, base) = serve(
        Database::Url(&url),
        "2",
        &[
            ("GUILD_LLM_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", &base_url),
            ("OPENAI_API_KEY", "sk-test-field-reports-0123456789"),
            ("GUILD_LLM_CACHE", "false"),
        ],
    );
    (proc, base, pool)
}

/// The field report's project: one backend task `a`, or the analysis and `a` after it.
fn project(with_analysis: bool) -> Value {
    let mut workflow = vec![json!({"key": "a", "agent": "backend"})];
    if with_analysis {
        workflow.insert(
            0,
            json!({"key": "requirements_analysis", "agent": "analyst"}),
        );
        workflow[1]["depends_on"] = json!(["requirements_analysis"]);
    }
    json!({"description": "A todo list app", "workflow": workflow})
}

async fn task_row(pool: &sqlx::PgPool, id: &str, key: &str) -> Value {
    let (row,): (Value,) =
        sqlx::query_as("SELECT to_jsonb(t) FROM tasks t WHERE project_id = $1::uuid AND key = $2")
            .bind(id)
            .bind(key)
            .fetch_one(pool)
            .await
            .expect("task");
    row
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_longer_than_a_call_waits_requeues_the_task_that_late() {
    let (fake, model) = Fake::start(|_, _| {
        ResponseTemplate::new(503)
            .insert_header("retry-after", "300")
            .set_body_json(json!({"error": {"message": "overloaded", "type": "server_error"}}))
    })
    .await;
    let (guild, base, pool) = guild_against(&fake).await;
    let client = guild_testkit::http_client();
    let id = create(&client, &base, project(false)).await;
    events_until(&client, &base, &id, |seen| {
        seen.contains("event: task_retried")
    })
    .await;
    // One call: the task did not burn its attempts in seconds.
    assert_eq!(model.seen().len(), 1);
    let (wait,): (f64,) = sqlx::query_as(
        "SELECT extract(epoch FROM run_after - now())::float8 FROM tasks
         WHERE project_id = $1::uuid AND key = 'a'",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .expect("task");
    assert!(wait > 290.0, "the task may run again in {wait} s");
    guild.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn null_usage_counts_are_estimated_and_the_answer_used() {
    let (fake, model) = Fake::start(|_, _| {
        chat(
            &one_file("src/a.ts", "export const a = 1;"),
            "stop",
            json!({"prompt_tokens": 120, "completion_tokens": null, "total_tokens": null}),
        )
    })
    .await;
    let (guild, base, _pool) = guild_against(&fake).await;
    let client = guild_testkit::http_client();
    let id = create(&client, &base, project(false)).await;
    completes(&client, &base, &id).await;
    assert_eq!(model.seen().len(), 1, "one paid call, used");
    let project = get_json(&client, &format!("{base}/projects/{id}")).await;
    assert_eq!(project["usage"]["llm_calls"], 1);
    assert_eq!(project["usage"]["prompt_tokens"], 120);
    assert!(
        project["usage"]["completion_tokens"]
            .as_i64()
            .expect("tokens")
            > 0
    );
    guild.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_answer_is_continued_and_one_that_stays_cut_is_flagged() {
    // Task `a` is cut once, then finishes its README; `b` is cut every time.
    let (fake, _model) = Fake::start(|body, _| {
        let prompt = body.to_string();
        let cut = "Docs.\n\n```markdown path=README.md\n# Todo\n\nInstall with npm ins";
        if prompt.contains("Your task: `b`") {
            chat(cut, "length", usage())
        } else if last_message(body).contains("cut off") {
            chat(
                &one_file("README.md", "# Todo\n\nInstall with npm install."),
                "stop",
                usage(),
            )
        } else {
            chat(cut, "length", usage())
        }
    })
    .await;
    let (guild, base, pool) = guild_against(&fake).await;
    let client = guild_testkit::http_client();
    let body = json!({"description": "A todo list app", "workflow": [
        {"key": "a", "agent": "backend"},
        {"key": "b", "agent": "devops", "depends_on": ["a"]}]});
    let id = create(&client, &base, body).await;
    let events = completes(&client, &base, &id).await;
    assert!(events.contains("event: answer_truncated"), "{events}");

    let history = get_json(
        &client,
        &format!("{base}/projects/{id}/files?path=README.md&history=true"),
    )
    .await;
    let versions = history["files"].as_array().expect("versions");
    // `a`'s complete README, then `b`'s cut one, flagged.
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(versions[0]["validation"]["status"], "unchecked");
    assert_eq!(versions[1]["validation"]["status"], "invalid");
    let problem = versions[1]["validation"]["errors"][0]["message"]
        .as_str()
        .expect("a problem");
    assert!(problem.contains("cut off at its length limit"), "{problem}");
    let b = task_row(&pool, &id, "b").await;
    assert_eq!(b["result"]["cut_off"], json!(["README.md"]));
    assert!(
        b["result"]["summary"]
            .as_str()
            .expect("summary")
            .contains("cut off"),
        "{b}"
    );
    guild.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_analysis_in_prose_with_braces_and_prose_shapes_is_read_at_once() {
    let mut analysis: Value =
        serde_json::from_str(&OfflineProvider::analysis("A todo list app")).expect("json");
    analysis["deployment_considerations"] = json!("container image, managed PostgreSQL");
    let answer = format!(
        "Here is the analysis.\n\n```json\n{analysis}\n```\n\nThe API exposes `/api/todos/{{id}}` for one todo."
    );
    let (fake, model) = analysis_then_code(answer).await;
    let project = completed_project(&fake, project(true)).await;
    assert_eq!(model.seen().len(), 2, "one analysis call, one code call");
    assert_eq!(
        project["requirements"]["deployment_considerations"],
        json!(["container image, managed PostgreSQL"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_without_a_usable_file_is_told_what_was_wrong() {
    let (fake, model) = Fake::start(|body, _| {
        if last_message(body).contains("no usable file") || last_message(body).contains("no file") {
            one_file_answer()
        } else {
            chat(
                "Here:\n\n```ts\nexport const a = 1;\n```\n",
                "stop",
                usage(),
            )
        }
    })
    .await;
    let (guild, base, _pool) = guild_against(&fake).await;
    let client = guild_testkit::http_client();
    let id = create(&client, &base, project(false)).await;
    let events = completes(&client, &base, &id).await;
    assert!(!events.contains("event: task_retried"), "{events}");
    let seen = model.seen();
    assert_eq!(seen.len(), 2, "asked again in the same conversation");
    let ask = last_message(&seen[1]);
    assert!(
        ask.contains("code block names no file") && ask.contains("path="),
        "{ask}"
    );
    guild.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn nul_in_an_analysis_is_stored_without_it_and_every_call_is_counted() {
    let analysis =
        OfflineProvider::analysis("A todo list app").replacen("\": \"", "\": \"\\u0000", 1);
    assert!(analysis.contains("\\u0000"));
    let (fake, _model) = analysis_then_code(analysis).await;
    let project = completed_project(&fake, project(true)).await;
    assert_eq!(project["usage"]["llm_calls"], 2);
    assert!(!project["requirements"].to_string().contains("\\u0000"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_settlement_the_database_refuses_fails_the_task_at_once_with_its_reason() {
    let (fake, _model) = Fake::start(|_, _| {
        chat(
            &one_file("src/refused.ts", "export const a = 1;"),
            "stop",
            usage(),
        )
    })
    .await;
    let (guild, base, pool) = guild_against(&fake).await;
    // A reason that will not go away: the database refuses this file every time.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.path = 'src/refused.ts' THEN
                 RAISE EXCEPTION 'this file is not wanted here' USING ERRCODE = 'check_violation';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON project_files FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    let client = guild_testkit::http_client();
    let mut body = project(false);
    body["options"] = json!({"max_attempts": 1});
    let id = create(&client, &base, body).await;
    let events = tokio::time::timeout(
        Duration::from_secs(60),
        common::events_to_the_end(&client, &base, &id),
    )
    .await
    .expect("the project ends long before a lease would expire");
    assert!(events.contains("event: task_failed"), "{events}");
    let a = task_row(&pool, &id, "a").await;
    let error = a["error"].as_str().expect("error");
    assert!(
        error.contains("the database refused") && error.contains("this file is not wanted here"),
        "{error}"
    );
    assert!(!error.contains("lease expired"), "{error}");
    let project = get_json(&client, &format!("{base}/projects/{id}")).await;
    assert_eq!(project["usage"]["llm_calls"], 1, "the paid call is counted");
    guild.terminate();
}

/// `n` characters of a Chinese description of a todo app.
fn chinese(n: usize) -> String {
    "一个待办事项应用，支持用户账户、共享列表和提醒。"
        .chars()
        .cycle()
        .take(n)
        .collect()
}

/// Runs task `a` of a project described by `description` with `options` against a fake
/// that writes one file; returns the project's events and the requests the fake saw.
async fn run_described(description: String, options: Value) -> (String, Vec<Value>) {
    let (fake, model) = Fake::start(|_, _| one_file_answer()).await;
    let (guild, base, _pool) = guild_against(&fake).await;
    let client = guild_testkit::http_client();
    let mut body = project(false);
    body["description"] = json!(description);
    body["options"] = options;
    let id = create(&client, &base, body).await;
    let events = common::events_to_the_end(&client, &base, &id).await;
    guild.terminate();
    (events, model.seen())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_latin_description_is_held_to_its_token_budget_before_any_call() {
    // 12,000 Chinese characters: OpenAI's encodings count about 10,000 to 14,000 tokens;
    // four characters a token said 3,000, and the call was made.
    let (events, seen) = run_described(chinese(12_000), json!({"max_tokens": 11_300})).await;
    assert!(events.contains("event: project_failed"), "{events}");
    assert!(events.contains("budget_exceeded"), "{events}");
    assert!(
        seen.is_empty(),
        "no call that could pass the budget was made"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_description_the_api_accepts_always_makes_a_prompt_that_fits() {
    // 19,900 characters (accepted: the limit is 20,000), 59,700 bytes.
    let (events, seen) = run_described(chinese(19_900), json!({})).await;
    assert!(events.contains("event: project_completed"), "{events}");
    let chars: usize = seen[0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().chars().count())
        .sum();
    assert!(chars <= 60_000, "{chars} characters");
}

#[tokio::test(flavor = "multi_thread")]
async fn version_control_metadata_at_any_depth_is_never_stored() {
    let (fake, _model) = Fake::start(|_, _| {
        let answer = format!(
            "{}{}{}",
            one_file(
                "frontend/.git/config",
                "[core]\n\tfsmonitor = touch /tmp/pwned"
            ),
            one_file(".GIT/hooks/post-checkout", "#!/bin/sh\necho pwned"),
            one_file("src/a.ts", "export const a = 1;"),
        );
        chat(&answer, "stop", usage())
    })
    .await;
    let (guild, base, _pool) = guild_against(&fake).await;
    let client = guild_testkit::http_client();
    let id = create(&client, &base, project(false)).await;
    let events = completes(&client, &base, &id).await;
    assert_eq!(
        events.matches("event: file_rejected").count(),
        2,
        "{events}"
    );
    let files = get_json(&client, &format!("{base}/projects/{id}/files")).await;
    let paths: Vec<&str> = files["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, ["src/a.ts"]);
    guild.terminate();
}
