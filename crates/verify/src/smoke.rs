//! The smoke test: a started server called through its contract. Every operation once as
//! a client would (signed up and in, resources created before they are read, changed and
//! deleted), then the inputs a server must refuse without falling over (no credentials, a
//! malformed id, a body that is not an object, invalid JSON, a second sign-up with the same
//! credentials), then the health check again: the server is still up.

use std::collections::HashMap;
use std::time::Duration;

use guild_design::Operation;
use reqwest::Method;
use serde_json::Value;

use crate::example::example;
use guild_core::verification::{SmokeCall, SmokeReport, Verdict};

/// The longest a call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of a body quoted in a problem.
const BODY_EXCERPT: usize = 300;

/// What a call must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A documented 2xx status.
    Success,
    /// A documented 4xx status (a refusal), 401 when it is documented and `unauthorized`.
    Refusal { unauthorized: bool },
}

struct Smoke<'a> {
    client: reqwest::Client,
    base: &'a str,
    token: Option<String>,
    /// Ids of created resources, by collection path (`/api/todos`).
    ids: HashMap<String, Value>,
    calls: Vec<SmokeCall>,
    seed: u32,
}

/// Calls the server at `base` (`http://127.0.0.1:PORT`) through `operations`.
pub async fn run(base: &str, health: &str, operations: &[Operation], seed: u32) -> SmokeReport {
    // The workspace's reqwest needs a process-wide TLS provider, even for plain HTTP; a
    // provider already installed is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds");
    let mut smoke = Smoke {
        client,
        base,
        token: None,
        ids: HashMap::new(),
        calls: Vec::new(),
        seed,
    };
    smoke.health(health, "answers").await;
    let (sign_ins, others): (Vec<&Operation>, Vec<&Operation>) = operations
        .iter()
        .filter(|o| !(o.method == "GET" && o.path == health))
        .partition(|o| issues_token(o));
    let credentials = smoke.sign_in(&sign_ins).await;
    let mut ordered = others;
    ordered.sort_by_key(|o| (order(o), o.path.clone()));
    for operation in &ordered {
        smoke
            .call(
                operation,
                "succeeds",
                Expect::Success,
                Body::Example,
                true,
                None,
            )
            .await;
    }
    smoke.refusals(&ordered, &sign_ins, credentials).await;
    smoke.health(health, "still answers after every call").await;
    let passed = u32::try_from(smoke.calls.iter().filter(|c| c.passed).count()).unwrap_or(u32::MAX);
    let total = u32::try_from(smoke.calls.len()).unwrap_or(u32::MAX);
    SmokeReport {
        status: if passed == total {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        passed,
        total,
        calls: smoke.calls,
    }
}

/// A public POST whose success answers a token: signing up or in.
fn issues_token(operation: &Operation) -> bool {
    operation.method == "POST"
        && !operation.secured
        && operation.responses.iter().any(|r| {
            r.status.starts_with('2')
                && r.schema
                    .as_ref()
                    .and_then(|s| s.get("properties"))
                    .and_then(Value::as_object)
                    .is_some_and(|p| p.keys().any(|k| k.to_lowercase().contains("token")))
        })
}

/// Creating before reading, changing and deleting.
fn order(operation: &Operation) -> u8 {
    let has_parameter = operation.path.contains('{');
    match (operation.method.as_str(), has_parameter) {
        ("POST", false) => 0,
        ("GET", false) => 1,
        ("GET", true) => 2,
        ("PUT" | "PATCH" | "POST", true) => 3,
        ("DELETE", _) => 5,
        _ => 4,
    }
}

/// What a call sends.
#[derive(Debug, Clone)]
enum Body {
    /// An example of the operation's request schema, if it has one.
    Example,
    /// This JSON value.
    Json(Value),
    /// These bytes as `application/json`.
    Raw(&'static str),
}

impl Smoke<'_> {
    async fn health(&mut self, path: &str, check: &str) {
        let operation = Operation {
            method: "GET".into(),
            path: path.into(),
            operation_id: None,
            summary: None,
            secured: false,
            request: None,
            responses: vec![guild_design::Response {
                status: "200".into(),
                media_type: None,
                schema: None,
            }],
        };
        self.call(
            &operation,
            check,
            Expect::Success,
            Body::Example,
            false,
            None,
        )
        .await;
    }

    /// Signs up, then in with the same credentials; returns them.
    async fn sign_in(&mut self, operations: &[&Operation]) -> Option<(Operation, Value)> {
        let mut ordered = operations.to_vec();
        ordered.sort_by_key(|o| {
            let name = format!(
                "{} {}",
                o.path,
                o.operation_id.as_deref().unwrap_or_default()
            )
            .to_lowercase();
            !(name.contains("register") || name.contains("signup") || name.contains("sign_up"))
        });
        let first = ordered.first()?;
        let credentials = first
            .request
            .as_ref()
            .map_or(Value::Null, |s| example(s, self.seed));
        for operation in &ordered {
            let answer = self
                .call(
                    operation,
                    "succeeds",
                    Expect::Success,
                    Body::Json(credentials.clone()),
                    false,
                    None,
                )
                .await;
            if let Some(token) = answer.as_ref().and_then(find_token) {
                self.token = Some(token);
            }
        }
        Some(((*first).clone(), credentials))
    }

    /// The inputs a server must refuse, each against the first operation it applies to.
    async fn refusals(
        &mut self,
        operations: &[&Operation],
        sign_ins: &[&Operation],
        credentials: Option<(Operation, Value)>,
    ) {
        if let Some((sign_up, body)) = credentials
            && sign_ins.len() > 1
        {
            self.call(
                &sign_up,
                "refuses a second sign-up with the same credentials",
                Expect::Refusal {
                    unauthorized: false,
                },
                Body::Json(body),
                false,
                None,
            )
            .await;
        }
        if let Some(secured) = operations.iter().find(|o| o.secured) {
            self.call(
                secured,
                "refuses a call without credentials",
                Expect::Refusal { unauthorized: true },
                Body::Example,
                false,
                None,
            )
            .await;
        }
        if let Some(with_id) = operations
            .iter()
            .find(|o| o.path.contains('{') && o.method == "GET")
        {
            self.call(
                with_id,
                "refuses a malformed id",
                Expect::Refusal {
                    unauthorized: false,
                },
                Body::Example,
                true,
                Some("not-an-id"),
            )
            .await;
        }
        if let Some(with_body) = operations
            .iter()
            .find(|o| o.request.is_some() && !o.path.contains('{'))
        {
            self.call(
                with_body,
                "refuses a body that is not an object",
                Expect::Refusal {
                    unauthorized: false,
                },
                Body::Json(Value::Array(Vec::new())),
                true,
                None,
            )
            .await;
            self.call(
                with_body,
                "refuses invalid JSON",
                Expect::Refusal {
                    unauthorized: false,
                },
                Body::Raw("{\"title\": "),
                true,
                None,
            )
            .await;
        }
    }

    /// Makes one call, records whether it answered as `expect`, and returns its JSON body.
    async fn call(
        &mut self,
        operation: &Operation,
        check: &str,
        expect: Expect,
        body: Body,
        authorised: bool,
        id: Option<&str>,
    ) -> Option<Value> {
        let path = self.fill(&operation.path, id);
        let method = Method::from_bytes(operation.method.as_bytes()).unwrap_or(Method::GET);
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if authorised
            && operation.secured
            && let Some(token) = &self.token
        {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::Example => match &operation.request {
                Some(schema) => request.json(&example(schema, self.seed)),
                None => request,
            },
            Body::Json(value) => request.json(&value),
            Body::Raw(text) => request
                .header("content-type", "application/json")
                .body(text),
        };
        self.seed += 1;
        let expected = expected(operation, expect);
        let mut record = SmokeCall {
            operation: operation.name(),
            check: check.to_owned(),
            path: path.clone(),
            status: None,
            expected: expected.join(", "),
            passed: false,
            problem: None,
        };
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(error) => {
                record.problem = Some(format!("no answer: {error}"));
                self.calls.push(record);
                return None;
            }
        };
        let status = answer.status().as_u16();
        record.status = Some(status);
        let text = answer.text().await.unwrap_or_default();
        let json: Option<Value> = serde_json::from_str(&text).ok();
        let documented = operation.documents(status);
        record.problem = if !expected.iter().any(|e| matches_status(e, status)) {
            Some(format!(
                "answered {status}, expected {}: {}",
                expected.join(" or "),
                excerpt(&text)
            ))
        } else {
            documented
                .and_then(|r| r.schema.as_ref())
                .zip(json.as_ref())
                .and_then(|(schema, value)| invalid(schema, value))
        };
        record.passed = record.problem.is_none();
        if record.passed
            && expect == Expect::Success
            && operation.method == "POST"
            && !operation.path.contains('{')
            && let Some(created) = json.as_ref().and_then(|v| v.get("id"))
        {
            self.ids.insert(operation.path.clone(), created.clone());
        }
        self.calls.push(record);
        json
    }

    /// `path` with its parameters filled: `id` when given, else the id of a resource made
    /// under the path before the parameter, else `1`.
    fn fill(&self, path: &str, id: Option<&str>) -> String {
        let mut out = String::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            out.push_str(&rest[..start]);
            let collection = format!("{}{}", &path[..path.len() - rest.len()], &rest[..start]);
            let collection = collection.trim_end_matches('/');
            let value = match (id, self.ids.get(collection)) {
                (Some(id), _) => id.to_owned(),
                (None, Some(Value::String(s))) => s.clone(),
                (None, Some(other)) => other.to_string(),
                (None, None) => "1".to_owned(),
            };
            out.push_str(&value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// The documented statuses a call may answer.
fn expected(operation: &Operation, expect: Expect) -> Vec<String> {
    let documented: Vec<String> = operation
        .responses
        .iter()
        .map(|r| r.status.clone())
        .collect();
    let wanted: Vec<String> = match expect {
        Expect::Success => documented
            .iter()
            .filter(|s| s.starts_with('2'))
            .cloned()
            .collect(),
        Expect::Refusal { unauthorized: true } if documented.iter().any(|s| s == "401") => {
            vec!["401".into()]
        }
        Expect::Refusal { .. } => documented
            .iter()
            .filter(|s| s.starts_with('4'))
            .cloned()
            .collect(),
    };
    if wanted.is_empty() {
        // Nothing documented for it: any status of the class is taken.
        vec![match expect {
            Expect::Success => "2XX".into(),
            Expect::Refusal { .. } => "4XX".into(),
        }]
    } else {
        wanted
    }
}

fn matches_status(expected: &str, status: u16) -> bool {
    expected == status.to_string() || expected.eq_ignore_ascii_case(&format!("{}XX", status / 100))
}

/// Why `value` is not valid against `schema`, if it is not.
fn invalid(schema: &Value, value: &Value) -> Option<String> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(validator) => validator,
        Err(error) => {
            return Some(format!(
                "the contract's response schema does not compile: {error}"
            ));
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(3)
        .map(|e| format!("{} at `{}`", e, e.instance_path()))
        .collect();
    (!errors.is_empty()).then(|| {
        format!(
            "the body does not match the contract: {}",
            errors.join("; ")
        )
    })
}

/// A token in a sign-in answer: a string property named like a token, at the top or one
/// level down.
fn find_token(body: &Value) -> Option<String> {
    let object = body.as_object()?;
    object
        .iter()
        .find(|(k, v)| k.to_lowercase().contains("token") && v.is_string())
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
        .or_else(|| object.values().find_map(find_token))
}

fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(BODY_EXCERPT).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_where_sign_ins_put_them() {
        assert_eq!(
            find_token(&serde_json::json!({"token": "t", "user": {}})),
            Some("t".into())
        );
        assert_eq!(
            find_token(&serde_json::json!({"data": {"access_token": "a"}})),
            Some("a".into())
        );
        assert_eq!(find_token(&serde_json::json!({"user": {"id": 1}})), None);
    }

    #[test]
    fn statuses_match_exactly_or_by_class() {
        assert!(matches_status("201", 201));
        assert!(matches_status("4XX", 404));
        assert!(!matches_status("400", 404));
    }
}
