//! The prompt library, embedded in the binary and rendered with minijinja. A prompt is
//! laid out so that providers' prompt caches hit: first what every task of a project
//! shares, byte for byte, then what is the task's own.
//!
//! - `system.j2`: the system prompt, the same for every task of every project: the rules
//!   of a finished task and notes on the shipped stacks;
//! - `shared.j2`: the start of the message, the same for every task of a project: its
//!   description, requirements analysis and design;
//! - `roles/<agent>.j2`: who the agent is, said at the start of the task's part;
//! - `base.j2` and `tasks/<type>.j2`: the task's part: its instructions, its files in the
//!   design's plan and what they import, findings, feedback, the work done upstream.
//!
//! A directory (`GUILD_PROMPTS_DIR`) may override any of them, or add templates for new
//! task types, by holding files of the same relative names. Each task template's version
//! is a hash of everything it renders from, recorded with every call and task so outcomes
//! can be compared across prompt versions.

use std::borrow::Cow;
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
    "system.j2",
    "shared.j2",
    "base.j2",
    "roles/analyst.j2",
    "roles/backend.j2",
    "roles/frontend.j2",
    "roles/devops.j2",
    "roles/reviewer.j2",
    "tasks/requirements_analysis.j2",
    "tasks/system_design.j2",
    "tasks/change_analysis.j2",
    "tasks/design_update.j2",
    "tasks/scaffold.j2",
    "tasks/database_schema.j2",
    "tasks/api_structure.j2",
    "tasks/authentication.j2",
    "tasks/business_logic.j2",
    "tasks/backend_tests.j2",
    "tasks/ui_components.j2",
    "tasks/page_layouts.j2",
    "tasks/state_management.j2",
    "tasks/api_integration.j2",
    "tasks/frontend_tests.j2",
    "tasks/environment_config.j2",
    "tasks/ci_cd_pipeline.j2",
    "tasks/monitoring_setup.j2",
    "tasks/readme.j2",
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
    /// The agent kind: `analyst`, `backend`, ... (picks `roles/<agent>.j2`).
    pub agent: &'a str,
    pub description: Cow<'a, str>,
    pub project_type: &'a str,
    pub technology_stack: Option<&'a str>,
    /// The requirements analysis, pretty-printed JSON.
    pub requirements: Option<String>,
    /// The project's design, compact JSON.
    pub design: Option<String>,
    /// The project's task graph as JSON (`[{key, kind, agent}]`), for the design steps.
    pub graph: Option<String>,
    /// The change request the task belongs to (revision 2 and later).
    pub change: Option<PromptChange>,
    pub task: PromptTask<'a>,
    /// The task's part of the design's file plan.
    pub plan: Option<PromptPlan>,
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

/// A change request, as prompts show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptChange {
    pub revision: i32,
    pub description: String,
    /// The description as a quote, `> ` before each line.
    pub quoted: String,
    /// Its analysis, pretty-printed JSON, once that step completed.
    pub analysis: Option<String>,
}

/// The task's files in the design, and what they rely on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PromptPlan {
    /// The files the task writes.
    pub files: Vec<PlanFile>,
    /// The planned files those import, with the exports they may use.
    pub imports: Vec<PlanFile>,
    /// The packages of the task's components, as `name@range`.
    pub packages: Vec<String>,
}

/// A planned file, as a prompt shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanFile {
    pub path: String,
    /// The task that writes it.
    pub task: String,
    pub purpose: String,
    pub exports: Vec<String>,
    pub operations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptUpstream<'a> {
    pub key: &'a str,
    pub agent: &'a str,
    pub summary: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptFile<'a> {
    /// The fence around it: three backticks, or more than the longest run in it.
    pub fence: String,
    pub path: &'a str,
    pub language: &'a str,
    pub content: std::borrow::Cow<'a, str>,
    /// Said before the file: it was trimmed, or it failed validation.
    pub note: Option<String>,
}

/// A code fence for `content`: three backticks, or one more than its longest run of them,
/// so a file holding fences (a README) stays one block (CommonMark's rule).
pub fn fence_for(content: &str) -> String {
    let longest = content
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or_default();
    "`".repeat(if longest >= 3 { longest + 1 } else { 3 })
}

/// A rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// The same for every task.
    pub system: String,
    /// The start of the first message, the same for every task of the project.
    pub shared: String,
    /// The rest of the first message: the task's own part.
    pub user: String,
    /// The template version: 12 hex digits of the hash of its sources.
    pub version: String,
}

impl RenderedPrompt {
    /// The first message: the shared part, then the task's.
    pub fn message(&self) -> String {
        format!("{}{}", self.shared, self.user)
    }

    /// The length of the whole prompt in characters.
    pub fn chars(&self) -> usize {
        [&self.system, &self.shared, &self.user]
            .iter()
            .map(|t| t.chars().count())
            .sum()
    }
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

    /// Renders the prompt of a task of type `kind` by an `agent`: the system prompt, the
    /// project's shared part and the task's part (the default template for a type
    /// without one).
    pub fn render(
        &self,
        agent: AgentKind,
        kind: &str,
        context: &PromptContext<'_>,
    ) -> Result<RenderedPrompt, minijinja::Error> {
        let task_name = self.task_template(kind);
        let role_name = format!("roles/{}.j2", agent.as_str());
        let value = minijinja::Value::from(minijinja::value::Serde(context));
        let render = |name: &str| self.env.get_template(name)?.render(&value);
        let system = render("system.j2")?;
        let shared = render("shared.j2")?;
        let user = render(&task_name)?;
        let hashed: String = [
            "system.j2",
            "shared.j2",
            role_name.as_str(),
            "base.j2",
            task_name.as_str(),
        ]
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
            shared,
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
            agent: "backend",
            description: "A todo app".into(),
            project_type: "fullstack",
            technology_stack: Some("Rust"),
            requirements: Some("{\"core_features\": []}".into()),
            design: Some("{\"contract\":{}}".into()),
            graph: None,
            change: None,
            task: PromptTask {
                key: "api_structure",
                kind: "api_structure",
                description: "Create API structure and routing",
            },
            plan: Some(PromptPlan {
                files: vec![PlanFile {
                    path: "backend/src/app.ts".into(),
                    task: "api_structure".into(),
                    purpose: "the application".into(),
                    exports: vec!["createApp".into()],
                    operations: vec!["GET /health".into()],
                }],
                imports: vec![PlanFile {
                    path: "backend/src/store.ts".into(),
                    task: "business_logic".into(),
                    purpose: "the store".into(),
                    exports: vec!["Store".into(), "MemoryStore".into()],
                    operations: Vec::new(),
                }],
                packages: vec!["express@^5.1.0".into()],
            }),
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
    fn task_prompts_carry_the_whole_context_shared_part_first() {
        let prompts = Prompts::embedded();
        let file = PromptFile {
            fence: fence_for("CREATE TABLE t ();"),
            path: "db/schema.sql",
            language: "sql",
            content: "CREATE TABLE t ();".into(),
            note: None,
        };
        let rendered = prompts
            .render(AgentKind::Backend, "api_structure", &context(vec![file]))
            .expect("renders");
        assert!(rendered.system.starts_with("You are one of Guild's agents"));
        for expected in [
            "A todo app",
            "Requested technology stack: Rust",
            "{\"core_features\": []}",
            "```json design\n{\"contract\":{}}\n```",
        ] {
            assert!(
                rendered.shared.contains(expected),
                "missing {expected:?} in the shared part\n{}",
                rendered.shared
            );
        }
        for expected in [
            "You act as the team's backend engineer",
            "# Your task: `api_structure`",
            "Create the API: the application factory",
            "# Your files",
            "- `backend/src/app.ts`: the application. Exports: createApp. Implements: GET /health",
            "- `backend/src/store.ts` (`business_logic`): Store, MemoryStore",
            "Packages of your component: express@^5.1.0.",
            "- `database_schema` (backend): Wrote the schema.",
            "```sql path=db/schema.sql\nCREATE TABLE t ();\n```",
            "Also written, not shown here: big.sql",
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
        assert_eq!(
            rendered.message(),
            format!("{}{}", rendered.shared, rendered.user)
        );
        assert_eq!(rendered.version.len(), 12);
    }

    #[test]
    fn every_template_renders_with_the_design_and_shares_its_prefix() {
        let prompts = Prompts::embedded();
        let mut shared = None;
        let mut system = None;
        for (name, _) in TEMPLATES.iter().filter(|(n, _)| n.starts_with("tasks/")) {
            let kind = name.trim_start_matches("tasks/").trim_end_matches(".j2");
            let mut context = context(Vec::new());
            context.task.kind = kind;
            context.task.key = kind;
            context.graph =
                Some("[{\"key\":\"scaffold\",\"kind\":\"scaffold\",\"agent\":\"devops\"}]".into());
            let agent = match kind {
                "requirements_analysis" | "system_design" | "change_analysis" | "design_update" => {
                    AgentKind::Analyst
                }
                "code_review" | "security_audit" | "performance_testing" => AgentKind::Reviewer,
                _ => AgentKind::Backend,
            };
            context.agent = agent.as_str();
            let rendered = prompts.render(agent, kind, &context).expect(kind);
            assert!(
                rendered.shared.contains("```json design\n"),
                "{kind}: no design"
            );
            assert!(
                rendered.user.contains(&format!("# Your task: `{kind}`")),
                "{kind}: no task\n{}",
                rendered.user
            );
            match kind {
                "change_analysis" => assert!(rendered.user.contains("`files`"), "{kind}"),
                "design_update" => assert!(rendered.user.contains("OpenAPI 3.1"), "{kind}"),
                "system_design" => {
                    assert!(
                        rendered
                            .user
                            .contains("```json tasks\n[{\"key\":\"scaffold\""),
                        "{kind}: no graph"
                    );
                    assert!(rendered.user.contains("OpenAPI 3.1"), "{kind}");
                }
                "requirements_analysis" => {
                    assert!(rendered.user.contains("`core_features`"), "{kind}");
                }
                _ => assert!(
                    rendered.user.contains("# Your files")
                        && rendered.user.contains("Exports: createApp"),
                    "{kind}: no plan\n{}",
                    rendered.user
                ),
            }
            // The part every task of the project shares is byte for byte the same.
            assert_eq!(
                shared.get_or_insert_with(|| rendered.shared.clone()),
                &rendered.shared,
                "{kind}"
            );
            assert_eq!(
                system.get_or_insert_with(|| rendered.system.clone()),
                &rendered.system,
                "{kind}"
            );
        }
    }

    #[test]
    fn fences_outgrow_the_fences_inside() {
        assert_eq!(fence_for("plain `code`"), "```");
        assert_eq!(fence_for("# R\n```sh\nnpm test\n```\n"), "````");
        assert_eq!(fence_for("`````"), "``````");
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
        assert_eq!(custom.system, a.system);
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
