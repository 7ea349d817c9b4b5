//! The requirements analysis: ask for the JSON breakdown, check it has every field with the
//! right shape, repair what can be repaired locally, and otherwise ask again with the exact
//! error, a bounded number of times.

use guild_llm::Message;
use serde_json::Value;

use crate::prompts::{PromptContext, PromptTask};
use crate::{AgentError, AgentOutcome, Agents, TaskInput};

/// The JSON shape a field must have, after [`normalise`] made what it can of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A list; a lone string or object becomes a one-item list.
    List,
    /// An object, a list or a text (models often describe these in prose).
    Described,
}

/// The analysis fields of the reference design.
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
        "core_features"
        | "api_endpoints"
        | "frontend_components"
        | "security_considerations"
        | "deployment_considerations" => Shape::List,
        _ => Shape::Described,
    }
}

/// What a field looks like, for a re-ask that names the exact shape.
fn example(field: &str) -> &'static str {
    match field {
        "recommended_technology_stack" => {
            r#"{"backend": "Node.js + Express", "frontend": "React", "database": "PostgreSQL"}"#
        }
        "core_features" => r#"["user accounts", "shared lists"]"#,
        "api_endpoints" => {
            r#"[{"method": "GET", "path": "/api/todos", "description": "list todos"}]"#
        }
        "frontend_components" => r#"[{"name": "TodoList", "purpose": "shows the todos"}]"#,
        "database_schema" => {
            r#"{"tables": [{"name": "todos", "columns": ["id serial primary key", "title text"]}]}"#
        }
        "security_considerations" | "deployment_considerations" => {
            r#"["hash passwords", "validate input"]"#
        }
        _ => r#""a short description" (or an object)"#,
    }
}

/// Parses an answer into a valid analysis: the first complete JSON object (a fenced
/// `json` block first, else the first balanced `{ … }` outside strings, with trailing
/// commas repaired), its descriptive fields normalised to their shapes.
pub fn parse_analysis(answer: &str) -> Result<Value, String> {
    let mut value = first_json_object(answer)?;
    normalise(&mut value)?;
    Ok(value)
}

/// The first JSON object of an answer: from a fenced `json` block when one parses, else
/// from the first `{` that starts a balanced object that parses.
fn first_json_object(answer: &str) -> Result<Value, String> {
    let parse = |text: &str| -> Option<Value> {
        serde_json::from_str::<Value>(text)
            .or_else(|_| serde_json::from_str(&remove_trailing_commas(text)))
            .ok()
            .filter(Value::is_object)
    };
    let fenced = crate::blocks::parse_answer(answer)
        .blocks
        .into_iter()
        .filter(|b| {
            b.language
                .as_deref()
                .is_none_or(|l| l.eq_ignore_ascii_case("json"))
        });
    for block in fenced {
        if let Some(value) = parse(block.content.trim()) {
            return Ok(value);
        }
    }
    let mut first_error = None;
    for (start, _) in answer.match_indices('{') {
        let Some(end) = balanced_end(&answer[start..]) else {
            continue;
        };
        let candidate = &answer[start..start + end];
        if let Some(value) = parse(candidate) {
            return Ok(value);
        }
        if first_error.is_none() {
            first_error = serde_json::from_str::<Value>(candidate).err();
        }
    }
    Err(match first_error {
        Some(error) => format!("not valid JSON: {error}"),
        None => "not valid JSON: the answer holds no complete JSON object".to_owned(),
    })
}

/// The length of the balanced `{ … }` that `text` starts with, braces inside strings
/// not counted; `None` when it never closes.
fn balanced_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Brings each field to its shape where the meaning is clear (a lone item where a list is
/// expected becomes a one-item list), and names every field it cannot use, with an
/// example of what it should be. Only `core_features` must say something: later steps
/// plan from it.
fn normalise(value: &mut Value) -> Result<(), String> {
    let Some(object) = value.as_object_mut() else {
        return Err("the answer must be one JSON object".into());
    };
    let mut problems = Vec::new();
    for field in FIELDS {
        let wanted = shape(field);
        let Some(v) = object.get_mut(field).filter(|v| !v.is_null()) else {
            problems.push(shape_problem(field, "is missing: give it as"));
            continue;
        };
        let usable = match wanted {
            Shape::List if v.is_string() || v.is_object() => {
                *v = Value::Array(vec![v.take()]);
                true
            }
            Shape::List => v.is_array(),
            Shape::Described => v.is_object() || v.is_array() || v.is_string(),
        };
        if !usable {
            problems.push(shape_problem(field, "must be"));
        }
    }
    if object
        .get("core_features")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        problems.push(format!(
            "`core_features` must list at least one feature, e.g. \"core_features\": {}",
            example("core_features")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// "`field` <verb> <its shape>, e.g. <an example>": what a re-ask says of a field.
fn shape_problem(field: &str, verb: &str) -> String {
    format!(
        "`{field}` {verb} {}, e.g. \"{field}\": {}",
        describe(shape(field)),
        example(field)
    )
}

fn describe(shape: Shape) -> &'static str {
    match shape {
        Shape::List => "a JSON array",
        Shape::Described => "a JSON object, array or string",
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
        description: std::borrow::Cow::Borrowed(&input.context.description),
        project_type: input.context.project_type.as_str(),
        technology_stack: input.context.technology_stack.as_deref(),
        requirements: None,
        task: PromptTask {
            key: &input.key,
            kind: &input.kind,
            description: &input.task_description,
        },
        feedback: input.context.feedback.as_deref(),
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
    let mut last_answer = String::new();
    for _ in 0..attempts {
        let request = agents.request(input, prompt.system.clone(), messages.clone(), true);
        let response = match agents
            .call(input, &request, &prompt.version, &mut calls)
            .await
        {
            Ok(response) => response,
            Err(error) => return Err(AgentError::call(error, calls)),
        };
        let parsed = parse_analysis(&response.content);
        match parsed {
            Ok(analysis) if !response.stop_reason.is_cut() => {
                return Ok(AgentOutcome {
                    summary: summarize(&analysis),
                    requirements: Some(analysis),
                    calls,
                    prompt_version: prompt.version,
                    ..AgentOutcome::default()
                });
            }
            // A cut answer that parses is a shortened one: asked again all the same.
            Ok(_) | Err(_) => {
                let error = match parsed {
                    _ if response.stop_reason.is_cut() => format!(
                        "the answer was cut off at the length limit ({} tokens) before the object ended",
                        request.max_tokens
                    ),
                    Err(error) => error,
                    Ok(_) => unreachable!("a complete valid answer returned above"),
                };
                let ask = if response.stop_reason.is_cut() {
                    "Answer again with the whole JSON object, more concisely: shorter descriptions and fewer items."
                } else {
                    "Answer again with only the corrected JSON object."
                };
                messages.push(Message::assistant(response.content.clone()));
                messages.push(Message::user(format!(
                    "That answer cannot be used: {error}. {ask}"
                )));
                last_error = error;
                last_answer = response.content;
            }
        }
    }
    Err(AgentError::unusable(
        format!("the analysis was not valid after {attempts} attempts: {last_error}"),
        calls,
        last_answer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        let mut value = json!({});
        for field in FIELDS {
            value[field] = match shape(field) {
                Shape::List => json!([{"name": "x"}]),
                Shape::Described => json!({"k": "v"}),
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
    fn the_first_json_value_is_taken_whatever_prose_follows() {
        let object = valid().to_string();
        // Prose, a fenced block, then prose with braces (a path template): the field report.
        let fenced = format!(
            "Here is the analysis.\n\n```json\n{object}\n```\n\nThe API exposes `/api/todos/{{id}}` for one todo."
        );
        assert_eq!(parse_analysis(&fenced), Ok(valid()));
        // No fence at all, and braces in the prose before and after.
        let bare = format!("Routes like {{id}} matter. {object} Then `/api/todos/{{id}}`.");
        assert_eq!(parse_analysis(&bare), Ok(valid()));
        // Braces inside strings do not end the object.
        let mut tricky = valid();
        tricky["testing_strategy"] = json!("cover /api/todos/{id} and '}' in names");
        assert_eq!(
            parse_analysis(&format!("{tricky} and {{more}}")),
            Ok(tricky.clone())
        );
    }

    #[test]
    fn descriptive_fields_in_other_shapes_are_accepted() {
        let mut prose = valid();
        prose["deployment_considerations"] = json!("container image, managed PostgreSQL");
        prose["api_endpoints"] = json!({"method": "GET", "path": "/api/todos"});
        prose["technical_architecture"] = json!(["REST API", "SPA"]);
        let parsed = parse_analysis(&prose.to_string()).expect("usable");
        assert_eq!(
            parsed["deployment_considerations"],
            json!(["container image, managed PostgreSQL"])
        );
        assert_eq!(
            parsed["api_endpoints"],
            json!([{"method": "GET", "path": "/api/todos"}])
        );
        assert_eq!(parsed["technical_architecture"], json!(["REST API", "SPA"]));
    }

    #[test]
    fn missing_and_unusable_fields_are_named_with_an_example() {
        let mut value = valid();
        value
            .as_object_mut()
            .expect("object")
            .remove("api_endpoints");
        value["core_features"] = json!(42);
        value["security_considerations"] = json!([]);
        let error = parse_analysis(&value.to_string()).unwrap_err();
        assert_eq!(
            error,
            "`core_features` must be a JSON array, e.g. \"core_features\": [\"user accounts\", \"shared lists\"]; \
             `api_endpoints` is missing: give it as a JSON array, e.g. \"api_endpoints\": [{\"method\": \"GET\", \"path\": \"/api/todos\", \"description\": \"list todos\"}]"
        );
        value["core_features"] = json!([]);
        value["api_endpoints"] = json!([]);
        assert!(
            parse_analysis(&value.to_string())
                .unwrap_err()
                .starts_with("`core_features` must list at least one feature")
        );
        assert_eq!(
            parse_analysis("no json here").unwrap_err(),
            "not valid JSON: the answer holds no complete JSON object"
        );
        assert!(
            parse_analysis("{\"core_features\": [1, }")
                .unwrap_err()
                .starts_with("not valid JSON")
        );
    }
}
