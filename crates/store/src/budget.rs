//! Project budgets (`options.max_tokens`, `options.max_cost_usd`), held before each call.
//!
//! A call first reserves its worst case on its task. The reservation is allowed when the
//! project's settled totals, plus what its running tasks hold, plus the worst case stay
//! within the budget. After the call the reservation becomes what the call spent, and the
//! task's settlement moves it into the totals. Reservations count only while their task
//! runs, so a crashed worker's reservations are released with its tasks.

use guild_core::{ProjectId, TaskId};
use sqlx::PgPool;

use crate::Result;
use crate::locks::lock_project;

/// Tokens and dollars; `cost_usd` is `None` when unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amount {
    pub tokens: i64,
    pub cost_usd: Option<f64>,
}

/// What [`reserve`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The call's worst case is held against the budget: the call may be made.
    Held,
    /// The call would exceed the budget: nothing is held, and the message says by how much.
    Refused(String),
}

/// Reserves `worst` for a call of `task_id` (running at `attempt`), or refuses it when it
/// would exceed the project's budget. One transaction: the project row is locked, so
/// concurrent reservations of a project are checked one by one.
///
/// # Errors
///
/// A database error: nothing is held, and the call must not be made.
#[tracing::instrument(level = "debug", skip(pool), err(level = "debug"))]
pub async fn reserve(
    pool: &PgPool,
    project_id: ProjectId,
    task_id: TaskId,
    attempt: i32,
    worst: Amount,
) -> Result<Reservation> {
    let mut tx = pool.begin().await?;
    lock_project(&mut tx, project_id).await?;
    let (refusal,): (Option<String>,) = sqlx::query_as(
        "WITH held AS (
             SELECT coalesce(sum(reserved_tokens), 0) AS tokens,
                    coalesce(sum(reserved_cost_usd), 0) AS cost
             FROM tasks WHERE project_id = $1 AND status = 'running'
         )
         SELECT CASE
             WHEN p.max_tokens IS NOT NULL
                  AND p.prompt_tokens + p.completion_tokens + h.tokens + $2 > p.max_tokens
             THEN format('the call could use %s tokens, and %s of the project''s max_tokens of %s are spent or held by running calls',
                         $2, p.prompt_tokens + p.completion_tokens + h.tokens, p.max_tokens)
             WHEN p.max_cost_usd IS NOT NULL AND $3::numeric IS NULL
             THEN 'the model''s price is unknown, so its cost cannot be held to the project''s max_cost_usd (add it to GUILD_LLM_PRICES)'
             WHEN p.max_cost_usd IS NOT NULL AND p.cost_usd IS NULL
             THEN 'the project''s spend is unknown (an earlier call''s price was unknown), so it cannot be held to max_cost_usd'
             WHEN p.max_cost_usd IS NOT NULL AND p.cost_usd + h.cost + $3 > p.max_cost_usd
             THEN format('the call could cost $%s, and $%s of the project''s max_cost_usd of $%s is spent or held by running calls',
                         round($3::numeric, 6), round(p.cost_usd + h.cost, 6), p.max_cost_usd)
         END
         FROM projects p, held h WHERE p.id = $1",
    )
    .bind(project_id)
    .bind(worst.tokens)
    .bind(worst.cost_usd)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(refusal) = refusal {
        return Ok(Reservation::Refused(refusal));
    }
    sqlx::query(
        "UPDATE tasks SET reserved_tokens = reserved_tokens + $3,
                          reserved_cost_usd = reserved_cost_usd + coalesce($4, 0)::numeric
         WHERE id = $1 AND status = 'running' AND attempt = $2",
    )
    .bind(task_id)
    .bind(attempt)
    .bind(worst.tokens)
    .bind(worst.cost_usd)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Reservation::Held)
}

/// Replaces a call's reservation with what it spent.
///
/// # Errors
///
/// A database error: the reservation then stays until the task settles.
pub async fn settle_call(
    pool: &PgPool,
    task_id: TaskId,
    attempt: i32,
    reserved: Amount,
    spent: Amount,
) -> Result<()> {
    sqlx::query(
        "UPDATE tasks
         SET reserved_tokens = greatest(reserved_tokens - $3 + $4, 0),
             reserved_cost_usd = greatest(reserved_cost_usd - coalesce($5, 0)::numeric + coalesce($6, 0)::numeric, 0)
         WHERE id = $1 AND status = 'running' AND attempt = $2",
    )
    .bind(task_id)
    .bind(attempt)
    .bind(reserved.tokens)
    .bind(spent.tokens)
    .bind(reserved.cost_usd)
    .bind(spent.cost_usd)
    .execute(pool)
    .await?;
    Ok(())
}
