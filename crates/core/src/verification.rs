//! What a verification found (see the `guild-verify` crate), as stored on the verify
//! task's result and served by `GET /projects/{id}/verification`.

use serde::{Deserialize, Serialize};

/// How a step, a component or a whole verification came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Failed,
    /// It ran past its timeout; its whole process tree was killed.
    TimedOut,
    /// It could not run here: the sandbox or a toolchain is missing. Never a pass.
    Unavailable,
    /// Not run, because a step it needs failed.
    Skipped,
}

impl Verdict {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Passed => "✓",
            Self::Failed | Self::TimedOut => "✗",
            Self::Unavailable => "unavailable",
            Self::Skipped => "skipped",
        }
    }
}

/// A whole verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    /// `passed` when every step of every component and every smoke call passed;
    /// `unavailable` when nothing could run.
    pub status: Verdict,
    /// One line: `backend: install ✓ typecheck ✓ build ✓ test 12/12 ✓ smoke 14/14 ✓`.
    pub summary: String,
    pub components: Vec<ComponentReport>,
    /// Milliseconds from the first step to the last.
    pub duration_ms: u64,
}

/// One component's steps, and its smoke test when it serves the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentReport {
    pub name: String,
    pub directory: String,
    pub steps: Vec<StepReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeReport>,
}

/// One command of a component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepReport {
    /// `install`, `typecheck`, `lint`, `build`, `test`, `start`.
    pub name: String,
    pub command: String,
    pub status: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// The end of its output (stdout and stderr interleaved), secrets redacted.
    pub output_tail: String,
    /// Why it did not pass, when it did not: its exit, a timeout, what is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Tests passed and failed, read from the test runner's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestCount {
    pub passed: u32,
    pub failed: u32,
}

/// The calls made to a started server through its contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SmokeReport {
    pub status: Verdict,
    pub passed: u32,
    pub total: u32,
    pub calls: Vec<SmokeCall>,
}

/// One call of the smoke test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SmokeCall {
    /// `POST /api/todos` (the contract's operation).
    pub operation: String,
    /// What the call checks: `succeeds`, `without credentials`, `malformed id`, ...
    pub check: String,
    /// The path called.
    pub path: String,
    /// The status answered; `None` when no answer came.
    pub status: Option<u16>,
    /// The statuses that would pass.
    pub expected: String,
    pub passed: bool,
    /// What was wrong: an undocumented status, a body not valid against its schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Report {
    /// The report of a verification that could not run at all, saying why.
    pub fn unavailable(why: impl Into<String>) -> Self {
        Self {
            status: Verdict::Unavailable,
            summary: why.into(),
            components: Vec::new(),
            duration_ms: 0,
        }
    }
}

impl Verdict {
    /// As stored and shown: `passed`, `failed`, `timed_out`, `unavailable`, `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Unavailable => "unavailable",
            Self::Skipped => "skipped",
        }
    }
}
