//! The agents end to end with the offline provider and with scripted models.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use guild_agents::{
    Agent, AgentSettings, Agents, Budget, BudgetError, ResponseCache, Spend, TaskInput,
    UpstreamFile,
};
use guild_core::{GraphNode, ProjectType, REQUIREMENTS_ANALYSIS, SYSTEM_DESIGN};
use guild_llm::{
    LlmClient, LlmError, LlmRequest, LlmResponse, ModelRoutes, PriceTable, StopReason, Usage,
};
use guild_offline::OfflineProvider;

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
        context: guild_agents::TaskContext {
            description: "A todo list app with user accounts and sharing".into(),
            project_type,
            technology_stack: None,
            requirements: None,
            design: None,
            change: None,
            graph: plan
                .tasks()
                .iter()
                .map(|t| GraphNode {
                    key: t.key.clone(),
                    kind: t.kind.clone(),
                    agent: t.agent,
                })
                .collect(),
            feedback: None,
            upstream: vec![],
            files: vec![],
            use_cache: true,
            budgeted: false,
            findings: vec![],
        },
        budget: None,
        spent: Default::default(),
    }
}

fn context_file(path: &str, content: String) -> UpstreamFile {
    UpstreamFile {
        path: path.into(),
        version: 1,
        content,
        task_key: "database_schema".into(),
        validation: None,
        conflict: None,
    }
}

#[tokio::test]
async fn the_offline_team_designs_then_writes_every_planned_file_valid_for_every_template() {
    let agents = Agents::new(
        Arc::new(OfflineProvider::default()),
        AgentSettings::default(),
    );
    for &project_type in ProjectType::ALL {
        let analysis = agents
            .run(&input(REQUIREMENTS_ANALYSIS, project_type))
            .await
            .expect("analysis");
        let requirements = analysis.requirements.expect("requirements");
        assert!(
            analysis
                .summary
                .starts_with("Requirements analysed: 3 core features, 7 API endpoints"),
            "{}",
            analysis.summary
        );
        assert_eq!(analysis.calls.len(), 1);

        let mut step = input(SYSTEM_DESIGN, project_type);
        step.context.requirements = Some(requirements.clone());
        let designed = agents.run(&step).await.expect("design");
        assert_eq!(
            designed.calls.len(),
            1,
            "{project_type}: the first design passes its checks"
        );
        assert!(
            designed.summary.starts_with("Designed "),
            "{}",
            designed.summary
        );
        let design = guild_design::Design::from_value(designed.design.clone().expect("a design"))
            .expect("reads");

        let mut written: Vec<UpstreamFile> = Vec::new();
        for spec in project_type.template().tasks().iter().skip(2) {
            let mut task = input(&spec.kind, project_type);
            task.context.requirements = Some(requirements.clone());
            task.context.design = designed.design.clone();
            task.context.files = written.clone();
            let outcome = agents.run(&task).await.expect("task runs");
            if spec.kind == guild_core::VERIFY {
                // No verifier on this team: the verification says so, never passes.
                let report = outcome.verification.expect("a report");
                assert_eq!(report["status"], "unavailable", "{report}");
                assert!(outcome.calls.is_empty() && outcome.files.is_empty());
                continue;
            }
            assert!(!outcome.files.is_empty(), "{}", spec.key);
            assert!(
                outcome.rejected.is_empty(),
                "{}: {:?}",
                spec.key,
                outcome.rejected
            );
            assert!(
                outcome.unresolved.is_empty(),
                "{}: {:?}",
                spec.key,
                outcome.unresolved
            );
            assert!(
                outcome
                    .summary
                    .starts_with(&format!("Implemented `{}`", spec.key))
            );
            assert_eq!(outcome.prompt_version.len(), 12);
            assert_eq!(outcome.repair_rounds, 0, "{}", spec.key);
            let mut paths: Vec<&str> = outcome.files.iter().map(|f| f.path.as_str()).collect();
            paths.sort_unstable();
            let mut planned: Vec<&str> = design
                .files_of(&spec.key)
                .map(|f| f.path.as_str())
                .collect();
            planned.sort_unstable();
            assert_eq!(
                paths, planned,
                "{project_type} {}: writes exactly its planned files",
                spec.key
            );
            for file in &outcome.files {
                assert!(
                    !file.validation.is_invalid(),
                    "{}: {} is invalid: {}",
                    spec.key,
                    file.path,
                    file.validation.describe()
                );
            }
            let call = &outcome.calls[0];
            assert_eq!(
                (call.provider.as_str(), call.model.as_str()),
                ("offline", "offline-1")
            );
            assert!(call.prompt_tokens > 100 && call.completion_tokens > 10);
            assert!(
                call.shared_prefix_tokens > call.prompt_tokens / 4,
                "{}: the shared prefix is {} of {} prompt tokens",
                spec.key,
                call.shared_prefix_tokens,
                call.prompt_tokens
            );
            for file in &outcome.files {
                assert!(!file.content.trim().is_empty(), "{}", file.path);
                if file.language.as_deref() == Some("json") {
                    serde_json::from_str::<serde_json::Value>(&file.content)
                        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.path));
                }
                written.push(UpstreamFile {
                    path: file.path.clone(),
                    version: 1,
                    content: file.content.clone(),
                    task_key: spec.key.clone(),
                    validation: None,
                    conflict: None,
                });
            }
        }
        let mut all: Vec<&str> = written.iter().map(|f| f.path.as_str()).collect();
        all.sort_unstable();
        let mut planned: Vec<&str> = design.files.iter().map(|f| f.path.as_str()).collect();
        planned.sort_unstable();
        assert_eq!(
            all, planned,
            "{project_type}: every generated file is in the plan, and every planned one written"
        );
    }
}

/// A model that answers from a script, one answer per call, and remembers the requests.
struct Scripted {
    answers: Mutex<Vec<Result<(String, StopReason), LlmError>>>,
    requests: Mutex<Vec<LlmRequest>>,
}

impl Scripted {
    fn new(answers: Vec<Result<String, LlmError>>) -> Arc<Self> {
        Self::stopping(
            answers
                .into_iter()
                .map(|a| a.map(|text| (text, StopReason::Complete)))
                .collect(),
        )
    }

    /// Answers that say why they ended: `MaxTokens` for one cut at the length limit.
    fn stopping(answers: Vec<Result<(String, StopReason), LlmError>>) -> Arc<Self> {
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
        let (answer, stop_reason) = self.answers.lock().expect("lock").remove(0)?;
        Ok(LlmResponse {
            content: answer,
            model: "script-1".into(),
            usage: Usage {
                cached_prompt_tokens: 0,
                cache_write_tokens: 0,
                prompt_tokens: 10,
                completion_tokens: 5,
            },
            stop_reason,
        })
    }
}

#[tokio::test]
async fn a_broken_analysis_is_asked_again_with_the_exact_error() {
    let good = OfflineProvider::analysis("A todo app");
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
async fn an_answer_without_files_is_told_why_and_a_transport_error_is_retryable() {
    let model = Scripted::new(vec![
        Ok("I would write a schema.".into()),
        Ok("Here:\n\n```sql\nCREATE TABLE t (id int);\n```\n".into()),
        Ok("Sorry.".into()),
        Err(LlmError::Transport("reset".into())),
    ]);
    let agents = Agents::new(model.clone(), AgentSettings::default());
    let task = input("database_schema", ProjectType::Fullstack);
    let no_files = agents.run(&task).await.unwrap_err();
    assert!(no_files.retryable);
    assert_eq!(
        no_files.calls.len(),
        3,
        "asked again in the same conversation"
    );
    assert_eq!(no_files.raw_answer.as_deref(), Some("Sorry."));
    {
        let requests = model.requests.lock().expect("lock");
        // Each new ask says what was wrong with the answer before it.
        let first_repair = &requests[1].messages.last().expect("message").content;
        assert!(
            first_repair.contains("your answer has no file"),
            "{first_repair}"
        );
        assert!(first_repair.contains("path="), "{first_repair}");
        let second_repair = &requests[2].messages.last().expect("message").content;
        assert!(
            second_repair.contains("every block was refused")
                && second_repair.contains("code block names no file"),
            "{second_repair}"
        );
    }
    let transport = agents.run(&task).await.unwrap_err();
    assert!(transport.retryable);
    assert_eq!(transport.message, "LLM call failed: transport error: reset");
}

#[tokio::test]
async fn a_cut_answer_is_continued_and_the_unfinished_file_is_not_kept() {
    let cut = "Wrote the docs.\n\n```ts path=src/a.ts\nexport const a = 1;\n```\n\n```markdown path=README.md\n# Todo\n\nInstall with npm ins";
    let rest =
        "Continuing.\n\n```markdown path=README.md\n# Todo\n\nInstall with npm install.\n```\n";
    let model = Scripted::stopping(vec![
        Ok((cut.into(), StopReason::MaxTokens)),
        Ok((rest.into(), StopReason::Complete)),
    ]);
    let outcome = Agents::new(model.clone(), AgentSettings::default())
        .run(&input("database_schema", ProjectType::Fullstack))
        .await
        .expect("continued");
    assert_eq!(outcome.calls.len(), 2);
    let readme: Vec<_> = outcome
        .files
        .iter()
        .filter(|f| f.path == "README.md")
        .collect();
    assert_eq!(readme.len(), 1, "the cut version is never kept");
    assert!(readme[0].content.ends_with("npm install.\n"));
    assert!(outcome.cut_off.is_empty());
    assert!(outcome.files.iter().any(|f| f.path == "src/a.ts"));
    let requests = model.requests.lock().expect("lock");
    let ask = &requests[1].messages.last().expect("message").content;
    assert!(
        ask.contains("cut off") && ask.contains("`README.md`"),
        "{ask}"
    );
}

#[tokio::test]
async fn an_answer_that_stays_cut_keeps_the_file_marked_incomplete() {
    let cut = || {
        Ok((
            "Docs.\n\n```markdown path=README.md\n# Todo\n\nInstall with npm ins".to_owned(),
            StopReason::MaxTokens,
        ))
    };
    let model = Scripted::stopping(vec![cut(), cut(), cut(), cut(), cut(), cut()]);
    let outcome = Agents::new(model, AgentSettings::default())
        .run(&input("database_schema", ProjectType::Fullstack))
        .await
        .expect("kept, flagged");
    assert_eq!(outcome.cut_off, ["README.md"]);
    let readme = outcome.files.last().expect("README");
    assert!(readme.validation.is_invalid());
    assert_eq!(readme.validation.errors[0].message, guild_validate::CUT_OFF);
    assert!(outcome.summary.contains("cut off"), "{}", outcome.summary);
    assert!(outcome.unresolved.iter().any(|p| p.contains("README.md")));
}

#[tokio::test]
async fn a_cut_analysis_is_asked_again_more_concisely() {
    let good = OfflineProvider::analysis("A todo app");
    let model = Scripted::stopping(vec![
        Ok((good[..good.len() / 2].to_owned(), StopReason::MaxTokens)),
        Ok((good, StopReason::Complete)),
    ]);
    let outcome = Agents::new(model.clone(), AgentSettings::default())
        .run(&input(REQUIREMENTS_ANALYSIS, ProjectType::Fullstack))
        .await
        .expect("asked again");
    assert!(outcome.requirements.is_some());
    let requests = model.requests.lock().expect("lock");
    let ask = &requests[1].messages.last().expect("message").content;
    assert!(
        ask.contains("cut off") && ask.contains("more concisely"),
        "{ask}"
    );
}

#[tokio::test]
async fn a_provider_retry_after_reaches_the_task() {
    let model = Scripted::new(vec![Err(LlmError::Provider {
        status: 503,
        message: "busy".into(),
        retry_after: Some(std::time::Duration::from_secs(300)),
    })]);
    let error = Agents::new(model, AgentSettings::default())
        .run(&input("database_schema", ProjectType::Fullstack))
        .await
        .unwrap_err();
    assert!(error.retryable);
    assert_eq!(error.retry_after, Some(std::time::Duration::from_secs(300)));
}

#[tokio::test]
async fn a_description_the_api_accepts_always_fits_the_context_budget() {
    // 19,900 Chinese characters: 59,700 bytes, within the 20,000-character limit.
    let description: String = "待办事项应用支持用户账户共享列表和提醒。"
        .chars()
        .cycle()
        .take(19_900)
        .collect();
    let model = Scripted::new(vec![Ok("ok\n\n```ts path=a.ts\nlet a = 1;\n```\n".into())]);
    let mut task = input("api_structure", ProjectType::Fullstack);
    task.context.description = description.clone();
    task.context.requirements = Some(serde_json::json!({"core_features": ["待办".repeat(3000)]}));
    Agents::new(model.clone(), AgentSettings::default())
        .run(&task)
        .await
        .expect("fits");
    let requests = model.requests.lock().expect("lock");
    let prompt = &requests[0];
    let size = prompt.system.chars().count() + prompt.messages[0].content.chars().count();
    assert!(size <= 60_000, "{size} characters");
    assert!(prompt.messages[0].content.contains(&description[..300]));
}

#[tokio::test]
async fn a_prompt_over_the_context_budget_is_trimmed_to_fit() {
    let answer = || Ok::<_, LlmError>("ok\n\n```ts path=a.ts\nlet a = 1;\n```\n".to_owned());
    let mut task = input("authentication", ProjectType::Fullstack);
    task.kind = guild_core::FIX_FINDINGS.into();
    task.agent = guild_core::AgentKind::Backend;
    task.context.findings = vec![guild_core::Finding {
        severity: guild_core::Severity::High,
        file: "src/must_fix.ts".into(),
        line: Some(2),
        message: "hard-coded secret".into(),
        suggested_fix: None,
    }];
    task.context.requirements = Some(serde_json::json!({"core_features": ["x".repeat(2000)]}));

    // The prompt's size without any file, with a budget that leaves room for everything.
    let roomy = Scripted::new(vec![answer()]);
    Agents::new(roomy.clone(), AgentSettings::default())
        .run(&task)
        .await
        .expect("runs");
    let size = |request: &LlmRequest| request.system.len() + request.messages[0].content.len();
    let base = size(&roomy.requests.lock().expect("lock")[0]);

    let long: String = (1..=2000)
        .map(|n| format!("const line{n} = {n};\n"))
        .collect();
    task.context.files = vec![
        context_file("src/aaa_big.ts", long.clone()),
        context_file(
            "src/must_fix.ts",
            "const a = 1;\nconst secret = \"x\";\n".into(),
        ),
        context_file("src/zzz_big.ts", long),
    ];
    let budget = base + 3000;
    let model = Scripted::new(vec![answer()]);
    let agents = Agents::new(
        model.clone(),
        AgentSettings {
            context_budget_chars: budget,
            ..AgentSettings::default()
        },
    );
    agents.run(&task).await.expect("runs");
    let request = model.requests.lock().expect("lock")[0].clone();
    let prompt = &request.messages[0].content;
    assert!(size(&request) <= budget, "{} > {budget}", size(&request));
    // The file the findings name comes first, whole; the next is trimmed in the middle;
    // the last is listed by path.
    assert!(
        prompt.contains(
            "```typescript path=src/must_fix.ts\nconst a = 1;\nconst secret = \"x\";\n```"
        )
    );
    assert!(
        prompt.contains("(trimmed to fit the context budget:"),
        "{prompt}"
    );
    assert!(prompt.contains("const line1 = 1;\n"));
    assert!(prompt.contains("const line2000 = 2000;\n```"));
    assert!(prompt.contains("Also written, not shown here: src/zzz_big.ts"));
    assert!(
        prompt.contains("# Findings to fix\n\n- [high] `src/must_fix.ts:2`: hard-coded secret.")
    );

    // A budget too small for even the requirements: they are cut, never sent whole.
    let tight = Scripted::new(vec![answer()]);
    task.context.files.clear();
    Agents::new(
        tight.clone(),
        AgentSettings {
            context_budget_chars: base - 1000,
            ..AgentSettings::default()
        },
    )
    .run(&task)
    .await
    .expect("runs");
    let request = tight.requests.lock().expect("lock")[0].clone();
    assert!(size(&request) <= base - 1000);
    assert!(
        request.messages[0]
            .content
            .contains("… (trimmed to fit the context budget)")
    );

    let error = Agents::new(
        Scripted::new(vec![]),
        AgentSettings {
            context_budget_chars: 300,
            ..AgentSettings::default()
        },
    )
    .run(&task)
    .await
    .expect_err("cannot fit");
    assert!(!error.retryable);
    assert!(
        error.message.contains("over the context budget of 300"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn invalid_files_get_repair_rounds_with_the_exact_errors() {
    let broken = "Wrote the app.\n\n```typescript path=src/app.ts\nexport function f(: number {\n  return 1;\n}\n```\n\n```json path=package.json\n{\"name\": \"x\"}\n```\n";
    let fixed = "Fixed.\n\n```typescript path=src/app.ts\nexport function f(): number {\n  return 1;\n}\n```\n\n```json path=package.json\n{\"name\": \"x\"}\n```\n";
    let model = Scripted::new(vec![Ok(broken.into()), Ok(fixed.into())]);
    let agents = Agents::new(model.clone(), AgentSettings::default());
    let outcome = agents
        .run(&input("api_structure", ProjectType::Fullstack))
        .await
        .expect("runs");
    assert_eq!(outcome.repair_rounds, 1);
    assert!(outcome.unresolved.is_empty());
    assert_eq!(outcome.summary, "Wrote the app.");
    assert_eq!(outcome.calls.len(), 2);
    // Both versions of the broken file, and the unchanged file once.
    let versions: Vec<_> = outcome
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.repair_round, f.validation.status))
        .collect();
    use guild_validate::Status::{Invalid, Valid};
    assert_eq!(
        versions,
        [
            ("src/app.ts", 0, Invalid),
            ("package.json", 0, Valid),
            ("src/app.ts", 1, Valid)
        ]
    );
    assert_eq!(outcome.files[0].model, "script-1");
    let repair = model.requests.lock().expect("lock")[1].messages.clone();
    assert_eq!(repair.len(), 3);
    assert_eq!(repair[1].content, broken);
    assert!(
        repair[2]
            .content
            .contains("- `src/app.ts` failed tree-sitter-typescript:\nline 1, column"),
        "{}",
        repair[2].content
    );

    // When every round fails, the task keeps its files and says what is unresolved.
    let model = Scripted::new(vec![
        Ok(broken.into()),
        Ok(broken.into()),
        Ok(broken.into()),
    ]);
    let agents = Agents::new(
        model.clone(),
        AgentSettings {
            repair_rounds: 2,
            ..AgentSettings::default()
        },
    );
    let outcome = agents
        .run(&input("api_structure", ProjectType::Fullstack))
        .await
        .expect("runs");
    assert_eq!(outcome.repair_rounds, 2);
    assert_eq!(outcome.calls.len(), 3);
    assert_eq!(outcome.files.len(), 2, "an unchanged file is one version");
    assert_eq!(outcome.unresolved.len(), 1);
    assert!(outcome.unresolved[0].starts_with("`src/app.ts` failed"));
}

#[tokio::test]
async fn reviews_answer_findings_and_are_asked_again_without_them() {
    let report = "Reviewed.\n\n```markdown path=docs/reviews/code-review.md\n# Review\n```\n";
    let with_findings = format!(
        "{report}\n```json findings\n{{\"findings\": [{{\"severity\": \"high\", \"file\": \"./src/app.ts\", \"line\": 3, \"message\": \"SQL built from input\", \"suggested_fix\": \"use parameters\"}}]}}\n```\n"
    );
    let model = Scripted::new(vec![Ok(report.into()), Ok(with_findings)]);
    let agents = Agents::new(model.clone(), AgentSettings::default());
    let outcome = agents
        .run(&input("code_review", ProjectType::Fullstack))
        .await
        .expect("runs");
    assert_eq!(outcome.repair_rounds, 1);
    assert_eq!(outcome.findings.len(), 1);
    assert_eq!(outcome.findings[0].file, "src/app.ts");
    assert!(outcome.findings[0].severity.is_blocking());
    assert_eq!(outcome.files.len(), 1);
    let requests = model.requests.lock().expect("lock");
    assert!(
        requests[1].messages[2]
            .content
            .contains("the findings block is missing")
    );
    assert!(requests[0].messages[0].content.contains("```json findings"));
}

#[tokio::test]
async fn the_flaw_marker_breaks_a_file_first_and_plants_a_blocking_finding() {
    let agents = Agents::new(
        Arc::new(OfflineProvider::default()),
        AgentSettings::default(),
    );
    let flawed = |kind: &str| {
        let mut task = input(kind, ProjectType::Fullstack);
        task.context.description = format!("A todo list app {}", guild_offline::FLAW_MARKER);
        task
    };
    let api = agents.run(&flawed("api_structure")).await.expect("api");
    assert_eq!(api.repair_rounds, 1);
    let app: Vec<_> = api
        .files
        .iter()
        .filter(|f| f.path == "backend/src/app.ts")
        .collect();
    assert_eq!(app.len(), 2);
    assert!(app[0].validation.is_invalid());
    assert!(!app[1].validation.is_invalid());

    let auth = agents.run(&flawed("authentication")).await.expect("auth");
    let auth_file = &auth.files[0];
    assert!(auth_file.content.contains("\"guild-dev-secret\""));
    let mut audit = flawed("security_audit");
    audit.context.files = vec![UpstreamFile {
        path: auth_file.path.clone(),
        version: 1,
        content: auth_file.content.clone(),
        task_key: "authentication".into(),
        validation: None,
        conflict: None,
    }];
    let review = agents.run(&audit).await.expect("audit");
    let blocking: Vec<_> = review
        .findings
        .iter()
        .filter(|f| f.severity.is_blocking())
        .collect();
    assert_eq!(blocking.len(), 1, "{:?}", review.findings);
    assert_eq!(blocking[0].file, "backend/src/auth.ts");
    let planted = auth_file
        .content
        .lines()
        .position(|l| l.contains("\"guild-dev-secret\""))
        .expect("the planted line");
    assert_eq!(blocking[0].line, u32::try_from(planted + 1).ok());

    let mut fix = flawed("authentication");
    fix.kind = guild_core::FIX_FINDINGS.into();
    fix.context.findings = vec![blocking[0].clone()];
    fix.context.files = audit.context.files.clone();
    let fixed = agents.run(&fix).await.expect("fix");
    assert_eq!(fixed.files.len(), 1);
    assert_eq!(fixed.files[0].path, "backend/src/auth.ts");
    assert!(!fixed.files[0].content.contains("guild-dev-secret"));

    // Without the marker, nothing is broken or planted.
    let clean = agents
        .run(&input("api_structure", ProjectType::Fullstack))
        .await
        .expect("clean");
    assert_eq!(clean.repair_rounds, 0);
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
    assert_eq!(second.calls[0].tokens(), 0);
    assert_eq!(second.calls[0].cost_usd, Some(0.0));
    assert_eq!(second.files, first.files);
    assert_eq!(model.requests.lock().expect("lock").len(), 1);

    // A project that turned the cache off, and a retried task, ask the model.
    let mut uncached = task.clone();
    uncached.context.use_cache = false;
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
        // The scripted reviews have no findings block: not asked again here.
        repair_rounds: 0,
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

/// A model that answers its first call from a script and every later one as the offline
/// model would, remembering the requests.
struct FirstScripted {
    first: Mutex<Option<String>>,
    requests: Mutex<Vec<LlmRequest>>,
}

#[async_trait]
impl LlmClient for FirstScripted {
    fn provider(&self) -> &'static str {
        "scripted"
    }

    fn default_model(&self) -> &str {
        "scripted-1"
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.requests.lock().expect("lock").push(request.clone());
        let scripted = self.first.lock().expect("lock").take();
        match scripted {
            Some(content) => Ok(LlmResponse {
                content,
                model: "scripted-1".into(),
                usage: Usage::new(100, 100),
                stop_reason: StopReason::Complete,
            }),
            None => OfflineProvider::default().complete(request).await,
        }
    }
}

/// A fullstack task of `kind` with the offline model's design of the project.
async fn designed(kind: &str) -> TaskInput {
    let agents = Agents::new(
        Arc::new(OfflineProvider::default()),
        AgentSettings::default(),
    );
    let design = agents
        .run(&input(SYSTEM_DESIGN, ProjectType::Fullstack))
        .await
        .expect("design")
        .design;
    let mut task = input(kind, ProjectType::Fullstack);
    task.context.design = design;
    task
}

fn last_message(request: &LlmRequest) -> String {
    request
        .messages
        .last()
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_design_with_problems_is_sent_back_with_every_problem() {
    let mut step = input(SYSTEM_DESIGN, ProjectType::Fullstack);
    let good = Agents::new(
        Arc::new(OfflineProvider::default()),
        AgentSettings::default(),
    )
    .run(&step)
    .await
    .expect("design")
    .design
    .expect("a design");
    let mut bad = good.clone();
    bad["files"][0]["task"] = "deploy".into();
    bad["contract"]["paths"]["/api/export"] =
        serde_json::json!({"get": {"responses": {"200": {"description": "csv"}}}});
    let model = Arc::new(FirstScripted {
        first: Mutex::new(Some(format!(
            "Here is the design.\n\n```json\n{bad}\n```\n"
        ))),
        requests: Mutex::new(Vec::new()),
    });
    step.attempt = 1;
    let outcome = Agents::new(model.clone(), AgentSettings::default())
        .run(&step)
        .await
        .expect("the second design passes");
    assert_eq!(outcome.calls.len(), 2);
    assert_eq!(outcome.design, Some(good));
    let requests = model.requests.lock().expect("lock");
    let feedback = last_message(&requests[1]);
    for expected in [
        "2 problem(s) with the design",
        "`files[0]` (.gitignore): `task` must be a task of the graph",
        "contract operation `GET /api/export` has no owner",
    ] {
        assert!(
            feedback.contains(expected),
            "missing {expected:?} in {feedback}"
        );
    }
}

#[tokio::test]
async fn a_model_that_ignores_the_plan_is_told_and_repaired() {
    // The backend: an unplanned file, a planned export missing, planned files not written.
    let task = designed("api_structure").await;
    let model = Arc::new(FirstScripted {
        first: Mutex::new(Some(
            "Wrote the app.\n\n```typescript path=backend/src/app.ts\nexport function makeApp(): void {}\n```\n\n\
             ```typescript path=backend/src/extra.ts\nexport const extra = 1;\n```\n"
                .into(),
        )),
        requests: Mutex::new(Vec::new()),
    });
    let outcome = Agents::new(model.clone(), AgentSettings::default())
        .run(&task)
        .await
        .expect("repaired");
    assert_eq!(outcome.repair_rounds, 1);
    let feedback = last_message(&model.requests.lock().expect("lock")[1]);
    for expected in [
        "`backend/src/app.ts` must export `AppOptions`, `createApp` as the design plans",
        "`backend/src/extra.ts` is not in the design's file plan",
        "planned file `backend/src/http.ts` is missing",
    ] {
        assert!(
            feedback.contains(expected),
            "missing {expected:?} in {feedback}"
        );
    }
    assert!(outcome.unresolved.is_empty(), "{:?}", outcome.unresolved);
    // The unplanned file is not kept: it is reported as refused.
    assert!(
        !outcome
            .files
            .iter()
            .any(|f| f.path == "backend/src/extra.ts")
    );
    assert!(
        outcome
            .rejected
            .iter()
            .any(|r| r.path.as_deref() == Some("backend/src/extra.ts"))
    );
    let app: Vec<_> = outcome
        .files
        .iter()
        .filter(|f| f.path == "backend/src/app.ts")
        .collect();
    assert!(
        app.last()
            .is_some_and(|f| f.content.contains("export function createApp"))
    );

    // The frontend: a call to a route the contract does not have.
    let task = designed("api_integration").await;
    let offline = Agents::new(
        Arc::new(OfflineProvider::default()),
        AgentSettings::default(),
    )
    .run(&task)
    .await
    .expect("offline");
    let client = &offline.files[0];
    assert_eq!(client.path, "frontend/src/api/client.ts");
    let wrong = client.content.replace("/api/todos", "/api/todo");
    assert_ne!(wrong, client.content);
    let model = Arc::new(FirstScripted {
        first: Mutex::new(Some(format!(
            "Client.\n\n```typescript path={}\n{wrong}```\n",
            client.path
        ))),
        requests: Mutex::new(Vec::new()),
    });
    let outcome = Agents::new(model.clone(), AgentSettings::default())
        .run(&task)
        .await
        .expect("repaired");
    assert_eq!(outcome.repair_rounds, 1);
    let feedback = last_message(&model.requests.lock().expect("lock")[1]);
    assert!(
        feedback.contains(
            "`frontend/src/api/client.ts` calls `/api/todo`, which the contract does not have"
        ),
        "{feedback}"
    );
    assert!(
        !outcome
            .files
            .last()
            .expect("a file")
            .validation
            .is_invalid()
    );

    // A model that never conforms: what departs is kept invalid and unresolved, not hidden.
    let task = designed("api_structure").await;
    let stubborn = Scripted::new(vec![
        Ok(
            "x\n\n```typescript path=backend/src/app.ts\nexport function makeApp(): void {}\n```\n"
                .into()
        );
        3
    ]);
    let outcome = Agents::new(stubborn, AgentSettings::default())
        .run(&task)
        .await
        .expect("kept");
    let app = outcome.files.last().expect("app");
    assert!(app.validation.is_invalid());
    assert!(
        app.validation
            .checker
            .as_deref()
            .is_some_and(|c| c.ends_with("design")),
        "{:?}",
        app.validation
    );
    assert!(
        outcome
            .unresolved
            .iter()
            .any(|p| p.contains("planned file `backend/src/http.ts` is missing"))
    );
}
