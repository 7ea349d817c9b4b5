//! Helpers shared by the integration tests: a sandbox in a temporary root, and a look for
//! processes left behind.
#![allow(dead_code)] // each test binary uses some of them

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use guild_sandbox::{Limits, Relay, Sandbox, SandboxConfig};

/// A sandbox whose root is a fresh temporary directory (removed with the `TempDir`), with
/// the relay built for these tests.
pub fn sandbox() -> (tempfile::TempDir, Sandbox) {
    sandbox_with(Limits::default(), relay_path())
}

pub fn sandbox_with(limits: Limits, relay: PathBuf) -> (tempfile::TempDir, Sandbox) {
    let root = tempfile::tempdir().expect("a temporary directory");
    let config = SandboxConfig {
        relay: Some(Relay {
            program: relay,
            args: Vec::new(),
        }),
        limits,
        ..SandboxConfig::new(root.path())
    };
    let sandbox = Sandbox::new(config).expect("a sandbox");
    (root, sandbox)
}

pub fn relay_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_guild-sandbox-relay"))
}

/// Default limits with a wall clock of `wall_secs`.
pub fn limits(wall_secs: u64) -> Limits {
    Limits {
        wall: Duration::from_secs(wall_secs),
        ..Limits::default()
    }
}

/// Digits no other process of the host has in its command line: put them in a sandboxed
/// command's (`sleep 1000.MARKER`, say) to find its processes with [`survivors`].
pub fn marker() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}{:04}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The host's processes (other than this one) whose command line holds `marker`.
pub fn survivors(marker: &str) -> Vec<String> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (pid != me && cmdline.contains(marker)).then(|| format!("{pid}: {cmdline}"))
        })
        .collect()
}
