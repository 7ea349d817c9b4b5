//! The requirements analysis: ask for the JSON breakdown, check it has every field with the
//! right shape, repair what can be repaired locally, and otherwise ask again with the exact
//! error, a bounded number of times.

use guild_llm::Message;
use serde_json::Value;

use crate::prompts::{PromptContext, PromptTask};
use crate::{AgentError, AgentOutcome, Agents, TaskInput};

/// The JSON shape a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object,
    Array,
    /// An object or a string (models often describe these in prose).
    ObjectOrText,
    /// An array or an object.
    Collection,
}

/// The analysis fields of the reference design, and their shapes.
pub const FIELDS: [&str; 10] = [
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
];

fn shape(field: &str) -> Shape {
    match field {
        "recommended_technology_stack" | "technical_architecture" | "testing_strategy" => {
            Shape::ObjectOrText
        }
        "database_schema" => Shape::Collection,
        "performance_requirements" => Shape::Collection,
        "core_features"
        | "api_endpoints"
        | "frontend_components"
        | "security_considerations"
        | "deployment_considerations" => Shape::Array,
        _ => Shape::Object,
    }
}

/// Parses an answer into a valid analysis, repairing code fences, text around the object
/// and trailing commas.
pub fn parse_analysis(answer: &str) -> Result<Value, String> {
    let candidate = strip_to_object(answer);
    let value: Value = match serde_json::from_str(candidate) {
        Ok(value) => value,
        Err(first_error) => serde_json::from_str(&remove_trailing_commas(candidate))
            .map_err(|_| format!("not valid JSON: {first_error}"))?,
    };
    validate(&value)?;
    Ok(value)
}

fn validate(value: &Value) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err("the answer must be one JSON object".into());
    };
    let mut problems = Vec::new();
    for field in FIELDS {
        let ok = match (object.get(field), shape(field)) {
            (None, _) => {
                problems.push(format!("`{field}` is missing"));
                continue;
            }
            (Some(v), Shape::Object) => v.is_object(),
            (Some(v), Shape::Array) => v.is_array(),
            (Some(v), Shape::ObjectOrText) => v.is_object() || v.is_string(),
            (Some(v), Shape::Collection) => v.is_object() || v.is_array(),
        };
        if !ok {
            problems.push(format!("`{field}` must be {:?}", shape(field)).to_lowercase());
        }
    }
    if object
        .get("core_features")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        problems.push("`core_features` must not be empty".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The outermost `{ … }` of the answer, dropping fences and prose around it.
fn strip_to_object(answer: &str) -> &str {
    match (answer.find('{'), answer.rfind('}')) {
        (Some(start), Some(end)) if start < end => &answer[start..=end],
        _ => answer.trim(),
    }
}

/// Removes commas directly before `}` or `]`, outside strings.
fn remove_trailing_commas(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|n| !n.is_whitespace());
            if matches!(next, Some('}' | ']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// One line about the analysis, for the task's summary.
fn summarize(analysis: &Value) -> String {
    let count = |field: &str| {
        analysis
            .get(field)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    };
    let stack = match analysis.get("recommended_technology_stack") {
        Some(Value::Object(stack)) => ["backend", "frontend", "database"]
            .iter()
            .filter_map(|k| stack.get(*k).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    };
    format!(
        "Requirements analysed: {} core features, {} API endpoints, {} frontend components; stack: {stack}.",
        count("core_features"),
        count("api_endpoints"),
        count("frontend_components"),
    )
}

pub(crate) async fn run(agents: &Agents, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
    let context = PromptContext {
        description: &input.description,
        project_type: input.project_type.as_str(),
        technology_stack: input.technology_stack.as_deref(),
        requirements: None,
        task: PromptTask {
            key: &input.key,
            kind: &input.kind,
            description: &input.task_description,
        },
        feedback: input.feedback.as_deref(),
        upstream: Vec::new(),
        files: Vec::new(),
        omitted_files: Vec::new(),
        findings: Vec::new(),
        conflicts: Vec::new(),
    };
    let prompt = agents.render(input, &context)?;

    let mut calls = Vec::new();
    let mut messages = vec![Message::user(prompt.user)];
    let attempts = agents.settings.analysis_attempts.max(1);
    let mut last_error = String::new();
    let mut last_answer = None;
    for _ in 0..attempts {
        let request = agents.request(input, prompt.system.clone(), messages.clone(), true);
        let response = match agents
            .call(input, &request, &prompt.version, &mut calls)
            .await
        {
            Ok(response) => response,
            Err(error) => return Err(AgentError::call(error, calls)),
        };
        match parse_analysis(&response.content) {
            Ok(analysis) => {
                return Ok(AgentOutcome {
                    summary: summarize(&analysis),
                    files: Vec::new(),
                    rejected: Vec::new(),
                    requirements: Some(analysis),
                    calls,
                    prompt_version: prompt.version,
                    findings: Vec::new(),
                    repair_rounds: 0,
                    unresolved: Vec::new(),
                });
            }
            Err(error) => {
                messages.push(Message::assistant(response.content.clone()));
                messages.push(Message::user(format!(
                    "That answer cannot be used: {error}. Answer again with only the corrected JSON object."
                )));
                last_error = error;
                last_answer = Some(response.content);
            }
        }
    }
    Err(AgentError {
        message: format!("the analysis was not valid after {attempts} attempts: {last_error}"),
        retryable: true,
        calls,
        raw_answer: last_answer,
        stops_project: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        let mut value = json!({});
        for field in FIELDS {
            value[field] = match shape(field) {
                Shape::Array | Shape::Collection => json!([{"name": "x"}]),
                _ => json!({"k": "v"}),
            };
        }
        value
    }

    #[test]
    fn fenced_answers_with_trailing_commas_are_repaired() {
        let text = serde_json::to_string_pretty(&valid()).expect("json");
        let broken = format!(
            "Here you go:\n```json\n{}\n```",
            text.replacen("]", ",]", 1).replacen("}\n}", "},\n}", 1)
        );
        assert_eq!(parse_analysis(&broken), Ok(valid()));
    }

    #[test]
    fn commas_inside_strings_are_kept() {
        assert_eq!(
            remove_trailing_commas(r#"{"a": "x,}", "b": [1,],}"#),
            r#"{"a": "x,}", "b": [1]}"#
        );
    }

    #[test]
    fn missing_and_misshapen_fields_are_named() {
        let mut value = valid();
        value
            .as_object_mut()
            .expect("object")
            .remove("api_endpoints");
        value["core_features"] = json!("many");
        let error = parse_analysis(&value.to_string()).unwrap_err();
        assert_eq!(
            error,
            "`core_features` must be array; `api_endpoints` is missing"
        );
        assert_eq!(
            parse_analysis("no json here")
                .unwrap_err()
                .split(':')
                .next(),
            Some("not valid JSON")
        );
    }
}
