//! Review findings: what `code_review` and `security_audit` tasks report, and which of them
//! block the project until fixed.

use serde::{Deserialize, Serialize};

use crate::text_enum::text_enum;

text_enum! {
    /// How bad a finding is. `critical` and `high` block: they get fix tasks.
    Severity ("severity") {
        Critical => "critical",
        High => "high",
        Medium => "medium",
        Low => "low",
        Info => "info",
    }
}

impl Severity {
    /// Whether findings of this severity block the project until fixed.
    pub fn is_blocking(self) -> bool {
        matches!(self, Self::Critical | Self::High)
    }
}

/// One finding of a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub severity: Severity,
    /// The file it is about, relative to the project root.
    pub file: String,
    /// 1-based, when the finding is about a line.
    #[serde(default)]
    pub line: Option<u32>,
    pub message: String,
    #[serde(default)]
    pub suggested_fix: Option<String>,
}

impl Finding {
    /// `high backend/src/auth.ts:3: message (fix: ...)`: one line, as prompts show it.
    pub fn describe(&self) -> String {
        let at = match self.line {
            Some(line) => format!("{}:{line}", self.file),
            None => self.file.clone(),
        };
        let fix = self
            .suggested_fix
            .as_deref()
            .map(|fix| format!(" Suggested fix: {fix}"))
            .unwrap_or_default();
        format!(
            "[{}] `{at}`: {}.{fix}",
            self.severity.as_str(),
            self.message.trim_end_matches('.')
        )
    }
}

/// The task types whose answers carry findings: the reviews, and the verification (whose
/// failures are findings on the files they name).
pub fn is_review_kind(kind: &str) -> bool {
    matches!(kind, "code_review" | "security_audit" | "verify")
}

/// The task type of fix tasks created from blocking findings.
pub const FIX_FINDINGS: &str = "fix_findings";

/// Reads a findings block: `{"findings": [...]}` or a bare array. The error names the
/// finding and field at fault.
pub fn parse_findings(json: &str) -> Result<Vec<Finding>, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Block {
        Wrapped { findings: Vec<serde_json::Value> },
        Bare(Vec<serde_json::Value>),
    }
    let block: Block = serde_json::from_str(json).map_err(|e| {
        format!("the findings block is not a JSON array or an object with `findings`: {e}")
    })?;
    let (Block::Wrapped { findings: items } | Block::Bare(items)) = block;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let finding: Finding = serde_json::from_value(item)
                .map_err(|e| format!("finding {} cannot be used: {e}", i + 1))?;
            if finding.file.trim().is_empty() || finding.message.trim().is_empty() {
                return Err(format!("finding {} needs a `file` and a `message`", i + 1));
            }
            Ok(finding)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_parse_wrapped_or_bare_and_errors_name_the_finding() {
        let wrapped = parse_findings(
            r#"{"findings": [{"severity": "high", "file": "a.ts", "line": 3, "message": "secret in code", "suggested_fix": "read it from the environment"}]}"#,
        )
        .expect("wrapped");
        assert_eq!(wrapped[0].severity, Severity::High);
        assert!(wrapped[0].severity.is_blocking());
        assert_eq!(
            wrapped[0].describe(),
            "[high] `a.ts:3`: secret in code. Suggested fix: read it from the environment"
        );
        let bare = parse_findings(r#"[{"severity": "low", "file": "b.py", "message": "naming"}]"#)
            .expect("bare");
        assert!(!bare[0].severity.is_blocking());
        assert!(parse_findings("[]").expect("empty").is_empty());

        let error = parse_findings(r#"[{"severity": "low", "file": "b.py", "message": "x"}, {"severity": "urgent", "file": "c", "message": "y"}]"#)
            .expect_err("bad severity");
        assert!(
            error.starts_with(
                "finding 2 cannot be used: unknown severity `urgent`: use one of critical, high"
            ),
            "{error}"
        );
        assert!(parse_findings("{\"notes\": 1}").is_err());
    }
}
