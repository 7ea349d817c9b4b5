//! Runs untrusted generated code — package installs, type checks, builds, tests and web
//! servers — in a [bubblewrap](https://github.com/containers/bubblewrap) sandbox with limits.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use guild_sandbox::{CommandSpec, Network, Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::new(SandboxConfig::new("/var/lib/guild/sandbox"))?;
//! sandbox.probe().await?; // bubblewrap is missing or unusable: mark the steps unavailable
//! let scratch = sandbox.scratch()?;
//! std::fs::write(scratch.path().join("package.json"), r#"{"name":"app"}"#)?;
//! let install = CommandSpec { network: Network::Registries, ..CommandSpec::new("npm install") };
//! let outcome = sandbox.run(&scratch, &install).await;
//! println!("{} after {:?}:\n{}", outcome.status, outcome.duration, outcome.tail);
//! # Ok(()) }
//! ```
//!
//! # The model
//!
//! Every command runs as `bwrap … -- prlimit … -- /bin/sh -c COMMAND`:
//!
//! - **Namespaces.** New user, PID, IPC, UTS, cgroup and network namespaces
//!   (`--unshare-all`), no further user namespaces inside (`--disable-userns`), a new
//!   session (no terminal to inject keys into), and `--die-with-parent`. Inside, the
//!   command is uid and gid 1000 (`sandbox`, from a `passwd` of the sandbox's own) and
//!   process 2; bwrap's reaper is process 1.
//! - **Files.** The root is an empty read-only tmpfs with: `/usr`, `/bin`, `/sbin`, `/lib*`
//!   (read-only, or the links to `/usr` of a merged-`/usr` system); a few entries of `/etc`
//!   (read-only: name resolution, TLS certificates, the linker's cache, alternatives, Python's
//!   site files; not the host's `passwd`, nor any other configuration, which may hold secrets);
//!   a fresh `/proc` (the sandbox's processes only); a minimal read-only `/dev` (`null`,
//!   `zero`, `random`, `urandom`, `tty`, `pts`); `/tmp` and `/dev/shm` as tmpfs of
//!   [`Limits::tmp_bytes`] each. Writable, and nothing else: the scratch directory at
//!   [`PROJECT_DIR`], its private home at [`HOME_DIR`], and the package cache at
//!   [`CACHE_DIR`] (`npm` and `pip` in it, shared by every sandbox of the same root and
//!   uid, so installs after the first are fast). `/root`, `/home`, `/var`, `/srv`, `/opt`,
//!   `/work`, `/sys` and the host's `/tmp` are not there at all.
//! - **Environment.** None of this process's: bwrap itself starts with an empty environment
//!   (so even `/proc/1/environ` inside is empty) and the command gets a fixed base
//!   (`PATH=/usr/local/bin:/usr/bin:/bin`, `HOME=/home/sandbox`, `LANG=C.UTF-8`, `CI=true`,
//!   `NO_COLOR=1`, `TMPDIR=/tmp`, npm's cache, update notifier, fund and audit settings,
//!   pip's cache, version check and no-input settings, `PYTHONUNBUFFERED=1`) plus
//!   [`CommandSpec::env`].
//! - **Network.** [`Network::None`]: a network namespace with only its own loopback.
//!   [`Network::Registries`] (install steps): the host's network namespace.
//! - **User.** As root, the sandbox runs as an unprivileged host uid ([`SandboxConfig::uid`]),
//!   because the kernel does not apply `RLIMIT_NPROC` to processes whose real uid is root;
//!   otherwise as this process's user. Files the host wrote into a scratch directory are
//!   given to that uid before a run.
//! - **Limits** ([`Limits`]). Set by `prlimit` inside the sandbox on the command (and
//!   inherited by everything it starts): `RLIMIT_DATA` (memory), `RLIMIT_CPU`,
//!   `RLIMIT_NPROC`, `RLIMIT_FSIZE`, and no core dumps. The kernel (5.14 and later) counts
//!   `RLIMIT_NPROC` per user namespace as well as per host uid, and the limit is set inside
//!   the sandbox's namespace, so it counts the processes of that sandbox only: concurrent
//!   sandboxes sharing the uid (or this process's user) do not share the count. Above that,
//!   the host uid's total is capped by this process's own `RLIMIT_NPROC`.
//! - **Ending.** A command that runs past [`Limits::wall`] or writes more than
//!   [`Limits::output_bytes`] is killed with its whole tree: killing bwrap kills its reaper
//!   (`--die-with-parent`), and the kernel kills every process of a PID namespace whose first
//!   process dies; the run returns once that process is gone. A command that ends by itself
//!   takes its background processes with it the same way.
//! - **Output.** Stdout and stderr go to one pipe, in the order written; the [`Outcome`]
//!   keeps the tail, with the caller's secrets redacted.
//! - **Services** ([`Sandbox::start`]). The command runs under the relay ([`relay_main`],
//!   mounted read-only at `/run/relay`), which connects the host to the service's port and
//!   the service to host addresses through Unix sockets of the host, in a directory the
//!   sandbox sees read-only (see [`Service`]). The host side is a TCP listener on
//!   `127.0.0.1:0`.
//!
//! # What is not isolated
//!
//! - **The kernel.** Sandboxed code makes system calls to the host's kernel, and an
//!   unprivileged user namespace opens more of it (mounting inside the namespace, say) than
//!   a plain process has. There is no seccomp filter. A kernel bug is an escape.
//! - **Total memory and CPU.** The limits are per process: a sandbox may hold up to
//!   [`Limits::processes`] processes of [`Limits::memory_bytes`] each, plus shared memory
//!   (`memfd`, System V) that `RLIMIT_DATA` does not count, and a fork bomb burns CPU
//!   until the wall clock kills it. A cap on the whole needs cgroups, which need root or a
//!   delegated cgroup tree.
//! - **Disk.** Nothing caps what a command writes into its scratch directory, home or the
//!   cache beyond [`Limits::file_size_bytes`] per file.
//! - **The package cache** is shared and writable: one project's install can plant entries a
//!   later project's install uses (npm checks integrity against its lockfile, pip does not
//!   without hashes).
//! - **[`Network::Registries`]** is the host's whole network: the host's loopback services
//!   (PostgreSQL, Guild's API) and the local network are reachable during installs. Only
//!   install steps should use it.
//! - **The scratch directory after a run** may hold symbolic links anywhere: read it without
//!   following links. `/proc/self/mountinfo` inside shows the host paths of the mounts.
//! - **Without bubblewrap** nothing runs: [`Sandbox::probe`] says so, and callers mark the
//!   steps unavailable.

mod config;
mod error;
mod host;
mod outcome;
mod process;
mod relay;
mod scratch;
mod service;
mod spec;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use config::{DEFAULT_UID, Limits, Relay, SandboxConfig};
pub use error::SandboxError;
pub use outcome::{Outcome, Status};
pub use relay::relay_main;
pub use scratch::Scratch;
pub use service::{NotReady, Reach, Service};
pub use spec::{CommandSpec, Network};

use error::io_error;
use host::{RunAs, SystemView, set_mode};
use outcome::Capture;
use process::Running;
use scratch::ScratchDirs;
use spec::{Layout, bwrap_args, shell};

/// The scratch directory, inside.
pub const PROJECT_DIR: &str = "/project";
/// The shared package cache, inside (`npm` and `pip` in it).
pub const CACHE_DIR: &str = "/cache";
/// The sandbox user's home, inside: private to the scratch directory, kept between its runs.
pub const HOME_DIR: &str = "/home/sandbox";
/// The host's sockets of the scratch directory's services, inside (read-only).
pub const RUN_DIR: &str = "/run/sandbox";

/// Why the sandbox cannot run anything here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    pub reason: String,
}

impl Unavailable {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Runs commands in sandboxes. Cheap to clone; every clone shares the root directory.
#[derive(Debug, Clone)]
pub struct Sandbox {
    host: Arc<Host>,
}

#[derive(Debug)]
struct Host {
    limits: Limits,
    run_as: RunAs,
    bwrap: Option<PathBuf>,
    layout: Layout,
    scratch_root: PathBuf,
    next_scratch: AtomicU64,
}

/// A command ready to start in a scratch directory, with the guard it holds while it runs.
struct Prepared {
    args: Vec<OsString>,
    bwrap: PathBuf,
    guard: tokio::sync::OwnedRwLockReadGuard<()>,
}

impl Sandbox {
    /// Sets up the root directory (see [`SandboxConfig::root`]) and finds the programs the
    /// sandbox needs. A missing `bwrap` is not an error here: [`Sandbox::probe`] reports it.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let run_as = RunAs::detect(config.uid)?;
        let root = &config.root;
        std::fs::create_dir_all(root).map_err(io_error(format!("creating {}", root.display())))?;
        let root = std::fs::canonicalize(root)
            .map_err(io_error(format!("resolving {}", root.display())))?;
        set_mode(&root, 0o755)?;
        host::check_reachable(run_as, &root)?;

        // One cache per host uid: npm and pip cannot share files between users.
        let cache = root.join("cache").join(run_as.host_uid()?.to_string());
        for dir in [cache.join("npm"), cache.join("pip")] {
            std::fs::create_dir_all(&dir)
                .map_err(io_error(format!("creating {}", dir.display())))?;
            run_as.hand_over(&dir)?;
        }
        run_as.hand_over(&cache)?;
        set_mode(&root.join("cache"), 0o755)?;

        let etc = root.join("etc");
        host::write_identity_files(&etc)?;
        let scratch_root = root.join("scratch");
        std::fs::create_dir_all(&scratch_root)
            .map_err(io_error(format!("creating {}", scratch_root.display())))?;
        set_mode(&scratch_root, 0o755)?;
        let relay = match &config.relay {
            Some(relay) => Some((
                host::install_relay(run_as, &root, relay)?,
                relay.args.clone(),
            )),
            None => None,
        };
        let prlimit = host::find_program(&[
            "/usr/bin/prlimit",
            "/bin/prlimit",
            "/usr/sbin/prlimit",
            "/sbin/prlimit",
        ]);
        let layout = Layout {
            system: SystemView::of_host(),
            etc,
            cache,
            prlimit,
            relay,
        };
        Ok(Self {
            host: Arc::new(Host {
                limits: config.limits,
                run_as,
                bwrap: host::find_bwrap(),
                layout,
                scratch_root,
                next_scratch: AtomicU64::new(0),
            }),
        })
    }

    /// The limits of commands that bring none.
    pub fn limits(&self) -> &Limits {
        &self.host.limits
    }

    /// A fresh, empty scratch directory (see [`Scratch`]).
    pub fn scratch(&self) -> Result<Scratch, SandboxError> {
        loop {
            let n = self.host.next_scratch.fetch_add(1, Ordering::Relaxed);
            let dir = self
                .host
                .scratch_root
                .join(format!("{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                // Left by an earlier process with the same pid, or made by another `Sandbox`
                // of this process on the same root.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(io_error(format!("creating {}", dir.display()))(error)),
                Ok(()) => {}
            }
            let dirs = ScratchDirs::create_in(dir, self.host.run_as)?;
            return Ok(Scratch {
                dirs: Arc::new(dirs),
            });
        }
    }

    /// Runs `spec` in `scratch` to its end (see [`Outcome`]). Commands may run at the same
    /// time, in the same scratch directory or not.
    ///
    /// Call it (and [`Sandbox::start`]) from a task of the runtime, not from a blocking
    /// thread: `bwrap --die-with-parent` dies with the thread that started it, and the
    /// runtime ends idle blocking threads.
    pub async fn run(&self, scratch: &Scratch, spec: &CommandSpec) -> Outcome {
        let limits = spec.limits.as_ref().unwrap_or(&self.host.limits);
        let prepared = match self
            .prepare(&scratch.dirs, spec, limits, shell(&spec.command))
            .await
        {
            Ok(prepared) => prepared,
            Err(why) => return Outcome::failed_to_start(why),
        };
        let capture = Arc::new(Mutex::new(Capture::new(
            limits.tail_bytes,
            limits.output_bytes,
            &spec.redact,
        )));
        let running =
            match Running::spawn(&prepared.bwrap, &prepared.args, self.host.run_as, capture) {
                Ok(running) => running,
                Err(why) => return Outcome::failed_to_start(why),
            };
        let outcome = running.supervise(limits.wall, std::future::pending()).await;
        drop(prepared.guard);
        tracing::debug!(
            status = %outcome.status,
            duration_ms = outcome.duration.as_millis(),
            output_bytes = outcome.output_bytes,
            network = ?spec.network,
            "sandboxed command ended"
        );
        outcome
    }

    /// Whether sandboxes can run here: `bwrap` and `prlimit` are installed and a trivial
    /// command runs in a sandbox.
    pub async fn probe(&self) -> Result<(), Unavailable> {
        if self.host.bwrap.is_none() {
            return Err(Unavailable::new(
                "bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)",
            ));
        }
        if self.host.layout.prlimit.is_none() {
            return Err(Unavailable::new(
                "prlimit (util-linux) is not installed under /usr or /bin",
            ));
        }
        let outcome = self.run_probe("true").await?;
        if outcome.success() {
            return Ok(());
        }
        Err(Unavailable::new(format!(
            "a trivial command in the sandbox {}: {}",
            outcome.status,
            outcome.tail.trim()
        )))
    }

    /// Where `program` (`node`, `npm`, `python3`) is inside the sandbox: its path, or why it
    /// cannot be used (not installed, or no sandbox).
    pub async fn which(&self, program: &str) -> Result<String, Unavailable> {
        let plain = !program.is_empty()
            && !program.starts_with('-')
            && program
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
        if !plain {
            return Err(Unavailable::new(format!(
                "{program:?} is not a program name"
            )));
        }
        self.probe().await?;
        let outcome = self.run_probe(&format!("command -v {program}")).await?;
        match outcome.status {
            Status::Exited(0) => Ok(outcome.tail.trim().to_owned()),
            Status::Exited(_) => Err(Unavailable::new(format!(
                "{program} is not installed (not found in the sandbox's PATH, \
                 /usr/local/bin:/usr/bin:/bin)"
            ))),
            status => Err(Unavailable::new(format!("looking for {program}: {status}"))),
        }
    }

    async fn run_probe(&self, command: &str) -> Result<Outcome, Unavailable> {
        let scratch = self
            .scratch()
            .map_err(|e| Unavailable::new(e.to_string()))?;
        let spec = CommandSpec {
            limits: Some(Limits {
                wall: Duration::from_secs(30),
                ..self.host.limits.clone()
            }),
            ..CommandSpec::new(command)
        };
        Ok(self.run(&scratch, &spec).await)
    }

    /// Checks `spec`, waits for the scratch directory (see [`ScratchDirs::enter`]) and builds
    /// bwrap's command line; or says why the command cannot start.
    async fn prepare(
        &self,
        dirs: &ScratchDirs,
        spec: &CommandSpec,
        limits: &Limits,
        program: Vec<OsString>,
    ) -> Result<Prepared, String> {
        let bwrap = self
            .host
            .bwrap
            .clone()
            .ok_or("bubblewrap (bwrap) is not installed")?;
        let cwd = spec.cwd_inside()?;
        spec.check_env()?;
        if !dirs.project.join(&spec.cwd).is_dir() {
            return Err(format!(
                "the working directory {:?} does not exist",
                spec.cwd
            ));
        }
        let guard = dirs.enter().await.map_err(|e| e.to_string())?;
        let args = bwrap_args(&self.host.layout, dirs, spec, limits, &cwd, program);
        Ok(Prepared { args, bwrap, guard })
    }
}
