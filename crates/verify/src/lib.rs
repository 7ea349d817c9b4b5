//! Verification: the latest files of a generated project, materialised in a sandbox
//! scratch directory, put through the design's commands for each component (install,
//! type-check, lint, build, test), then each component that implements the contract
//! started with a throwaway PostgreSQL cluster of its own and called through every
//! operation of its contract (the `smoke` module). What fails becomes findings on the files the
//! design says own them, which settle like a review's: fix tasks, then a verification
//! again.
//!
//! Everything generated runs in the sandbox ([`guild_sandbox`]): the database too, inside
//! the same sandbox as the server, so the application reaches it on its own loopback and
//! never reaches Guild's. The verifier holds no database connection: the worker reads the
//! files before and stores the report after.

mod example;
mod findings;
mod smoke;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use guild_agents::{Agent, AgentError, AgentOutcome, TaskInput};
use guild_core::{Finding, Severity};
use guild_design::{Component, Design};
use guild_sandbox::{CommandSpec, Limits, Network, Relay, Sandbox, SandboxConfig, Scratch};

pub use example::example;
pub use guild_core::verification::{
    ComponentReport, Report, SmokeCall, SmokeReport, StepReport, TestCount, Verdict,
};

/// At most this many findings go back to the agents from one verification.
const MAX_FINDINGS: usize = 20;

/// Where install steps may fetch packages from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstallNetwork {
    /// The package registries (the host's network), for install steps only.
    #[default]
    Registries,
    /// No network at all: installs work from the package cache or fail.
    None,
}

/// Timeouts of the steps, wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub install: Duration,
    /// Type-check, lint, build and test, each.
    pub check: Duration,
    /// From start until the health path answers.
    pub start: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            install: Duration::from_secs(600),
            check: Duration::from_secs(300),
            start: Duration::from_secs(60),
        }
    }
}

/// How the verifier runs.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The sandbox's directory (scratch directories, package caches).
    pub root: PathBuf,
    /// The program that relays a started server's port to the host (`guild
    /// __sandbox-relay`).
    pub relay: Option<Relay>,
    pub network: InstallNetwork,
    pub timeouts: Timeouts,
    /// Verifications at once in this process; more wait.
    pub concurrency: usize,
}

/// Runs verifications.
pub struct Verifier {
    sandbox: Result<Sandbox, String>,
    config: VerifierConfig,
    permits: tokio::sync::Semaphore,
    /// PostgreSQL's server binaries, for a server's throwaway cluster.
    postgres: Option<PathBuf>,
}

impl Verifier {
    /// A verifier; when the sandbox cannot be set up, every verification says why,
    /// `unavailable`.
    pub fn new(config: VerifierConfig) -> Self {
        let sandbox = Sandbox::new(SandboxConfig {
            relay: config.relay.clone(),
            ..SandboxConfig::new(&config.root)
        })
        .map_err(|e| e.to_string());
        // The binaries' own directory (PATH may hold only links to some of them).
        let postgres = guild_pg::Binaries::locate()
            .ok()
            .and_then(|b| std::fs::canonicalize(&b.initdb).ok())
            .and_then(|initdb| initdb.parent().map(PathBuf::from));
        Self {
            permits: tokio::sync::Semaphore::new(config.concurrency.max(1)),
            sandbox,
            config,
            postgres,
        }
    }

    /// Whether verifications can run here: the sandbox works.
    ///
    /// # Errors
    ///
    /// Why not: bubblewrap is missing or cannot make its namespaces, the sandbox's directory
    /// cannot be used.
    pub async fn available(&self) -> Result<(), String> {
        match &self.sandbox {
            Ok(sandbox) => sandbox.probe().await.map_err(|u| u.reason),
            Err(reason) => Err(reason.clone()),
        }
    }

    /// Verifies the project whose `files` (path, content) follow `design`. `secrets` are
    /// redacted from every output kept. Returns the report and the findings for the
    /// agents.
    pub async fn verify(
        &self,
        design: &Design,
        files: &[(&str, &str)],
        secrets: &[String],
    ) -> (Report, Vec<Finding>) {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        let mut run = Run {
            verifier: self,
            design,
            secrets: secrets.to_vec(),
            findings: Vec::new(),
            seed: 1,
        };
        let components = match self.prepare(files).await {
            Ok((sandbox, scratch)) => {
                let mut reports = Vec::new();
                for component in &design.components {
                    reports.push(run.component(sandbox, &scratch, component).await);
                }
                reports
            }
            Err(reason) => design
                .components
                .iter()
                .map(|c| unavailable(c, &reason))
                .collect(),
        };
        let status = overall(&components);
        metrics::counter!("guild_verifications_total", "status" => status.as_str()).increment(1);
        let report = Report {
            status,
            summary: summary(&components),
            components,
            duration_ms: millis(started.elapsed()),
        };
        // One finding per place: a type error fails the type-check and the build alike.
        let mut findings: Vec<Finding> = Vec::new();
        for finding in run.findings {
            if !findings
                .iter()
                .any(|f| f.file == finding.file && f.line == finding.line)
            {
                findings.push(finding);
            }
        }
        findings.truncate(MAX_FINDINGS);
        (report, findings)
    }

    /// The sandbox and a scratch directory holding the files.
    async fn prepare(&self, files: &[(&str, &str)]) -> Result<(&Sandbox, Scratch), String> {
        let sandbox = self.sandbox.as_ref().map_err(Clone::clone)?;
        sandbox
            .probe()
            .await
            .map_err(|u| format!("the sandbox is unavailable: {}", u.reason))?;
        let scratch = sandbox.scratch().map_err(|e| e.to_string())?;
        for (path, content) in files {
            let target = scratch.path().join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("writing {path}: {e}"))?;
            }
            std::fs::write(&target, content).map_err(|e| format!("writing {path}: {e}"))?;
        }
        Ok((sandbox, scratch))
    }
}

/// One verification in progress.
struct Run<'a> {
    verifier: &'a Verifier,
    design: &'a Design,
    secrets: Vec<String>,
    findings: Vec<Finding>,
    seed: u32,
}

impl Run<'_> {
    async fn component(
        &mut self,
        sandbox: &Sandbox,
        scratch: &Scratch,
        component: &Component,
    ) -> ComponentReport {
        let mut steps = Vec::new();
        let mut blocked: Option<String> = None;
        let mut built = true;
        for (name, command) in component.commands.steps() {
            let Some(command) = command else { continue };
            let step = match &blocked {
                Some(why) => skipped(name, command, why),
                None => self.step(sandbox, scratch, component, name, command).await,
            };
            if step.status != Verdict::Passed {
                match name {
                    "install" => blocked = Some(format!("`{name}` did not pass")),
                    "build" => built = false,
                    _ => {}
                }
                if step.status == Verdict::Unavailable {
                    blocked = Some(step.reason.clone().unwrap_or_default());
                }
            }
            steps.push(step);
        }
        let mut smoke = None;
        if let (Some(start), Some(port), Some(health)) = (
            component.commands.start.as_deref(),
            component.port,
            component.health.as_deref(),
        ) && self.serves_contract(component)
        {
            if let Some(why) =
                blocked.or_else(|| (!built).then(|| "`build` did not pass".to_owned()))
            {
                steps.push(skipped("start", start, &why));
            } else {
                let (step, report) = self
                    .serve(sandbox, scratch, component, start, port, health)
                    .await;
                steps.push(step);
                smoke = report;
            }
        }
        ComponentReport {
            name: component.name.clone(),
            directory: component.directory.clone(),
            steps,
            smoke,
        }
    }

    /// Whether some planned file of `component` implements a contract operation.
    fn serves_contract(&self, component: &Component) -> bool {
        self.design
            .files
            .iter()
            .any(|f| f.component == component.name && !f.operations.is_empty())
    }

    fn spec(
        &self,
        component: &Component,
        command: &str,
        network: Network,
        wall: Duration,
    ) -> CommandSpec {
        CommandSpec {
            cwd: if component.directory == "." {
                String::new()
            } else {
                component.directory.clone()
            },
            network,
            limits: Some(Limits {
                wall,
                ..Limits::default()
            }),
            redact: self.secrets.clone(),
            ..CommandSpec::new(command)
        }
    }

    async fn step(
        &mut self,
        sandbox: &Sandbox,
        scratch: &Scratch,
        component: &Component,
        name: &str,
        command: &str,
    ) -> StepReport {
        if let Some(program) = missing_program(sandbox, command).await {
            return StepReport {
                name: name.to_owned(),
                command: command.to_owned(),
                status: Verdict::Unavailable,
                exit_code: None,
                duration_ms: 0,
                output_tail: String::new(),
                reason: Some(format!("`{program}` is not installed on this worker")),
                tests: None,
            };
        }
        let timeouts = self.verifier.config.timeouts;
        let (network, wall) = if name == "install" {
            let network = match self.verifier.config.network {
                InstallNetwork::Registries => Network::Registries,
                InstallNetwork::None => Network::None,
            };
            (network, timeouts.install)
        } else {
            (Network::None, timeouts.check)
        };
        let outcome = sandbox
            .run(scratch, &self.spec(component, command, network, wall))
            .await;
        let (status, exit_code, reason) = verdict_of(&outcome.status);
        metrics::histogram!("guild_verify_step_seconds", "step" => name.to_owned(), "status" => status.as_str())
            .record(outcome.duration.as_secs_f64());
        if status != Verdict::Passed {
            self.findings.extend(findings::from_output(
                self.design,
                component,
                name,
                command,
                &outcome.tail,
            ));
        }
        StepReport {
            name: name.to_owned(),
            command: command.to_owned(),
            status,
            exit_code,
            duration_ms: millis(outcome.duration),
            tests: (name == "test")
                .then(|| findings::test_count(&outcome.tail))
                .flatten(),
            output_tail: outcome.tail,
            reason,
        }
    }

    /// Starts the component's server with a database of its own, waits for its health
    /// path, calls it through the contract, and stops it.
    async fn serve(
        &mut self,
        sandbox: &Sandbox,
        scratch: &Scratch,
        component: &Component,
        start: &str,
        port: u16,
        health: &str,
    ) -> (StepReport, Option<SmokeReport>) {
        let timeouts = self.verifier.config.timeouts;
        let (env, command) = self.server_environment(component, start, port);
        let mut spec = self.spec(
            component,
            &command,
            Network::None,
            timeouts.start + Duration::from_secs(600),
        );
        spec.env = env;
        let started = Instant::now();
        let step = |status, reason: Option<String>, tail: String, started: Instant| StepReport {
            name: "start".to_owned(),
            command: start.to_owned(),
            status,
            exit_code: None,
            duration_ms: millis(started.elapsed()),
            output_tail: tail,
            reason,
            tests: None,
        };
        let service = match sandbox.start(scratch, &spec, port, &[]).await {
            Ok(service) => service,
            Err(error) => {
                return (
                    step(
                        Verdict::Unavailable,
                        Some(error.to_string()),
                        String::new(),
                        started,
                    ),
                    None,
                );
            }
        };
        if let Err(not_ready) = service.wait_ready(health, timeouts.start).await {
            let outcome = service.stop().await;
            self.findings.extend(findings::from_output(
                self.design,
                component,
                "start",
                start,
                &outcome.tail,
            ));
            return (
                step(
                    Verdict::Failed,
                    Some(not_ready.to_string()),
                    outcome.tail,
                    started,
                ),
                None,
            );
        }
        let ready_ms = millis(started.elapsed());
        let operations = self.design.operations().unwrap_or_default();
        let report = smoke::run(&service.base_url(), health, &operations, self.seed).await;
        self.seed += report.total;
        let outcome = service.stop().await;
        for call in report.calls.iter().filter(|c| !c.passed) {
            if let Some(file) = self.owner_of(&call.operation) {
                self.findings.push(Finding {
                    severity: Severity::High,
                    file,
                    line: None,
                    message: format!(
                        "smoke test, `{}` {}: {} {}",
                        call.operation,
                        call.check,
                        call.path,
                        call.problem.as_deref().unwrap_or("failed")
                    ),
                    suggested_fix: Some(format!(
                        "answer {} as the contract documents it",
                        call.expected
                    )),
                });
            }
        }
        let mut started_step = step(Verdict::Passed, None, outcome.tail, started);
        started_step.duration_ms = ready_ms;
        (started_step, Some(report))
    }

    /// The file the design says implements `operation` (`METHOD /path`).
    fn owner_of(&self, operation: &str) -> Option<String> {
        self.design
            .files
            .iter()
            .find(|f| f.operations.iter().any(|o| o == operation))
            .map(|f| f.path.clone())
    }

    /// The server's environment (its port, a database URL for its own cluster, a fresh
    /// value for each secret without a default) and its command, with the cluster started
    /// first when it needs one.
    fn server_environment(
        &mut self,
        component: &Component,
        start: &str,
        port: u16,
    ) -> (Vec<(String, String)>, String) {
        let mut env = vec![
            ("PORT".to_owned(), port.to_string()),
            ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ];
        let mut database = false;
        for var in &component.env {
            let name = var.name.as_str();
            let purpose = var.purpose.as_deref().unwrap_or_default().to_lowercase();
            if name.ends_with("DATABASE_URL")
                || (name.contains("DB") && purpose.contains("postgres"))
            {
                env.push((name.to_owned(), DATABASE_URL.to_owned()));
                database = true;
            } else if var.secret && var.default.is_none() {
                let value = format!("smoke-{}-{:x}", name.to_lowercase(), rand_u64());
                self.secrets.push(value.clone());
                env.push((name.to_owned(), value));
            }
        }
        let command = match (&self.verifier.postgres, database) {
            (Some(bin), true) => format!("{} && {start}", postgres_start(bin)),
            _ => start.to_owned(),
        };
        (env, command)
    }
}

/// The URL of a server's throwaway cluster, inside its sandbox: its superuser `app` and
/// the `postgres` database `initdb` makes.
const DATABASE_URL: &str = "postgresql://app@127.0.0.1:5432/postgres";

/// Shell commands that make and start a PostgreSQL cluster in the sandbox's `/tmp`, on its
/// own loopback.
fn postgres_start(bin: &std::path::Path) -> String {
    let bin = bin.display();
    format!(
        "{{ {bin}/initdb -D /tmp/guild-pg -U app --auth=trust -E UTF8 >/tmp/guild-pg-init.log 2>&1 \
         && {bin}/pg_ctl -D /tmp/guild-pg -l /tmp/guild-pg.log -w \
            -o \"-c listen_addresses=127.0.0.1 -p 5432 -k /tmp -c fsync=off -c synchronous_commit=off\" start >/dev/null \
         || {{ echo 'the throwaway PostgreSQL did not start:'; tail -20 /tmp/guild-pg-init.log /tmp/guild-pg.log 2>/dev/null; exit 1; }}; }}"
    )
}

/// A random number for secrets the server is given (never printed: redacted).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}

/// The program a command runs first, when it names one to look up on PATH (`npm`, not
/// `.venv/bin/pytest`), if the sandbox lacks it.
async fn missing_program(sandbox: &Sandbox, command: &str) -> Option<String> {
    let program = command.split_whitespace().next()?;
    if program.contains('/') || program.contains('=') {
        return None;
    }
    sandbox
        .which(program)
        .await
        .err()
        .map(|_| program.to_owned())
}

fn verdict_of(status: &guild_sandbox::Status) -> (Verdict, Option<i32>, Option<String>) {
    use guild_sandbox::Status;
    match status {
        Status::Exited(0) => (Verdict::Passed, Some(0), None),
        Status::Exited(code) => (
            Verdict::Failed,
            Some(*code),
            Some(format!("exited with code {code}")),
        ),
        Status::TimedOut => (Verdict::TimedOut, None, Some(status.to_string())),
        Status::FailedToStart(why) => (Verdict::Unavailable, None, Some(why.clone())),
        other => (Verdict::Failed, None, Some(other.to_string())),
    }
}

fn skipped(name: &str, command: &str, why: &str) -> StepReport {
    StepReport {
        name: name.to_owned(),
        command: command.to_owned(),
        status: Verdict::Skipped,
        exit_code: None,
        duration_ms: 0,
        output_tail: String::new(),
        reason: Some(why.to_owned()),
        tests: None,
    }
}

/// A component none of whose steps could run.
fn unavailable(component: &Component, reason: &str) -> ComponentReport {
    let steps = component
        .commands
        .steps()
        .into_iter()
        .filter_map(|(name, command)| command.map(|c| (name, c)))
        .map(|(name, command)| StepReport {
            status: Verdict::Unavailable,
            ..skipped(name, command, reason)
        })
        .collect();
    ComponentReport {
        name: component.name.clone(),
        directory: component.directory.clone(),
        steps,
        smoke: None,
    }
}

/// Failed when anything failed; unavailable when something could not run (never passed);
/// passed only when every step and call passed.
fn overall(components: &[ComponentReport]) -> Verdict {
    let verdicts: Vec<Verdict> = components
        .iter()
        .flat_map(|c| {
            c.steps
                .iter()
                .map(|s| s.status)
                .chain(c.smoke.iter().map(|s| s.status))
        })
        .collect();
    if verdicts
        .iter()
        .any(|v| matches!(v, Verdict::Failed | Verdict::TimedOut))
    {
        Verdict::Failed
    } else if verdicts.is_empty()
        || verdicts
            .iter()
            .any(|v| matches!(v, Verdict::Unavailable | Verdict::Skipped))
    {
        Verdict::Unavailable
    } else {
        Verdict::Passed
    }
}

/// `backend: install ✓ typecheck ✓ build ✓ test 12/12 ✓ start ✓ smoke 14/14 ✓; frontend: …`
fn summary(components: &[ComponentReport]) -> String {
    components
        .iter()
        .map(|c| {
            let mut parts: Vec<String> = c
                .steps
                .iter()
                .map(|s| match s.tests {
                    Some(t) => format!(
                        "{} {}/{} {}",
                        s.name,
                        t.passed,
                        t.passed + t.failed,
                        s.status.symbol()
                    ),
                    None => format!("{} {}", s.name, s.status.symbol()),
                })
                .collect();
            if let Some(smoke) = &c.smoke {
                parts.push(format!(
                    "smoke {}/{} {}",
                    smoke.passed,
                    smoke.total,
                    smoke.status.symbol()
                ));
            }
            format!("{}: {}", c.name, parts.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl Agent for Verifier {
    /// A verify task: the project's design and latest files, verified; the report in the
    /// outcome, the failures as findings (a fix round follows, like a review's).
    async fn run(&self, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
        let Some(design) = input
            .context
            .design
            .clone()
            .and_then(|d| Design::from_value(d).ok())
        else {
            let report = Report::unavailable(
                "nothing to verify: the project has no design (its commands and contract)",
            );
            return Ok(outcome(report, Vec::new()));
        };
        let files: Vec<(&str, &str)> = input
            .context
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.content.as_str()))
            .collect();
        let (report, findings) = self.verify(&design, &files, &[]).await;
        Ok(outcome(report, findings))
    }
}

fn outcome(report: Report, findings: Vec<Finding>) -> AgentOutcome {
    AgentOutcome {
        summary: format!(
            "Verification {}: {}",
            report.status.as_str(),
            report.summary
        ),
        findings,
        verification: Some(serde_json::to_value(&report).expect("a report serialises")),
        prompt_version: "verify-1".to_owned(),
        ..AgentOutcome::default()
    }
}
