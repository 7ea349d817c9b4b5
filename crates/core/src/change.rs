//! Change requests, with no IO: the tasks a change starts with, and those it grows once
//! its design is updated (the tasks that own what changes, then verification and review).

use std::collections::{BTreeMap, BTreeSet};

use crate::{AgentKind, CODE_REVIEW, VERIFY};

/// The task type of a change's analysis: which components, files and operations it
/// touches.
pub const CHANGE_ANALYSIS: &str = "change_analysis";

/// The task type of a change's design update: the design's next version.
pub const DESIGN_UPDATE: &str = "design_update";

/// The key of a task a change of revision `revision` adds for `base`: `database_schema_c2`
/// (the base cut so the key keeps to 64 bytes).
pub fn change_key(base: &str, revision: i32) -> String {
    let suffix = format!("_c{revision}");
    let keep = base.len().min(64 - suffix.len());
    format!("{}{suffix}", &base[..keep])
}

/// Why a custom workflow may not use `key` as a task's key or type, if it may not: keys
/// ending in `_c<number>` and the change steps' types are the change requests'.
pub fn reserved(key: &str) -> Option<&'static str> {
    if base_key(key) != key {
        Some("keys ending in `_c` and a number are reserved for change requests")
    } else if key == CHANGE_ANALYSIS || key == DESIGN_UPDATE {
        Some("`change_analysis` and `design_update` are reserved for change requests")
    } else {
        None
    }
}

/// The task of the first generation a change task stands for: `database_schema_c2` →
/// `database_schema`; any other key is itself. The design's file plan names these.
pub fn base_key(key: &str) -> &str {
    match key.rsplit_once("_c") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}

/// A task of the first generation, as a change plans from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalTask {
    pub key: String,
    pub kind: String,
    pub agent: AgentKind,
    pub depends_on: Vec<String>,
}

/// A task a change adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeTask {
    pub key: String,
    pub kind: String,
    pub agent: AgentKind,
    pub description: String,
    /// Keys of tasks of the same change (or its design update).
    pub depends_on: Vec<String>,
}

/// The tasks revision `revision`'s change needs once its design is updated: one for each
/// task of the first generation in `owners` (those owning files the change touches), in the
/// order the first generation ran them (a task after the owners it depended on), then the
/// verification when the project has one, then a code review of the change.
pub fn plan_change(
    revision: i32,
    description: &str,
    original: &[OriginalTask],
    owners: &BTreeSet<String>,
) -> Vec<ChangeTask> {
    let by_key: BTreeMap<&str, &OriginalTask> =
        original.iter().map(|t| (t.key.as_str(), t)).collect();
    let design_update = change_key(DESIGN_UPDATE, revision);
    // The change's own review and verification come last, whoever owned files before.
    let changes = |key: &str| {
        owners.contains(key)
            && by_key
                .get(key)
                .is_some_and(|t| t.kind != CODE_REVIEW && t.kind != VERIFY)
    };
    let mut tasks: Vec<ChangeTask> = original
        .iter()
        .filter(|t| changes(&t.key))
        .map(|t| {
            let mut depends_on: Vec<String> = upstream(&t.key, &by_key)
                .into_iter()
                .filter(|u| changes(u))
                .map(|u| change_key(u, revision))
                .collect();
            depends_on.sort();
            depends_on.insert(0, design_update.clone());
            ChangeTask {
                key: change_key(&t.key, revision),
                kind: t.kind.clone(),
                agent: t.agent,
                description: format!("Change request (revision {revision}): {description} — update the files `{}` owns for it", t.key),
                depends_on,
            }
        })
        .collect();
    let changed: Vec<String> = tasks.iter().map(|t| t.key.clone()).collect();
    let last = if changed.is_empty() {
        vec![design_update.clone()]
    } else {
        changed
    };
    let review_after = if original.iter().any(|t| t.kind == VERIFY) {
        let key = change_key(VERIFY, revision);
        tasks.push(ChangeTask {
            key: key.clone(),
            kind: VERIFY.to_owned(),
            agent: AgentKind::Reviewer,
            description: format!("Verify the project after the change of revision {revision}"),
            depends_on: last,
        });
        vec![key]
    } else {
        last
    };
    tasks.push(ChangeTask {
        key: change_key(CODE_REVIEW, revision),
        kind: CODE_REVIEW.to_owned(),
        agent: AgentKind::Reviewer,
        description: format!(
            "Review the files the change of revision {revision} changed: {description}"
        ),
        depends_on: review_after,
    });
    tasks
}

/// Every task `key` depends on, directly or not.
fn upstream<'a>(key: &str, by_key: &BTreeMap<&str, &'a OriginalTask>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = by_key
        .get(key)
        .map(|t| t.depends_on.iter().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(next) = stack.pop() {
        if let Some(task) = by_key.get(next)
            && seen.insert(task.key.as_str())
        {
            stack.extend(task.depends_on.iter().map(String::as_str));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProjectType;

    fn original() -> Vec<OriginalTask> {
        ProjectType::Fullstack
            .template()
            .tasks()
            .iter()
            .map(|t| OriginalTask {
                key: t.key.clone(),
                kind: t.kind.clone(),
                agent: t.agent,
                depends_on: t.depends_on.clone(),
            })
            .collect()
    }

    #[test]
    fn a_review_or_verification_that_owned_files_runs_once_at_the_end() {
        let owners: BTreeSet<String> = ["code_review", "verify", "database_schema"]
            .map(str::to_owned)
            .into();
        let tasks = plan_change(2, "Add a due date", &original(), &owners);
        let keys: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["database_schema_c2", "verify_c2", "code_review_c2"]);
    }

    #[test]
    fn an_owner_downstream_of_the_review_does_not_wait_for_the_final_review() {
        let owners: BTreeSet<String> = ["code_review", "performance_testing", "database_schema"]
            .map(str::to_owned)
            .into();
        let tasks = plan_change(2, "Add a due date", &original(), &owners);
        let performance = tasks
            .iter()
            .find(|t| t.key == "performance_testing_c2")
            .expect("planned");
        assert_eq!(
            performance.depends_on,
            ["design_update_c2", "database_schema_c2"]
        );
        let verify = tasks
            .iter()
            .find(|t| t.key == "verify_c2")
            .expect("a verify");
        assert!(
            verify
                .depends_on
                .contains(&"performance_testing_c2".to_owned())
        );
        let review = tasks.last().expect("a review");
        assert_eq!(review.key, "code_review_c2");
        assert_eq!(review.depends_on, ["verify_c2"]);
    }

    #[test]
    fn change_keys_keep_to_64_bytes_and_reserve_their_names() {
        let long = "a".repeat(64);
        assert_eq!(change_key(&long, 12).len(), 64);
        assert!(change_key(&long, 12).ends_with("a_c12"));
        assert!(reserved("schema_c2").is_some());
        assert!(reserved("design_update").is_some());
        assert!(reserved("schema_cache").is_none());
        assert!(reserved("schema").is_none());
    }

    #[test]
    fn keys_map_to_their_first_generation_task() {
        assert_eq!(change_key("database_schema", 2), "database_schema_c2");
        assert_eq!(base_key("database_schema_c2"), "database_schema");
        assert_eq!(
            base_key("fix_code_review_c3_backend_r1"),
            "fix_code_review_c3_backend_r1"
        );
        assert_eq!(base_key("schema"), "schema");
        assert_eq!(base_key("a_c"), "a_c");
    }

    #[test]
    fn a_change_runs_its_owners_in_their_first_order_then_verifies_and_reviews() {
        let owners: BTreeSet<String> = [
            "database_schema",
            "business_logic",
            "api_integration",
            "ui_components",
        ]
        .map(str::to_owned)
        .into();
        let tasks = plan_change(2, "Add a due date", &original(), &owners);
        let deps = |key: &str| {
            tasks
                .iter()
                .find(|t| t.key == key)
                .expect(key)
                .depends_on
                .clone()
        };
        assert_eq!(deps("database_schema_c2"), ["design_update_c2"]);
        assert_eq!(
            deps("business_logic_c2"),
            ["design_update_c2", "database_schema_c2"]
        );
        assert_eq!(deps("ui_components_c2"), ["design_update_c2"]);
        assert_eq!(
            deps("api_integration_c2"),
            [
                "design_update_c2",
                "business_logic_c2",
                "database_schema_c2",
                "ui_components_c2"
            ]
        );
        assert_eq!(
            deps("verify_c2"),
            [
                "database_schema_c2",
                "business_logic_c2",
                "ui_components_c2",
                "api_integration_c2"
            ]
        );
        assert_eq!(deps("code_review_c2"), ["verify_c2"]);
        assert_eq!(tasks.len(), 6);
        let schema = tasks
            .iter()
            .find(|t| t.key == "database_schema_c2")
            .expect("schema");
        assert_eq!(
            (schema.kind.as_str(), schema.agent),
            ("database_schema", AgentKind::Backend)
        );

        // Without verification, the review follows the changed tasks; nothing to change
        // still gets its review after the design update.
        let unverified: Vec<OriginalTask> = original()
            .into_iter()
            .filter(|t| t.kind != VERIFY)
            .collect();
        let tasks = plan_change(3, "Rename", &unverified, &BTreeSet::new());
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].depends_on, ["design_update_c3"]);
    }
}
