//! Planning a fix round, with no IO: which agent fixes which blocking findings, the keys
//! of the new tasks, and the re-review after them. The store stores the plan in the
//! review's settling transaction.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::{AgentKind, FIX_FINDINGS, Finding};

/// A task a fix round adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTask {
    pub key: String,
    /// `fix_findings` for a fix task, the review's own type for the re-review.
    pub kind: String,
    pub agent: AgentKind,
    pub description: String,
    /// What the task fixes, or what the re-review verifies.
    pub findings: Vec<Finding>,
}

/// A fix round: one fix task per agent that owns a file at fault, then a re-review of the
/// same type after all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixRound {
    /// The round's number: the review's round plus one.
    pub round: i32,
    pub fixes: Vec<RoundTask>,
    pub re_review: RoundTask,
}

/// What a review's blocking findings lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixPlan {
    /// `None` when no finding's file has an owner.
    pub round: Option<FixRound>,
    /// Findings on files no task wrote: nobody can fix them.
    pub unowned: Vec<Finding>,
}

/// Plans the fix round of review `key` (of type `kind`, itself of round `review_round`) for
/// its `blocking` findings, given each file's owner (the agent of its latest version) and
/// the keys its project already uses (a new task never takes one: it gets the next free).
pub fn plan_fix_round(
    key: &str,
    kind: &str,
    review_round: i32,
    blocking: &[Finding],
    owners: &BTreeMap<String, AgentKind>,
    taken: &HashSet<String>,
) -> FixPlan {
    let mut by_agent: BTreeMap<AgentKind, Vec<Finding>> = BTreeMap::new();
    let mut unowned = Vec::new();
    for finding in blocking {
        match owners.get(&finding.file) {
            Some(agent) => by_agent.entry(*agent).or_default().push(finding.clone()),
            None => unowned.push(finding.clone()),
        }
    }
    if by_agent.is_empty() {
        return FixPlan {
            round: None,
            unowned,
        };
    }
    let round = review_round + 1;
    let base = base_key(key);
    let mut taken = taken.clone();
    let mut take = |wanted: String| {
        let key = free_key(&wanted, &taken);
        taken.insert(key.clone());
        key
    };
    let fixes: Vec<RoundTask> = by_agent
        .into_iter()
        .map(|(agent, findings)| {
            let files: BTreeSet<String> =
                findings.iter().map(|f| format!("`{}`", f.file)).collect();
            RoundTask {
                key: take(format!("fix_{base}_{agent}_r{round}")),
                kind: FIX_FINDINGS.to_owned(),
                agent,
                description: format!(
                    "Fix the {} blocking finding(s) of `{key}` in {}",
                    findings.len(),
                    files.into_iter().collect::<Vec<_>>().join(", ")
                ),
                findings,
            }
        })
        .collect();
    let re_review = RoundTask {
        key: take(format!("{base}_r{round}")),
        kind: kind.to_owned(),
        agent: AgentKind::Reviewer,
        description: format!(
            "Review again after fix round {round}: check that the blocking findings of `{key}` are fixed, and report what is still wrong"
        ),
        findings: blocking.to_vec(),
    };
    FixPlan {
        round: Some(FixRound {
            round,
            fixes,
            re_review,
        }),
        unowned,
    }
}

/// `key`, or `key_2`, `key_3`, ... when it is taken.
fn free_key(key: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(key) {
        return key.to_owned();
    }
    (2..)
        .map(|n| format!("{key}_{n}"))
        .find(|candidate| !taken.contains(candidate))
        .expect("an unbounded range has a free key")
}

/// `security_audit_r2` → `security_audit`; keys stay within the 64 characters allowed.
fn base_key(key: &str) -> &str {
    let base = match key.rsplit_once("_r") {
        Some((head, round)) if !round.is_empty() && round.bytes().all(|b| b.is_ascii_digit()) => {
            head
        }
        _ => key,
    };
    &base[..base.len().min(40)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    fn finding(file: &str) -> Finding {
        Finding {
            severity: Severity::High,
            file: file.into(),
            line: Some(1),
            message: "wrong".into(),
            suggested_fix: None,
        }
    }

    #[test]
    fn base_keys_drop_the_round() {
        assert_eq!(base_key("code_review"), "code_review");
        assert_eq!(base_key("code_review_r1"), "code_review");
        assert_eq!(base_key("security_audit_r12"), "security_audit");
        assert_eq!(base_key("weird_rx"), "weird_rx");
        assert_eq!(base_key(&"a".repeat(64)).len(), 40);
    }

    #[test]
    fn taken_keys_get_a_suffix() {
        let taken = ["code_review_r1".to_owned(), "code_review_r1_2".to_owned()]
            .into_iter()
            .collect();
        assert_eq!(free_key("fix_x_r1", &taken), "fix_x_r1");
        assert_eq!(free_key("code_review_r1", &taken), "code_review_r1_3");
    }

    #[test]
    fn one_fix_task_per_owning_agent_then_a_re_review() {
        let owners: BTreeMap<String, AgentKind> = [
            ("src/api.ts".to_owned(), AgentKind::Backend),
            ("web/app.tsx".to_owned(), AgentKind::Frontend),
        ]
        .into_iter()
        .collect();
        let blocking = [
            finding("src/api.ts"),
            finding("web/app.tsx"),
            finding("src/api.ts"),
            finding("nobody.ts"),
        ];
        let taken: HashSet<String> = ["security_audit_r2".to_owned()].into_iter().collect();
        let plan = plan_fix_round(
            "security_audit_r1",
            "security_audit",
            1,
            &blocking,
            &owners,
            &taken,
        );
        assert_eq!(plan.unowned, [finding("nobody.ts")]);
        let round = plan.round.expect("a round");
        assert_eq!(round.round, 2);
        let fixes: Vec<(&str, AgentKind, usize)> = round
            .fixes
            .iter()
            .map(|t| (t.key.as_str(), t.agent, t.findings.len()))
            .collect();
        assert_eq!(
            fixes,
            [
                ("fix_security_audit_backend_r2", AgentKind::Backend, 2),
                ("fix_security_audit_frontend_r2", AgentKind::Frontend, 1),
            ]
        );
        assert_eq!(
            round.fixes[0].description,
            "Fix the 2 blocking finding(s) of `security_audit_r1` in `src/api.ts`"
        );
        assert_eq!(
            round.re_review.key, "security_audit_r2_2",
            "the key was taken"
        );
        assert_eq!(round.re_review.kind, "security_audit");
        assert_eq!(round.re_review.findings.len(), 4);
    }

    #[test]
    fn findings_nobody_owns_plan_no_round() {
        let plan = plan_fix_round(
            "code_review",
            "code_review",
            0,
            &[finding("x")],
            &BTreeMap::new(),
            &HashSet::new(),
        );
        assert_eq!(plan.round, None);
        assert_eq!(plan.unowned.len(), 1);
    }
}
