//! Custom workflows: a client's own task graph in place of a template, checked as a
//! whole so that every problem is reported at once.

use serde::{Deserialize, Serialize};

use crate::options::{
    ATTEMPTS, Invalid, MAX_ESTIMATED_MINUTES, MAX_TASK_DESCRIPTION_CHARS, MAX_WORKFLOW_TASKS,
    outside,
};
use crate::{AgentKind, Plan, TaskSpec, is_valid_key};

/// One task of a custom workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkflowTask {
    /// Unique in the graph: 1 to 64 of a-z, 0-9, _.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,64}$"))]
    pub key: String,
    /// The task type, which picks the prompt template; the key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,64}$"))]
    pub kind: Option<String>,
    pub agent: AgentKind,
    /// What the task must produce (at most 2,000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: Option<String>,
    /// Keys of the tasks that must complete first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Lower runs first among ready tasks (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = -32768, maximum = 32767))]
    pub priority: Option<i16>,
    /// A failed critical task fails the project (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
    /// The planner's estimate in minutes, 0 to 100,000 (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 100_000))]
    pub estimated_minutes: Option<u32>,
    /// Attempts this task gets before it fails for good (1 to 10); the project's when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10))]
    pub max_attempts: Option<u16>,
}

impl Plan {
    /// The plan of a custom workflow: each task checked (its type, description, estimate
    /// and attempts), then the graph; every problem is named, fields as
    /// `workflow[i].field` and graph problems under `workflow`.
    pub fn custom(workflow: &[WorkflowTask]) -> Result<Plan, Vec<Invalid>> {
        if workflow.len() > MAX_WORKFLOW_TASKS {
            return Err(vec![Invalid::new(
                "workflow",
                format!("must have at most {MAX_WORKFLOW_TASKS} tasks"),
            )]);
        }
        let mut invalid = Vec::new();
        for (i, task) in workflow.iter().enumerate() {
            let field = |name: &str| format!("workflow[{i}].{name}");
            if task.kind.as_deref().is_some_and(|kind| !is_valid_key(kind)) {
                invalid.push(Invalid::new(field("kind"), "use 1 to 64 of a-z, 0-9, _"));
            }
            if let Some(reason) = crate::change::reserved(&task.key) {
                invalid.push(Invalid::new(field("key"), reason));
            }
            if let Some(reason) = task.kind.as_deref().and_then(crate::change::reserved) {
                invalid.push(Invalid::new(field("kind"), reason));
            }
            if let Some(description) = &task.description {
                if description.contains('\0') {
                    invalid.push(Invalid::new(
                        field("description"),
                        "must not contain NUL characters",
                    ));
                } else if description.chars().count() > MAX_TASK_DESCRIPTION_CHARS {
                    invalid.push(Invalid::new(
                        field("description"),
                        format!("must be at most {MAX_TASK_DESCRIPTION_CHARS} characters"),
                    ));
                }
            }
            if let Some(reason) = outside(task.max_attempts, &ATTEMPTS) {
                invalid.push(Invalid::new(field("max_attempts"), reason));
            }
            if task
                .estimated_minutes
                .is_some_and(|m| m > MAX_ESTIMATED_MINUTES)
            {
                invalid.push(Invalid::new(
                    field("estimated_minutes"),
                    format!("must be at most {MAX_ESTIMATED_MINUTES}"),
                ));
            }
        }
        if !invalid.is_empty() {
            return Err(invalid);
        }
        Plan::new(workflow.iter().map(WorkflowTask::spec).collect()).map_err(|errors| {
            errors
                .problems()
                .iter()
                .flat_map(|problem| {
                    problem
                        .keys()
                        .into_iter()
                        .map(move |key| Invalid::new("workflow", format!("`{key}`: {problem}")))
                })
                .collect()
        })
    }
}

impl WorkflowTask {
    /// The task as planned, with the defaults filled in.
    fn spec(&self) -> TaskSpec {
        TaskSpec {
            key: self.key.clone(),
            kind: self.kind.clone().unwrap_or_else(|| self.key.clone()),
            agent: self.agent,
            description: self
                .description
                .clone()
                .unwrap_or_else(|| format!("Complete `{}`", self.key)),
            depends_on: self.depends_on.clone(),
            priority: self.priority.unwrap_or(3),
            critical: self.critical.unwrap_or(false),
            estimated_minutes: self.estimated_minutes.unwrap_or(30),
            max_attempts: self.max_attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str, depends_on: &[&str]) -> WorkflowTask {
        WorkflowTask {
            key: key.into(),
            kind: None,
            agent: AgentKind::Backend,
            description: None,
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            priority: None,
            critical: None,
            estimated_minutes: None,
            max_attempts: None,
        }
    }

    #[test]
    fn fields_and_graph_problems_are_named() {
        let mut bad = task("a", &[]);
        bad.kind = Some("Bad Kind".into());
        bad.max_attempts = Some(11);
        let errors = Plan::custom(&[bad]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["workflow[0].kind", "workflow[0].max_attempts"]);

        let errors = Plan::custom(&[task("a", &["a", "ghost"])]).unwrap_err();
        let reasons: Vec<&str> = errors.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "`a`: tasks depend on themselves: a",
                "`a`: unknown dependencies: a -> ghost",
                "`ghost`: unknown dependencies: a -> ghost",
            ]
        );
        let mut update = task("schema_c2", &[]);
        update.kind = Some("design_update".into());
        let errors = Plan::custom(&[update]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["workflow[0].key", "workflow[0].kind"],
            "reserved for changes"
        );
        let plan = Plan::custom(&[task("a", &[]), task("b", &["a"])]).expect("valid");
        assert_eq!(plan.template(), None);
        assert_eq!(plan.tasks()[1].description, "Complete `b`");
    }
}
