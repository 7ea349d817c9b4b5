//! Running PostgreSQL's commands as an unprivileged user when this process is root.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::{PgError, io_error};

/// Who PostgreSQL's commands run as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RunAs {
    /// This process's own user (not root).
    CurrentUser,
    /// The `postgres` system user, when this process is root.
    Postgres { uid: u32, gid: u32 },
}

impl RunAs {
    pub(crate) fn for_current_user() -> Result<Self, PgError> {
        // The owner of /proc/self is this process's effective user.
        let euid = std::fs::metadata("/proc/self")
            .map_err(io_error("reading /proc/self"))?
            .uid();
        if euid != 0 {
            return Ok(Self::CurrentUser);
        }
        let passwd =
            std::fs::read_to_string("/etc/passwd").map_err(io_error("reading /etc/passwd"))?;
        passwd
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                match fields.as_slice() {
                    ["postgres", _, uid, gid, ..] => Some(Self::Postgres {
                        uid: uid.parse().ok()?,
                        gid: gid.parse().ok()?,
                    }),
                    _ => None,
                }
            })
            .ok_or(PgError::NoPostgresUser)
    }

    /// The user and group PostgreSQL runs as, when it is not this process's own.
    pub(crate) fn ids(&self) -> Option<(u32, u32)> {
        match *self {
            Self::CurrentUser => None,
            Self::Postgres { uid, gid } => Some((uid, gid)),
        }
    }

    /// A command for `program` that runs as this user, from `/` (the caller's working
    /// directory may be closed to that user).
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir("/");
        if let Self::Postgres { uid, gid } = *self {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Hands `dir` to this user, so initdb and the server can write there.
    pub(crate) fn take_ownership(&self, dir: &Path) -> Result<(), PgError> {
        if let Self::Postgres { uid, gid } = *self {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(io_error(format!(
                "handing {} to the postgres user",
                dir.display()
            )))?;
        }
        Ok(())
    }
}
