//! Why a sandbox, a scratch directory or a service could not be set up.

use std::path::PathBuf;

/// Why a sandbox, a scratch directory or a service could not be set up. A command that ran
/// and failed is not an error: it is an [`crate::Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the sandbox user (uid {uid}) cannot reach {path}: a parent directory is closed to \
         other users; keep the sandbox root somewhere every user can traverse, such as \
         /var/lib/guild/sandbox"
    )]
    Unreachable { path: PathBuf, uid: u32 },
    #[error("the sandbox uid must not be 0 (root)")]
    RootUid,
    #[error("no relay program is configured: services cannot be started")]
    NoRelay,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let context = context.into();
    move |source| SandboxError::Io { context, source }
}
