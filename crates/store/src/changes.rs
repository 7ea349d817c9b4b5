//! Change requests: revisions of a project. A change adds revision `n` with two tasks
//! (its analysis, then its design update); when the design update completes, the change
//! grows the tasks that own what changes, then its verification and review
//! (`plan_changes`, planned by `guild_core::change`). Earlier revisions' tasks never run
//! again; the project runs, and finishes, with its current revision's tasks.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use guild_core::change::{CHANGE_ANALYSIS, DESIGN_UPDATE, OriginalTask, change_key, plan_change};
use guild_core::{
    AgentKind, EventKind, ProjectId, ProjectOptions, ProjectStatus, TaskId, TaskStatus,
};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use crate::events::{self, NewEvent};
use crate::listener::notify_ready;
use crate::locks::lock_project;
use crate::projects::{Idempotency, Usage};
use crate::{Result, StoreError};

/// A change request.
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    pub description: &'a str,
    /// `max_tokens` and `max_cost_usd` bound the change's own spend; the rest apply to its
    /// tasks as to a project's.
    pub options: &'a ProjectOptions,
    /// Budgets of a change whose options set none (the server's defaults).
    pub default_max_tokens: Option<u64>,
    pub default_max_cost_usd: Option<f64>,
    pub idempotency: Option<Idempotency<'a>>,
}

/// A revision of a project: 1 for its first generation, one more per change.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub project_id: ProjectId,
    pub number: i32,
    pub description: String,
    /// The project's status while this is its current revision; the status it ended with
    /// once a later one superseded it.
    pub status: ProjectStatus,
    pub created_at: DateTime<Utc>,
    /// What its tasks' model calls used.
    pub usage: Usage,
    /// The keys of the tasks it added, by priority then key.
    pub tasks: Vec<String>,
}

/// Requests a change of a finished project: revision `n + 1`, its analysis and design
/// update queued, the project running again with a budget for the change alone.
///
/// # Errors
///
/// [`StoreError::NotFound`] for an unknown project; [`StoreError::Conflict`] while the
/// project runs, when it has no file to change, or for an idempotency key used with
/// another request; a database error otherwise.
pub async fn request(
    pool: &PgPool,
    project_id: ProjectId,
    change: &NewChange<'_>,
) -> Result<(Revision, bool)> {
    let mut tx = pool.begin().await?;
    let status = lock_project(&mut tx, project_id).await?;
    if let Some(idempotency) = change.idempotency {
        let found: Option<(i32, Option<String>)> = sqlx::query_as(
            "SELECT number, request_hash FROM revisions WHERE project_id = $1 AND idempotency_key = $2",
        )
        .bind(project_id)
        .bind(idempotency.key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((number, hash)) = found {
            if hash.as_deref() != Some(idempotency.request_hash) {
                return Err(StoreError::Conflict(
                    "this Idempotency-Key was already used with a different request".into(),
                ));
            }
            tx.commit().await?;
            let revision = revision(pool, project_id, number)
                .await?
                .ok_or(StoreError::NotFound("revision"))?;
            return Ok((revision, false));
        }
    }
    if !status.is_finished() {
        return Err(StoreError::Conflict(format!(
            "the project is {status}: a change can be requested once it has finished"
        )));
    }
    let (files, live, cost_unknown): (i64, i64, bool) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM project_files WHERE project_id = $1),
                (SELECT count(*) FROM tasks WHERE project_id = $1
                 AND status IN ('running', 'awaiting_approval')),
                (SELECT cost_usd IS NULL FROM projects WHERE id = $1)",
    )
    .bind(project_id)
    .fetch_one(&mut *tx)
    .await?;
    if files == 0 {
        return Err(StoreError::Conflict(
            "the project has no file to change".into(),
        ));
    }
    // A failed project may still have tasks finishing or waiting for a human: what they
    // write would land in the earlier revision after the change began.
    if live > 0 {
        return Err(StoreError::Conflict(format!(
            "{live} task(s) of the project are still running or awaiting approval: wait for them, or approve or reject them, then request the change"
        )));
    }
    if cost_unknown && change.options.max_cost_usd.is_some() {
        return Err(StoreError::Conflict(
            "the project's cost is unknown (a model's price is unknown), so a cost budget cannot be held: set max_tokens instead".into(),
        ));
    }
    let number = add_revision(&mut tx, project_id, status, change).await?;
    let first = add_first_tasks(&mut tx, project_id, number, change.description).await?;
    events::record(
        &mut tx,
        project_id,
        &[NewEvent {
            task_id: None,
            kind: EventKind::ChangeRequested,
            data: json!({"revision": number, "description": change.description, "tasks": first}),
        }],
    )
    .await?;
    notify_ready(&mut tx).await?;
    tx.commit().await?;
    let revision = revision(pool, project_id, number)
        .await?
        .ok_or(StoreError::NotFound("revision"))?;
    Ok((revision, true))
}

/// Stores revision `n + 1` and makes it the project's, running again, with the change's
/// budget on top of what the project spent (the project's `options.max_tokens` and
/// `options.max_cost_usd` become those sums: the budget columns are generated from them).
async fn add_revision(
    conn: &mut PgConnection,
    project_id: ProjectId,
    status: ProjectStatus,
    change: &NewChange<'_>,
) -> Result<i32> {
    let options = serde_json::to_value(change.options).expect("options serialise");
    let max_tokens = change
        .options
        .max_tokens
        .or(change.default_max_tokens)
        .map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    let max_cost = change.options.max_cost_usd.or(change.default_max_cost_usd);
    let (number,): (i32,) = sqlx::query_as(
        "WITH superseded AS (
             UPDATE revisions r SET status = $2
             FROM projects p WHERE p.id = $1 AND r.project_id = p.id AND r.number = p.revision
             RETURNING r.number
         ), project AS (
             UPDATE projects SET revision = revision + 1, status = 'running', finished_at = NULL,
                                 error = NULL,
                                 -- The budget columns are generated from the options.
                                 options = (options - 'max_tokens' - 'max_cost_usd')
                                     || CASE WHEN $5::int8 IS NULL THEN '{}'::jsonb ELSE
                                        jsonb_build_object('max_tokens', prompt_tokens + completion_tokens + $5) END
                                     || CASE WHEN $6::float8 IS NULL OR cost_usd IS NULL THEN '{}'::jsonb ELSE
                                        jsonb_build_object('max_cost_usd', round(cost_usd + $6::numeric, 6)) END
             WHERE id = $1 RETURNING revision
         )
         INSERT INTO revisions (project_id, number, description, options, idempotency_key, request_hash)
         SELECT $1, revision, $3, $4, $7, $8 FROM project
         RETURNING number",
    )
    .bind(project_id)
    .bind(status)
    .bind(change.description)
    .bind(&options)
    .bind(max_tokens)
    .bind(max_cost)
    .bind(change.idempotency.map(|i| i.key))
    .bind(change.idempotency.map(|i| i.request_hash))
    .fetch_one(conn)
    .await?;
    Ok(number)
}

/// The change's analysis, after every completed task of the project (so it sees every file
/// as it stands), and its design update after the analysis.
async fn add_first_tasks(
    conn: &mut PgConnection,
    project_id: ProjectId,
    number: i32,
    description: &str,
) -> Result<Vec<String>> {
    let analysis = TaskId::new();
    let update = TaskId::new();
    let keys = [
        change_key(CHANGE_ANALYSIS, number),
        change_key(DESIGN_UPDATE, number),
    ];
    sqlx::query(
        "INSERT INTO tasks (id, project_id, key, kind, agent, description, priority, critical,
                            estimated_minutes, pending_deps, status, max_attempts, queue_at,
                            revision)
         SELECT t.id, $1, t.key, t.kind, 'analyst', t.description, 0, true, t.minutes,
                t.pending, t.status, p.max_attempts, now(), $2
         FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::int4[], $8::int4[], $9::text[])
              AS t(id, key, kind, description, minutes, pending, status),
              projects p
         WHERE p.id = $1",
    )
    .bind(project_id)
    .bind(number)
    .bind([analysis, update])
    .bind(&keys)
    .bind([CHANGE_ANALYSIS, DESIGN_UPDATE])
    .bind([
        format!("Analyse the change request of revision {number}: {description}"),
        format!("Update the design for the change of revision {number}: {description}"),
    ])
    .bind([10, 15])
    .bind([0, 1])
    .bind([TaskStatus::Ready, TaskStatus::Blocked])
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO task_dependencies (task_id, depends_on)
         SELECT $1, id FROM tasks
         WHERE project_id = $2 AND status = 'completed' AND revision < $4
         UNION ALL SELECT $3, $1",
    )
    .bind(analysis)
    .bind(project_id)
    .bind(update)
    .bind(number)
    .execute(conn)
    .await?;
    Ok(keys.to_vec())
}

/// A completed design update of a change, to plan from.
#[derive(Debug, Clone)]
pub(crate) struct CompletedUpdate {
    pub project_id: ProjectId,
    pub task_id: TaskId,
    /// The updated design.
    pub design: Value,
}

/// Grows each change whose design update completed: the tasks owning the files the change
/// touches (named by its analysis, or new in the design), then verification and review.
/// Returns the events saying so.
pub(crate) async fn plan_changes(
    conn: &mut PgConnection,
    updates: &[CompletedUpdate],
) -> Result<Vec<(ProjectId, NewEvent)>> {
    let mut log = Vec::new();
    for update in updates {
        let (revision,): (i32,) = sqlx::query_as("SELECT revision FROM tasks WHERE id = $1")
            .bind(update.task_id)
            .fetch_one(&mut *conn)
            .await?;
        let original = original_tasks(conn, update.project_id).await?;
        let (analysis, description, previous): (Option<Value>, String, Option<Value>) = sqlx::query_as(
            "SELECT (SELECT result->'change' FROM tasks WHERE project_id = $1 AND revision = $2 AND kind = $3),
                    r.description,
                    -- The design the files were last built to: the newest of the first
                    -- generation or of a change that completed (a failed or cancelled
                    -- change's design may never have been built).
                    (SELECT d.design FROM designs d
                     JOIN tasks dt ON dt.id = d.task_id
                     LEFT JOIN revisions dr ON dr.project_id = d.project_id AND dr.number = dt.revision
                     WHERE d.project_id = $1 AND dt.revision < $2
                       AND (dt.revision = 1 OR dr.status = 'completed')
                     ORDER BY d.version DESC LIMIT 1)
             FROM revisions r WHERE r.project_id = $1 AND r.number = $2",
        )
        .bind(update.project_id)
        .bind(revision)
        .bind(CHANGE_ANALYSIS)
        .fetch_one(&mut *conn)
        .await?;
        let mut owners = owners(
            &update.design,
            previous.as_ref(),
            analysis.as_ref(),
            &original,
        );
        owners
            .extend(writers_of_named(conn, update.project_id, analysis.as_ref(), &original).await?);
        let tasks = plan_change(revision, &description, &original, &owners);
        insert_change_tasks(conn, update, revision, &tasks).await?;
        log.push((
            update.project_id,
            NewEvent::of_task(
                update.task_id,
                EventKind::ChangePlanned,
                json!({"revision": revision, "tasks": tasks.iter().map(|t| &t.key).collect::<Vec<_>>()}),
            ),
        ));
    }
    Ok(log)
}

/// The first generation's tasks (revision 1, round 0), with their dependencies.
async fn original_tasks(
    conn: &mut PgConnection,
    project_id: ProjectId,
) -> Result<Vec<OriginalTask>> {
    let rows: Vec<(String, String, AgentKind, Vec<String>)> = sqlx::query_as(
        "SELECT t.key, t.kind, t.agent,
                array(SELECT dep.key FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on
                      WHERE d.task_id = t.id ORDER BY dep.key)
         FROM tasks t WHERE t.project_id = $1 AND t.revision = 1 AND t.review_round = 0
         ORDER BY t.priority, t.key",
    )
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, kind, agent, depends_on)| OriginalTask {
            key,
            kind,
            agent,
            depends_on,
        })
        .collect())
}

/// The first-generation tasks that own what changes: the owners, in the updated design,
/// of the files the analysis names and of every file the update added or changed.
fn owners(
    design: &Value,
    previous: Option<&Value>,
    analysis: Option<&Value>,
    original: &[OriginalTask],
) -> BTreeSet<String> {
    let files = |d: &Value| -> Vec<(String, String, Value)> {
        d["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some((
                    f["path"].as_str()?.to_owned(),
                    f["task"].as_str()?.to_owned(),
                    f.clone(),
                ))
            })
            .collect()
    };
    let before = previous.map(files).unwrap_or_default();
    let named: BTreeSet<&str> = analysis
        .and_then(|a| a["files"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let known: BTreeSet<&str> = original.iter().map(|t| t.key.as_str()).collect();
    files(design)
        .into_iter()
        .filter(|(path, _, entry)| {
            named.contains(path.as_str()) || !before.iter().any(|(p, _, e)| p == path && e == entry)
        })
        .map(|(_, task, _)| task)
        .filter(|task| known.contains(task.as_str()))
        .collect()
}

/// The first-generation tasks behind the latest versions of the files the analysis names,
/// for files the design's plan does not list (or lists under a task that is not one).
async fn writers_of_named(
    conn: &mut PgConnection,
    project_id: ProjectId,
    analysis: Option<&Value>,
    original: &[OriginalTask],
) -> Result<BTreeSet<String>> {
    let named: Vec<&str> = analysis
        .and_then(|a| a["files"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if named.is_empty() {
        return Ok(BTreeSet::new());
    }
    let writers: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT ON (f.path) t.key FROM project_files f JOIN tasks t ON t.id = f.task_id
         WHERE f.project_id = $1 AND f.path = ANY($2)
         ORDER BY f.path, f.version DESC",
    )
    .bind(project_id)
    .bind(&named)
    .fetch_all(conn)
    .await?;
    Ok(writers
        .into_iter()
        .map(|(key,)| guild_core::change::base_key(&key).to_owned())
        .filter(|key| original.iter().any(|t| &t.key == key))
        .collect())
}

/// Stores a change's grown tasks: each waits for the tasks it depends on (its design
/// update is complete, so the first ones are ready).
async fn insert_change_tasks(
    conn: &mut PgConnection,
    update: &CompletedUpdate,
    revision: i32,
    tasks: &[guild_core::change::ChangeTask],
) -> Result<()> {
    let ids: Vec<TaskId> = tasks.iter().map(|_| TaskId::new()).collect();
    let design_update = change_key(DESIGN_UPDATE, revision);
    let id_of =
        |key: &str| -> Option<TaskId> { tasks.iter().position(|t| t.key == key).map(|i| ids[i]) };
    let pending: Vec<i32> = tasks
        .iter()
        .map(|t| {
            i32::try_from(t.depends_on.iter().filter(|d| **d != design_update).count())
                .unwrap_or(i32::MAX)
        })
        .collect();
    let statuses: Vec<TaskStatus> = pending
        .iter()
        .map(|n| {
            if *n == 0 {
                TaskStatus::Ready
            } else {
                TaskStatus::Blocked
            }
        })
        .collect();
    sqlx::query(
        "INSERT INTO tasks (id, project_id, key, kind, agent, description, priority, critical,
                            estimated_minutes, pending_deps, status, max_attempts, queue_at, revision)
         SELECT t.id, $1, t.key, t.kind, t.agent, t.description, 1, false, 15, t.pending,
                t.status, p.max_attempts, now(), $2
         FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int4[], $9::text[])
              AS t(id, key, kind, agent, description, pending, status),
              projects p
         WHERE p.id = $1",
    )
    .bind(update.project_id)
    .bind(revision)
    .bind(&ids)
    .bind(tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>())
    .bind(tasks.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>())
    .bind(tasks.iter().map(|t| t.agent).collect::<Vec<_>>())
    .bind(tasks.iter().map(|t| t.description.as_str()).collect::<Vec<_>>())
    .bind(&pending)
    .bind(&statuses)
    .execute(&mut *conn)
    .await?;
    let (dependents, dependencies): (Vec<TaskId>, Vec<TaskId>) = tasks
        .iter()
        .zip(&ids)
        .flat_map(|(t, id)| t.depends_on.iter().map(move |d| (*id, d)))
        .map(|(id, d)| {
            (
                id,
                if *d == design_update {
                    Some(update.task_id)
                } else {
                    id_of(d)
                },
            )
        })
        .filter_map(|(id, dep)| dep.map(|dep| (id, dep)))
        .unzip();
    sqlx::query("INSERT INTO task_dependencies (task_id, depends_on) SELECT * FROM unnest($1::uuid[], $2::uuid[])")
        .bind(dependents)
        .bind(dependencies)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every revision of the project, first to last.
///
/// # Errors
///
/// A database error.
pub async fn list(pool: &PgPool, project_id: ProjectId) -> Result<Vec<Revision>> {
    revisions(pool, project_id, None).await
}

/// Revision `number` of the project.
///
/// # Errors
///
/// A database error.
pub async fn revision(
    pool: &PgPool,
    project_id: ProjectId,
    number: i32,
) -> Result<Option<Revision>> {
    Ok(revisions(pool, project_id, Some(number)).await?.pop())
}

#[derive(sqlx::FromRow)]
struct RevisionRow {
    number: i32,
    description: String,
    status: ProjectStatus,
    created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    usage: Usage,
    tasks: Vec<String>,
}

async fn revisions(
    pool: &PgPool,
    project_id: ProjectId,
    number: Option<i32>,
) -> Result<Vec<Revision>> {
    let rows: Vec<RevisionRow> = sqlx::query_as(
        "SELECT r.number, r.description, r.created_at,
                CASE WHEN r.number = p.revision THEN p.status ELSE coalesce(r.status, p.status) END AS status,
                coalesce(sum(t.prompt_tokens), 0)::int8 AS prompt_tokens,
                coalesce(sum(t.completion_tokens), 0)::int8 AS completion_tokens,
                -- Unknown once any task's cost is unknown, as for a project.
                CASE WHEN bool_or(t.id IS NOT NULL AND t.cost_usd IS NULL) THEN NULL
                     ELSE coalesce(sum(t.cost_usd), 0)::float8 END AS cost_usd,
                coalesce(sum(t.llm_calls), 0)::int8 AS llm_calls,
                coalesce(sum(t.cache_hits), 0)::int8 AS cache_hits,
                coalesce(sum(t.cached_prompt_tokens), 0)::int8 AS cached_prompt_tokens,
                coalesce(sum(t.cache_write_tokens), 0)::int8 AS cache_write_tokens,
                coalesce(array_agg(t.key ORDER BY t.priority, t.key) FILTER (WHERE t.key IS NOT NULL), '{}') AS tasks
         FROM revisions r
         JOIN projects p ON p.id = r.project_id
         LEFT JOIN tasks t ON t.project_id = r.project_id AND t.revision = r.number
         WHERE r.project_id = $1 AND ($2::int4 IS NULL OR r.number = $2)
         GROUP BY r.number, r.description, r.created_at, r.status, p.revision, p.status
         ORDER BY r.number",
    )
    .bind(project_id)
    .bind(number)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Revision {
            project_id,
            number: r.number,
            description: r.description,
            status: r.status,
            created_at: r.created_at,
            usage: r.usage,
            tasks: r.tasks,
        })
        .collect())
}
