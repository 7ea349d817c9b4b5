//! The offline provider: deterministic answers with no network, built from the call's
//! purpose. For `requirements_analysis` it answers the analysis JSON; for every other task
//! type a markdown answer whose fenced code blocks each name their file (`path=`), holding
//! small but syntactically valid code in the chosen stack.

mod analysis;
mod code;
mod flaws;
mod subject;

use std::time::Duration;

use async_trait::async_trait;

use crate::{LlmClient, LlmError, LlmRequest, LlmResponse, Usage, estimate_tokens};
pub use flaws::FLAW_MARKER;
pub use subject::{Backend, Subject};

/// The offline model's name, recorded with its calls.
pub const OFFLINE_MODEL: &str = "offline-1";

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
}

impl OfflineProvider {
    /// The requirements analysis the offline model writes for `description`: valid JSON
    /// with every field, what a scripted model answers when a test needs a good one.
    pub fn analysis(description: &str) -> String {
        analysis::answer(&Subject::new(description, None))
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
        let subject = Subject::new(
            &request.purpose.description,
            request.purpose.technology_stack.as_deref(),
        );
        let prompt: String = request
            .messages
            .iter()
            .filter(|m| m.role == crate::Role::User)
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let call = code::Call {
            flaws: flaws::wanted(&request.purpose.description),
            repairing: request.messages.len() > 1,
            prompt: &prompt,
        };
        let content = match request.purpose.task_kind.as_str() {
            "requirements_analysis" => analysis::answer(&subject),
            kind => code::answer(kind, &subject, call),
        };
        let prompt_tokens = estimate_tokens(&request.system)
            + request
                .messages
                .iter()
                .map(|m| estimate_tokens(&m.content))
                .sum::<u32>();
        Ok(LlmResponse {
            usage: Usage {
                prompt_tokens,
                completion_tokens: estimate_tokens(&content),
            },
            content,
            model: OFFLINE_MODEL.to_owned(),
            stop_reason: crate::StopReason::Complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallPurpose, Message};

    fn request(kind: &str) -> LlmRequest {
        LlmRequest {
            model: OFFLINE_MODEL.into(),
            system: "You are an analyst.".into(),
            messages: vec![Message::user("Analyse this.")],
            temperature: 0.0,
            max_tokens: 4000,
            json: kind == "requirements_analysis",
            purpose: CallPurpose {
                task_id: "t".into(),
                attempt: 1,
                task_kind: kind.into(),
                description: "A recipe sharing site with comments".into(),
                technology_stack: None,
            },
        }
    }

    #[tokio::test]
    async fn analysis_answer_is_json_with_every_field() {
        let response = OfflineProvider::default()
            .complete(&request("requirements_analysis"))
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
    async fn answers_are_deterministic() {
        let provider = OfflineProvider::default();
        let a = provider
            .complete(&request("api_structure"))
            .await
            .expect("a");
        let b = provider
            .complete(&request("api_structure"))
            .await
            .expect("b");
        assert_eq!(a, b);
        assert!(a.content.contains("path=backend/src/app.ts"));
    }
}
