//! `guild eval`: the evaluation suite. Every description of `eval/suite.txt` (or
//! `--suite`) becomes a fullstack project, run side by side by one worker pool with the
//! configured provider and the verifier; then one line per project (verified or not, fix
//! rounds, tokens, cost, wall time), the totals, and one JSON object. Executability is the
//! share of projects whose last verification passed, the measure ChatDev reports (0 to 1;
//! MetaGPT scores 1 to 4 by hand).

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use guild_core::{ProjectId, ProjectOptions, ProjectType, VERIFY};
use guild_store::projects::{self, NewProject};
use guild_store::tasks;
use guild_worker::{WorkerConfig, WorkerEvent, WorkerPool};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::cli::EvalArgs;
use crate::database::Database;

/// The committed suite.
const SUITE: &str = include_str!("../../../eval/suite.txt");

/// The descriptions of a suite: its lines, without comments and blanks.
fn descriptions(suite: &str) -> Vec<String> {
    suite
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// One project's figures.
struct Row {
    description: String,
    project_id: ProjectId,
    status: String,
    verified: Option<bool>,
    fix_rounds: i32,
    tokens: i64,
    cost_usd: Option<f64>,
    /// From the suite's start to the project's end.
    wall: Duration,
    /// Time its verifications took, every round.
    verify: Duration,
}

pub async fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let suite = match &args.suite {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => SUITE.to_owned(),
    };
    let mut descriptions = descriptions(&suite);
    if let Some(limit) = args.limit {
        descriptions.truncate(limit as usize);
    }
    anyhow::ensure!(!descriptions.is_empty(), "the suite has no description");
    let database = Database::open(&args.database, u32::from(args.workers) + 4).await?;
    let result = run_suite(&args, &descriptions, &database).await;
    database.close().await;
    result
}

async fn run_suite(
    args: &EvalArgs,
    descriptions: &[String],
    database: &Database,
) -> anyhow::Result<ExitCode> {
    let (verifier, verification) = crate::verify::verifier(&args.verify).await;
    let verifying = verifier.is_some();
    let plan = if verifying {
        ProjectType::Fullstack.template()
    } else {
        ProjectType::Fullstack.template().without(VERIFY)
    };
    let agents = crate::llm::agents(&args.llm, &database.pool, verifier)?;
    say!(
        "eval: {} descriptions, fullstack, model {}; {verification}",
        descriptions.len(),
        agents.describe()
    );
    let workers = WorkerPool::new(
        database.pool.clone(),
        Arc::new(agents),
        WorkerConfig::new(usize::from(args.workers)),
    );
    let mut events = workers.subscribe();
    let options = ProjectOptions {
        max_tokens: args.budget.project_max_tokens,
        max_cost_usd: args.budget.project_max_cost_usd,
        ..ProjectOptions::default()
    };
    let started = Instant::now();
    let mut ids = Vec::new();
    for description in descriptions {
        let project = projects::create(
            &database.pool,
            NewProject {
                description,
                project_type: ProjectType::Fullstack,
                technology_stack: None,
                options: &options,
                plan: &plan,
                max_attempts: 3,
                idempotency: None,
            },
        )
        .await
        .context("creating a project")?
        .into_project();
        ids.push(project.id);
    }
    let shutdown = CancellationToken::new();
    let pool_task = tokio::spawn({
        let (workers, shutdown) = (workers.clone(), shutdown.clone());
        async move { workers.run(shutdown).await }
    });
    let walls = wait_for_all(&database.pool, &ids, &mut events, started).await?;
    shutdown.cancel();
    pool_task.await.context("the worker pool crashed")??;

    let mut rows = Vec::new();
    for (description, id) in descriptions.iter().zip(&ids) {
        rows.push(row(&database.pool, description, *id, walls[id]).await?);
    }
    for row in &rows {
        say!(
            "{:<10} done at {:>6.1} s, verified in {:>5.1} s  {} fix round(s)  {:>7} tokens  {}  {}",
            match row.verified {
                Some(true) => "verified",
                Some(false) => "UNVERIFIED",
                None => row.status.as_str(),
            },
            row.wall.as_secs_f64(),
            row.verify.as_secs_f64(),
            row.fix_rounds,
            row.tokens,
            row.cost_usd
                .map_or_else(|| "cost unknown".to_owned(), |c| format!("${c:.4}")),
            row.description
        );
    }
    let figures = totals(&rows, verifying, started.elapsed());
    say!(
        "total: {} of {} projects verified (executability {}), {} tokens ({} per project), cost {}, {:.0} s wall for the suite ({:.0} s a project), {:.0} s verifying a project on average",
        figures["verified"],
        rows.len(),
        figures["executability"],
        figures["tokens"],
        figures["tokens_per_project"],
        figures["cost_usd"],
        figures["wall_s"].as_f64().unwrap_or_default(),
        figures["wall_s_per_project"].as_f64().unwrap_or_default(),
        figures["verify_s_per_project"].as_f64().unwrap_or_default(),
    );
    say!("{figures}");
    let all_verified = rows.iter().all(|r| r.verified == Some(true));
    Ok(if verifying && all_verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Waits until every project of `ids` finished; returns each one's wall time.
async fn wait_for_all(
    pool: &guild_store::PgPool,
    ids: &[ProjectId],
    events: &mut tokio::sync::broadcast::Receiver<WorkerEvent>,
    started: Instant,
) -> anyhow::Result<HashMap<ProjectId, Duration>> {
    let mut open: HashSet<ProjectId> = ids.iter().copied().collect();
    let mut walls = HashMap::new();
    while !open.is_empty() {
        match events.recv().await {
            Ok(WorkerEvent::ProjectFinished { project_id, .. }) if open.remove(&project_id) => {
                walls.insert(project_id, started.elapsed());
            }
            Ok(_) => {}
            // Events were missed: the database says which projects ended.
            Err(RecvError::Lagged(_)) => {
                for id in open.clone() {
                    let project = projects::get(pool, id)
                        .await?
                        .context("a project vanished")?;
                    if project.status.is_finished() {
                        open.remove(&id);
                        walls.insert(id, started.elapsed());
                    }
                }
            }
            Err(RecvError::Closed) => {
                anyhow::bail!("the worker pool stopped before the suite finished")
            }
        }
    }
    Ok(walls)
}

async fn row(
    pool: &guild_store::PgPool,
    description: &str,
    id: ProjectId,
    wall: Duration,
) -> anyhow::Result<Row> {
    let project = projects::get(pool, id)
        .await?
        .context("a project vanished")?;
    let all = tasks::list(pool, id).await?;
    let last = all
        .iter()
        .filter(|t| t.kind == VERIFY && t.result.is_some())
        .max_by_key(|t| t.review_round);
    let verified = last.map(|t| {
        t.result
            .as_ref()
            .and_then(|r| r["verification"]["status"].as_str())
            == Some("passed")
    });
    let verify_ms: u64 = all
        .iter()
        .filter(|t| t.kind == VERIFY)
        .filter_map(|t| t.result.as_ref()?["verification"]["duration_ms"].as_u64())
        .sum();
    Ok(Row {
        description: description.to_owned(),
        project_id: id,
        status: project.status.to_string(),
        verified,
        fix_rounds: all.iter().map(|t| t.review_round).max().unwrap_or(0),
        tokens: project.usage.prompt_tokens + project.usage.completion_tokens,
        cost_usd: project.usage.cost_usd,
        wall,
        verify: Duration::from_millis(verify_ms),
    })
}

/// The suite's figures, as one JSON object.
fn totals(rows: &[Row], verifying: bool, elapsed: Duration) -> Value {
    let n = rows.len().max(1) as f64;
    let verified = rows.iter().filter(|r| r.verified == Some(true)).count();
    let tokens: i64 = rows.iter().map(|r| r.tokens).sum();
    let cost: Option<f64> = rows.iter().map(|r| r.cost_usd).sum();
    json!({
        "projects": rows.len(),
        "verified": verified,
        "executability": if verifying { json!((verified as f64 / n * 1000.0).round() / 1000.0) } else { Value::Null },
        "fix_rounds": rows.iter().map(|r| i64::from(r.fix_rounds)).sum::<i64>(),
        "tokens": tokens,
        "tokens_per_project": (tokens as f64 / n).round(),
        "cost_usd": cost,
        "wall_s": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
        // The suite's wall time shared by its projects, which run side by side.
        "wall_s_per_project": (elapsed.as_secs_f64() / n * 10.0).round() / 10.0,
        "verify_s_per_project": (rows.iter().map(|r| r.verify.as_secs_f64()).sum::<f64>() / n * 10.0).round() / 10.0,
        "per_project": rows.iter().map(|r| json!({
            "description": r.description,
            "project_id": r.project_id,
            "status": r.status,
            "verified": r.verified,
            "fix_rounds": r.fix_rounds,
            "tokens": r.tokens,
            "cost_usd": r.cost_usd,
            "done_at_s": (r.wall.as_secs_f64() * 10.0).round() / 10.0,
            "verify_s": (r.verify.as_secs_f64() * 10.0).round() / 10.0,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_suite_has_twenty_descriptions_of_distinct_kinds() {
        let suite = descriptions(SUITE);
        assert_eq!(suite.len(), 20);
        assert!(suite.iter().any(|d| d.contains("game")));
        assert!(suite.iter().any(|d| d.contains("dashboard")));
        assert!(suite.iter().filter(|d| d.ends_with("in Python")).count() >= 3);
        assert_eq!(descriptions("# a comment\n\n  A thing  \n"), ["A thing"]);
    }
}
