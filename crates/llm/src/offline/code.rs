//! The offline answer for code-writing tasks: a summary, then one fenced block per file,
//! each naming its path in the info string (`ts path=backend/src/app.ts`).
//!
//! The files are real templates under `crates/llm/offline/`, stored at the path they are
//! written to, with `__entity__`-style placeholders filled from the project's subject.

use super::flaws;
use super::subject::{Backend, Subject};

/// One file the offline provider writes: for which stacks, where, and from what template.
struct Template {
    kind: &'static str,
    /// `None`: for every backend.
    backend: Option<Backend>,
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($kind:literal, $backend:expr, $dir:literal, $path:literal) => {
        Template {
            kind: $kind,
            backend: $backend,
            path: $path,
            text: include_str!(concat!("../../offline/", $dir, "/", $path)),
        }
    };
}

const TS: Option<Backend> = Some(Backend::TypeScript);
const PY: Option<Backend> = Some(Backend::Python);
const ANY: Option<Backend> = None;

#[rustfmt::skip]
const TEMPLATES: &[Template] = &[
    template!("database_schema", ANY, "common", "db/schema.sql"),
    template!("database_schema", TS, "ts", "backend/src/models.ts"),
    template!("database_schema", PY, "py", "backend/app/models.py"),
    template!("api_structure", TS, "ts", "backend/package.json"),
    template!("api_structure", TS, "ts", "backend/src/app.ts"),
    template!("api_structure", TS, "ts", "backend/src/routes/__entities__.ts"),
    template!("api_structure", PY, "py", "backend/requirements.txt"),
    template!("api_structure", PY, "py", "backend/app/main.py"),
    template!("authentication", TS, "ts", "backend/src/auth.ts"),
    template!("authentication", PY, "py", "backend/app/auth.py"),
    template!("business_logic", TS, "ts", "backend/src/db.ts"),
    template!("business_logic", TS, "ts", "backend/src/services/__entity__Service.ts"),
    template!("business_logic", PY, "py", "backend/app/db.py"),
    template!("business_logic", PY, "py", "backend/app/services.py"),
    template!("ui_components", ANY, "ts", "frontend/package.json"),
    template!("ui_components", ANY, "ts", "frontend/src/components/Button.tsx"),
    template!("ui_components", ANY, "ts", "frontend/src/components/__Entity__List.tsx"),
    template!("page_layouts", ANY, "ts", "frontend/src/pages/HomePage.tsx"),
    template!("page_layouts", ANY, "ts", "frontend/src/App.tsx"),
    template!("state_management", ANY, "ts", "frontend/src/state/__entity__Store.ts"),
    template!("api_integration", ANY, "ts", "frontend/src/api/client.ts"),
    template!("environment_config", ANY, "common", ".env.example"),
    template!("environment_config", ANY, "common", "docker-compose.yml"),
    template!("ci_cd_pipeline", ANY, "common", ".github/workflows/ci.yml"),
    template!("monitoring_setup", ANY, "common", "monitoring/prometheus.yml"),
    template!("monitoring_setup", ANY, "common", "monitoring/alerts.yml"),
    template!("monitoring_setup", TS, "ts", "backend/src/logger.ts"),
    template!("code_review", ANY, "common", "docs/reviews/code-review.md"),
    template!("security_audit", ANY, "common", "docs/reviews/security-audit.md"),
    template!("performance_testing", ANY, "common", "tests/performance/load-test.js"),
];

/// The fence language for a path.
fn language(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("sql") => "sql",
        Some("ts") => "typescript",
        Some("tsx") => "tsx",
        Some("js") => "javascript",
        Some("py") => "python",
        Some("json") => "json",
        Some("yml" | "yaml") => "yaml",
        Some("md") => "markdown",
        Some("example") => "dotenv",
        _ => "text",
    }
}

/// What the offline model knows of the call beyond its task type.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Call<'a> {
    /// The project asked for flaws ([`flaws::FLAW_MARKER`]).
    pub flaws: bool,
    /// A repair round: the conversation already holds an answer and its errors.
    pub repairing: bool,
    /// The user messages, one after the other.
    pub prompt: &'a str,
}

/// The templates of the stack that `wanted` (task type, filled path) picks, filled.
fn filled(subject: &Subject, wanted: impl Fn(&'static str, &str) -> bool) -> Vec<(String, String)> {
    TEMPLATES
        .iter()
        .filter(|t| t.backend.is_none_or(|b| b == subject.backend))
        .filter_map(|t| {
            let path = subject.fill(t.path);
            wanted(t.kind, &path).then(|| {
                let text = subject.fill(t.text);
                (path, text)
            })
        })
        .collect()
}

/// The markdown answer for task type `kind`.
pub(super) fn answer(kind: &str, subject: &Subject, call: Call<'_>) -> String {
    let files: Vec<(String, String)> = if kind == guild_fix_kind() {
        let to_fix = flaws::files_to_fix(call.prompt);
        filled(subject, |_, path| to_fix.iter().any(|p| p == path))
    } else {
        filled(subject, |k, _| k == kind)
            .into_iter()
            .map(|(path, text)| {
                let text = if call.flaws && !call.repairing {
                    flaws::flawed(kind, &path, &text)
                } else {
                    text
                };
                (path, text)
            })
            .collect()
    };
    let files = if files.is_empty() {
        // A task type of a custom workflow: write down the plan for it.
        vec![(
            format!("docs/{kind}.md"),
            format!(
                "# {}\n\nPlanned for the {} application: {}.\n",
                kind.replace('_', " "),
                subject.entity,
                subject.features.join(", ")
            ),
        )]
    } else {
        files
    };

    let mut out = format!(
        "Implemented `{kind}` for the {} application in {} file(s): {}.\n",
        subject.entity,
        files.len(),
        files
            .iter()
            .map(|(path, _)| path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (path, content) in &files {
        out.push_str(&format!(
            "\n```{} path={path}\n{content}```\n",
            language(path)
        ));
    }
    if let Some(findings) = findings(kind, subject, call) {
        out.push_str(&format!(
            "\nFindings:\n\n```json findings\n{}\n```\n",
            serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))
                .expect("findings serialise")
        ));
    }
    out
}

/// The fix tasks' type (as `guild_core::FIX_FINDINGS`, which this crate does not depend on).
fn guild_fix_kind() -> &'static str {
    "fix_findings"
}

/// A review's structured findings: those its report's table lists, and under the flaw
/// marker the planted secrets the prompt shows.
fn findings(kind: &str, subject: &Subject, call: Call<'_>) -> Option<Vec<serde_json::Value>> {
    let finding = |severity: &str, file: String, line: Option<usize>, message: &str, fix: &str| {
        serde_json::json!({
            "severity": severity, "file": file, "line": line,
            "message": message, "suggested_fix": fix,
        })
    };
    let auth = match subject.backend {
        Backend::TypeScript => "backend/src/auth.ts",
        Backend::Python => "backend/app/auth.py",
    };
    match kind {
        "code_review" => Some(vec![finding(
            "low",
            subject.fill("frontend/src/state/__entity__Store.ts"),
            None,
            "errors are shown as raw strings",
            "map known statuses to messages",
        )]),
        "security_audit" => {
            let mut found: Vec<serde_json::Value> = flaws::planted_secrets(call.prompt)
                .into_iter()
                .map(|(path, line)| {
                    finding(
                        "high",
                        path,
                        Some(line),
                        "the token signing secret is hard-coded",
                        "read it from the AUTH_SECRET environment variable",
                    )
                })
                .collect();
            found.push(finding(
                "medium",
                auth.to_owned(),
                None,
                "tokens never expire",
                "add an `exp` claim and reject old tokens",
            ));
            Some(found)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_task_type_writes_files_for_both_backends() {
        let kinds = [
            "database_schema",
            "api_structure",
            "authentication",
            "business_logic",
            "ui_components",
            "page_layouts",
            "state_management",
            "api_integration",
            "environment_config",
            "ci_cd_pipeline",
            "monitoring_setup",
            "code_review",
            "security_audit",
            "performance_testing",
        ];
        for description in ["A todo app", "A todo app in Python"] {
            let subject = Subject::new(description, None);
            for kind in kinds {
                let answer = answer(kind, &subject, Call::default());
                assert!(answer.contains(" path="), "{kind}");
                assert!(!answer.contains("__entit"), "{kind}: unfilled placeholder");
                assert!(!answer.contains("__Entit"), "{kind}: unfilled placeholder");
            }
        }
    }

    #[test]
    fn placeholders_are_filled_in_paths_and_content() {
        let answer = answer(
            "business_logic",
            &Subject::new("A recipe box", None),
            Call::default(),
        );
        assert!(answer.contains("path=backend/src/services/recipeService.ts"));
        assert!(answer.contains("FROM recipes t"));
    }
}
