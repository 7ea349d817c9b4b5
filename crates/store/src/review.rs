//! The review → fix loop: a completed review with blocking findings grows its project's
//! graph with one fix task per agent that owns a file at fault, and a re-review of the same
//! type after them, which the review's dependents then wait for. At most
//! `options.max_fix_rounds` (default 1) rounds per review. What the round holds is planned
//! in `guild_core::fix_round`; this module reads what the plan needs and stores it.

use std::collections::{BTreeMap, HashSet};

use guild_core::fix_round::{FixRound, plan_fix_round};
use guild_core::options::DEFAULT_FIX_ROUNDS;
use guild_core::{AgentKind, EventKind, Finding, ProjectId, TaskId, TaskStatus};
use serde_json::json;
use sqlx::PgConnection;

use crate::Result;
use crate::events::NewEvent;

/// A review task that completed, with its findings.
#[derive(Debug, Clone)]
pub(crate) struct CompletedReview<'a> {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub key: &'a str,
    pub kind: &'a str,
    pub priority: i16,
    pub critical: bool,
    pub review_round: i32,
    pub findings: &'a [Finding],
}

/// Grows the graph after each review in `reviews` that has blocking findings and rounds
/// left, and returns the events that say what happened (to record with the completion).
pub(crate) async fn start_fix_rounds(
    conn: &mut PgConnection,
    reviews: &[CompletedReview<'_>],
) -> Result<Vec<(ProjectId, NewEvent)>> {
    let mut log = Vec::new();
    for review in reviews {
        let blocking: Vec<Finding> = review
            .findings
            .iter()
            .filter(|f| f.severity.is_blocking())
            .cloned()
            .collect();
        if blocking.is_empty() {
            continue;
        }
        let event = |kind, data| {
            (
                review.project_id,
                NewEvent::of_task(review.task_id, kind, data),
            )
        };
        let (max_rounds,): (i32,) = sqlx::query_as(
            "SELECT coalesce((options->>'max_fix_rounds')::int4, $2) FROM projects WHERE id = $1",
        )
        .bind(review.project_id)
        .bind(i32::from(DEFAULT_FIX_ROUNDS))
        .fetch_one(&mut *conn)
        .await?;
        if review.review_round >= max_rounds {
            log.push(event(
                EventKind::FixRoundsExhausted,
                json!({
                    "key": review.key,
                    "blocking_findings": blocking.len(),
                    "max_fix_rounds": max_rounds,
                }),
            ));
            continue;
        }
        let (owners, taken) = owners_and_keys(conn, review.project_id, &blocking).await?;
        let plan = plan_fix_round(
            review.key,
            review.kind,
            review.review_round,
            &blocking,
            &owners,
            &taken,
        );
        if !plan.unowned.is_empty() {
            log.push(event(
                EventKind::FindingsUnassigned,
                json!({
                    "key": review.key,
                    "reason": "no task of the project wrote these files",
                    "findings": plan.unowned,
                }),
            ));
        }
        let Some(round) = plan.round else {
            continue;
        };
        insert_round(conn, review, &round).await?;
        log.push(event(
            EventKind::FixRoundStarted,
            json!({
                "key": review.key,
                "round": round.round,
                "blocking_findings": blocking.len(),
                "fix_tasks": round.fixes.iter().map(|t| &t.key).collect::<Vec<_>>(),
                "re_review": round.re_review.key,
            }),
        ));
    }
    Ok(log)
}

/// Each file's owner (the agent of its latest version) among the findings' files, and
/// every key the project's tasks use.
async fn owners_and_keys(
    conn: &mut PgConnection,
    project_id: ProjectId,
    findings: &[Finding],
) -> Result<(BTreeMap<String, AgentKind>, HashSet<String>)> {
    let paths: Vec<&str> = findings.iter().map(|f| f.file.as_str()).collect();
    let owners: BTreeMap<String, AgentKind> = sqlx::query_as::<_, (String, AgentKind)>(
        "SELECT DISTINCT ON (path) path, agent FROM project_files
         WHERE project_id = $1 AND path = ANY($2) AND agent IS NOT NULL
         ORDER BY path, version DESC",
    )
    .bind(project_id)
    .bind(&paths)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let taken: HashSet<String> =
        sqlx::query_as::<_, (String,)>("SELECT key FROM tasks WHERE project_id = $1")
            .bind(project_id)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|(key,)| key)
            .collect();
    Ok((owners, taken))
}

/// Stores a round's tasks and edges: fix tasks after the review, the re-review after the
/// fixes, and whatever waited for the review now also waits for the re-review.
async fn insert_round(
    conn: &mut PgConnection,
    review: &CompletedReview<'_>,
    round: &FixRound,
) -> Result<()> {
    let fix_ids: Vec<TaskId> = round.fixes.iter().map(|_| TaskId::new()).collect();
    let rereview = TaskId::new();
    let tasks: Vec<_> = round.fixes.iter().chain([&round.re_review]).collect();
    let ids: Vec<TaskId> = fix_ids.iter().copied().chain([rereview]).collect();
    let fixes = i32::try_from(fix_ids.len()).unwrap_or(i32::MAX);
    // Fix tasks are ready at once; the re-review waits for every fix.
    let (pending, statuses): (Vec<i32>, Vec<TaskStatus>) = (0..tasks.len())
        .map(|i| {
            if i < fix_ids.len() {
                (0, TaskStatus::Ready)
            } else {
                (fixes, TaskStatus::Blocked)
            }
        })
        .unzip();
    sqlx::query(
        "INSERT INTO tasks (id, project_id, key, kind, agent, description, priority, critical,
                            estimated_minutes, pending_deps, status, max_attempts, queue_at,
                            review_round, findings, revision)
         SELECT t.id, $1, t.key, t.kind, t.agent, t.description, $8, $9, 15, t.pending,
                t.status, p.max_attempts, now(), $10, t.findings, r.revision
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::int4[], $11::text[], $12::jsonb[])
              AS t(id, key, kind, agent, description, pending, status, findings),
              projects p, tasks r
         -- A round belongs to its review's revision.
         WHERE p.id = $1 AND r.id = $13",
    )
    .bind(review.project_id)
    .bind(&ids)
    .bind(tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>())
    .bind(tasks.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>())
    .bind(tasks.iter().map(|t| t.agent).collect::<Vec<_>>())
    .bind(
        tasks
            .iter()
            .map(|t| t.description.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(pending)
    .bind(review.priority)
    .bind(review.critical)
    .bind(round.round)
    .bind(statuses)
    .bind(tasks.iter().map(|t| json!(t.findings)).collect::<Vec<_>>())
    .bind(review.task_id)
    .execute(&mut *conn)
    .await?;
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
    .execute(conn)
    .await?;
    Ok(())
}
