//! The offline answer for code-writing tasks: a summary, then one fenced block per file,
//! each naming its path in the info string (`typescript path=backend/src/app.ts`).
//!
//! A task writes the files the design in its prompt plans for it, rendered from the
//! templates; a fix task writes again the files its findings name; a task with no design
//! (a custom workflow without a design step) writes the template files of its task type.

use guild_design::Design;

use crate::flaws;

/// `database_schema_c2` → `database_schema` (as `guild_core::change::base_key`, which this
/// crate does not depend on).
fn base_key(key: &str) -> &str {
    match key.rsplit_once("_c") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}
use crate::project::{Flags, Project};
use crate::subject::{Backend, Subject};

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
        Some("html") => "html",
        Some("css") => "css",
        Some("toml") => "toml",
        _ => "text",
    }
}

/// What the offline model knows of the call beyond its task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    /// The task's key and type.
    pub key: &'a str,
    pub kind: &'a str,
    /// The project's description.
    pub description: &'a str,
    /// The project asked for flaws ([`flaws::FLAW_MARKER`]).
    pub flaws: bool,
    /// The project asked for the flaw only running finds ([`flaws::RUNTIME_FLAW_MARKER`]).
    pub runtime_flaws: bool,
    /// A repair round: the conversation already holds an answer and its errors.
    pub repairing: bool,
    /// The system prompt and the user messages, one after the other.
    pub prompt: &'a str,
}

/// The markdown answer for a code-writing task.
pub(crate) fn answer(subject: &Subject, call: Call<'_>) -> String {
    let design = crate::prompt::design(call.prompt);
    let project = match &design {
        Some(design) => Project::of_design(subject, call.description, design),
        None => Project::new(subject, call.description, Flags::FULLSTACK, Vec::new()),
    };
    let mut files = files(&project, design.as_ref(), call);
    if files.is_empty() {
        // A task type of a custom workflow: write down the plan for it.
        files.push((
            format!("docs/{}.md", call.key),
            format!(
                "# {}\n\nPlanned for the {} application: {}.\n",
                call.kind.replace('_', " "),
                subject.entity,
                subject.features.join(", ")
            ),
        ));
    }
    let mut out = format!(
        "Implemented `{}` for the {} application in {} file(s): {}.\n",
        call.key,
        subject.entity,
        files.len(),
        files
            .iter()
            .map(|(path, _)| path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (path, content) in &files {
        // A file that holds fences itself (a README) gets a longer fence (CommonMark).
        let longest = content
            .split(|c| c != '`')
            .map(str::len)
            .max()
            .unwrap_or_default();
        let fence = "`".repeat(if longest >= 3 { longest + 1 } else { 3 });
        out.push_str(&format!(
            "\n{fence}{} path={path}\n{content}{fence}\n",
            language(path)
        ));
    }
    if let Some(findings) = findings(&project, design.as_ref(), call) {
        out.push_str(&format!(
            "\nFindings:\n\n```json findings\n{}\n```\n",
            serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))
                .expect("findings serialise")
        ));
    }
    out
}

/// The files the task writes, as `(path, text)`.
fn files(project: &Project, design: Option<&Design>, call: Call<'_>) -> Vec<(String, String)> {
    if call.kind == "fix_findings" {
        return flaws::files_to_fix(call.prompt)
            .iter()
            .filter_map(|path| project.entry_at(path))
            .map(|entry| project.file(entry))
            .collect();
    }
    let entries: Vec<_> = match design {
        Some(design) => design
            .files_of(base_key(call.key))
            .filter_map(|f| project.entry_at(&f.path))
            .collect(),
        None => project.entries().filter(|e| e.task == call.kind).collect(),
    };
    entries
        .into_iter()
        .map(|entry| {
            let (path, text) = project.file(entry);
            let text = if call.flaws && !call.repairing {
                flaws::flawed(call.kind, &path, &text)
            } else {
                text
            };
            let text = if call.runtime_flaws {
                flaws::runtime_flawed(call.kind, &path, &text)
            } else {
                text
            };
            (path, text)
        })
        .collect()
}

/// A review's structured findings: a low one on a planned file, and under the flaw
/// marker the planted secrets the prompt shows.
fn findings(
    project: &Project,
    design: Option<&Design>,
    call: Call<'_>,
) -> Option<Vec<serde_json::Value>> {
    let finding = |severity: &str, file: &str, line: Option<usize>, message: &str, fix: &str| {
        serde_json::json!({
            "severity": severity, "file": file, "line": line,
            "message": message, "suggested_fix": fix,
        })
    };
    let planned = |path: &str| design.is_none_or(|d| d.file(path).is_some());
    let context = &project.context;
    let auth = match Subject::new(call.description, None).backend {
        _ if context.stack == "py" => "backend/app/auth.py",
        Backend::TypeScript | Backend::Python => "backend/src/auth.ts",
    };
    match call.kind {
        "code_review" => {
            let store = context.fill("frontend/src/state/__entity__Store.ts");
            let file = if planned(&store) {
                store
            } else {
                "README.md".to_owned()
            };
            Some(vec![finding(
                "low",
                &file,
                None,
                "errors are shown as the server's messages",
                "map known statuses to friendlier messages",
            )])
        }
        "security_audit" => {
            let mut found: Vec<serde_json::Value> = flaws::planted_secrets(call.prompt)
                .into_iter()
                .map(|(path, line)| {
                    finding(
                        "high",
                        &path,
                        Some(line),
                        "the token signing secret is hard-coded",
                        "read it from the AUTH_SECRET environment variable",
                    )
                })
                .collect();
            if planned(auth) {
                found.push(finding(
                    "medium",
                    auth,
                    None,
                    "tokens cannot be revoked before they expire",
                    "keep a token version per user and check it",
                ));
            }
            Some(found)
        }
        _ => None,
    }
}
