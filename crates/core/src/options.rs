//! What a project may ask for, and every limit on it, in one place: the API, `guild run`
//! and the CLI's flags all check against these.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::Plan;

/// Longest description, in characters (not bytes).
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// Longest preferred technology stack, in characters.
pub const MAX_STACK_CHARS: usize = 200;
/// Longest feedback of a rejected approval, in characters.
pub const MAX_FEEDBACK_CHARS: usize = 10_000;
/// Most tasks a custom workflow may have.
pub const MAX_WORKFLOW_TASKS: usize = 200;
/// Longest description of a custom workflow's task, in characters.
pub const MAX_TASK_DESCRIPTION_CHARS: usize = 2_000;
/// Largest estimate of a custom workflow's task, in minutes.
pub const MAX_ESTIMATED_MINUTES: u32 = 100_000;
/// Attempts a task gets before it fails for good.
pub const ATTEMPTS: RangeInclusive<u16> = 1..=10;
/// Tasks of one project running at once.
pub const PARALLEL: RangeInclusive<u16> = 1..=1000;
/// A project's token budget.
pub const TOKEN_BUDGET: RangeInclusive<u64> = 1..=1_000_000_000_000;
/// A project's cost budget in US dollars: over 0 and at most this.
pub const MAX_COST_USD: f64 = 100_000.0;
/// Fix rounds per review.
pub const FIX_ROUNDS: RangeInclusive<u8> = 0..=5;
/// Fix rounds per review when the options say nothing.
pub const DEFAULT_FIX_ROUNDS: u8 = 1;

/// A value outside what is allowed: the field (as a client wrote it, e.g.
/// `options.max_attempts`, `workflow[2].kind`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = FieldError))]
pub struct Invalid {
    /// Where the problem is, e.g. `description` or `workflow[2].depends_on`.
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Options of a project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProjectOptions {
    /// Task keys that wait for a human's approval after they run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_approval: Vec<String>,
    /// Attempts per task before it fails for good (1 to 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10))]
    pub max_attempts: Option<u16>,
    /// At most this many of the project's tasks run at once (1 to 1000); unset, as many
    /// as the workers have slots for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub max_parallel: Option<u16>,
    /// Most tokens (prompt and completion) the project's model calls may use, 1 to 10^12.
    /// Each call's worst case (its prompt and whole completion allowance) is checked
    /// before it is made; a call that would pass it is not made, its task fails with
    /// `budget_exceeded` and the project stops. Unset: the server's `GUILD_MAX_TOKENS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1_000_000_000_000_u64)
    )]
    pub max_tokens: Option<u64>,
    /// Most US dollars the project's model calls may cost (over 0, at most 100000),
    /// checked like `max_tokens`. A model without a known price cannot be used under it.
    /// Unset: the server's `GUILD_MAX_COST_USD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 100_000))]
    pub max_cost_usd: Option<f64>,
    /// Answer identical model calls at temperature 0 from the response cache, at no cost
    /// (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    /// Fix rounds per review (0 to 5, default 1): a `code_review` or `security_audit` with
    /// blocking (critical or high) findings adds a fix task for each agent that owns a file
    /// at fault and a re-review after them, at most this many times. 0 turns the loop off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 5))]
    pub max_fix_rounds: Option<u8>,
    /// Fail the project when its last verification did not pass (default false: the
    /// project completes, with its verification `failed` and visible). Needs a plan with
    /// a `verify` task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_verified: Option<bool>,
}

impl ProjectOptions {
    /// Every option outside its range, and approval gates on keys the plan does not have.
    pub fn check(&self, plan: &Plan) -> Vec<Invalid> {
        let mut invalid = Vec::new();
        let field = |name: &str| format!("options.{name}");
        let unknown: Vec<&str> = self
            .require_approval
            .iter()
            .filter(|key| !plan.tasks().iter().any(|t| &t.key == *key))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            invalid.push(Invalid::new(
                field("require_approval"),
                format!("not tasks of this project: {}", unknown.join(", ")),
            ));
        }
        if self.require_verified == Some(true)
            && !plan.tasks().iter().any(|t| t.kind == crate::VERIFY)
        {
            invalid.push(Invalid::new(
                field("require_verified"),
                "the plan has no `verify` task (verification is off on this server, or the workflow has none)",
            ));
        }
        if let Some(reason) = outside(self.max_attempts, &ATTEMPTS) {
            invalid.push(Invalid::new(field("max_attempts"), reason));
        }
        if let Some(reason) = outside(self.max_parallel, &PARALLEL) {
            invalid.push(Invalid::new(field("max_parallel"), reason));
        }
        if let Some(reason) = outside(self.max_tokens, &TOKEN_BUDGET) {
            invalid.push(Invalid::new(field("max_tokens"), reason));
        }
        if let Some(reason) = check_cost(self.max_cost_usd) {
            invalid.push(Invalid::new(field("max_cost_usd"), reason));
        }
        if let Some(reason) = outside(self.max_fix_rounds, &FIX_ROUNDS) {
            invalid.push(Invalid::new(field("max_fix_rounds"), reason));
        }
        invalid
    }
}

/// "must be from A to B" when `value` is outside `range`.
pub fn outside<T: PartialOrd + std::fmt::Display>(
    value: Option<T>,
    range: &RangeInclusive<T>,
) -> Option<String> {
    value
        .filter(|v| !range.contains(v))
        .map(|_| format!("must be from {} to {}", range.start(), range.end()))
}

/// Why a cost budget cannot be used, if it cannot.
pub fn check_cost(usd: Option<f64>) -> Option<String> {
    usd.filter(|usd| !(*usd > 0.0 && *usd <= MAX_COST_USD))
        .map(|_| format!("must be over 0 and at most {MAX_COST_USD}"))
}

/// Why a description cannot be used, if it cannot: empty (after trimming), too long (in
/// characters), or holding NUL, which PostgreSQL text cannot store.
pub fn check_text(field: &str, text: &str, max_chars: usize) -> Option<Invalid> {
    let reason = if text.contains('\0') {
        "must not contain NUL characters".to_owned()
    } else if text.trim().is_empty() {
        "must not be empty".to_owned()
    } else if text.chars().count() > max_chars {
        format!("must be at most {max_chars} characters")
    } else {
        return None;
    };
    Some(Invalid::new(field, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProjectType;

    #[test]
    fn every_option_outside_its_range_is_named() {
        let plan = ProjectType::Backend.template();
        let options = ProjectOptions {
            require_approval: vec!["code_review".into(), "nope".into()],
            max_attempts: Some(11),
            max_parallel: Some(0),
            max_tokens: Some(0),
            max_cost_usd: Some(-1.0),
            cache: Some(false),
            max_fix_rounds: Some(6),
            require_verified: Some(true),
        };
        let fields: Vec<(String, String)> = options
            .check(&plan)
            .into_iter()
            .map(|i| (i.field, i.reason))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "options.require_approval".into(),
                    "not tasks of this project: nope".into()
                ),
                ("options.max_attempts".into(), "must be from 1 to 10".into()),
                (
                    "options.max_parallel".into(),
                    "must be from 1 to 1000".into()
                ),
                (
                    "options.max_tokens".into(),
                    "must be from 1 to 1000000000000".into()
                ),
                (
                    "options.max_cost_usd".into(),
                    "must be over 0 and at most 100000".into()
                ),
                (
                    "options.max_fix_rounds".into(),
                    "must be from 0 to 5".into()
                ),
            ]
        );
        assert!(ProjectOptions::default().check(&plan).is_empty());
        // With the verification stage, requiring it is fine.
        let verified = ProjectOptions {
            require_verified: Some(true),
            ..ProjectOptions::default()
        };
        assert!(verified.check(&plan).is_empty());
        assert_eq!(
            verified.check(&plan.without(crate::VERIFY))[0].field,
            "options.require_verified"
        );
    }

    #[test]
    fn texts_are_counted_in_characters() {
        let chinese: String = "待".repeat(MAX_DESCRIPTION_CHARS);
        assert_eq!(
            check_text("description", &chinese, MAX_DESCRIPTION_CHARS),
            None
        );
        let longer = format!("{chinese}x");
        assert_eq!(
            check_text("description", &longer, MAX_DESCRIPTION_CHARS),
            Some(Invalid::new(
                "description",
                "must be at most 20000 characters"
            ))
        );
        assert!(check_text("description", "  ", 10).is_some());
        assert!(check_text("description", "a\0b", 10).is_some());
    }
}
