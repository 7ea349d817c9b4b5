//! The agents end to end with the offline provider and with scripted models.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use guild_agents::{
    Agent, AgentSettings, Agents, Budget, BudgetError, ContextFile, ResponseCache, Spend, TaskInput,
};
use guild_core::{ProjectType, REQUIREMENTS_ANALYSIS};
use guild_llm::{
    LlmClient, LlmError, LlmRequest, LlmResponse, ModelRoutes, OfflineProvider, PriceTable, Usage,
};

fn input(kind: &str, project_type: ProjectType) -> TaskInput {
    let plan = project_type.template();
    let spec = plan
        .tasks()
        .iter()
        .find(|t| t.kind == kind)
        .expect("task in template");
    TaskInput {
        project_id: "p".into(),
        task_id: format!("task-{kind}"),
        attempt: 1,
        key: spec.key.clone(),
        kind: spec.kind.clone(),
        agent: spec.agent,
        task_description: spec.description.clone(),
        description: "A todo list app with user accounts and sharing".into(),
        project_type,
        technology_stack: None,
        requirements: None,
        feedback: None,
        upstream: vec![],
        files: vec![],
        use_cache: true,
        budget: None,
    }
}

#[tokio::test]
async fn the_offline_team_writes_valid_files_for_every_task_of_every_template() {
    let agents = Agents::new(
        Arc::new(OfflineProvider::default()),
        AgentSettings::default(),
    );
    for project_type in ProjectType::ALL {
        let analysis = agents
            .run(&input(REQUIREMENTS_ANALYSIS, project_type))
            .await
            .expect("analysis");
        let requirements = analysis.requirements.expect("requirements");
        assert!(
            analysis
                .summary
                .starts_with("Requirements analysed: 3 core features, 6 API endpoints")
        );
        assert_eq!(analysis.calls.len(), 1);

        for spec in project_type.template().tasks().iter().skip(1) {
            let mut task = input(&spec.kind, project_type);
            task.requirements = Some(requirements.clone());
            let outcome = agents.run(&task).await.expect("task runs");
            assert!(!outcome.files.is_empty(), "{}", spec.key);
            assert!(
                outcome.rejected.is_empty(),
                "{}: {:?}",
                spec.key,
                outcome.rejected
            );
            assert!(
                outcome
                    .summary
                    .starts_with(&format!("Implemented `{}`", spec.key))
            );
            assert_eq!(outcome.prompt_version.len(), 12);
            let call = &outcome.calls[0];
            assert_eq!(
                (call.provider, call.model.as_str()),
                ("offline", "offline-1")
            );
            assert!(call.usage.prompt_tokens > 100 && call.usage.completion_tokens > 10);
            for file in &outcome.files {
                assert!(!file.content.trim().is_empty(), "{}", file.path);
                if file.language.as_deref() == Some("json") {
                    serde_json::from_str::<serde_json::Value>(&file.content)
                        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.path));
                }
            }
        }
    }
}

/// A model that answers from a script, one answer per call, and remembers the requests.
struct Scripted {
    answers: Mutex<Vec<Result<String, LlmError>>>,
    requests: Mutex<Vec<LlmRequest>>,
}

impl Scripted {
    fn new(answers: Vec<Result<String, LlmError>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers),
            requests: Mutex::new(vec![]),
        })
    }
}

#[async_trait]
impl LlmClient for Scripted {
    fn provider(&self) -> &'static str {
        "scripted"
    }

    fn default_model(&self) -> &str {
        "script-1"
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.requests.lock().expect("lock").push(request.clone());
        let answer = self.answers.lock().expect("lock").remove(0)?;
        Ok(LlmResponse {
            content: answer,
            model: "script-1".into(),
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
            },
        })
    }
}

#[tokio::test]
async fn a_broken_analysis_is_asked_again_with_the_exact_error() {
    let good = OfflineProvider::default()
        .complete(&LlmRequest {
            model: "offline-1".into(),
            system: String::new(),
            messages: vec![],
            temperature: 0.0,
            max_tokens: 1,
            json: true,
            purpose: guild_llm::CallPurpose {
                task_kind: REQUIREMENTS_ANALYSIS.into(),
                description: "A todo app".into(),
                ..Default::default()
            },
        })
        .await
        .expect("offline")
        .content;
    let model = Scripted::new(vec![Ok("{\"core_features\": []}".into()), Ok(good)]);
    let agents = Agents::new(model.clone(), AgentSettings::default());
    let outcome = agents
        .run(&input(REQUIREMENTS_ANALYSIS, ProjectType::Fullstack))
        .await
        .expect("repaired");
    assert!(outcome.requirements.is_some());
    assert_eq!(outcome.calls.len(), 2);
    let requests = model.requests.lock().expect("lock");
    let retry = &requests[1].messages;
    assert_eq!(retry.len(), 3);
    assert!(
        retry[2]
            .content
            .contains("`recommended_technology_stack` is missing"),
        "{}",
        retry[2].content
    );
    assert!(requests[1].json);
}

#[tokio::test]
async fn an_analysis_that_never_validates_fails_with_the_raw_answer_kept() {
    let model = Scripted::new(vec![
        Ok("nope".into()),
        Ok("still no".into()),
        Ok("[1, 2]".into()),
    ]);
    let agents = Agents::new(model, AgentSettings::default());
    let error = agents
        .run(&input(REQUIREMENTS_ANALYSIS, ProjectType::Fullstack))
        .await
        .unwrap_err();
    assert!(error.retryable);
    assert_eq!(error.calls.len(), 3);
    assert_eq!(error.raw_answer.as_deref(), Some("[1, 2]"));
    assert!(
        error
            .message
            .starts_with("the analysis was not valid after 3 attempts")
    );
}

#[tokio::test]
async fn unsafe_paths_are_refused_and_reported_while_safe_files_are_kept() {
    let answer = "Done.\n\n```sh path=../../etc/cron.d/evil\nrm -rf /\n```\n\n\
                  ```sql path=/tmp/abs.sql\nSELECT 1;\n```\n\n```sql path=db/ok.sql\nSELECT 1;\n```\n";
    let agents = Agents::new(
        Scripted::new(vec![Ok(answer.into())]),
        AgentSettings::default(),
    );
    let outcome = agents
        .run(&input("database_schema", ProjectType::Fullstack))
        .await
        .expect("runs");
    let paths: Vec<_> = outcome.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["db/ok.sql"]);
    let reasons: Vec<_> = outcome
        .rejected
        .iter()
        .map(|r| (r.path.as_deref().unwrap_or(""), r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("../../etc/cron.d/evil", "unsafe path: path contains `..`"),
            ("/tmp/abs.sql", "unsafe path: absolute path")
        ]
    );
}

#[tokio::test]
async fn an_answer_without_files_and_a_transport_error_are_retryable_failures() {
    let agents = Agents::new(
        Scripted::new(vec![
            Ok("I would write a schema.".into()),
            Err(LlmError::Transport("reset".into())),
        ]),
        AgentSettings::default(),
    );
    let task = input("database_schema", ProjectType::Fullstack);
    let no_files = agents.run(&task).await.unwrap_err();
    assert!(no_files.retryable);
    assert_eq!(
        no_files.raw_answer.as_deref(),
        Some("I would write a schema.")
    );
    let transport = agents.run(&task).await.unwrap_err();
    assert!(transport.retryable);
    assert_eq!(transport.message, "LLM call failed: transport error: reset");
}

#[tokio::test]
async fn upstream_files_beyond_the_context_budget_are_listed_by_path_only() {
    let model = Scripted::new(vec![Ok("ok\n\n```ts path=a.ts\nlet a = 1;\n```\n".into())]);
    let settings = AgentSettings {
        context_budget_chars: 100,
        ..AgentSettings::default()
    };
    let agents = Agents::new(model.clone(), settings);
    let mut task = input("api_structure", ProjectType::Fullstack);
    task.files = vec![
        ContextFile {
            path: "db/small.sql".into(),
            content: "SELECT 1;".into(),
            task_key: "database_schema".into(),
        },
        ContextFile {
            path: "db/huge.sql".into(),
            content: "x".repeat(500),
            task_key: "database_schema".into(),
        },
    ];
    agents.run(&task).await.expect("runs");
    let prompt = model.requests.lock().expect("lock")[0].messages[0]
        .content
        .clone();
    assert!(prompt.contains("```sql path=db/small.sql\nSELECT 1;\n```"));
    assert!(!prompt.contains(&"x".repeat(500)));
    assert!(prompt.contains("left out here for length: db/huge.sql"));
}

/// A budget that allows `tokens` in all and keeps what it was told.
#[derive(Debug)]
struct Ledger {
    tokens: u64,
    reserved: Mutex<u64>,
    log: Mutex<Vec<String>>,
}

#[async_trait]
impl Budget for Ledger {
    async fn reserve(&self, worst: Spend) -> Result<(), BudgetError> {
        let mut reserved = self.reserved.lock().expect("lock");
        if *reserved + worst.tokens > self.tokens {
            return Err(BudgetError::Exceeded(format!(
                "{} more tokens would pass the {} allowed",
                worst.tokens, self.tokens
            )));
        }
        *reserved += worst.tokens;
        self.log
            .lock()
            .expect("lock")
            .push(format!("reserve {} {:?}", worst.tokens, worst.cost_usd));
        Ok(())
    }

    async fn settle(&self, reserved: Spend, spent: Spend) {
        *self.reserved.lock().expect("lock") -= reserved.tokens - spent.tokens;
        self.log
            .lock()
            .expect("lock")
            .push(format!("spent {} {:?}", spent.tokens, spent.cost_usd));
    }
}

fn code_answer() -> Result<String, LlmError> {
    Ok("Schema.\n\n```sql path=db/schema.sql\nCREATE TABLE t (id int);\n```\n".into())
}

#[tokio::test]
async fn a_call_over_the_budget_is_not_made_and_stops_the_project() {
    let model = Scripted::new(vec![code_answer(), code_answer()]);
    let settings = AgentSettings {
        max_tokens: 1000,
        prices: PriceTable::with_overrides("script-1=1000/2000").expect("prices"),
        ..AgentSettings::default()
    };
    let agents = Agents::new(model.clone(), settings);
    let ledger = |tokens| {
        Arc::new(Ledger {
            tokens,
            reserved: Mutex::new(0),
            log: Mutex::new(vec![]),
        })
    };
    // The call's worst case: its prompt and the whole completion allowance.
    let mut task = input("database_schema", ProjectType::Fullstack);
    let probe = Scripted::new(vec![code_answer()]);
    let worst = {
        let measuring = ledger(u64::MAX / 2);
        task.budget = Some(measuring.clone());
        Agents::new(
            probe,
            AgentSettings {
                max_tokens: 1000,
                ..AgentSettings::default()
            },
        )
        .run(&task)
        .await
        .expect("runs");
        let log = measuring.log.lock().expect("lock");
        log[0]
            .split(' ')
            .nth(1)
            .expect("tokens")
            .parse::<u64>()
            .expect("a number")
    };
    assert!(worst > 1000, "{worst}");
    // Room for one call and 10 tokens more.
    let ledger = ledger(worst + 10);
    task.budget = Some(ledger.clone());
    let outcome = agents.run(&task).await.expect("the first call fits");
    // The scripted model reports 10 + 5 tokens: $0.01 + $0.01 at these prices.
    assert_eq!(outcome.calls[0].cost_usd, Some(0.02));
    {
        let log = ledger.log.lock().expect("lock");
        assert!(log[0].starts_with("reserve "), "{log:?}");
        assert_eq!(log[1], "spent 15 Some(0.02)");
    }
    // 15 spent; the next call's worst case (its prompt and 1000 completion tokens) does
    // not fit in what is left.
    let error = agents.run(&task).await.expect_err("over budget");
    assert!(
        error.message.starts_with("budget_exceeded: "),
        "{}",
        error.message
    );
    assert!(error.stops_project && !error.retryable);
    assert!(error.calls.is_empty());
    assert_eq!(
        model.requests.lock().expect("lock").len(),
        1,
        "no call was made"
    );
}

/// An in-memory response cache.
#[derive(Default)]
struct MemoryCache(Mutex<std::collections::HashMap<[u8; 32], (String, String)>>);

#[async_trait]
impl ResponseCache for MemoryCache {
    async fn get(&self, key: &[u8; 32]) -> Option<(String, String)> {
        self.0.lock().expect("lock").get(key).cloned()
    }

    async fn put(&self, key: &[u8; 32], _provider: &str, response: &LlmResponse) {
        self.0
            .lock()
            .expect("lock")
            .insert(*key, (response.content.clone(), response.model.clone()));
    }
}

#[tokio::test]
async fn identical_calls_are_answered_from_the_cache_at_no_cost() {
    let model = Scripted::new(vec![code_answer(), code_answer(), code_answer()]);
    let agents = Agents::new(model.clone(), AgentSettings::default())
        .with_cache(Arc::new(MemoryCache::default()));
    let task = input("database_schema", ProjectType::Fullstack);
    let first = agents.run(&task).await.expect("runs");
    let second = agents.run(&task).await.expect("runs");
    assert!(!first.calls[0].cached);
    assert!(second.calls[0].cached);
    assert_eq!(second.calls[0].usage, Usage::default());
    assert_eq!(second.calls[0].cost_usd, Some(0.0));
    assert_eq!(second.files, first.files);
    assert_eq!(model.requests.lock().expect("lock").len(), 1);

    // A project that turned the cache off, and a retried task, ask the model.
    let mut uncached = task.clone();
    uncached.use_cache = false;
    assert!(!agents.run(&uncached).await.expect("runs").calls[0].cached);
    let mut retried = task.clone();
    retried.attempt = 2;
    assert!(!agents.run(&retried).await.expect("runs").calls[0].cached);
    assert_eq!(model.requests.lock().expect("lock").len(), 3);
}

#[tokio::test]
async fn tasks_ask_the_model_their_route_names() {
    let model = Scripted::new(vec![code_answer(), code_answer(), code_answer()]);
    let settings = AgentSettings {
        models: ModelRoutes::parse(Some("small"), "reviewer=strong,security_audit=strongest")
            .expect("routes"),
        ..AgentSettings::default()
    };
    let agents = Agents::new(model.clone(), settings);
    for kind in ["database_schema", "code_review", "security_audit"] {
        agents
            .run(&input(kind, ProjectType::Fullstack))
            .await
            .expect("runs");
    }
    let asked: Vec<String> = model
        .requests
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.model.clone())
        .collect();
    assert_eq!(asked, ["small", "strong", "strongest"]);
}
