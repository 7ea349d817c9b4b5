//! Starting `bwrap`, watching it (output, wall clock, a stop request) and killing its tree.

use std::ffi::OsString;
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

use crate::host::RunAs;
use crate::outcome::{Capture, Outcome, Status};

/// How long a killed sandbox's processes may take to be gone, and its output to close.
const GONE_WITHIN: Duration = Duration::from_secs(5);
const DRAIN_WITHIN: Duration = Duration::from_secs(2);

pub(crate) fn lock(capture: &Mutex<Capture>) -> MutexGuard<'_, Capture> {
    capture.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A started `bwrap`: its process, the reading end of its output, and what was read so far.
pub(crate) struct Running {
    child: Child,
    output: pipe::Receiver,
    capture: Arc<Mutex<Capture>>,
    started: Instant,
}

enum End {
    Exited(std::io::Result<std::process::ExitStatus>),
    Killed(Status),
}

impl Running {
    /// Starts `bwrap` with `args` as the sandbox user, its stdout and stderr into one pipe.
    ///
    /// Call it from a task of the runtime, not from a blocking thread: `bwrap
    /// --die-with-parent` dies with the thread that started it, and blocking threads end
    /// when idle.
    pub(crate) fn spawn(
        bwrap: &Path,
        args: &[OsString],
        run_as: RunAs,
        capture: Arc<Mutex<Capture>>,
    ) -> Result<Self, String> {
        let (reader, writer) = std::io::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
        let writer_too = writer
            .try_clone()
            .map_err(|e| format!("creating a pipe: {e}"))?;
        let mut command = Command::new(bwrap);
        command
            .args(args)
            // bwrap's own environment shows in the sandbox as /proc/1/environ (its reaper is a
            // fork of it): it gets none of this process's.
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(writer_too)
            .stderr(writer)
            .kill_on_drop(true);
        if let RunAs::Uid(uid) = run_as {
            // As root, std also drops the supplementary groups.
            command.uid(uid).gid(uid);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("running {}: {e}", bwrap.display()))?;
        drop(command); // closes this process's copies of the pipe's writing end
        let output = pipe::Receiver::from_owned_fd(reader.into())
            .map_err(|e| format!("reading the output pipe: {e}"))?;
        Ok(Self {
            child,
            output,
            capture,
            started: Instant::now(),
        })
    }

    /// Collects the output until the sandbox ends, is past `wall`, writes too much, or `stop`
    /// completes; a sandbox that did not end by itself is killed with every process in it.
    pub(crate) async fn supervise(
        mut self,
        wall: Duration,
        stop: impl Future<Output = ()>,
    ) -> Outcome {
        let mut buf = vec![0; 64 << 10];
        let mut open = true;
        let mut stop = std::pin::pin!(stop);
        let deadline = tokio::time::sleep_until((self.started + wall).into());
        let mut deadline = std::pin::pin!(deadline);
        let end = loop {
            tokio::select! {
                read = self.output.read(&mut buf), if open => match read {
                    Ok(0) | Err(_) => open = false,
                    Ok(n) => if lock(&self.capture).push(&buf[..n]) {
                        break End::Killed(Status::OutputLimit);
                    },
                },
                status = self.child.wait() => break End::Exited(status),
                () = &mut deadline => break End::Killed(Status::TimedOut),
                () = &mut stop => break End::Killed(Status::Stopped),
            }
        };
        let status = match end {
            End::Exited(Ok(status)) => Status::from_exit(status),
            End::Exited(Err(error)) => {
                self.kill_tree().await;
                Status::FailedToStart(format!("waiting for bwrap: {error}"))
            }
            End::Killed(status) => {
                self.kill_tree().await;
                status
            }
        };
        let duration = self.started.elapsed();
        if open {
            self.drain(&mut buf).await;
        }
        let capture = lock(&self.capture);
        Outcome {
            status,
            duration,
            tail: capture.text(),
            output_bytes: capture.total(),
        }
    }

    /// Kills the sandbox's first process (bwrap's reaper, process 1 of its PID namespace),
    /// whose death makes the kernel kill every other process of the namespace, then `bwrap`,
    /// and waits until they are gone. The reaper is killed directly rather than through
    /// `--die-with-parent`: a reaper that had not yet asked for its parent's death signal
    /// when `bwrap` died would live on.
    async fn kill_tree(&mut self) {
        let init = match self.child.id() {
            Some(outer) => self.find_init(outer).await,
            None => None,
        };
        if let Some(init) = init {
            kill(init.pid).await;
            // bwrap reaps its reaper and exits; killed before that, it would leave the reaper
            // to the host's init, which may not reap it.
            let _ = tokio::time::timeout(GONE_WITHIN, self.child.wait()).await;
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let Some(init) = init else {
            return;
        };
        let deadline = Instant::now() + GONE_WITHIN;
        while init.alive() {
            if Instant::now() > deadline {
                tracing::warn!(
                    pid = init.pid,
                    "a killed sandbox's processes are still there"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The reaper, once `bwrap` has started it; `None` when `bwrap` ended first.
    async fn find_init(&mut self, outer: u32) -> Option<Process> {
        let deadline = Instant::now() + GONE_WITHIN;
        loop {
            if let Some(init) = first_child(outer) {
                return Some(init);
            }
            if !matches!(self.child.try_wait(), Ok(None)) || Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Reads what is left of the output (the cap no longer applies: the sandbox has ended).
    async fn drain(&mut self, buf: &mut [u8]) {
        let read_all = async {
            while let Ok(n @ 1..) = self.output.read(buf).await {
                lock(&self.capture).push(&buf[..n]);
            }
        };
        let _ = tokio::time::timeout(DRAIN_WITHIN, read_all).await;
    }
}

/// A process known by its pid and start time (so a reused pid is not mistaken for it).
#[derive(Debug, Clone, Copy)]
struct Process {
    pid: u32,
    start: u64,
}

impl Process {
    fn read(pid: u32) -> Option<(char, u64, u32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        let state = fields.first()?.chars().next()?;
        let ppid = fields.get(1)?.parse().ok()?;
        let start = fields.get(19)?.parse().ok()?;
        Some((state, start, ppid))
    }

    fn alive(self) -> bool {
        matches!(Self::read(self.pid), Some((state, start, _)) if start == self.start && !matches!(state, 'Z' | 'X'))
    }
}

/// The child of `parent` (bwrap's reaper). Read from `/proc/PID/task/PID/children` when the
/// kernel has it, else from every process's parent.
fn first_child(parent: u32) -> Option<Process> {
    let listed = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .ok()
        .and_then(|children| children.split_whitespace().next()?.parse().ok());
    let pid = listed.or_else(|| {
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|&pid| Process::read(pid).is_some_and(|(_, _, ppid)| ppid == parent))
    })?;
    let (_, start, _) = Process::read(pid)?;
    Some(Process { pid, start })
}

/// Sends SIGKILL to `pid` (through the shell's `kill`: the standard library has no way to
/// signal a process that is not its child). `pid` is a child of a living `bwrap`, which has
/// not reaped it, so it cannot be another process by now.
async fn kill(pid: u32) {
    let killed = Command::new("/bin/sh")
        .args(["-c", "kill -KILL \"$1\"", "sh", &pid.to_string()])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if !killed.is_ok_and(|status| status.success()) {
        tracing::warn!(pid, "could not kill a sandbox's first process");
    }
}
