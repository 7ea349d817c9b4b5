//! The prompt library: a system prompt per agent kind and a template per task type,
//! embedded in the binary and rendered with minijinja.
//!
//! Each task template's version is a hash of everything it renders from (the shared base,
//! its system prompt and itself), recorded with every task so outcomes can be compared
//! across prompt versions.

use std::collections::HashMap;

use guild_core::AgentKind;
use minijinja::Environment;
use serde::Serialize;

use crate::files::sha256_hex;

macro_rules! embedded {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../prompts/", $name)))),+]
    };
}

/// Every embedded template, by name.
const TEMPLATES: &[(&str, &str)] = embedded![
    "base.j2",
    "system/analyst.j2",
    "system/backend.j2",
    "system/frontend.j2",
    "system/devops.j2",
    "system/reviewer.j2",
    "tasks/requirements_analysis.j2",
    "tasks/database_schema.j2",
    "tasks/api_structure.j2",
    "tasks/authentication.j2",
    "tasks/business_logic.j2",
    "tasks/ui_components.j2",
    "tasks/page_layouts.j2",
    "tasks/state_management.j2",
    "tasks/api_integration.j2",
    "tasks/environment_config.j2",
    "tasks/ci_cd_pipeline.j2",
    "tasks/monitoring_setup.j2",
    "tasks/code_review.j2",
    "tasks/security_audit.j2",
    "tasks/performance_testing.j2",
    "tasks/default.j2",
];

/// What a task template can use.
#[derive(Debug, Clone, Serialize)]
pub struct PromptContext<'a> {
    pub description: &'a str,
    pub project_type: &'a str,
    pub technology_stack: Option<&'a str>,
    /// The requirements analysis, pretty-printed JSON.
    pub requirements: Option<String>,
    pub task: PromptTask<'a>,
    /// A reviewer's feedback on the previous answer, to act on first.
    pub feedback: Option<&'a str>,
    pub upstream: Vec<PromptUpstream<'a>>,
    pub files: Vec<PromptFile<'a>>,
    /// Paths of upstream files left out to stay within the context budget.
    pub omitted_files: Vec<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptTask<'a> {
    pub key: &'a str,
    pub kind: &'a str,
    pub description: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptUpstream<'a> {
    pub key: &'a str,
    pub agent: &'a str,
    pub summary: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptFile<'a> {
    pub path: &'a str,
    pub language: &'a str,
    pub content: &'a str,
}

/// A rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    pub system: String,
    pub user: String,
    /// The template version: 12 hex digits of the hash of its sources.
    pub version: String,
}

/// The loaded templates.
pub struct Prompts {
    env: Environment<'static>,
    sources: HashMap<&'static str, &'static str>,
}

impl Prompts {
    /// The templates embedded in the binary.
    pub fn embedded() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("embedded template {name} is invalid: {e}"));
        }
        Self {
            env,
            sources: TEMPLATES.iter().copied().collect(),
        }
    }

    fn task_template(&self, kind: &str) -> String {
        let name = format!("tasks/{kind}.j2");
        if self.sources.contains_key(name.as_str()) {
            name
        } else {
            "tasks/default.j2".to_owned()
        }
    }

    /// Renders the system prompt of `agent` and the template of task type `kind` (the
    /// default template for a type without one).
    pub fn render(
        &self,
        agent: AgentKind,
        kind: &str,
        context: &PromptContext<'_>,
    ) -> Result<RenderedPrompt, minijinja::Error> {
        let system_name = format!("system/{}.j2", agent.as_str());
        let task_name = self.task_template(kind);
        let context = minijinja::Value::from(minijinja::value::Serde(context));
        let system = self.env.get_template(&system_name)?.render(&context)?;
        let user = self.env.get_template(&task_name)?.render(&context)?;
        let hashed: String = ["base.j2", system_name.as_str(), task_name.as_str()]
            .iter()
            .map(|name| self.sources.get(name).copied().unwrap_or_default())
            .collect();
        Ok(RenderedPrompt {
            system: system.trim().to_owned(),
            user,
            version: sha256_hex(&hashed)[..12].to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(files: Vec<PromptFile<'a>>) -> PromptContext<'a> {
        PromptContext {
            description: "A todo app",
            project_type: "fullstack",
            technology_stack: Some("Rust"),
            requirements: Some("{\"core_features\": []}".into()),
            task: PromptTask {
                key: "api_structure",
                kind: "api_structure",
                description: "Create API structure and routing",
            },
            feedback: Some("Use PATCH, not PUT."),
            upstream: vec![PromptUpstream {
                key: "database_schema",
                agent: "backend",
                summary: Some("Wrote the schema."),
            }],
            files,
            omitted_files: vec!["big.sql"],
        }
    }

    #[test]
    fn task_prompts_carry_the_whole_context() {
        let prompts = Prompts::embedded();
        let file = PromptFile {
            path: "db/schema.sql",
            language: "sql",
            content: "CREATE TABLE t ();",
        };
        let rendered = prompts
            .render(AgentKind::Backend, "api_structure", &context(vec![file]))
            .expect("renders");
        assert!(
            rendered
                .system
                .starts_with("You are a senior backend engineer")
        );
        for expected in [
            "A todo app",
            "Requested technology stack: Rust",
            "{\"core_features\": []}",
            "# Your task: `api_structure`",
            "Create the API's skeleton",
            "- `database_schema` (backend): Wrote the schema.",
            "```sql path=db/schema.sql\nCREATE TABLE t ();\n```",
            "left out here for length: big.sql",
            "# Reviewer feedback on your previous answer\n\nUse PATCH, not PUT.",
            "path=backend/src/app.ts",
        ] {
            assert!(
                rendered.user.contains(expected),
                "missing {expected:?} in\n{}",
                rendered.user
            );
        }
        assert_eq!(rendered.version.len(), 12);
    }

    #[test]
    fn versions_differ_by_template_and_unknown_types_use_the_default() {
        let prompts = Prompts::embedded();
        let a = prompts
            .render(AgentKind::Backend, "api_structure", &context(vec![]))
            .expect("a");
        let b = prompts
            .render(AgentKind::Backend, "authentication", &context(vec![]))
            .expect("b");
        assert_ne!(a.version, b.version);
        let custom = prompts
            .render(AgentKind::Devops, "write_helm_chart", &context(vec![]))
            .expect("c");
        assert!(custom.user.contains("Complete this task for the project"));
    }
}
