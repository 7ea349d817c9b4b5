//! The requirements analysis: ask for the JSON breakdown, check it has every field with the
//! right shape, repair what can be repaired locally, and otherwise ask again with the exact
//! error, a bounded number of times.

use serde_json::Value;

use crate::prompts::PromptContext;
use crate::structured::{ask, first_json_object};
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
    let context = PromptContext::of_task(input);
    let prompt = agents.render(input, &context)?;
    let (analysis, calls) = ask(agents, input, &prompt, "analysis", parse_analysis).await?;
    Ok(AgentOutcome {
        summary: summarize(&analysis),
        requirements: Some(analysis),
        calls,
        prompt_version: prompt.version,
        ..AgentOutcome::default()
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
