//! A private PostgreSQL cluster run from the server binaries installed on the machine.
//!
//! [`Cluster::start`] initialises a data directory on first use, starts the server on a free
//! port of 127.0.0.1, and hands back its URL. The server is stopped when the [`Cluster`] is
//! stopped or dropped, and also when this process dies in any way: a small watchdog shell
//! holds a pipe from this process and stops the server when the pipe closes.
//!
//! `initdb` and `postgres` refuse to run as root, so as root every PostgreSQL command runs as
//! the `postgres` system user and the data directory is handed to that user.

mod binaries;
mod reach;
mod user;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};

pub use binaries::Binaries;
pub use reach::RELOCATED_ROOT;
use reach::reachable_data_dir;
use user::RunAs;

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "PostgreSQL's `{0}` was not found on PATH nor under /usr/lib/postgresql/*/bin: \
         install PostgreSQL's server binaries (Debian: `apt-get install postgresql`) \
         or set DATABASE_URL to use an existing server"
    )]
    MissingBinary(&'static str),
    #[error(
        "running as root, but there is no `postgres` system user to run PostgreSQL as \
         (initdb refuses root): create one, run as another user, or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error(
        "the postgres user cannot reach {0} (a parent directory is closed to other users), \
         and the data could not be kept elsewhere: pass --data-dir (GUILD_DATA_DIR) under a \
         directory it can reach, such as /var/lib/guild/pg, or set DATABASE_URL"
    )]
    Unreachable(PathBuf),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PgError {
    let context = context.into();
    move |source| PgError::Io { context, source }
}

/// Where a cluster keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// In this directory, created and initialised on first use and kept after a stop.
    Persistent(PathBuf),
    /// In a fresh temporary directory removed when the server stops, with durability
    /// traded for speed (no fsync): for throwaway test clusters.
    Ephemeral,
}

/// A running private PostgreSQL server.
#[derive(Debug)]
pub struct Cluster {
    data_dir: PathBuf,
    port: u16,
    persistent: bool,
    /// The watchdog and the pipe it waits on; `None` for a server another process started.
    watchdog: Option<(Child, ChildStdin)>,
}

impl Cluster {
    /// Initialises the data directory if needed and starts the server. Blocking: takes
    /// about a second on first use. When a server already runs on this data directory (an
    /// earlier process left it, or another Guild shares it) it is reused and left running.
    pub fn start(storage: &Storage) -> Result<Self, PgError> {
        let binaries = Binaries::locate()?;
        let run_as = RunAs::for_current_user()?;
        let ephemeral = matches!(storage, Storage::Ephemeral);
        let data_dir = match storage {
            Storage::Persistent(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(io_error(format!("creating {}", dir.display())))?;
                let dir = dir
                    .canonicalize()
                    .map_err(io_error(format!("resolving {}", dir.display())))?;
                reachable_data_dir(&run_as, dir)?
            }
            Storage::Ephemeral => {
                // The server's user owns the whole temporary directory, so the watchdog
                // can remove it.
                let root = tempfile::Builder::new()
                    .prefix("guild-pg-")
                    .tempdir()
                    .map_err(io_error("creating a temporary directory"))?
                    .keep();
                run_as.take_ownership(&root)?;
                root.join("data")
            }
        };
        if ephemeral {
            std::fs::create_dir_all(&data_dir)
                .map_err(io_error(format!("creating {}", data_dir.display())))?;
        }
        run_as.take_ownership(&data_dir)?;

        if !data_dir.join("PG_VERSION").exists() {
            init_data_dir(&binaries, &run_as, &data_dir, ephemeral)?;
        }
        if let Some(port) = running_server_port(&binaries, &run_as, &data_dir)? {
            tracing::info!(data_dir = %data_dir.display(), port, "reusing a running PostgreSQL");
            return Ok(Self {
                data_dir,
                port,
                persistent: !ephemeral,
                watchdog: None,
            });
        }

        // A free port can be taken by someone else before the server binds it: try again.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            match start_server(&binaries, &run_as, &data_dir, port, ephemeral) {
                Ok(()) => {
                    let watchdog = spawn_watchdog(&binaries, &run_as, &data_dir, ephemeral)?;
                    tracing::info!(data_dir = %data_dir.display(), port, "started PostgreSQL");
                    return Ok(Self {
                        data_dir,
                        port,
                        persistent: !ephemeral,
                        watchdog: Some(watchdog),
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("three attempts were made"))
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A connection URL for `database` as the `postgres` superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server as an operator would (a fast shutdown: sessions are cut), leaving
    /// the cluster to be started again with [`Cluster::start_again`]. For fault tests.
    pub fn stop_for_now(&self) -> Result<(), PgError> {
        let binaries = Binaries::locate()?;
        let run_as = RunAs::for_current_user()?;
        run(run_as
            .command(&binaries.pg_ctl)
            .args(["stop", "--mode", "fast", "--wait", "--pgdata"])
            .arg(&self.data_dir))?;
        Ok(())
    }

    /// Starts a server stopped with [`Cluster::stop_for_now`] again, on the same port and
    /// with the same settings, and waits until it accepts connections.
    pub fn start_again(&self) -> Result<(), PgError> {
        let binaries = Binaries::locate()?;
        let run_as = RunAs::for_current_user()?;
        let ephemeral = !self.persistent;
        start_server(&binaries, &run_as, &self.data_dir, self.port, ephemeral)
    }

    /// Stops the server (a fast shutdown) and waits until it is down. A server this process
    /// did not start is left running.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some((mut child, stdin)) = self.watchdog.take() {
            // Closing the pipe is the watchdog's signal.
            drop(stdin);
            if let Err(error) = child.wait() {
                tracing::warn!(%error, "waiting for the PostgreSQL watchdog");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn run(command: &mut Command) -> Result<Output, PgError> {
    let description = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(io_error(format!("running {description}")))?;
    if output.status.success() {
        Ok(output)
    } else {
        let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if text.is_empty() {
            text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        Err(PgError::Command {
            command: description,
            output: format!("{} ({})", text, output.status),
        })
    }
}

fn init_data_dir(
    binaries: &Binaries,
    run_as: &RunAs,
    data_dir: &Path,
    ephemeral: bool,
) -> Result<(), PgError> {
    let mut command = run_as.command(&binaries.initdb);
    command
        .arg("--pgdata")
        .arg(data_dir)
        .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
        .args(["--locale=C", "--no-instructions"]);
    if ephemeral {
        command.arg("--no-sync");
    }
    run(&mut command)?;
    Ok(())
}

/// The port of a server already running on `data_dir`, read from its `postmaster.pid`.
fn running_server_port(
    binaries: &Binaries,
    run_as: &RunAs,
    data_dir: &Path,
) -> Result<Option<u16>, PgError> {
    let pid_file = data_dir.join("postmaster.pid");
    if !pid_file.exists() {
        return Ok(None);
    }
    let status = run_as
        .command(&binaries.pg_ctl)
        .arg("status")
        .arg("--pgdata")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(io_error("running pg_ctl status"))?;
    if !status.success() {
        return Ok(None); // a stale pid file: pg_ctl start deals with it
    }
    let text = std::fs::read_to_string(&pid_file).map_err(io_error("reading postmaster.pid"))?;
    // Line 4 of postmaster.pid is the port.
    Ok(text
        .lines()
        .nth(3)
        .and_then(|line| line.trim().parse().ok()))
}

fn free_port() -> Result<u16, PgError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("finding a free port"))?
        .port();
    Ok(port)
}

fn start_server(
    binaries: &Binaries,
    run_as: &RunAs,
    data_dir: &Path,
    port: u16,
    ephemeral: bool,
) -> Result<(), PgError> {
    // TCP on loopback only: no Unix socket, whose path length limit a deep data dir exceeds.
    let mut server_options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
         -c max_connections=200"
    );
    if ephemeral {
        server_options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }
    let mut command = run_as.command(&binaries.pg_ctl);
    command
        .arg("start")
        .arg("--wait")
        .args(["--timeout", "60"])
        .arg("--pgdata")
        .arg(data_dir)
        .arg("--log")
        .arg(data_dir.join("server.log"))
        .arg("-o")
        .arg(server_options)
        // Its own process group: Ctrl-C in a terminal must reach Guild, which then shuts
        // down in order, not the server under it.
        .process_group(0);
    run(&mut command).map_err(|error| match error {
        PgError::Command { command, output } => PgError::Command {
            command,
            output: format!("{output}; server log: {}", log_tail(data_dir)),
        },
        other => other,
    })?;
    Ok(())
}

fn log_tail(data_dir: &Path) -> String {
    let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// A shell that waits for its standard input to close, then stops the server (and, for an
/// ephemeral cluster, removes its temporary directory).
fn spawn_watchdog(
    binaries: &Binaries,
    run_as: &RunAs,
    data_dir: &Path,
    ephemeral: bool,
) -> Result<(Child, ChildStdin), PgError> {
    let script = r#"read -r _ignored
"$0" stop --pgdata "$1" --mode fast --wait >/dev/null 2>&1
if [ "$2" = remove ]; then rm -rf "$(dirname "$1")"; fi"#;
    let mut child = run_as
        .command(Path::new("/bin/sh"))
        .arg("-c")
        .arg(script)
        .arg(&binaries.pg_ctl)
        .arg(data_dir)
        .arg(if ephemeral { "remove" } else { "keep" })
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(io_error("starting the PostgreSQL watchdog"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Nothing is ever written but this check that the pipe is open.
    stdin
        .flush()
        .map_err(io_error("starting the PostgreSQL watchdog"))?;
    Ok((child, stdin))
}
