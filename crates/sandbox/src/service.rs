//! Services: a long-running command (a web server) in a sandbox with no network, reached from
//! the host through the relay, and reaching a host address through it.
//!
//! Every socket is the host's, in the scratch directory's `run` directory, which the sandbox
//! sees read-only: the host never connects to a path the sandbox could replace (with a link
//! to one of the host's sockets, say). So the relay connects out to the host for both
//! directions:
//!
//! - expose: the relay keeps a few idle connections to the host's `<name>-expose.sock`. For
//!   each TCP client of [`Service::base_url`], the host takes one, writes one byte, and the
//!   relay connects it to `127.0.0.1:PORT` inside.
//! - reach: the relay listens on `127.0.0.1:PORT` inside and connects each client to the
//!   host's `<name>-reach-PORT.sock`, which the host connects to the host address.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{Mutex as AsyncMutex, Semaphore, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{SandboxError, io_error};
use crate::host::{RunAs, set_mode};
use crate::outcome::{Capture, Outcome};
use crate::process::{Running, lock};
use crate::scratch::ScratchDirs;
use crate::spec::{RELAY_PATH, shell};
use crate::{CommandSpec, RUN_DIR, Sandbox, Scratch};

/// A host address a service reaches from inside: connections to `127.0.0.1:port` inside go
/// to `to` (a PostgreSQL, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    pub port: u16,
    pub to: SocketAddr,
}

/// A running service. Dropping it kills the service; [`Service::stop`] also says how it went.
#[derive(Debug)]
pub struct Service {
    addr: SocketAddr,
    capture: Arc<Mutex<Capture>>,
    outcome: watch::Receiver<Option<Outcome>>,
    stop: oneshot::Sender<()>,
    supervisor: JoinHandle<Outcome>,
    /// The host's listeners and their connections; aborted with the service.
    _forwarding: JoinSet<()>,
}

/// Why a service did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the service {} before answering; its output ends with:\n{}", .0.status, .0.tail)]
    Ended(Outcome),
    #[error(
        "the service did not answer in time (last attempt: {last}); its output ends with:\n{tail}"
    )]
    TimedOut { last: String, tail: String },
    #[error("{0:?} is not a request path")]
    InvalidPath(String),
}

impl Sandbox {
    /// Starts `spec` in `scratch` as a service listening on `127.0.0.1:port` inside, with
    /// connections to `127.0.0.1:<reach.port>` inside carried to each `reach.to` of the host.
    /// The service has no network of its own unless `spec.network` says so; its limits
    /// apply, the wall clock included (give a service the time it needs).
    ///
    /// Errors: no relay configured ([`SandboxError::NoRelay`]), a socket or listener that
    /// cannot be made, or a sandbox that cannot start ([`SandboxError::Io`]).
    pub async fn start(
        &self,
        scratch: &Scratch,
        spec: &CommandSpec,
        port: u16,
        reach: &[Reach],
    ) -> Result<Service, SandboxError> {
        let Some((_, relay_args)) = &self.host.layout.relay else {
            return Err(SandboxError::NoRelay);
        };
        let dirs = &scratch.dirs;
        let (addr, forwarding, mut program) = self.host_side(dirs, port, reach).await?;
        let mut relay: Vec<OsString> = vec![RELAY_PATH.into()];
        relay.extend(relay_args.iter().map(OsString::from));
        program.splice(..0, relay);
        program.push("--".into());
        program.extend(shell(&spec.command));

        let limits = spec.limits.as_ref().unwrap_or(&self.host.limits);
        let prepared = self
            .prepare(dirs, spec, limits, program)
            .await
            .map_err(start_error)?;
        let capture = Arc::new(Mutex::new(Capture::new(
            limits.tail_bytes,
            limits.output_bytes,
            &spec.redact,
        )));
        let running = Running::spawn(
            &prepared.bwrap,
            &prepared.args,
            self.host.run_as,
            capture.clone(),
        )
        .map_err(start_error)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (ended, outcome) = watch::channel(None);
        let wall = limits.wall;
        // The scratch directory lives, and stays entered, until the service has ended.
        let keep = (prepared.guard, dirs.clone());
        let supervisor = tokio::spawn(async move {
            // A dropped `Service` drops the sender, which stops the service too.
            let stop = async {
                let _ = stopped.await;
            };
            let outcome = running.supervise(wall, stop).await;
            ended.send_replace(Some(outcome.clone()));
            drop(keep);
            outcome
        });
        Ok(Service {
            addr,
            capture,
            outcome,
            stop,
            supervisor,
            _forwarding: forwarding,
        })
    }

    /// The host's side of a service: its TCP listener and Unix sockets, served by tasks of
    /// the returned set, and the relay's arguments that name them inside.
    async fn host_side(
        &self,
        dirs: &ScratchDirs,
        port: u16,
        reach: &[Reach],
    ) -> Result<(SocketAddr, JoinSet<()>, Vec<OsString>), SandboxError> {
        let run_as = self.host.run_as;
        let name = dirs.service_name();
        let inside = |socket: &str| Path::new(RUN_DIR).join(socket).into_os_string();
        let mut forwarding = JoinSet::new();

        let tunnels = format!("{name}-expose.sock");
        let tunnel_listener = bind_socket(run_as, &dirs.run.join(&tunnels))?;
        let clients = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(io_error("listening on 127.0.0.1"))?;
        let addr = clients
            .local_addr()
            .map_err(io_error("reading the listener's address"))?;
        forwarding.spawn(serve_expose(clients, tunnel_listener));
        let mut args = vec!["--expose".into(), inside(&tunnels), port.to_string().into()];

        for reach in reach {
            let socket = format!("{name}-reach-{}.sock", reach.port);
            let listener = bind_socket(run_as, &dirs.run.join(&socket))?;
            forwarding.spawn(serve_reach(listener, reach.to));
            args.extend([
                "--reach".into(),
                reach.port.to_string().into(),
                inside(&socket),
            ]);
        }
        Ok((addr, forwarding, args))
    }
}

fn start_error(why: String) -> SandboxError {
    SandboxError::Io {
        context: "starting the service's sandbox".into(),
        source: std::io::Error::other(why),
    }
}

/// How long one readiness request may take, and the pause between two.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const POLL_EVERY: Duration = Duration::from_millis(100);

impl Service {
    /// `http://127.0.0.1:PORT`: the host's address of the service (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The host's address of the service.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The end of the service's output so far, redacted.
    pub fn tail(&self) -> String {
        lock(&self.capture).text()
    }

    /// Polls `GET path` (`/health`, say) until the service answers with a status below 500.
    /// Fails when the service ends first (with its outcome) or `timeout` passes (with its
    /// output's tail).
    pub async fn wait_ready(&self, path: &str, timeout: Duration) -> Result<(), NotReady> {
        if !path.starts_with('/') || path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(NotReady::InvalidPath(path.to_owned()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut outcome = self.outcome.clone();
        loop {
            if let Some(ended) = outcome.borrow_and_update().clone() {
                return Err(NotReady::Ended(ended));
            }
            let last =
                match tokio::time::timeout(REQUEST_TIMEOUT, http_status(self.addr, path)).await {
                    Ok(Ok(status)) if status < 500 => return Ok(()),
                    Ok(Ok(status)) => format!("answered {status}"),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!("no answer within {REQUEST_TIMEOUT:?}"),
                };
            if tokio::time::Instant::now() >= deadline {
                return Err(NotReady::TimedOut {
                    last,
                    tail: self.tail(),
                });
            }
            // Wakes early when the service ends.
            let _ = tokio::time::timeout(POLL_EVERY, outcome.changed()).await;
        }
    }

    /// Kills the service with every process of its sandbox (unless it already ended) and
    /// says how it went: [`crate::Status::Stopped`] when it was still running.
    pub async fn stop(self) -> Outcome {
        let _ = self.stop.send(());
        match self.supervisor.await {
            Ok(outcome) => outcome,
            Err(error) => {
                Outcome::failed_to_start(format!("the service's supervisor failed: {error}"))
            }
        }
    }
}

/// The status code of `GET path` on `addr`.
async fn http_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        match stream.read(&mut buf).await? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    match (
        words.next(),
        words.next().and_then(|code| code.parse().ok()),
    ) {
        (Some(version), Some(status)) if version.starts_with("HTTP/") => Ok(status),
        _ if head.is_empty() => Err(std::io::Error::other("closed without answering")),
        _ => Err(std::io::Error::other("the answer is not HTTP")),
    }
}

/// A Unix socket of the host that the sandbox user may connect to (and no other user).
fn bind_socket(run_as: RunAs, path: &Path) -> Result<UnixListener, SandboxError> {
    let _ = std::fs::remove_file(path); // one left by a service of a previous process
    let listener =
        UnixListener::bind(path).map_err(io_error(format!("listening on {}", path.display())))?;
    match run_as {
        RunAs::Uid(_) => {
            set_mode(path, 0o660)?;
            run_as.share_group(path)?;
        }
        RunAs::CurrentUser => set_mode(path, 0o600)?,
    }
    Ok(listener)
}

/// Idle tunnels from the relay the host keeps at most (more are closed), and how long a
/// client waits for one.
const TUNNELS_KEPT: usize = 64;
const TUNNEL_WAIT: Duration = Duration::from_secs(10);

/// Serves the host's TCP listener of a service through the relay's tunnels.
async fn serve_expose(clients: TcpListener, tunnels: UnixListener) {
    let (idle, waiting) = mpsc::channel::<UnixStream>(TUNNELS_KEPT);
    let waiting = Arc::new(AsyncMutex::new(waiting));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            tunnel = tunnels.accept() => if let Ok((tunnel, _)) = tunnel {
                let _ = idle.try_send(tunnel);
            },
            client = clients.accept() => if let Ok((client, _)) = client {
                connections.spawn(forward_client(client, waiting.clone()));
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn forward_client(
    mut client: TcpStream,
    waiting: Arc<AsyncMutex<mpsc::Receiver<UnixStream>>>,
) {
    let _ = tokio::time::timeout(TUNNEL_WAIT, async {
        loop {
            let Some(mut tunnel) = waiting.lock().await.recv().await else {
                return;
            };
            // A tunnel whose relay has gone fails this write: take the next one.
            if tunnel.write_all(&[1]).await.is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut tunnel).await;
                return;
            }
        }
    })
    .await;
}

/// Connections a service may have open to one host address at once.
const REACH_CONNECTIONS: usize = 32;

/// Connects every connection the relay makes to `socket` to the host address `to`.
async fn serve_reach(socket: UnixListener, to: SocketAddr) {
    let limit = Arc::new(Semaphore::new(REACH_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            inside = socket.accept() => if let Ok((mut inside, _)) = inside {
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    continue; // too many: this one is closed
                };
                connections.spawn(async move {
                    let _permit = permit;
                    if let Ok(mut outside) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                    }
                });
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
