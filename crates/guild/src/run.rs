//! `guild run`: one project from description to files on disk, in this process.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use guild_core::{Plan, ProjectId, ProjectOptions, ProjectStatus, ProjectType};
use guild_store::projects::{self, NewProject, Project};
use guild_store::{files, tasks};
use guild_worker::{WorkerConfig, WorkerEvent, WorkerPool};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::database::Database;
use crate::progress::Progress;
use crate::signals::ShutdownSignals;

/// How long running tasks may finish after Ctrl-C or SIGTERM.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// What the user gets back from a run.
pub(crate) enum Outcome {
    Finished(Box<Project>),
    Interrupted,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let description = args.description.trim();
    anyhow::ensure!(
        !description.is_empty(),
        "the description is empty: say what to build"
    );
    anyhow::ensure!(
        description.chars().count() <= 20_000,
        "the description is longer than 20,000 characters"
    );
    crate::output::check_writable(&args.out, args.force)?;
    let started = Instant::now();
    let mut signals = ShutdownSignals::register().context("registering signal handlers")?;
    let database = Database::open(&args.database, u32::from(args.workers) + 4).await?;
    let result = generate(&args, description, &database, started, &mut signals).await;
    database.close().await;
    result
}

async fn generate(
    args: &RunArgs,
    description: &str,
    database: &Database,
    started: Instant,
    signals: &mut ShutdownSignals,
) -> anyhow::Result<ExitCode> {
    let project_type = ProjectType::from(args.project_type);
    let (verifier, verification) = crate::verify::verifier(&args.verify).await;
    let plan = if verifier.is_some() {
        project_type.template()
    } else {
        project_type.template().without(guild_core::VERIFY)
    };
    let agents = crate::llm::agents(&args.llm, &database.pool, verifier)?;
    let model = agents.describe();
    let workers = Workers::new(database, agents, args.workers);
    // The same options, checked the same way, as a project created over HTTP.
    let options = ProjectOptions {
        max_attempts: Some(args.max_attempts),
        max_tokens: args.budget.project_max_tokens,
        max_cost_usd: args.budget.project_max_cost_usd,
        ..ProjectOptions::default()
    };
    let invalid = options.check(&plan);
    anyhow::ensure!(
        invalid.is_empty(),
        "{}",
        invalid
            .iter()
            .map(|i| format!("{}: {}", i.field, i.reason))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let project = projects::create(
        &database.pool,
        NewProject {
            description,
            project_type,
            technology_stack: args.stack.as_deref(),
            options: &options,
            plan: &plan,
            max_attempts: i32::from(args.max_attempts),
            idempotency: None,
        },
    )
    .await
    .context("creating the project")?
    .into_project();
    say!(
        "Project {} ({project_type}): {} tasks in {} phases, model {model}; {verification}",
        project.id,
        plan.tasks().len(),
        plan.phases().len()
    );

    let outcome = workers
        .follow(&database.pool, project.id, Progress::new(&plan), signals)
        .await;

    match outcome? {
        Outcome::Interrupted => {
            eprintln!("interrupted: project {} was left unfinished", project.id);
            Ok(ExitCode::from(130))
        }
        Outcome::Finished(project) => report(&database.pool, &plan, &project, args, started).await,
    }
}

/// A worker pool running in this process, with its events subscribed before any project
/// it will run exists, so none is missed.
pub(crate) struct Workers {
    pool: WorkerPool,
    events: tokio::sync::broadcast::Receiver<WorkerEvent>,
}

impl Workers {
    pub(crate) fn new(database: &Database, agents: guild_agents::Agents, workers: u16) -> Self {
        // Someone who interrupts a run wants out: running tasks get a short grace, then
        // they are released back to `ready` in the database.
        let config = WorkerConfig {
            shutdown_grace: INTERRUPT_GRACE,
            ..WorkerConfig::new(usize::from(workers))
        };
        let pool = WorkerPool::new(database.pool.clone(), Arc::new(agents), config);
        let events = pool.subscribe();
        Self { pool, events }
    }

    /// Runs the pool until project `project_id` finishes or the user interrupts, showing
    /// its progress; then stops the pool.
    pub(crate) async fn follow(
        mut self,
        db: &guild_store::PgPool,
        project_id: ProjectId,
        mut progress: Progress,
        signals: &mut ShutdownSignals,
    ) -> anyhow::Result<Outcome> {
        let shutdown = CancellationToken::new();
        let pool_task = tokio::spawn({
            let workers = self.pool.clone();
            let shutdown = shutdown.clone();
            async move { workers.run(shutdown).await }
        });
        let outcome = watch(db, project_id, &mut self.events, &mut progress, signals).await;
        progress.finish();
        shutdown.cancel();
        pool_task.await.context("the worker pool crashed")??;
        outcome
    }
}

/// Follows the pool's events until the project finishes or the user interrupts.
async fn watch(
    pool: &guild_store::PgPool,
    project_id: ProjectId,
    events: &mut tokio::sync::broadcast::Receiver<WorkerEvent>,
    progress: &mut Progress,
    signals: &mut ShutdownSignals,
) -> anyhow::Result<Outcome> {
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = signals.recv() => return Ok(Outcome::Interrupted),
        };
        match event {
            Ok(event) => {
                if event_project(&event) == project_id {
                    progress.update(&event);
                }
                if let WorkerEvent::ProjectFinished { project_id: id, .. } = event
                    && id == project_id
                {
                    break;
                }
            }
            // Missed some events: the database says whether the project is done.
            Err(RecvError::Lagged(_)) => {
                let project = projects::get(pool, project_id)
                    .await?
                    .context("the project vanished")?;
                if project.status.is_finished() {
                    break;
                }
            }
            Err(RecvError::Closed) => anyhow::bail!("the worker pool stopped"),
        }
    }
    let project = projects::get(pool, project_id)
        .await?
        .context("the project vanished")?;
    Ok(Outcome::Finished(Box::new(project)))
}

fn event_project(event: &WorkerEvent) -> ProjectId {
    match event {
        WorkerEvent::TaskStarted { project_id, .. }
        | WorkerEvent::TaskCompleted { project_id, .. }
        | WorkerEvent::TaskFailed { project_id, .. }
        | WorkerEvent::TaskInterrupted { project_id, .. }
        | WorkerEvent::ResultDropped { project_id, .. }
        | WorkerEvent::ProjectFinished { project_id, .. } => *project_id,
    }
}

/// Writes the files and prints the summary; the exit code says whether the project completed.
async fn report(
    pool: &guild_store::PgPool,
    plan: &Plan,
    project: &Project,
    args: &RunArgs,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let out = args.out.as_path();
    let latest = files::latest(pool, project.id).await?;
    let output = crate::output::write_project(pool, project.id, out, args.force, args.git).await?;
    let written = output.files;
    let counts = projects::task_counts(pool, project.id).await?;
    let wall = started.elapsed();

    say!();
    say!(
        "Project {} {} in {:.2} s",
        project.id,
        project.status,
        wall.as_secs_f64()
    );
    let counts_text: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    say!("  tasks:    {}", counts_text.join(", "));
    say!("  phases:   {}", plan.phases().len());
    for (i, phase) in plan.phases().iter().enumerate() {
        say!("            {}. {}", i + 1, phase.join(", "));
    }
    say!(
        "  estimate: {} min of work in all, {} min along the critical path ({})",
        plan.total_minutes(),
        plan.critical_path_minutes(),
        plan.critical_path().join(" -> ")
    );
    say!("  files:    {written} written under {}", out.display());
    if !output.removed.is_empty() {
        say!(
            "            {} file(s) of the earlier run removed: {}",
            output.removed.len(),
            output.removed.join(", ")
        );
    }
    if !output.kept_changed.is_empty() {
        say!(
            "            kept as you changed them (not replaced): {}",
            output.kept_changed.join(", ")
        );
    }
    let all_tasks = tasks::list(pool, project.id).await?;
    say!("  checks:   {}", checks(&latest, &all_tasks));
    for line in verification_lines(&all_tasks) {
        say!("  verify:   {line}");
    }
    let usage = &project.usage;
    say!(
        "  tokens:   {} prompt + {} completion = {}",
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    say!(
        "  calls:    {} ({} from the cache), cost {}",
        usage.llm_calls,
        usage.cache_hits,
        usage.cost_usd.map_or_else(
            || "unknown (a model's price is unknown)".to_owned(),
            |usd| format!("${usd:.4}")
        )
    );

    if project.status == ProjectStatus::Completed {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "project {}: {}",
        project.status,
        project.error.as_deref().unwrap_or("no reason recorded")
    );
    for task in tasks::list(pool, project.id).await? {
        if let Some(error) = task
            .error
            .filter(|_| task.status == guild_core::TaskStatus::Failed)
        {
            eprintln!("  {} failed: {error}", task.key);
        }
    }
    Ok(ExitCode::FAILURE)
}

/// Each verification round's outcome, first to last: `round 1 failed: backend: install ✓
/// typecheck ✗ …`, then `passed: …`.
pub(crate) fn verification_lines(tasks: &[tasks::Task]) -> Vec<String> {
    let mut rounds: Vec<&tasks::Task> = tasks
        .iter()
        .filter(|t| t.kind == guild_core::VERIFY)
        .collect();
    rounds.sort_by_key(|t| t.review_round);
    let many = rounds.len() > 1;
    rounds
        .iter()
        .filter_map(|t| {
            let report = t.result.as_ref()?.get("verification")?;
            let status = report["status"].as_str().unwrap_or("unknown");
            let summary = report["summary"].as_str().unwrap_or_default();
            Some(if many {
                format!("round {} {status}: {summary}", t.review_round + 1)
            } else {
                format!("{status}: {summary}")
            })
        })
        .collect()
}

/// What validation, repairs and reviews did: `22 valid, 2 unchecked; 1 repair round; 1 fix
/// task and 1 re-review added by reviews`, naming any file left invalid.
fn checks(latest: &[files::StoredFile], tasks: &[tasks::Task]) -> String {
    let status = |f: &files::StoredFile| {
        f.validation
            .as_ref()
            .and_then(|v| v["status"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "unchecked".into())
    };
    let count = |wanted: &str| latest.iter().filter(|f| status(f) == wanted).count();
    let invalid: Vec<&str> = latest
        .iter()
        .filter(|f| status(f) == "invalid")
        .map(|f| f.path.as_str())
        .collect();
    let repairs: u64 = tasks
        .iter()
        .filter_map(|t| t.result.as_ref()?["repair_rounds"].as_u64())
        .sum();
    let fixes = tasks
        .iter()
        .filter(|t| t.kind == guild_core::FIX_FINDINGS)
        .count();
    let rereviews = tasks
        .iter()
        .filter(|t| t.review_round > 0 && t.kind != guild_core::FIX_FINDINGS)
        .count();
    let mut text = format!(
        "{} valid, {} invalid, {} unchecked; {repairs} repair round(s); {fixes} fix task(s) and {rereviews} re-review(s) added by reviews",
        count("valid"),
        invalid.len(),
        count("unchecked"),
    );
    if !invalid.is_empty() {
        text.push_str(&format!("; still invalid: {}", invalid.join(", ")));
    }
    text
}
