//! Example values derived from JSON Schemas: what a smoke test sends.

use serde_json::{Map, Value, json};

/// How deep nested schemas are followed.
const MAX_DEPTH: usize = 8;

/// A value valid against `schema` where it can tell (types, `const`, `enum`, `example`,
/// `default`, formats, lengths, bounds), with `seed` making strings unique across calls
/// (an email that is not yet registered).
pub fn example(schema: &Value, seed: u32) -> Value {
    example_at(schema, seed, 0)
}

fn example_at(schema: &Value, seed: u32, depth: usize) -> Value {
    let Some(object) = schema.as_object() else {
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(value) = object.get("const") {
        return value.clone();
    }
    if let Some(value) = object
        .get("enum")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
    {
        return value.clone();
    }
    if let Some(value) = object
        .get("examples")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
        .or_else(|| object.get("example"))
    {
        return value.clone();
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = object.get(combinator).and_then(Value::as_array) {
            let chosen = options
                .iter()
                .find(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                .or_else(|| options.first());
            if let Some(chosen) = chosen {
                return example_at(chosen, seed, depth + 1);
            }
        }
    }
    if let Some(parts) = object.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in parts {
            if let Value::Object(fields) = example_at(part, seed, depth + 1) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    match type_of(object) {
        Some("object") => {
            let properties = object.get("properties").and_then(Value::as_object);
            let fields = properties
                .into_iter()
                .flatten()
                .map(|(name, property)| {
                    (name.clone(), property_example(name, property, seed, depth))
                })
                .collect();
            Value::Object(fields)
        }
        Some("array") => {
            let item = object
                .get("items")
                .map_or(Value::Null, |items| example_at(items, seed, depth + 1));
            Value::Array(vec![item])
        }
        Some("string") => string_example(object, None, seed),
        Some("integer") => json!(bound(object, 1.0) as i64),
        Some("number") => json!(bound(object, 1.5)),
        Some("boolean") => json!(true),
        Some("null") => Value::Null,
        _ if object.contains_key("properties") => example_at(
            &Value::Object({
                let mut typed = object.clone();
                typed.insert("type".into(), json!("object"));
                typed
            }),
            seed,
            depth,
        ),
        _ => Value::Null,
    }
}

/// A property's example: as its schema says, a string named like what it holds when the
/// schema says no more (`email`, `password`).
fn property_example(name: &str, schema: &Value, seed: u32, depth: usize) -> Value {
    match schema.as_object() {
        Some(object) if type_of(object) == Some("string") && !has_value_hint(object) => {
            string_example(object, Some(name), seed)
        }
        _ => example_at(schema, seed, depth + 1),
    }
}

fn has_value_hint(object: &Map<String, Value>) -> bool {
    ["const", "enum", "example", "examples"]
        .iter()
        .any(|k| object.contains_key(*k))
}

/// The schema's type: its `type`, or the first non-null one of a list (`["string", "null"]`).
fn type_of(object: &Map<String, Value>) -> Option<&str> {
    match object.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or(Some("null")),
        _ => None,
    }
}

/// A number within `minimum`/`maximum` (and their exclusive forms), `fallback` if free.
fn bound(object: &Map<String, Value>, fallback: f64) -> f64 {
    let get = |k: &str| object.get(k).and_then(Value::as_f64);
    let low = get("minimum").or_else(|| get("exclusiveMinimum").map(|m| m + 1.0));
    let high = get("maximum").or_else(|| get("exclusiveMaximum").map(|m| m - 1.0));
    match (low, high) {
        (Some(low), _) if fallback < low => low,
        (_, Some(high)) if fallback > high => high,
        _ => fallback,
    }
}

fn string_example(object: &Map<String, Value>, name: Option<&str>, seed: u32) -> Value {
    let format = object
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = name.unwrap_or_default().to_lowercase();
    let text = match format {
        "email" => format!("smoke{seed}@example.com"),
        "date" => "2030-01-15".to_owned(),
        "date-time" => "2030-01-15T10:00:00Z".to_owned(),
        "time" => "10:00:00".to_owned(),
        "uuid" => format!("00000000-0000-4000-8000-{seed:012}"),
        "uri" | "url" => "https://example.com/smoke".to_owned(),
        _ if name.contains("email") => format!("smoke{seed}@example.com"),
        _ if name.contains("password") => format!("smoke-password-{seed}"),
        _ => format!("smoke {name} {seed}").replace("  ", " "),
    };
    let min = object.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    let max = object
        .get("maxLength")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let mut text: String = text
        .chars()
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .collect();
    while (text.chars().count() as u64) < min {
        text.push('x');
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "required": ["email", "password"],
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "password": {"type": "string", "minLength": 8, "maxLength": 128},
                "title": {"type": "string", "minLength": 1, "maxLength": 5},
                "completed": {"type": "boolean"},
                "due_date": {"type": ["string", "null"], "format": "date"},
                "servings": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 1}]},
                "status": {"enum": ["open", "done"]},
                "tags": {"type": "array", "items": {"type": "string"}}
            }
        });
        let value = example(&schema, 7);
        assert_eq!(value["email"], "smoke7@example.com");
        assert!(value["password"].as_str().expect("password").len() >= 8);
        assert_eq!(value["title"].as_str().map(str::len), Some(5));
        assert_eq!(value["completed"], true);
        assert_eq!(value["due_date"], "2030-01-15");
        assert_eq!(value["servings"], 1);
        assert_eq!(value["status"], "open");
        assert_eq!(value["tags"], json!(["smoke 7"]));
        let validator = jsonschema::validator_for(&schema).expect("a schema");
        assert!(validator.is_valid(&value), "{value}");
    }

    #[test]
    fn bounds_and_combinations_are_respected() {
        assert_eq!(example(&json!({"type": "integer", "minimum": 10}), 1), 10);
        assert_eq!(example(&json!({"type": "integer", "maximum": 0}), 1), 0);
        assert_eq!(
            example(
                &json!({"allOf": [{"properties": {"a": {"const": 1}}}, {"properties": {"b": {"type": "boolean"}}}]}),
                1
            ),
            json!({"a": 1, "b": true})
        );
        assert_eq!(
            example(&json!({"example": {"x": 1}, "type": "object"}), 1),
            json!({"x": 1})
        );
    }
}
