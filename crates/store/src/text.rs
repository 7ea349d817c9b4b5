//! Making model output storable. PostgreSQL's `text` cannot hold NUL, and `jsonb` refuses
//! the escape `\u0000`; a model can write either (an analysis with `"\u0000"` in a string
//! failed its settlement until the lease expired, three times). Everything that reaches a
//! text or JSON column from a model passes through here first.

use std::borrow::Cow;

use serde_json::Value;

/// `text` without NUL characters.
pub(crate) fn storable_str(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', ""))
    } else {
        Cow::Borrowed(text)
    }
}

/// `value` with NUL removed from every string and key.
pub(crate) fn storable(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(storable_str(text).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(storable).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (storable_str(key).into_owned(), storable(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_removed_from_strings_and_keys_at_any_depth() {
        let dirty = json!({"a\u{0}b": ["x\u{0}", {"k": "v\u{0}w"}], "n": 1, "ok": "fine"});
        assert_eq!(
            storable(&dirty),
            json!({"ab": ["x", {"k": "vw"}], "n": 1, "ok": "fine"})
        );
        assert!(matches!(storable_str("clean"), Cow::Borrowed(_)));
        assert_eq!(storable_str("a\u{0}"), "a");
    }
}
