//! Completing tasks in batches: one transaction of a fixed number of statements, whatever
//! the batch's size.

use std::collections::HashMap;

use guild_core::change::DESIGN_UPDATE;
use guild_core::{AgentKind, EventKind, ProjectId, ProjectStatus, TaskId, TaskStatus};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use super::accounting::{self, UsageRow};
use super::release::{finish_projects_if_done, release_dependents};
use super::{Completion, RejectedFile, Settled};
use crate::changes::CompletedUpdate;
use crate::events::{self, NewEvent};
use crate::files::{self, Arriving, Clash, NewFile, Writer};
use crate::listener::notify_ready;
use crate::locks::lock_projects;
use crate::review::{self, CompletedReview};
use crate::text::storable;
use crate::{Result, StoreError};

/// A task `complete_many` completed.
#[derive(sqlx::FromRow)]
struct UpdatedRow {
    id: TaskId,
    key: String,
    agent: AgentKind,
    status: TaskStatus,
    kind: String,
    priority: i16,
    critical: bool,
    review_round: i32,
}

impl UpdatedRow {
    fn awaiting_approval(&self) -> bool {
        self.status == TaskStatus::AwaitingApproval
    }
}

/// A completion with what the settlement refuses taken out: the files that clash with
/// the project's tree move from its files to its refused blocks, in its result too.
struct Prepared<'a> {
    completion: &'a Completion,
    result: Value,
    files: Vec<&'a NewFile>,
    refused: Vec<RejectedFile>,
}

impl<'a> Prepared<'a> {
    fn new(completion: &'a Completion, clashes: &[Clash]) -> Self {
        let mine: Vec<&Clash> = clashes
            .iter()
            .filter(|c| c.task_id == completion.task_id)
            .collect();
        let clashing = |path: &str| mine.iter().any(|c| c.path == path);
        let mut result = storable(&completion.result);
        let mut refused = completion.rejected_files.clone();
        for clash in &mine {
            refused.push(RejectedFile {
                path: Some(clash.path.clone()),
                reason: clash.reason.clone(),
            });
        }
        if !mine.is_empty() {
            for list in ["files", "invalid_files"] {
                if let Some(paths) = result.get_mut(list).and_then(Value::as_array_mut) {
                    paths.retain(|p| !p.as_str().is_some_and(clashing));
                }
            }
            result["rejected_files"] = storable(&json!(refused));
        }
        Self {
            completion,
            result,
            files: completion
                .files
                .iter()
                .filter(|f| !clashing(&f.path))
                .collect(),
            refused,
        }
    }
}

/// Completes many running tasks (of any projects) in one transaction of a fixed number of
/// statements, whatever their number: what a busy worker pool does with the results that
/// finished while its last batch was being stored. Each task is fenced on its attempt: one
/// that is no longer running at that attempt gets [`StoreError::NotRunning`] in its place
/// of the answer (its calls are still counted), and the others complete.
///
/// # Errors
///
/// A database error fails the whole batch; nothing of it is stored.
#[tracing::instrument(skip_all, fields(completions = completions.len()), err)]
pub async fn complete_many(
    pool: &PgPool,
    completions: &[Completion],
) -> Result<Vec<Result<Settled>>> {
    if completions.is_empty() {
        return Ok(Vec::new());
    }
    let mut projects: Vec<ProjectId> = completions.iter().map(|c| c.project_id).collect();
    projects.sort_unstable();
    projects.dedup();

    let mut tx = pool.begin().await?;
    let statuses = lock_projects(&mut tx, &projects).await?;
    let prepared = prepare(&mut tx, completions).await?;
    let rows = mark_completed(&mut tx, &prepared).await?;
    let updated: HashMap<TaskId, &UpdatedRow> = rows.iter().map(|row| (row.id, row)).collect();
    let done: Vec<&Prepared<'_>> = prepared
        .iter()
        .filter(|p| updated.contains_key(&p.completion.task_id))
        .collect();
    let (counts, mut log) = store_done(&mut tx, &done, &updated).await?;
    let counts = counts.as_counts();
    let late = completions
        .iter()
        .filter(|c| !updated.contains_key(&c.task_id));
    let mut dropped = accounting::dropped_events(late, &statuses);
    dropped.append(&mut log);
    let mut log = dropped;
    for p in &done {
        let events = completion_events(p, updated[&p.completion.task_id], counts);
        log.extend(events.into_iter().map(|e| (p.completion.project_id, e)));
    }
    events::record_across(&mut tx, &log).await?;
    account(&mut tx, completions, &done, &updated).await?;
    let finished = finish_projects_if_done(&mut tx, &projects).await?;
    // Wake the workers even when nothing was released: a claim skips the tasks of a project
    // locked by a settling transaction, and this commit is when they can be claimed.
    notify_ready(&mut tx).await?;
    tx.commit().await?;
    Ok(outcomes(completions, &updated, counts, &finished))
}

/// The batch's completions with what the settlement refuses taken out (files that clash
/// with the project's tree).
async fn prepare<'a>(
    conn: &mut PgConnection,
    completions: &'a [Completion],
) -> Result<Vec<Prepared<'a>>> {
    let arriving: Vec<Arriving<'_>> = completions
        .iter()
        .flat_map(|c| {
            c.files.iter().map(|f| Arriving {
                project_id: c.project_id,
                task_id: c.task_id,
                path: &f.path,
            })
        })
        .collect();
    let clashes = files::clashes(conn, &arriving).await?;
    Ok(completions
        .iter()
        .map(|c| Prepared::new(c, &clashes))
        .collect())
}

/// What storing the completed tasks' work counted per task.
struct Stored {
    written: HashMap<TaskId, u64>,
    released: HashMap<TaskId, u64>,
}

impl Stored {
    fn as_counts(&self) -> Counts<'_> {
        Counts {
            written: &self.written,
            released: &self.released,
        }
    }
}

/// Stores the completed tasks' work: file versions and their conflicts, fix rounds of the
/// reviews, dependents released, analyses. Returns the counts and the events of the
/// conflicts and fix rounds.
async fn store_done(
    conn: &mut PgConnection,
    done: &[&Prepared<'_>],
    updated: &HashMap<TaskId, &UpdatedRow>,
) -> Result<(Stored, Vec<(ProjectId, NewEvent)>)> {
    let writes: Vec<(Writer, Vec<&NewFile>)> = done
        .iter()
        .map(|p| {
            let c = p.completion;
            let writer = Writer {
                project_id: c.project_id,
                task_id: c.task_id,
                agent: updated[&c.task_id].agent,
                attempt: c.attempt,
            };
            (writer, p.files.clone())
        })
        .collect();
    let written = files::write_versions(conn, &writes).await?;
    let conflicts = files::record_conflicts(conn, &written).await?;
    let mut log = start_fix_rounds(conn, done, updated).await?;
    log.extend(conflicts.iter().map(files::conflict_event));
    let completed: Vec<TaskId> = done
        .iter()
        .map(|p| p.completion.task_id)
        .filter(|id| !updated[id].awaiting_approval())
        .collect();
    let released = release_dependents(conn, &completed).await?;
    store_analyses(conn, done).await?;
    store_designs(conn, done).await?;
    log.extend(plan_changes(conn, done, updated).await?);
    let stored = Stored {
        written: files::counts(&written),
        released,
    };
    Ok((stored, log))
}

/// Counts every completion's calls (a late one's too: they were paid) and ends the
/// completed tasks' sessions.
async fn account(
    conn: &mut PgConnection,
    completions: &[Completion],
    done: &[&Prepared<'_>],
    updated: &HashMap<TaskId, &UpdatedRow>,
) -> Result<()> {
    let usage: Vec<UsageRow<'_>> = completions
        .iter()
        .map(|c| UsageRow {
            project_id: c.project_id,
            task_id: c.task_id,
            calls: &c.llm_calls,
            // A dropped result's task may be running again: its reservations are not
            // this attempt's to clear.
            settles_attempt: updated.contains_key(&c.task_id),
        })
        .collect();
    accounting::add_usage(conn, &usage).await?;
    let sessions: Vec<(uuid::Uuid, i64, bool)> = done
        .iter()
        .filter_map(|p| {
            let c = p.completion;
            c.session_id.map(|s| (s, c.duration_ms, true))
        })
        .collect();
    accounting::end_sessions(conn, &sessions).await
}

/// The files written and dependents released per completed task.
#[derive(Clone, Copy)]
struct Counts<'a> {
    written: &'a HashMap<TaskId, u64>,
    released: &'a HashMap<TaskId, u64>,
}

impl Counts<'_> {
    fn written(&self, task_id: TaskId) -> u64 {
        self.written.get(&task_id).copied().unwrap_or(0)
    }

    fn released(&self, task_id: TaskId) -> u64 {
        self.released.get(&task_id).copied().unwrap_or(0)
    }
}

/// The fenced update: completes each task still running at its attempt and stores its
/// result. A task the project listed in `options.require_approval` waits for a human with
/// its result stored; its dependents are released when it is approved. A change's task
/// (`readme_c2`) waits when its first-generation task (`readme`) is listed.
async fn mark_completed(
    conn: &mut PgConnection,
    prepared: &[Prepared<'_>],
) -> Result<Vec<UpdatedRow>> {
    let rows = sqlx::query_as(
        "UPDATE tasks t
         SET status = CASE WHEN p.options->'require_approval' ? regexp_replace(t.key, '_c[0-9]+$', '')
                           THEN 'awaiting_approval' ELSE 'completed' END,
             completed_at = CASE WHEN p.options->'require_approval' ? regexp_replace(t.key, '_c[0-9]+$', '')
                                 THEN NULL ELSE now() END,
             result = u.result || jsonb_build_object('findings', u.findings),
             error = NULL, lease_expires_at = NULL
         FROM unnest($1::uuid[], $2::int4[], $3::jsonb[], $4::jsonb[])
              AS u(id, attempt, result, findings), projects p
         WHERE t.id = u.id AND t.status = 'running' AND t.attempt = u.attempt
           AND p.id = t.project_id
         RETURNING t.id, t.key, t.agent, t.status, t.kind, t.priority, t.critical, t.review_round",
    )
    .bind(
        prepared
            .iter()
            .map(|p| p.completion.task_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        prepared
            .iter()
            .map(|p| p.completion.attempt)
            .collect::<Vec<_>>(),
    )
    .bind(
        prepared
            .iter()
            .map(|p| p.result.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        prepared
            .iter()
            .map(|p| storable(&json!(p.completion.findings)))
            .collect::<Vec<_>>(),
    )
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Starts the fix rounds of the completed reviews that found something.
async fn start_fix_rounds(
    conn: &mut PgConnection,
    done: &[&Prepared<'_>],
    updated: &HashMap<TaskId, &UpdatedRow>,
) -> Result<Vec<(ProjectId, NewEvent)>> {
    let reviews: Vec<CompletedReview<'_>> = done
        .iter()
        .map(|p| p.completion)
        .filter_map(|c| {
            let row = updated[&c.task_id];
            (row.status == TaskStatus::Completed && !c.findings.is_empty()).then_some(
                CompletedReview {
                    project_id: c.project_id,
                    task_id: c.task_id,
                    key: &row.key,
                    kind: &row.kind,
                    priority: row.priority,
                    critical: row.critical,
                    review_round: row.review_round,
                    findings: &c.findings,
                },
            )
        })
        .collect();
    review::start_fix_rounds(conn, &reviews).await
}

/// Stores the requirements analyses the batch produced on their projects.
async fn store_analyses(conn: &mut PgConnection, done: &[&Prepared<'_>]) -> Result<()> {
    let analyses: Vec<(ProjectId, Value)> = done
        .iter()
        .filter_map(|p| {
            let c = p.completion;
            c.requirements.as_ref().map(|r| (c.project_id, storable(r)))
        })
        .collect();
    if analyses.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE projects p SET requirements = u.requirements
         FROM unnest($1::uuid[], $2::jsonb[]) AS u(id, requirements) WHERE p.id = u.id",
    )
    .bind(analyses.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(analyses.into_iter().map(|(_, r)| r).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Grows the changes whose design update completed in the batch.
async fn plan_changes(
    conn: &mut PgConnection,
    done: &[&Prepared<'_>],
    updated: &HashMap<TaskId, &UpdatedRow>,
) -> Result<Vec<(ProjectId, NewEvent)>> {
    let updates: Vec<CompletedUpdate> = done
        .iter()
        .filter(|p| {
            updated[&p.completion.task_id].kind == DESIGN_UPDATE
                && !updated[&p.completion.task_id].awaiting_approval()
        })
        .filter_map(|p| {
            let c = p.completion;
            Some(CompletedUpdate {
                project_id: c.project_id,
                task_id: c.task_id,
                design: c.design.clone()?,
            })
        })
        .collect();
    crate::changes::plan_changes(conn, &updates).await
}

/// Stores the designs the batch produced, each as its project's next version.
async fn store_designs(conn: &mut PgConnection, done: &[&Prepared<'_>]) -> Result<()> {
    let designs: Vec<(ProjectId, TaskId, Value)> = done
        .iter()
        .filter_map(|p| {
            let c = p.completion;
            c.design
                .as_ref()
                .map(|d| (c.project_id, c.task_id, storable(d)))
        })
        .collect();
    if designs.is_empty() {
        return Ok(());
    }
    // The project lock is held: versions are numbered without a race.
    sqlx::query(
        "INSERT INTO designs (project_id, version, task_id, design)
         SELECT u.project_id,
                coalesce((SELECT max(d.version) FROM designs d WHERE d.project_id = u.project_id), 0)
                    + row_number() OVER (PARTITION BY u.project_id ORDER BY u.ord),
                u.task_id, u.design
         FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[]) WITH ORDINALITY AS u(project_id, task_id, design, ord)",
    )
    .bind(designs.iter().map(|(p, _, _)| *p).collect::<Vec<_>>())
    .bind(designs.iter().map(|(_, t, _)| *t).collect::<Vec<_>>())
    .bind(designs.into_iter().map(|(_, _, d)| d).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// A completed task's own events: completed (or awaiting approval), its invalid files, its
/// refused blocks, its cut-off answer, its model calls.
fn completion_events(p: &Prepared<'_>, row: &UpdatedRow, counts: Counts<'_>) -> Vec<NewEvent> {
    let c = p.completion;
    let event = |kind, data| NewEvent::of_task(c.task_id, kind, data);
    let mut log = vec![event(
        if row.awaiting_approval() {
            EventKind::TaskAwaitingApproval
        } else {
            EventKind::TaskCompleted
        },
        json!({
            "key": row.key,
            "agent": row.agent,
            "attempt": c.attempt,
            "duration_ms": c.duration_ms,
            "files_written": counts.written(c.task_id),
            "released": counts.released(c.task_id),
        }),
    )];
    log.extend(
        p.files
            .iter()
            .filter(|f| f.validation["status"] == "invalid")
            .map(|f| {
                event(
                    EventKind::FileInvalid,
                    json!({
                        "path": f.path,
                        "repair_round": f.repair_round,
                        "errors": f.validation["errors"],
                    }),
                )
            }),
    );
    log.extend(p.refused.iter().map(|r| {
        event(
            EventKind::FileRejected,
            json!({"path": r.path, "reason": r.reason, "attempt": c.attempt}),
        )
    }));
    if !c.cut_off.is_empty() {
        log.push(event(
            EventKind::AnswerTruncated,
            json!({
                "files": c.cut_off,
                "reason": "the model's answer hit its length limit while writing these files, and stayed cut after being asked to continue: they are kept incomplete and marked invalid",
            }),
        ));
    }
    log.extend(accounting::llm_call_events(c.task_id, &c.llm_calls));
    log
}

/// Each completion's answer: what settling it changed, or why it was not stored. A project
/// that ended is reported once, with the last of its tasks in the batch.
fn outcomes(
    completions: &[Completion],
    updated: &HashMap<TaskId, &UpdatedRow>,
    counts: Counts<'_>,
    finished: &HashMap<ProjectId, ProjectStatus>,
) -> Vec<Result<Settled>> {
    let last_of_project: HashMap<ProjectId, usize> = completions
        .iter()
        .enumerate()
        .filter(|(_, c)| updated.contains_key(&c.task_id))
        .map(|(i, c)| (c.project_id, i))
        .collect();
    completions
        .iter()
        .enumerate()
        .map(|(i, c)| match updated.get(&c.task_id) {
            None => Err(StoreError::NotRunning {
                task_id: c.task_id,
                attempt: c.attempt,
            }),
            Some(row) => Ok(Settled {
                released: counts.released(c.task_id),
                files_written: counts.written(c.task_id),
                awaiting_approval: row.awaiting_approval(),
                project_finished: finished
                    .get(&c.project_id)
                    .copied()
                    .filter(|_| last_of_project[&c.project_id] == i),
                ..Settled::nothing(c.project_id)
            }),
        })
        .collect()
}
