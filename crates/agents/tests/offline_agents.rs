//! The agents end to end with the offline provider and with scripted models.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use guild_agents::{Agent, AgentSettings, Agents, ContextFile, TaskInput};
use guild_core::{ProjectType, REQUIREMENTS_ANALYSIS};
use guild_llm::{LlmClient, LlmError, LlmRequest, LlmResponse, OfflineProvider, Usage};

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
