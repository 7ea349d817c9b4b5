//! What a settlement changes in the graph: dependents released, projects finished.

use std::collections::HashMap;

use guild_core::{EventKind, ProjectId, ProjectStatus, TaskId};
use sqlx::PgConnection;

use crate::Result;

/// Counts the tasks `completed` as completed for each of their dependents and makes those
/// with no pending dependency left `ready`: they queue from now, a second apart within a
/// project (see the scheduling migration). Returns, per completed task, how many of its
/// dependents became ready.
pub(crate) async fn release_dependents(
    conn: &mut PgConnection,
    completed: &[TaskId],
) -> Result<HashMap<TaskId, u64>> {
    if completed.is_empty() {
        return Ok(HashMap::new());
    }
    let released: Vec<(TaskId, i64)> = sqlx::query_as(
        "WITH hits AS (
             SELECT d.task_id AS id, count(*)::int4 AS n
             FROM task_dependencies d WHERE d.depends_on = ANY($1)
             GROUP BY d.task_id
         ), dependents AS (
             SELECT t.id, t.project_id, t.pending_deps, t.priority, t.key, h.n
             FROM hits h JOIN tasks t ON t.id = h.id
             WHERE t.status = 'blocked'
         ), turns AS (
             SELECT id, row_number() OVER (PARTITION BY project_id ORDER BY priority, key) - 1 AS turn
             FROM dependents WHERE pending_deps = n
         ), released AS (
             UPDATE tasks t
             SET pending_deps = t.pending_deps - d.n,
                 status = CASE WHEN t.pending_deps = d.n THEN 'ready' ELSE 'blocked' END,
                 run_after = now(),
                 queue_at = now() + coalesce(turns.turn, 0) * interval '1 second'
             FROM dependents d LEFT JOIN turns ON turns.id = d.id
             WHERE t.id = d.id
             RETURNING t.id, t.status
         )
         SELECT e.depends_on, count(*)
         FROM released r JOIN task_dependencies e ON e.task_id = r.id
         WHERE r.status = 'ready' AND e.depends_on = ANY($1)
         GROUP BY e.depends_on",
    )
    .bind(completed)
    .fetch_all(&mut *conn)
    .await?;
    Ok(released
        .into_iter()
        .map(|(id, n)| (id, n.unsigned_abs()))
        .collect())
}

/// Ends each of `projects` whose tasks can no longer run: `completed` when every task
/// completed, `failed` (naming what did not) otherwise. Returns the projects it ended.
pub(crate) async fn finish_projects_if_done(
    conn: &mut PgConnection,
    projects: &[ProjectId],
) -> Result<HashMap<ProjectId, ProjectStatus>> {
    let finished: Vec<(ProjectId, ProjectStatus)> = sqlx::query_as(
        "WITH counts AS (
             SELECT project_id,
                    count(*) FILTER (WHERE status IN ('blocked', 'ready', 'running',
                                                      'awaiting_approval')) AS open,
                    count(*) FILTER (WHERE status <> 'completed') AS incomplete,
                    count(*) FILTER (WHERE status = 'failed') AS failed,
                    count(*) FILTER (WHERE status = 'skipped') AS skipped,
                    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                    count(*) AS total
             FROM tasks t WHERE project_id = ANY($1)
               -- The project runs, and finishes, with its current revision's tasks.
               AND revision = (SELECT revision FROM projects p WHERE p.id = t.project_id)
             GROUP BY project_id
         ), verification AS (
             -- A project that requires it fails unless its last verification passed.
             SELECT p.id AS project_id,
                    coalesce((p.options->>'require_verified')::boolean, false)
                    AND coalesce(v.result->'verification'->>'status', '') <> 'passed' AS unmet,
                    coalesce(v.result->'verification'->>'summary', 'the project was not verified') AS summary
             FROM projects p
             LEFT JOIN LATERAL (
                 SELECT t.result FROM tasks t
                 WHERE t.project_id = p.id AND t.kind = 'verify' AND t.status = 'completed'
                 ORDER BY t.revision DESC, t.review_round DESC LIMIT 1
             ) v ON true
             WHERE p.id = ANY($1)
         ), finished AS (
             UPDATE projects p
             SET status = CASE WHEN c.incomplete = 0 AND NOT v.unmet THEN 'completed' ELSE 'failed' END,
                 finished_at = now(),
                 error = CASE WHEN c.incomplete > 0
                              THEN format('%s of %s tasks did not complete: %s failed, %s skipped, %s cancelled',
                                          c.incomplete, c.total, c.failed, c.skipped, c.cancelled)
                              WHEN v.unmet THEN format('the verification did not pass (options.require_verified): %s', v.summary)
                         END
             FROM counts c JOIN verification v USING (project_id)
             WHERE p.id = c.project_id AND p.status IN ('pending', 'running') AND c.open = 0
             RETURNING p.id, p.status, p.error
         ), logged AS (
             INSERT INTO events (project_id, kind, data)
             SELECT id, CASE WHEN status = 'completed' THEN $2 ELSE $3 END,
                    jsonb_build_object('error', error)
             FROM finished ORDER BY id
         )
         SELECT id, status FROM finished",
    )
    .bind(projects)
    .bind(EventKind::ProjectCompleted)
    .bind(EventKind::ProjectFailed)
    .fetch_all(conn)
    .await?;
    Ok(finished.into_iter().collect())
}

/// [`finish_projects_if_done`] for one project.
pub(crate) async fn finish_project_if_done(
    conn: &mut PgConnection,
    project_id: ProjectId,
) -> Result<Option<ProjectStatus>> {
    Ok(finish_projects_if_done(conn, &[project_id])
        .await?
        .remove(&project_id))
}
