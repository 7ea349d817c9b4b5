//! What a command came to, and the tail of its output kept for it.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it: the signal's number (`SIGXCPU` = 24 at the CPU limit, `SIGKILL` =
    /// 9 at the CPU limit's hard end or from the kernel's OOM killer). Read as a shell does:
    /// an exit code above 128 is taken as 128 + the signal.
    Signalled(i32),
    /// It ran past [`crate::Limits::wall`]; its whole process tree was killed.
    TimedOut,
    /// Its output passed [`crate::Limits::output_bytes`]; its whole process tree was killed.
    OutputLimit,
    /// A service was still running when [`crate::Service::stop`] was called.
    Stopped,
    /// It could not be started: why.
    FailedToStart(String),
}

impl Status {
    pub(crate) fn from_exit(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) if (129..=192).contains(&code) => Self::Signalled(code - 128),
            (Some(code), _) => Self::Exited(code),
            (None, Some(signal)) => Self::Signalled(signal),
            (None, None) => Self::FailedToStart(format!("unknown exit status {status}")),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exited with code {code}"),
            Self::Signalled(signal) => write!(f, "killed by signal {signal}"),
            Self::TimedOut => f.write_str("timed out"),
            Self::OutputLimit => f.write_str("killed for writing too much output"),
            Self::Stopped => f.write_str("stopped"),
            Self::FailedToStart(why) => write!(f, "failed to start: {why}"),
        }
    }
}

/// What a command came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    /// From start to end (for a killed command, until its last process was gone).
    pub duration: Duration,
    /// The end of stdout and stderr as they were written (interleaved), at most
    /// [`crate::Limits::tail_bytes`], cut at a character boundary, invalid UTF-8 replaced, and
    /// every string the caller asked to redact replaced with `[redacted]`.
    pub tail: String,
    /// Everything the command wrote to stdout and stderr, in bytes.
    pub output_bytes: u64,
}

impl Outcome {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.status == Status::Exited(0)
    }

    pub(crate) fn failed_to_start(why: impl Into<String>) -> Self {
        Self {
            status: Status::FailedToStart(why.into()),
            duration: Duration::ZERO,
            tail: String::new(),
            output_bytes: 0,
        }
    }
}

/// The output of a running command: its total size and its tail.
#[derive(Debug)]
pub(crate) struct Capture {
    tail: VecDeque<u8>,
    tail_bytes: usize,
    total: u64,
    cap: u64,
    redact: Vec<String>,
}

const REDACTED: &str = "[redacted]";
/// The shortest end of a secret recognised where the tail was cut into it.
const MIN_PARTIAL: usize = 4;

impl Capture {
    pub(crate) fn new(tail_bytes: usize, cap: u64, redact: &[String]) -> Self {
        Self {
            tail: VecDeque::with_capacity(tail_bytes.min(1 << 20)),
            tail_bytes,
            total: 0,
            cap,
            redact: redact.iter().filter(|s| !s.is_empty()).cloned().collect(),
        }
    }

    /// Adds output; says whether the total has passed the cap.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> bool {
        self.total += bytes.len() as u64;
        let keep = &bytes[bytes.len().saturating_sub(self.tail_bytes)..];
        let overflow = (self.tail.len() + keep.len()).saturating_sub(self.tail_bytes);
        self.tail.drain(..overflow);
        self.tail.extend(keep);
        self.total > self.cap
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The tail as text, redacted.
    pub(crate) fn text(&self) -> String {
        let (front, back) = self.tail.as_slices();
        let mut bytes = [front, back].concat();
        let cut = self.total > bytes.len() as u64;
        if cut {
            // Drop the rest of a character whose beginning was cut off.
            let partial = bytes
                .iter()
                .take(3)
                .take_while(|b| *b & 0xC0 == 0x80)
                .count();
            bytes.drain(..partial);
        }
        redact(&String::from_utf8_lossy(&bytes), &self.redact, cut)
    }
}

/// Replaces every secret in `text`, and the end of one that `text` starts with when it was
/// `cut` from longer output, or the beginning of one it ends with (output cut off mid-write).
pub(crate) fn redact(text: &str, secrets: &[String], cut: bool) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret.as_str(), REDACTED);
        for len in (MIN_PARTIAL..secret.len()).rev() {
            let end = secret.len() - len;
            if cut && secret.is_char_boundary(end) && text.starts_with(&secret[end..]) {
                text.replace_range(..len, REDACTED);
                break;
            }
        }
        for len in (MIN_PARTIAL..secret.len()).rev() {
            if secret.is_char_boundary(len) && text.ends_with(&secret[..len]) {
                let start = text.len() - len;
                text.replace_range(start.., REDACTED);
                break;
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_bytes_and_counts_all() {
        let mut capture = Capture::new(8, 100, &[]);
        assert!(!capture.push(b"0123456789"));
        assert!(!capture.push(b"ab"));
        assert_eq!(capture.text(), "456789ab");
        assert_eq!(capture.total(), 12);
        assert!(capture.push(&[b'x'; 90]));
    }

    #[test]
    fn a_cut_character_is_dropped_not_replaced() {
        let mut capture = Capture::new(4, 100, &[]);
        capture.push("aé€".as_bytes()); // 1 + 2 + 3 bytes: the tail starts inside "é"
        assert_eq!(capture.text(), "€");
    }

    #[test]
    fn secrets_are_redacted_whole_and_where_cut() {
        let secrets = vec!["hunter2-secret".to_owned(), String::new()];
        assert_eq!(
            redact("a hunter2-secret b hunter2-secret", &secrets, false),
            "a [redacted] b [redacted]"
        );
        assert_eq!(redact("-secret then", &secrets, true), "[redacted] then");
        assert_eq!(redact("-secret then", &secrets, false), "-secret then");
        assert_eq!(
            redact("killed at hunter2-s", &secrets, false),
            "killed at [redacted]"
        );
        assert_eq!(redact("a hun", &secrets, false), "a hun");
    }

    #[test]
    fn exit_codes_above_128_are_signals() {
        use std::os::unix::process::ExitStatusExt;
        let exited = |code: i32| std::process::ExitStatus::from_raw(code << 8);
        assert_eq!(Status::from_exit(exited(3)), Status::Exited(3));
        assert_eq!(Status::from_exit(exited(152)), Status::Signalled(24));
        assert_eq!(
            Status::from_exit(std::process::ExitStatus::from_raw(9)),
            Status::Signalled(9)
        );
    }
}
