//! The verification stage of this process: a verifier when `GUILD_VERIFY` asks for one
//! (or, unset, when the sandbox works here), and the line saying which.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use guild_sandbox::Relay;
use guild_verify::{InstallNetwork, Timeouts, Verifier, VerifierConfig};

use crate::cli::{VerifyArgs, VerifyMode, VerifyNetwork};

/// The hidden subcommand that relays a sandboxed server's port (see `guild_sandbox::relay_main`).
pub const RELAY_COMMAND: &str = "__sandbox-relay";

/// This process's verifier, or `None` with verification off, and one line saying which
/// and why.
pub async fn verifier(args: &VerifyArgs) -> (Option<Arc<Verifier>>, String) {
    if args.verify == Some(VerifyMode::Off) {
        return (None, "verification: off (GUILD_VERIFY=off)".to_owned());
    }
    let root = args.sandbox_dir.clone().unwrap_or_else(default_root);
    let relay = std::env::current_exe().ok().map(|program| Relay {
        program,
        args: vec![RELAY_COMMAND.to_owned()],
    });
    let verifier = Verifier::new(VerifierConfig {
        root: root.clone(),
        relay,
        network: match args.network {
            VerifyNetwork::Install => InstallNetwork::Registries,
            VerifyNetwork::None => InstallNetwork::None,
        },
        timeouts: Timeouts {
            install: Duration::from_secs(args.install_timeout_secs),
            check: Duration::from_secs(args.step_timeout_secs),
            start: Duration::from_secs(args.start_timeout_secs),
        },
        concurrency: usize::from(args.concurrency),
    });
    match (verifier.available().await, args.verify) {
        (Ok(()), _) => (
            Some(Arc::new(verifier)),
            format!("verification: full (sandbox in {})", root.display()),
        ),
        // Asked for: kept, so every verification says why it could not run.
        (Err(why), Some(VerifyMode::Full)) => (
            Some(Arc::new(verifier)),
            format!("verification: full, but unavailable here: {why}"),
        ),
        (Err(why), _) => (
            None,
            format!("verification: off (the sandbox does not work here: {why})"),
        ),
    }
}

/// `/var/lib/guild/sandbox` as root (the sandbox's user must reach it), else the user's
/// cache directory.
fn default_root() -> PathBuf {
    if running_as_root() {
        return PathBuf::from("/var/lib/guild/sandbox");
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("guild/sandbox")
}

/// Whether this process runs as root, read from `/proc/self/status` (no unsafe call).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
