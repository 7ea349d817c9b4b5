//! The review → fix loop: a completed review with blocking findings grows its project's
//! graph with one fix task per agent that owns a file at fault, and a re-review of the same
//! type after them, which the review's dependents then wait for. At most
//! `options.max_fix_rounds` (default 1) rounds per review.

use std::collections::BTreeMap;

use guild_core::{FIX_FINDINGS, Finding};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;
use crate::events::NewEvent;

/// Fix rounds a project allows per review when its options say nothing.
pub const DEFAULT_MAX_FIX_ROUNDS: i32 = 1;

/// A review task that completed, with its findings.
#[derive(Debug, Clone)]
pub(crate) struct CompletedReview<'a> {
    pub project_id: Uuid,
    pub task_id: Uuid,
    pub key: &'a str,
    pub kind: &'a str,
    pub priority: i16,
    pub critical: bool,
    pub review_round: i32,
    pub findings: &'a [Finding],
}

/// A task a fix round adds.
struct NewTask {
    id: Uuid,
    key: String,
    kind: String,
    agent: String,
    description: String,
    findings: Vec<Finding>,
    pending: i32,
    status: &'static str,
}

/// Grows the graph after each review in `reviews` that has blocking findings and rounds
/// left, and returns the events that say what happened (to record with the completion).
pub(crate) async fn start_fix_rounds(
    conn: &mut PgConnection,
    reviews: &[CompletedReview<'_>],
) -> Result<Vec<(Uuid, NewEvent)>> {
    let mut log = Vec::new();
    for review in reviews {
        let blocking: Vec<&Finding> = review
            .findings
            .iter()
            .filter(|f| f.severity.is_blocking())
            .collect();
        if blocking.is_empty() {
            continue;
        }
        let event = |kind, data| {
            (
                review.project_id,
                NewEvent {
                    task_id: Some(review.task_id),
                    kind,
                    data,
                },
            )
        };
        let (max_rounds,): (i32,) = sqlx::query_as(
            "SELECT coalesce((options->>'max_fix_rounds')::int4, $2) FROM projects WHERE id = $1",
        )
        .bind(review.project_id)
        .bind(DEFAULT_MAX_FIX_ROUNDS)
        .fetch_one(&mut *conn)
        .await?;
        if review.review_round >= max_rounds {
            log.push(event(
                "fix_rounds_exhausted",
                json!({
                    "key": review.key,
                    "blocking_findings": blocking.len(),
                    "max_fix_rounds": max_rounds,
                }),
            ));
            continue;
        }

        // Each file's owner: the agent of its latest version.
        let paths: Vec<&str> = blocking.iter().map(|f| f.file.as_str()).collect();
        let owners: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
            "SELECT DISTINCT ON (path) path, agent FROM project_files
             WHERE project_id = $1 AND path = ANY($2) AND agent IS NOT NULL
             ORDER BY path, version DESC",
        )
        .bind(review.project_id)
        .bind(&paths)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let mut by_agent: BTreeMap<&str, Vec<Finding>> = BTreeMap::new();
        let mut unowned = Vec::new();
        for finding in &blocking {
            match owners.get(&finding.file) {
                Some(agent) => by_agent
                    .entry(agent.as_str())
                    .or_default()
                    .push((*finding).clone()),
                None => unowned.push((*finding).clone()),
            }
        }
        if !unowned.is_empty() {
            log.push(event(
                "findings_unassigned",
                json!({
                    "key": review.key,
                    "reason": "no task of the project wrote these files",
                    "findings": unowned,
                }),
            ));
        }
        if by_agent.is_empty() {
            continue;
        }

        let round = review.review_round + 1;
        let base = base_key(review.key);
        let mut tasks: Vec<NewTask> = by_agent
            .into_iter()
            .map(|(agent, findings)| {
                let files: Vec<String> = findings
                    .iter()
                    .map(|f| format!("`{}`", f.file))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                NewTask {
                    id: Uuid::now_v7(),
                    key: format!("fix_{base}_{agent}_r{round}"),
                    kind: FIX_FINDINGS.to_owned(),
                    agent: agent.to_owned(),
                    description: format!(
                        "Fix the {} blocking finding(s) of `{}` in {}",
                        findings.len(),
                        review.key,
                        files.join(", ")
                    ),
                    findings,
                    pending: 0,
                    status: "ready",
                }
            })
            .collect();
        let fixes = tasks.len() as i32;
        let mut taken: std::collections::HashSet<String> =
            sqlx::query_as::<_, (String,)>("SELECT key FROM tasks WHERE project_id = $1")
                .bind(review.project_id)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(key,)| key)
                .collect();
        tasks.push(NewTask {
            id: Uuid::now_v7(),
            key: format!("{base}_r{round}"),
            kind: review.kind.to_owned(),
            agent: "reviewer".to_owned(),
            description: format!(
                "Review again after fix round {round}: check that the blocking findings of `{}` are fixed, and report what is still wrong",
                review.key
            ),
            findings: blocking.iter().map(|f| (*f).clone()).collect(),
            pending: fixes,
            status: "blocked",
        });
        let rereview = tasks.last().expect("the re-review").id;
        // A custom workflow may already use a key: the new task takes the next free one.
        for task in &mut tasks {
            task.key = free_key(&task.key, &taken);
            taken.insert(task.key.clone());
        }

        sqlx::query(
            "INSERT INTO tasks (id, project_id, key, kind, agent, description, priority, critical,
                                estimated_minutes, pending_deps, status, max_attempts, queue_at,
                                review_round, findings)
             SELECT t.id, $1, t.key, t.kind, t.agent, t.description, $8, $9, 15, t.pending,
                    t.status, p.max_attempts, now(), $10, t.findings
             FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::int4[], $11::text[], $12::jsonb[])
                  AS t(id, key, kind, agent, description, pending, status, findings),
                  projects p
             WHERE p.id = $1",
        )
        .bind(review.project_id)
        .bind(tasks.iter().map(|t| t.id).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.agent.as_str()).collect::<Vec<_>>())
        .bind(
            tasks
                .iter()
                .map(|t| t.description.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(tasks.iter().map(|t| t.pending).collect::<Vec<_>>())
        .bind(review.priority)
        .bind(review.critical)
        .bind(round)
        .bind(tasks.iter().map(|t| t.status).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| json!(t.findings)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;

        // Fix tasks follow the review; the re-review follows the fixes; whatever waited for
        // the review now also waits for the re-review.
        let fix_ids: Vec<Uuid> = tasks[..tasks.len() - 1].iter().map(|t| t.id).collect();
        sqlx::query(
            "WITH edges AS (
                 SELECT f AS task_id, $1::uuid AS depends_on FROM unnest($2::uuid[]) f
                 UNION ALL
                 SELECT $3::uuid, f FROM unnest($2::uuid[]) f
             ), waiting AS (
                 UPDATE tasks t SET pending_deps = t.pending_deps + 1
                 FROM task_dependencies d
                 WHERE d.depends_on = $1 AND t.id = d.task_id AND t.status = 'blocked'
                 RETURNING t.id
             )
             INSERT INTO task_dependencies (task_id, depends_on)
             SELECT task_id, depends_on FROM edges
             UNION ALL
             SELECT id, $3 FROM waiting",
        )
        .bind(review.task_id)
        .bind(&fix_ids)
        .bind(rereview)
        .execute(&mut *conn)
        .await?;

        log.push(event(
            "fix_round_started",
            json!({
                "key": review.key,
                "round": round,
                "blocking_findings": blocking.len(),
                "fix_tasks": tasks[..tasks.len() - 1].iter().map(|t| &t.key).collect::<Vec<_>>(),
                "re_review": tasks.last().map(|t| &t.key),
            }),
        ));
    }
    Ok(log)
}

/// `key`, or `key_2`, `key_3`, ... when it is taken.
fn free_key(key: &str, taken: &std::collections::HashSet<String>) -> String {
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
}
