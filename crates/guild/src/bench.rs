//! `guild bench`: the scheduler benchmark. Three runs over one database, each printing its
//! figures; the last line of output is one JSON object with all of them.
//!
//! 1. Throughput: `--projects` fullstack projects with a zero-latency offline provider,
//!    task completions per second, dependency release included.
//! 2. The same with a no-op agent: the scheduler alone.
//! 3. Overhead: `--makespan-projects` projects with `--latency-ms` per model call and a slot
//!    for every task that can run at once; the makespan against the ideal (one call per
//!    phase along the critical path). Release latency is measured here, where no task waits
//!    for a slot: from a completion's commit to the start of the dependent it released.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use guild_agents::{Agent, AgentError, AgentOutcome, AgentSettings, Agents, TaskInput};
use guild_core::ProjectId;
use guild_core::{Plan, ProjectStatus, ProjectType};
use guild_offline::OfflineProvider;
use guild_pg::Storage;
use guild_store::PgPool;
use guild_store::projects::{self, NewProject};
use guild_worker::{WorkerConfig, WorkerEvent, WorkerPool};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::cli::BenchArgs;
use crate::database::Database;

/// Connections of the benchmark's pool: tasks hold one only to read context and settle.
const CONNECTIONS: u32 = 24;

pub async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let database = Database::open_or_start(
        args.database_url.as_deref(),
        Storage::Ephemeral,
        CONNECTIONS,
    )
    .await?;
    let result = run_all(&args, &database.pool).await;
    database.close().await;
    let figures = result?;
    say!("{figures}");
    Ok(ExitCode::SUCCESS)
}

async fn run_all(args: &BenchArgs, pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    let (projects, slots) = (args.projects as usize, args.slots as usize);
    // The scheduler's figures: the graph without the verification stage, which runs no
    // model and is measured on its own (bench/verify.sh).
    let plan = ProjectType::Fullstack
        .template()
        .without(guild_core::VERIFY);
    let tasks_per_project = plan.tasks().len();
    let offline = |latency_ms| -> Arc<dyn Agent> {
        Arc::new(Agents::new(
            Arc::new(OfflineProvider::new(Duration::from_millis(latency_ms))),
            AgentSettings::default(),
        ))
    };

    say!(
        "throughput: {} fullstack projects ({} tasks), offline provider with no latency, {} slots",
        projects,
        projects * tasks_per_project,
        slots
    );
    let full = run_once(pool, &plan, offline(0), projects, slots).await?;
    let tasks_per_s = full.tasks_per_s();
    say!(
        "  {:.0} tasks/s ({} tasks in {:.2} s)",
        tasks_per_s,
        full.tasks,
        full.elapsed.as_secs_f64()
    );

    say!("scheduler: the same with a no-op agent, {slots} slots");
    let noop = run_once(pool, &plan, Arc::new(NoopAgent), projects, slots).await?;
    let scheduler_tasks_per_s = noop.tasks_per_s();
    say!(
        "  {:.0} tasks/s ({} tasks in {:.2} s)",
        scheduler_tasks_per_s,
        noop.tasks,
        noop.elapsed.as_secs_f64()
    );

    let widest_phase = plan.phases().iter().map(Vec::len).max().unwrap_or(1);
    let makespan_slots = args.makespan_projects as usize * widest_phase;
    let ideal = Duration::from_millis(args.latency_ms) * plan.phases().len() as u32;
    say!(
        "overhead: {} fullstack projects, {} ms per model call, {} slots; ideal makespan {:.2} s",
        args.makespan_projects,
        args.latency_ms,
        makespan_slots,
        ideal.as_secs_f64()
    );
    let slow = run_once(
        pool,
        &plan,
        offline(args.latency_ms),
        args.makespan_projects as usize,
        makespan_slots,
    )
    .await?;
    let makespan_ratio = slow.elapsed.as_secs_f64() / ideal.as_secs_f64();
    let mut latencies = slow.release_latencies_ms();
    latencies.sort_by(f64::total_cmp);
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    say!(
        "  makespan {:.2} s = {:.3} x ideal; release latency p50 {:.2} ms, p99 {:.2} ms ({} samples{})",
        slow.elapsed.as_secs_f64(),
        makespan_ratio,
        p50,
        p99,
        latencies.len(),
        if slow.events_missed > 0 {
            format!(", {} progress events missed", slow.events_missed)
        } else {
            String::new()
        }
    );
    let peak_rss_mb = peak_rss_mb();
    say!("peak memory of this process: {peak_rss_mb:.1} MB");

    Ok(json!({
        "tasks_per_s": round(tasks_per_s),
        "scheduler_tasks_per_s": round(scheduler_tasks_per_s),
        "release_latency_p50_ms": round(p50),
        "release_latency_p99_ms": round(p99),
        "makespan_ratio": (makespan_ratio * 1000.0).round() / 1000.0,
        "makespan_s": round(slow.elapsed.as_secs_f64()),
        "ideal_makespan_s": ideal.as_secs_f64(),
        "peak_rss_mb": round(peak_rss_mb),
        "projects": args.projects,
        "makespan_projects": args.makespan_projects,
        "slots": args.slots,
    }))
}

/// What one run measured.
struct Measured {
    tasks: usize,
    elapsed: Duration,
    /// Per task start: when it started, and when the last of its dependencies committed.
    starts: Vec<(Instant, Option<Instant>)>,
    events_missed: u64,
}

impl Measured {
    fn tasks_per_s(&self) -> f64 {
        self.tasks as f64 / self.elapsed.as_secs_f64()
    }

    fn release_latencies_ms(&self) -> Vec<f64> {
        self.starts
            .iter()
            .filter_map(|&(started, released)| {
                released.map(|r| started.saturating_duration_since(r).as_secs_f64() * 1000.0)
            })
            .collect()
    }
}

/// Creates `projects` projects of `plan`, then runs a pool of `slots` until all finished.
async fn run_once(
    pool: &PgPool,
    plan: &Plan,
    agent: Arc<dyn Agent>,
    projects: usize,
    slots: usize,
) -> anyhow::Result<Measured> {
    let mut ids = Vec::with_capacity(projects);
    for _ in 0..projects {
        let created = projects::create(
            pool,
            NewProject {
                description: "A todo list app with user accounts and sharing",
                project_type: ProjectType::Fullstack,
                technology_stack: None,
                options: &guild_core::ProjectOptions::default(),
                plan,
                max_attempts: 3,
                idempotency: None,
            },
        )
        .await
        .context("creating the benchmark's projects")?;
        ids.push(created.into_project().id);
    }

    let workers = WorkerPool::new(pool.clone(), agent, WorkerConfig::new(slots));
    let mut events = workers.subscribe();
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { workers.run(shutdown).await }
    });

    let mut completed_at: HashMap<(ProjectId, String), Instant> = HashMap::new();
    let mut started_at: Vec<(ProjectId, String, Instant)> = Vec::new();
    let mut finished = 0;
    let mut events_missed = 0;
    while finished < projects {
        match events.recv().await {
            Ok(WorkerEvent::TaskStarted {
                project_id,
                key,
                at,
                ..
            }) => started_at.push((project_id, key, at)),
            Ok(WorkerEvent::TaskCompleted {
                project_id,
                key,
                at,
                ..
            }) => {
                completed_at.insert((project_id, key), at);
            }
            Ok(WorkerEvent::ProjectFinished { .. }) => finished += 1,
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                events_missed += missed;
                finished = projects::status_counts(pool, &ids)
                    .await?
                    .iter()
                    .filter(|(status, _)| status.is_finished())
                    .map(|(_, n)| *n as usize)
                    .sum();
            }
            Err(RecvError::Closed) => anyhow::bail!("the worker pool stopped"),
        }
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    running.await.context("the worker pool crashed")??;

    let counts = projects::status_counts(pool, &ids).await?;
    anyhow::ensure!(
        counts == [(ProjectStatus::Completed, projects as i64)],
        "not every benchmark project completed: {counts:?}"
    );

    let dependencies: HashMap<&str, Vec<&str>> = plan
        .tasks()
        .iter()
        .map(|t| {
            (
                t.key.as_str(),
                t.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let starts = started_at
        .iter()
        .map(|(project_id, key, at)| {
            let deps = dependencies
                .get(key.as_str())
                .map_or(&[][..], Vec::as_slice);
            let released = deps
                .iter()
                .map(|dep| completed_at.get(&(*project_id, (*dep).to_owned())).copied())
                .collect::<Option<Vec<_>>>()
                .and_then(|times| times.into_iter().max());
            (*at, released)
        })
        .collect();
    Ok(Measured {
        tasks: projects * plan.tasks().len(),
        elapsed,
        starts,
        events_missed,
    })
}

/// An agent that does nothing: what is left is the scheduler.
struct NoopAgent;

#[async_trait]
impl Agent for NoopAgent {
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        Ok(AgentOutcome {
            summary: format!("{} done", input.key),
            ..AgentOutcome::default()
        })
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank]
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The process's peak resident memory (VmHWM), in MB; 0 where /proc is missing.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
