//! The contract: an OpenAPI 3.1 document, parsed with the `oas3` crate and read as the
//! list of operations the backend serves.

use serde_json::Value;

use crate::Design;

/// One operation of the contract, with its schemas resolved (`$ref`s into
/// `#/components` inlined), ready to derive example requests from and to check answers
/// against.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Upper case: `GET`, `POST`, ...
    pub method: String,
    /// The path template, e.g. `/api/todos/{id}`.
    pub path: String,
    pub operation_id: Option<String>,
    pub summary: Option<String>,
    /// It needs credentials (its own `security`, else the document's, is not empty).
    pub secured: bool,
    /// The JSON schema of its request body, when it takes one.
    pub request: Option<Value>,
    /// Its documented answers, by status code (`200`, `4XX`, `default`).
    pub responses: Vec<Response>,
}

/// A documented answer of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// `201`, `4XX` or `default`.
    pub status: String,
    /// The media type of its body (`application/json`, `text/plain`), when it has one.
    pub media_type: Option<String>,
    /// The JSON schema of its body, when documented.
    pub schema: Option<Value>,
}

impl Operation {
    /// `METHOD /path`, as file plans name operations.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether `status` is one of its documented answers (`4XX` and `default` count).
    pub fn documents(&self, status: u16) -> Option<&Response> {
        let exact = status.to_string();
        let class = format!("{}XX", status / 100);
        self.responses
            .iter()
            .find(|r| r.status == exact)
            .or_else(|| {
                self.responses
                    .iter()
                    .find(|r| r.status.eq_ignore_ascii_case(&class))
            })
            .or_else(|| self.responses.iter().find(|r| r.status == "default"))
    }
}

/// How deep `$ref`s are followed before a schema is cut (a recursive schema).
const MAX_REF_DEPTH: usize = 16;

impl Design {
    /// The contract's operations, by path, then in the order GET, PUT, POST, DELETE,
    /// OPTIONS, HEAD, PATCH, TRACE.
    ///
    /// # Errors
    ///
    /// Why the contract is not an OpenAPI 3.1 document the `oas3` crate can read.
    pub fn operations(&self) -> Result<Vec<Operation>, String> {
        if self
            .contract
            .as_object()
            .is_some_and(serde_json::Map::is_empty)
        {
            return Ok(Vec::new());
        }
        let spec: oas3::OpenApiV3Spec = serde_json::from_value(self.contract.clone())
            .map_err(|e| format!("the contract is not an OpenAPI document: {e}"))?;
        let version = spec.validate_version().map_err(|e| {
            format!("the contract must be OpenAPI 3.1 (`\"openapi\": \"3.1.0\"`): {e}")
        })?;
        if version.major != 3 || version.minor != 1 {
            return Err(format!(
                "the contract is OpenAPI {version}: write OpenAPI 3.1 (`\"openapi\": \"3.1.0\"`)"
            ));
        }
        let root = &self.contract;
        let global_security = root.get("security");
        let mut operations = Vec::new();
        for (path, method, _) in spec.operations() {
            let lower = method.as_str().to_ascii_lowercase();
            let pointer = format!("/paths/{}/{lower}", escape_pointer(&path));
            let raw = root.pointer(&pointer).cloned().unwrap_or(Value::Null);
            let raw = resolve(root, &raw, 0);
            let security = raw.get("security").or(global_security);
            let secured = security.and_then(Value::as_array).is_some_and(|list| {
                list.iter()
                    .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
            });
            let request = raw
                .pointer("/requestBody/content")
                .and_then(json_media)
                .and_then(|(_, media)| media.get("schema").cloned());
            let responses = raw
                .get("responses")
                .and_then(Value::as_object)
                .map(|responses| {
                    responses
                        .iter()
                        .map(|(status, answer)| {
                            let content = answer.get("content");
                            let media = content.and_then(json_media).or_else(|| {
                                content
                                    .and_then(Value::as_object)
                                    .and_then(|c| c.iter().next())
                                    .map(|(t, m)| (t.clone(), m))
                            });
                            Response {
                                status: status.clone(),
                                media_type: media.as_ref().map(|(t, _)| t.clone()),
                                schema: media.and_then(|(_, m)| m.get("schema").cloned()),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            operations.push(Operation {
                method: method.as_str().to_owned(),
                operation_id: raw
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                summary: raw
                    .get("summary")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                path,
                secured,
                request,
                responses,
            });
        }
        Ok(operations)
    }
}

/// The JSON media type of a `content` map (`application/json` or a `+json` type).
fn json_media(content: &Value) -> Option<(String, &Value)> {
    content.as_object()?.iter().find_map(|(media_type, media)| {
        let essence = media_type.split(';').next().unwrap_or_default().trim();
        (essence == "application/json" || essence.ends_with("+json"))
            .then(|| (media_type.clone(), media))
    })
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `value` with every local `$ref` (`#/...`) replaced by what it points at, `MAX_REF_DEPTH`
/// levels deep; a reference that points nowhere, or beyond the depth, is left as it is.
fn resolve(root: &Value, value: &Value, depth: usize) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(target) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .filter(|_| depth < MAX_REF_DEPTH)
                .and_then(|pointer| root.pointer(pointer))
            {
                return resolve(root, target, depth + 1);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve(root, v, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| resolve(root, v, depth)).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{DataModel, Design};

    fn design(contract: serde_json::Value) -> Design {
        Design {
            contract,
            data_model: DataModel::default(),
            components: Vec::new(),
            files: Vec::new(),
        }
    }

    #[test]
    fn operations_are_read_with_their_schemas_and_security() {
        let contract = json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "security": [{"bearer": []}],
            "paths": {
                "/health": {"get": {"security": [], "responses": {"200": {"description": "up"}}}},
                "/api/todos/{id}": {"patch": {
                    "operationId": "updateTodo",
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Patch"}}}},
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Todo"}}}},
                        "4XX": {"$ref": "#/components/responses/Error"}
                    }
                }}
            },
            "components": {
                "schemas": {
                    "Todo": {"type": "object", "properties": {"id": {"type": "integer"}}},
                    "Patch": {"type": "object", "properties": {"title": {"type": "string"}}}
                },
                "responses": {"Error": {"description": "e", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }
        });
        let operations = design(contract).operations().expect("valid");
        assert_eq!(operations.len(), 2);
        let health = &operations[1];
        assert_eq!(health.name(), "GET /health");
        assert!(!health.secured);
        let patch = &operations[0];
        assert_eq!(patch.name(), "PATCH /api/todos/{id}");
        assert!(patch.secured);
        assert_eq!(patch.operation_id.as_deref(), Some("updateTodo"));
        assert_eq!(
            patch.request,
            Some(json!({"type": "object", "properties": {"title": {"type": "string"}}}))
        );
        assert_eq!(
            patch.documents(200).and_then(|r| r.schema.clone()),
            Some(json!({"type": "object", "properties": {"id": {"type": "integer"}}}))
        );
        assert_eq!(patch.documents(404).map(|r| r.status.as_str()), Some("4XX"));
        assert_eq!(patch.documents(500), None);
    }

    #[test]
    fn documents_that_are_not_openapi_3_1_are_refused() {
        let old = json!({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}});
        assert!(
            design(old)
                .operations()
                .unwrap_err()
                .contains("OpenAPI 3.1")
        );
        let broken = json!({"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": 5}}}});
        assert!(
            design(broken)
                .operations()
                .unwrap_err()
                .starts_with("the contract is not an OpenAPI document")
        );
        assert_eq!(design(json!({})).operations(), Ok(Vec::new()));
    }
}
