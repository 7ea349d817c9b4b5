//! `guild change`: a change request on a project in the local database, run to its end in
//! this process, its diff stat printed and the project's files written again.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use guild_core::options::{MAX_DESCRIPTION_CHARS, check_text};
use guild_core::{ProjectOptions, ProjectStatus};
use guild_store::changes::{self, NewChange};
use guild_store::files;

use crate::cli::ChangeArgs;
use crate::database::Database;
use crate::progress::Progress;
use crate::run::{Outcome, Workers};
use crate::signals::ShutdownSignals;

pub async fn change(args: ChangeArgs) -> anyhow::Result<ExitCode> {
    let description = args.description.trim();
    if let Some(invalid) = check_text("description", description, MAX_DESCRIPTION_CHARS) {
        anyhow::bail!("{}: {}", invalid.field, invalid.reason);
    }
    crate::output::check_writable(&args.out, args.force)?;
    let started = Instant::now();
    let mut signals = ShutdownSignals::register().context("registering signal handlers")?;
    let database = Database::open(&args.database, u32::from(args.workers) + 4).await?;
    let result = run_change(&args, description, &database, started, &mut signals).await;
    database.close().await;
    result
}

async fn run_change(
    args: &ChangeArgs,
    description: &str,
    database: &Database,
    started: Instant,
    signals: &mut ShutdownSignals,
) -> anyhow::Result<ExitCode> {
    let pool = &database.pool;
    let (verifier, verification) = crate::verify::verifier(&args.verify).await;
    let agents = crate::llm::agents(&args.llm, pool, verifier)?;
    let model = agents.describe();
    let workers = Workers::new(database, agents, args.workers);
    let options = ProjectOptions {
        max_tokens: args.budget.project_max_tokens,
        max_cost_usd: args.budget.project_max_cost_usd,
        ..ProjectOptions::default()
    };
    let (revision, _) = changes::request(
        pool,
        args.project_id,
        &NewChange {
            description,
            options: &options,
            default_max_tokens: None,
            default_max_cost_usd: None,
            idempotency: None,
        },
    )
    .await
    .map_err(|error| match error {
        guild_store::StoreError::NotFound(_) => anyhow::anyhow!(
            "no project {} in this database (guild change works on projects `guild run` made with the same --data-dir or DATABASE_URL)",
            args.project_id
        ),
        error => anyhow::anyhow!("{error}"),
    })?;
    let number = revision.number;
    say!(
        "Project {}: change {number} ({}), model {model}; {verification}",
        args.project_id,
        revision.tasks.join(", ")
    );
    let outcome = workers
        .follow(pool, args.project_id, Progress::growing(), signals)
        .await?;
    let Outcome::Finished(project) = outcome else {
        eprintln!(
            "interrupted: change {number} of project {} was left unfinished",
            args.project_id
        );
        return Ok(ExitCode::from(130));
    };
    let tree = |files: Vec<files::StoredFile>| -> BTreeMap<String, String> {
        files.into_iter().map(|f| (f.path, f.content)).collect()
    };
    let before = tree(files::at_revision(pool, project.id, number - 1).await?);
    let after = tree(files::at_revision(pool, project.id, number).await?);
    let revision = changes::revision(pool, project.id, number)
        .await?
        .context("the revision vanished")?;
    say!();
    say!(
        "Change {number} of project {} {} in {:.2} s",
        project.id,
        project.status,
        started.elapsed().as_secs_f64()
    );
    say!("  tasks:    {}", revision.tasks.join(", "));
    let stat = guild_api::diff::stat(&before, &after);
    let (added, removed) = stat
        .iter()
        .fold((0, 0), |(a, r), f| (a + f.added, r + f.removed));
    say!(
        "  diff:     {} file(s) changed, {added} insertion(s)(+), {removed} deletion(s)(-)",
        stat.len()
    );
    for file in &stat {
        say!(
            "            {:<50} +{} -{}",
            file.path,
            file.added,
            file.removed
        );
    }
    let mut own = guild_store::tasks::list(pool, project.id).await?;
    own.retain(|t| t.revision == number);
    for line in crate::run::verification_lines(&own) {
        say!("  verify:   {line}");
    }
    say!(
        "  tokens:   {} prompt + {} completion (this change)",
        revision.usage.prompt_tokens,
        revision.usage.completion_tokens
    );
    let written =
        crate::output::write_project(pool, project.id, &args.out, args.force, args.git).await?;
    say!(
        "  files:    {} written under {}",
        written.files,
        args.out.display()
    );
    if project.status == ProjectStatus::Completed {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "change {number} {}: {}",
        project.status,
        project.error.as_deref().unwrap_or("no reason recorded")
    );
    Ok(ExitCode::FAILURE)
}
