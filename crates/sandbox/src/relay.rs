//! The relay: runs inside a service's sandbox, starts the service as its child, and carries
//! connections between the host's sockets and TCP ports inside (see [`crate::Service`] for
//! the two directions). Standard library only, and synchronous: it is a hidden subcommand of
//! the `guild` binary, which has no runtime at that point.

use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

const USAGE: &str = "usage: relay [--expose HOST_SOCKET PORT] [--reach PORT HOST_SOCKET]... \
                     -- PROGRAM [ARGS...]";

/// Idle tunnels kept open to the host, and tunnels open at most.
const IDLE_TUNNELS: usize = 4;
const MAX_TUNNELS: usize = 64;

/// Runs the relay with its arguments (those after the program name, or after `guild
/// __sandbox-relay`):
///
/// `[--expose HOST_SOCKET PORT] [--reach PORT HOST_SOCKET]... -- PROGRAM [ARGS...]`
///
/// - `--expose`: keeps idle connections to the host's Unix socket `HOST_SOCKET`; when the host
///   writes a byte on one, connects it to `127.0.0.1:PORT`.
/// - `--reach`: listens on `127.0.0.1:PORT` and connects each client to `HOST_SOCKET`.
///
/// Starts `PROGRAM` with stdin closed and stdout and stderr inherited, and returns its exit
/// code (128 + the signal when a signal ended it), 2 for bad arguments, 1 when a port cannot
/// be listened on, 127 when the program cannot start. The caller must exit the process with
/// the code at once: the forwarding threads run until then.
pub fn relay_main(args: Vec<String>) -> i32 {
    let plan = match Plan::parse(args) {
        Ok(plan) => plan,
        Err(why) => {
            eprintln!("relay: {why}\n{USAGE}");
            return 2;
        }
    };
    for (port, socket) in plan.reach {
        let listener = match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("relay: cannot listen on 127.0.0.1:{port}: {error}");
                return 1;
            }
        };
        let _ = thread::Builder::new().spawn(move || serve_reach(&listener, &socket));
    }
    let Some((program, args)) = plan.program.split_first() else {
        eprintln!("relay: no program to run\n{USAGE}");
        return 2;
    };
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("relay: cannot run {program}: {error}");
            return 127;
        }
    };
    if let Some((socket, port)) = plan.expose {
        let _ = thread::Builder::new().spawn(move || keep_tunnels(socket, port));
    }
    match child.wait() {
        Ok(status) => status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        Err(error) => {
            eprintln!("relay: waiting for {program}: {error}");
            1
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Plan {
    expose: Option<(PathBuf, u16)>,
    reach: Vec<(u16, PathBuf)>,
    program: Vec<String>,
}

impl Plan {
    fn parse(args: Vec<String>) -> Result<Self, String> {
        let mut plan = Self {
            expose: None,
            reach: Vec::new(),
            program: Vec::new(),
        };
        let mut args = args.into_iter();
        let port = |value: Option<String>| -> Result<u16, String> {
            let value = value.ok_or("a port is missing")?;
            value
                .parse()
                .map_err(|_| format!("{value:?} is not a port"))
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--expose" => {
                    let socket = args.next().ok_or("--expose needs a socket")?;
                    plan.expose = Some((socket.into(), port(args.next())?));
                }
                "--reach" => {
                    let port = port(args.next())?;
                    let socket = args.next().ok_or("--reach needs a socket")?;
                    plan.reach.push((port, socket.into()));
                }
                "--" => {
                    plan.program = args.collect();
                    break;
                }
                other => return Err(format!("unexpected argument {other:?}")),
            }
        }
        if plan.program.is_empty() {
            return Err("no program to run".into());
        }
        Ok(plan)
    }
}

fn serve_reach(listener: &TcpListener, socket: &Path) {
    for client in listener.incoming().flatten() {
        let socket = socket.to_path_buf();
        let _ = thread::Builder::new().spawn(move || {
            if let Ok(host) = UnixStream::connect(&socket) {
                splice(client, host);
            }
        });
    }
}

#[derive(Default)]
struct Tunnels {
    idle: usize,
    open: usize,
}

/// Keeps [`IDLE_TUNNELS`] connections to the host waiting, up to [`MAX_TUNNELS`] in all.
fn keep_tunnels(socket: PathBuf, port: u16) {
    let state = Arc::new((Mutex::new(Tunnels::default()), Condvar::new()));
    loop {
        {
            let (tunnels, changed) = &*state;
            let mut tunnels = tunnels.lock().unwrap_or_else(PoisonError::into_inner);
            while tunnels.idle >= IDLE_TUNNELS || tunnels.open >= MAX_TUNNELS {
                tunnels = changed
                    .wait(tunnels)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            tunnels.idle += 1;
            tunnels.open += 1;
        }
        let (state, socket) = (state.clone(), socket.clone());
        let started = thread::Builder::new().spawn({
            let state = state.clone();
            move || tunnel(&socket, port, &state)
        });
        if started.is_err() {
            // No thread to be had (the process limit): give the slot back and try later.
            update(&state, |t| {
                t.idle -= 1;
                t.open -= 1;
            });
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn update(state: &(Mutex<Tunnels>, Condvar), change: impl FnOnce(&mut Tunnels)) {
    let (tunnels, changed) = state;
    change(&mut tunnels.lock().unwrap_or_else(PoisonError::into_inner));
    changed.notify_all();
}

/// One tunnel: waits for the host's byte, then carries the connection to the service.
fn tunnel(socket: &Path, port: u16, state: &(Mutex<Tunnels>, Condvar)) {
    let called = UnixStream::connect(socket).and_then(|mut host| {
        host.read_exact(&mut [0])?;
        Ok(host)
    });
    update(state, |t| t.idle -= 1);
    match called {
        Ok(host) => {
            // When the service does not listen (yet), closing the tunnel tells the client.
            if let Ok(app) = TcpStream::connect(("127.0.0.1", port)) {
                splice(app, host);
            }
        }
        // The host is not listening (any more): do not spin.
        Err(_) => thread::sleep(Duration::from_millis(100)),
    }
    update(state, |t| t.open -= 1);
}

/// Copies both ways between `tcp` and `unix` until both directions are closed.
fn splice(tcp: TcpStream, unix: UnixStream) {
    let (Ok(tcp_reader), Ok(unix_writer)) = (tcp.try_clone(), unix.try_clone()) else {
        return;
    };
    let upstream = thread::Builder::new().spawn(move || {
        let _ = std::io::copy(&mut &tcp_reader, &mut &unix_writer);
        let _ = unix_writer.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut &unix, &mut &tcp);
    let _ = tcp.shutdown(Shutdown::Write);
    if let Ok(upstream) = upstream {
        let _ = upstream.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn parses_both_directions_and_the_program() {
        let plan = Plan::parse(args(
            "--expose /run/a.sock 8000 --reach 5432 /run/b.sock -- sh -c x",
        ))
        .unwrap();
        assert_eq!(
            plan,
            Plan {
                expose: Some(("/run/a.sock".into(), 8000)),
                reach: vec![(5432, "/run/b.sock".into())],
                program: args("sh -c x"),
            }
        );
    }

    #[test]
    fn refuses_bad_arguments() {
        for bad in [
            "-- ",
            "--expose /a",
            "--expose /a port -- x",
            "--reach 1",
            "x -- y",
        ] {
            let parsed = Plan::parse(args(bad).into_iter().filter(|a| !a.is_empty()).collect());
            assert!(parsed.is_err(), "{bad}");
        }
    }
}
