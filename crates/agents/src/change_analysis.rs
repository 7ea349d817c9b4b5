//! A change request's analysis: which components, files and contract operations the change
//! touches, and what the design must gain or lose; one JSON object, checked and re-asked
//! like the requirements analysis.

use serde_json::Value;

use crate::prompts::PromptContext;
use crate::structured::{ask, first_json_object};
use crate::{AgentError, AgentOutcome, Agents, TaskInput};

/// Reads a change analysis: an object with `summary` (a string) and `files` (paths, at
/// least one), and optionally `components`, `operations` (lists) and `design` (text).
///
/// # Errors
///
/// What is missing or mis-shaped, with the shape wanted.
pub fn parse_change_analysis(answer: &str) -> Result<Value, String> {
    let value = first_json_object(answer)?;
    let mut problems = Vec::new();
    if !value.get("summary").is_some_and(Value::is_string) {
        problems.push("`summary` must be a string saying what the change does".to_owned());
    }
    match value.get("files").and_then(Value::as_array) {
        Some(files) if !files.is_empty() && files.iter().all(Value::is_string) => {}
        _ => problems.push(
            "`files` must list the paths of the files to change or add, e.g. [\"backend/db/schema.sql\"]".to_owned(),
        ),
    }
    for list in ["components", "operations"] {
        if value.get(list).is_some_and(|v| !v.is_array()) {
            problems.push(format!("`{list}` must be a JSON array"));
        }
    }
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(problems.join("; "))
    }
}

pub(crate) async fn run(agents: &Agents, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
    let mut context = PromptContext::of_task(input);
    context.omitted_files = input
        .context
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    let prompt = agents.render(input, &context)?;
    let (analysis, calls) = ask(
        agents,
        input,
        &prompt,
        "change analysis",
        parse_change_analysis,
    )
    .await?;
    let files = analysis["files"].as_array().map_or(0, Vec::len);
    Ok(AgentOutcome {
        summary: format!(
            "Change analysed: {} ({files} file(s) to change or add).",
            analysis["summary"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('.')
        ),
        change: Some(analysis),
        calls,
        prompt_version: prompt.version,
        ..AgentOutcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_analysis_names_its_files() {
        let good = parse_change_analysis(
            "Here:\n```json\n{\"summary\": \"Add a due date\", \"files\": [\"backend/db/schema.sql\"], \"operations\": []}\n```",
        )
        .expect("good");
        assert_eq!(good["files"][0], "backend/db/schema.sql");
        let error =
            parse_change_analysis("{\"files\": [], \"components\": \"backend\"}").unwrap_err();
        assert!(error.contains("`summary` must be a string"), "{error}");
        assert!(error.contains("`files` must list"), "{error}");
        assert!(
            error.contains("`components` must be a JSON array"),
            "{error}"
        );
    }
}
