//! The offline provider: deterministic answers with no network, built from the call's
//! purpose and prompt. It writes a real application from the templates under `app/`
//! (see `app/SPEC.md`): TypeScript (Express + pg) or Python (FastAPI + psycopg) backends
//! and a React + Vite frontend, with tests, that install, build, test and serve their
//! contract.
//!
//! - `requirements_analysis`: the analysis JSON;
//! - `system_design`: the design (contract, data model, components, file plan) for the
//!   task graph the prompt lists;
//! - any other task: the files the design in the prompt plans for the task;
//! - `code_review`, `security_audit`: their report and findings.

mod analysis;
mod change;
mod code;
mod design;
mod flaws;
mod manifest;
mod project;
mod prompt;
mod render;
mod subject;

use std::time::Duration;

use async_trait::async_trait;
use guild_llm::{
    CallPurpose, LlmClient, LlmError, LlmRequest, LlmResponse, Message, Role, StopReason, Usage,
    estimate_tokens,
};

pub use flaws::{FLAW_MARKER, RUNTIME_FLAW_MARKER};
pub use subject::{Backend, Subject};

/// The offline model's name, recorded with its calls.
pub const OFFLINE_MODEL: &str = "offline-1";

/// The task type of the design step.
const SYSTEM_DESIGN: &str = "system_design";

/// A provider that answers from templates, optionally after a fixed latency so benchmarks
/// can model a real model.
#[derive(Debug, Clone, Default)]
pub struct OfflineProvider {
    latency: Duration,
}

impl OfflineProvider {
    /// A provider that sleeps `latency` before each answer.
    pub fn new(latency: Duration) -> Self {
        Self { latency }
    }

    /// The requirements analysis the offline model writes for `description`: valid JSON
    /// with every field, what a scripted model answers when a test needs a good one.
    pub fn analysis(description: &str) -> String {
        analysis::answer(&Subject::new(description, None), description)
    }
}

/// The offline model's answer to a chat as a provider receives it (a system prompt and the
/// messages, as `(is_user, content)`), reading what it needs from Guild's prompt: the task
/// (`# Your task: `key``), the description (`# Project`), the stack. For fake servers in
/// tests, which see only what goes over the wire.
pub fn chat_answer(system: &str, messages: &[(bool, &str)]) -> String {
    let first = messages
        .iter()
        .find(|(user, _)| *user)
        .map_or("", |(_, m)| *m);
    let key = first
        .split("# Your task: `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_default();
    let kind = if key.starts_with("fix_") {
        "fix_findings".to_owned()
    } else {
        // A re-review keeps its type: `security_audit_r1` is a `security_audit`.
        match key.rsplit_once("_r") {
            Some((base, round))
                if !round.is_empty() && round.chars().all(|c| c.is_ascii_digit()) =>
            {
                base.to_owned()
            }
            _ => key.to_owned(),
        }
    };
    let description = first
        .split("# Project\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\nProject type:").next())
        .unwrap_or_default();
    let stack = first
        .split("Requested technology stack: ")
        .nth(1)
        .and_then(|rest| rest.lines().next());
    let request = LlmRequest {
        model: OFFLINE_MODEL.into(),
        system: system.to_owned(),
        messages: messages
            .iter()
            .map(|(user, content)| {
                if *user {
                    Message::user(*content)
                } else {
                    Message::assistant(*content)
                }
            })
            .collect(),
        temperature: 0.0,
        max_tokens: 0,
        json: false,
        cacheable_prefix: 0,
        purpose: CallPurpose {
            task_key: key.to_owned(),
            task_kind: kind,
            description: description.to_owned(),
            technology_stack: stack.map(str::to_owned),
            ..CallPurpose::default()
        },
    };
    answer(&request)
}

/// The offline model's answer to `request`.
fn answer(request: &LlmRequest) -> String {
    let purpose = &request.purpose;
    let subject = Subject::new(&purpose.description, purpose.technology_stack.as_deref());
    let prompt: String = std::iter::once(request.system.as_str())
        .chain(
            request
                .messages
                .iter()
                .filter(|m| m.role == Role::User)
                .map(|m| m.content.as_str()),
        )
        .collect::<Vec<_>>()
        .join("\n");
    match purpose.task_kind.as_str() {
        "requirements_analysis" => analysis::answer(&subject, &purpose.description),
        SYSTEM_DESIGN => design::answer(&subject, &purpose.description, &prompt),
        "change_analysis" => change::analysis(&subject, &purpose.description, &prompt),
        "design_update" => change::design_update(&subject, &purpose.description, &prompt),
        kind => code::answer(
            &subject,
            code::Call {
                key: &purpose.task_key,
                kind,
                description: &purpose.description,
                flaws: flaws::wanted(&purpose.description),
                runtime_flaws: flaws::runtime_wanted(&purpose.description),
                repairing: request.messages.len() > 1,
                prompt: &prompt,
            },
        ),
    }
}

#[async_trait]
impl LlmClient for OfflineProvider {
    fn provider(&self) -> &'static str {
        "offline"
    }

    fn default_model(&self) -> &str {
        OFFLINE_MODEL
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let content = answer(request);
        let prompt_tokens = estimate_tokens(&request.system)
            + request
                .messages
                .iter()
                .map(|m| estimate_tokens(&m.content))
                .sum::<u32>();
        Ok(LlmResponse {
            usage: Usage::new(prompt_tokens, estimate_tokens(&content)),
            content,
            model: OFFLINE_MODEL.to_owned(),
            stop_reason: StopReason::Complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str, prompt: &str) -> LlmRequest {
        LlmRequest {
            model: OFFLINE_MODEL.into(),
            system: "You are an analyst.".into(),
            messages: vec![Message::user(prompt)],
            temperature: 0.0,
            max_tokens: 4000,
            json: kind == "requirements_analysis",
            cacheable_prefix: 0,
            purpose: CallPurpose {
                task_id: "t".into(),
                attempt: 1,
                task_key: kind.into(),
                task_kind: kind.into(),
                description: "A recipe sharing site with comments".into(),
                technology_stack: None,
            },
        }
    }

    #[tokio::test]
    async fn analysis_answer_is_json_with_every_field() {
        let response = OfflineProvider::default()
            .complete(&request("requirements_analysis", "Analyse this."))
            .await
            .expect("offline never fails");
        let value: serde_json::Value = serde_json::from_str(&response.content).expect("json");
        for field in [
            "recommended_technology_stack",
            "core_features",
            "technical_architecture",
            "database_schema",
            "api_endpoints",
            "frontend_components",
            "security_considerations",
            "performance_requirements",
            "testing_strategy",
            "deployment_considerations",
        ] {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        assert_eq!(value["database_schema"]["tables"][1]["name"], "recipes");
        assert!(response.usage.prompt_tokens > 0);
        assert_eq!(
            response.usage.completion_tokens,
            estimate_tokens(&response.content)
        );
    }

    #[tokio::test]
    async fn code_answers_write_the_files_the_design_plans_for_the_task() {
        let provider = OfflineProvider::default();
        let design = provider
            .complete(&request(SYSTEM_DESIGN, "Design it."))
            .await
            .expect("design");
        let json = design
            .content
            .split("```json\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .expect("a json block");
        let prompt = format!(
            "# Design\n\n```json design\n{}\n```\n",
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(json).expect("json"))
                .expect("json")
        );
        let a = provider
            .complete(&request("api_structure", &prompt))
            .await
            .expect("a");
        let b = provider
            .complete(&request("api_structure", &prompt))
            .await
            .expect("b");
        assert_eq!(a, b, "answers are deterministic");
        for path in [
            "backend/src/app.ts",
            "backend/src/http.ts",
            "backend/src/routes/recipes.ts",
            "docs/openapi.json",
        ] {
            assert!(
                a.content.contains(&format!("path={path}\n")),
                "{path} missing from\n{}",
                a.content
            );
        }
        assert!(
            !a.content.contains("path=backend/src/auth.ts"),
            "another task's file"
        );
        assert!(!a.content.contains("[["), "unrendered template");
    }
}
