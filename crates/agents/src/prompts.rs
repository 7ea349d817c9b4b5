//! The prompt library: a system prompt per agent kind and a template per task type,
//! embedded in the binary and rendered with minijinja. A directory (`GUILD_PROMPTS_DIR`)
//! may override any of them, or add templates for new task types, by holding files of
//! the same relative names (`base.j2`, `system/backend.j2`, `tasks/api_structure.j2`).
//!
//! Each task template's version is a hash of everything it renders from (the shared base,
//! its system prompt and itself), recorded with every call and task so outcomes can be
//! compared across prompt versions.

use std::collections::BTreeMap;
use std::path::Path;

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
    "tasks/fix_findings.j2",
    "tasks/default.j2",
];

/// Why a prompt directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PromptsError {
    #[error("reading the prompt directory {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("prompt template {name} is invalid: {source}")]
    Invalid {
        name: String,
        source: minijinja::Error,
    },
}

/// What a task template can use.
#[derive(Debug, Clone, Serialize)]
pub struct PromptContext<'a> {
    pub description: std::borrow::Cow<'a, str>,
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
    /// Review findings the task fixes (a fix task) or verifies (a re-review), one per line.
    pub findings: Vec<String>,
    /// Paths written by tasks the graph does not order, one per line.
    pub conflicts: Vec<String>,
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
    pub content: std::borrow::Cow<'a, str>,
    /// Said before the file: it was trimmed, or it failed validation.
    pub note: Option<String>,
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
    sources: BTreeMap<String, String>,
    /// Names taken from the directory rather than the binary.
    overridden: Vec<String>,
}

impl Prompts {
    /// The templates embedded in the binary.
    pub fn embedded() -> Self {
        Self::from_sources(
            TEMPLATES
                .iter()
                .map(|(name, source)| ((*name).to_owned(), (*source).to_owned()))
                .collect(),
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("an embedded template is invalid: {e}"))
    }

    /// The embedded templates, with every `*.j2` file under `dir` in place of (or beside)
    /// the one of the same relative name. A template that does not parse is an error here,
    /// at startup, not when a task first needs it.
    pub fn load(dir: &Path) -> Result<Self, PromptsError> {
        let mut sources: BTreeMap<String, String> = TEMPLATES
            .iter()
            .map(|(name, source)| ((*name).to_owned(), (*source).to_owned()))
            .collect();
        let mut overridden = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            let read = |path: &Path, source| PromptsError::Read {
                path: path.display().to_string(),
                source,
            };
            for entry in std::fs::read_dir(&folder).map_err(|e| read(&folder, e))? {
                let path = entry.map_err(|e| read(&folder, e))?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "j2") {
                    let name = path
                        .strip_prefix(dir)
                        .expect("under the prompt directory")
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    let source = std::fs::read_to_string(&path).map_err(|e| read(&path, e))?;
                    sources.insert(name.clone(), source);
                    overridden.push(name);
                }
            }
        }
        overridden.sort();
        Self::from_sources(sources, overridden)
    }

    fn from_sources(
        sources: BTreeMap<String, String>,
        overridden: Vec<String>,
    ) -> Result<Self, PromptsError> {
        let mut env = Environment::new();
        for (name, source) in &sources {
            env.add_template_owned(name.clone(), source.clone())
                .map_err(|source| PromptsError::Invalid {
                    name: name.clone(),
                    source,
                })?;
        }
        Ok(Self {
            env,
            sources,
            overridden,
        })
    }

    /// The templates taken from the prompt directory, by relative name.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    fn task_template(&self, kind: &str) -> String {
        let name = format!("tasks/{kind}.j2");
        if self.sources.contains_key(&name) {
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
            .map(|name| {
                self.sources
                    .get(*name)
                    .map(String::as_str)
                    .unwrap_or_default()
            })
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
            description: "A todo app".into(),
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
            findings: Vec::new(),
            conflicts: vec!["`src/app.ts`: v2 by `a` (backend) and v3 by `b` (frontend)".into()],
        }
    }

    #[test]
    fn task_prompts_carry_the_whole_context() {
        let prompts = Prompts::embedded();
        let file = PromptFile {
            path: "db/schema.sql",
            language: "sql",
            content: "CREATE TABLE t ();".into(),
            note: None,
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
            "# Conflicting versions",
            "`src/app.ts`: v2 by `a` (backend) and v3 by `b` (frontend)",
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

    #[test]
    fn a_directory_overrides_templates_and_changes_their_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("tasks")).expect("mkdir");
        std::fs::write(
            dir.path().join("tasks/api_structure.j2"),
            "{% extends \"base.j2\" %}{% block instructions %}Use Axum, not Express.{% endblock %}",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("tasks/write_helm_chart.j2"),
            "Chart for {{ description }}.",
        )
        .expect("write");
        let custom = Prompts::load(dir.path()).expect("loads");
        assert_eq!(
            custom.overridden(),
            ["tasks/api_structure.j2", "tasks/write_helm_chart.j2"]
        );
        let embedded = Prompts::embedded();
        let ours = custom
            .render(AgentKind::Backend, "api_structure", &context(vec![]))
            .expect("ours");
        let theirs = embedded
            .render(AgentKind::Backend, "api_structure", &context(vec![]))
            .expect("theirs");
        assert!(ours.user.contains("Use Axum, not Express."));
        assert!(!theirs.user.contains("Use Axum"));
        assert_ne!(ours.version, theirs.version);
        // Templates the directory does not hold are the embedded ones, at the same version.
        let auth = |p: &Prompts| {
            p.render(AgentKind::Backend, "authentication", &context(vec![]))
                .expect("auth")
        };
        assert_eq!(auth(&custom), auth(&embedded));
        let helm = custom
            .render(AgentKind::Devops, "write_helm_chart", &context(vec![]))
            .expect("helm");
        assert_eq!(helm.user, "Chart for A todo app.");

        std::fs::write(dir.path().join("tasks/broken.j2"), "{% if %}").expect("write");
        let error = Prompts::load(dir.path())
            .err()
            .expect("a broken template is refused");
        assert!(
            error
                .to_string()
                .starts_with("prompt template tasks/broken.j2 is invalid"),
            "{error}"
        );
    }
}
