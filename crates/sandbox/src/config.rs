//! What a sandbox is configured with: where it keeps its files, the relay, the limits.

use std::path::PathBuf;
use std::time::Duration;

/// The host user (and group) sandboxes run as when this process is root. Chosen to be used by
/// nothing else on a host: below 2^31 (some tools read ids as signed) and above the ranges
/// distributions, systemd and `/etc/subuid` hand out. Override it with
/// [`SandboxConfig::uid`] if the host already uses it.
pub const DEFAULT_UID: u32 = 2_000_000_000;

/// How a [`crate::Sandbox`] is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// A directory of the sandbox's own (created if missing, made `0755`): scratch
    /// directories under `scratch/`, the package caches under `cache/<uid>/`, the
    /// `passwd`/`group` files shown inside under `etc/`, and a copy of the relay under `bin/`
    /// when its own path is closed to the sandbox user. As root, every parent of it must be
    /// traversable by other users (not under `/root`): for example `/var/lib/guild/sandbox`.
    pub root: PathBuf,
    /// The program that runs services' relays ([`crate::relay_main`]); `None` disables
    /// [`crate::Sandbox::start`].
    pub relay: Option<Relay>,
    /// Limits of every command that does not bring its own.
    pub limits: Limits,
    /// Host uid and gid of every sandbox when this process is root; ignored otherwise (the
    /// sandbox then runs as this process's user). Never 0.
    pub uid: u32,
}

impl SandboxConfig {
    /// A configuration with the default limits, no relay, and [`DEFAULT_UID`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            relay: None,
            limits: Limits::default(),
            uid: DEFAULT_UID,
        }
    }
}

/// The relay program: `program args… --expose … -- sh -c COMMAND` must call
/// [`crate::relay_main`] with the arguments that follow `args`. For Guild, `guild` with
/// `["__sandbox-relay"]`.
#[derive(Debug, Clone)]
pub struct Relay {
    /// Path of the executable on the host (a dynamically linked program needs only the
    /// system's libraries, which the sandbox shows).
    pub program: PathBuf,
    /// Leading arguments, before the relay's own.
    pub args: Vec<String>,
}

/// Limits of one command. Memory, CPU time, processes and file size are per-process resource
/// limits (`prlimit`), so they bound each process, not the sandbox as a whole: see the crate
/// documentation.
///
/// The defaults were measured with Node 20, npm 11, Vite 8 (Rolldown), TypeScript 7 (Go),
/// Vitest 4 and Python 3.11 on a 2-core host: `npx tsc --noEmit && npx vite build` of a
/// small project failed with 128 MiB and was on the edge with 256 MiB (failed once, passed
/// once); Vitest failed with 256 MiB and passed with 512 MiB; `node -e` holding 300 MB of
/// buffers and 3 million objects (554 MiB resident) passed with 1 GiB; `npm --version`
/// passed with 128 MiB and `pip install pytest` with 64 MiB. Vitest failed with 32
/// processes and passed with 64 (threads count: a Node process has about ten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from start to end; then the whole process tree is killed
    /// ([`crate::Status::TimedOut`]). Default 10 minutes (a cold `npm install` of a large
    /// project takes a few).
    pub wall: Duration,
    /// CPU time of each process (`RLIMIT_CPU`, whole seconds, rounded up): `SIGXCPU` at the
    /// limit, `SIGKILL` 5 s later. Default 5 minutes.
    pub cpu: Duration,
    /// Writable private memory of each process in bytes (`RLIMIT_DATA`: heap, anonymous
    /// mappings, thread stacks). Not `RLIMIT_AS`: V8 reserves about 10 GiB of address space
    /// for every WebAssembly instance (Vite's module lexer is one), so a Vite build needs an
    /// address-space limit of 14 GiB, which would bound nothing. Default 2 GiB (four times
    /// what Vitest needed, eight times a small Vite build).
    pub memory_bytes: u64,
    /// Processes and threads of the sandbox at once (`RLIMIT_NPROC`, counted per sandbox: see
    /// the crate documentation). Default 1024: a Vitest fork is about a dozen threads, and
    /// Vitest starts one per core.
    pub processes: u32,
    /// Largest file a process may write, in bytes (`RLIMIT_FSIZE`). Default 1 GiB (native
    /// binaries in `node_modules` reach 150 MB).
    pub file_size_bytes: u64,
    /// Size of each of the in-memory `/tmp` and `/dev/shm`, in bytes. Default 512 MiB.
    pub tmp_bytes: u64,
    /// Output (stdout and stderr together) after which the command is killed
    /// ([`crate::Status::OutputLimit`]). Default 32 MiB.
    pub output_bytes: u64,
    /// How much of the output's end the [`crate::Outcome`] keeps, in bytes. Default 64 KiB.
    pub tail_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall: Duration::from_secs(600),
            cpu: Duration::from_secs(300),
            memory_bytes: 2 << 30,
            processes: 1024,
            file_size_bytes: 1 << 30,
            tmp_bytes: 512 << 20,
            output_bytes: 32 << 20,
            tail_bytes: 64 << 10,
        }
    }
}
