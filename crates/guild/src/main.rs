//! `guild`: orchestrates AI agents that write software. A thin binary: the logic lives in
//! the library crates.

/// Prints a line to stdout, ignoring a closed stdout: a reader that went away (`| head`)
/// must not stop a run, whose files and exit code still matter.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod bench;
mod change;
mod cli;
mod config_reference;
mod database;
mod eval;
mod healthcheck;
mod llm;
mod output;
mod progress;
mod run;
mod serve;
mod signals;
mod telemetry;
mod verify;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    // A sandboxed server's relay: started by the sandbox, not by a person; no runtime, no
    // logging, nothing but the relay.
    let mut args = std::env::args();
    if args.nth(1).as_deref() == Some(verify::RELAY_COMMAND) {
        std::process::exit(guild_sandbox::relay_main(args.collect()));
    }
    let cli = Cli::parse();
    let _telemetry = telemetry::init(cli.command.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Change(args) => change::change(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Worker(args) => worker::worker(args).await,
            Command::Migrate(args) => database::migrate_command(args).await,
            Command::Openapi => openapi(),
            Command::Bench(args) => bench::bench(args).await,
            Command::Eval(args) => eval::eval(args).await,
            Command::Prune(args) => database::prune_command(args).await,
            Command::Healthcheck(args) => healthcheck::healthcheck(args).await,
            Command::ConfigReference => {
                print!("{}", config_reference::render());
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `guild openapi`: the spec committed as `openapi/openapi.json`.
fn openapi() -> anyhow::Result<ExitCode> {
    let spec = guild_api::openapi()
        .to_pretty_json()
        .map_err(|e| anyhow::anyhow!("serialising the spec: {e}"))?;
    say!("{spec}");
    Ok(ExitCode::SUCCESS)
}
