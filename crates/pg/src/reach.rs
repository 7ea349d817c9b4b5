//! Keeping a persistent cluster where the `postgres` user can reach it.
//!
//! As root, PostgreSQL runs as the `postgres` user, which needs to traverse every parent of
//! the data directory. A clone under `/root` (mode 0700) or a directory made by `mktemp -d`
//! closes them. Rather than open the user's directories to everyone, such a cluster is kept
//! under [`RELOCATED_ROOT`], in a directory named after the requested path, and the
//! requested path becomes a symbolic link to it, so the next start finds it again and a
//! user who looks sees where the data went.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::user::RunAs;
use crate::{PgError, io_error};

/// Where clusters whose requested directory the `postgres` user cannot reach are kept.
pub const RELOCATED_ROOT: &str = "/var/lib/guild/clusters";

/// The data directory to use for the requested (canonical, existing) `dir`: `dir` itself
/// when PostgreSQL's user can reach it, otherwise a directory under [`RELOCATED_ROOT`]
/// that `dir` is turned into a link to. A `dir` that already holds data it cannot reach is
/// an error that says what to do.
pub(crate) fn reachable_data_dir(run_as: &RunAs, dir: PathBuf) -> Result<PathBuf, PgError> {
    let Some((uid, gid)) = run_as.ids() else {
        return Ok(dir); // PostgreSQL runs as this process's own user
    };
    if parents_traversable(&dir, uid, gid) {
        return Ok(dir);
    }
    let empty = std::fs::read_dir(&dir)
        .map_err(io_error(format!("reading {}", dir.display())))?
        .next()
        .is_none();
    if !empty {
        return Err(PgError::Unreachable(dir));
    }
    let target = Path::new(RELOCATED_ROOT).join(relocated_name(&dir));
    std::fs::create_dir_all(&target).map_err(|_| PgError::Unreachable(dir.clone()))?;
    // Only the leaf is the server's; the directories above it must be traversable.
    for open in [Path::new("/var/lib/guild"), Path::new(RELOCATED_ROOT)] {
        let _ = std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o755));
    }
    std::fs::remove_dir(&dir).map_err(io_error(format!("replacing {}", dir.display())))?;
    std::os::unix::fs::symlink(&target, &dir).map_err(io_error(format!(
        "linking {} to {}",
        dir.display(),
        target.display()
    )))?;
    tracing::warn!(
        requested = %dir.display(),
        data_dir = %target.display(),
        "the postgres user cannot reach the requested data directory (a parent is closed to \
         other users): the cluster is kept in data_dir, and the requested path links to it"
    );
    Ok(target)
}

/// `pg-<12 hex digits of the SHA-256 of the path>`: stable for a path, distinct between
/// paths.
fn relocated_name(dir: &Path) -> String {
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("pg-{hex}")
}

/// Whether the user `uid` (primary group `gid`) may traverse every parent of `dir`, by
/// their permission bits (owner, group or others, whichever applies).
fn parents_traversable(dir: &Path, uid: u32, gid: u32) -> bool {
    dir.ancestors().skip(1).all(|parent| {
        let Ok(meta) = std::fs::metadata(parent) else {
            return false;
        };
        let mode = meta.mode();
        let bit = if meta.uid() == uid {
            0o100
        } else if meta.gid() == gid {
            0o010
        } else {
            0o001
        };
        mode & bit != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_parent_is_not_traversable_by_others() {
        let root = tempfile::tempdir().expect("tempdir");
        let closed = root.path().join("closed");
        let inner = closed.join("inner");
        std::fs::create_dir_all(&inner).expect("mkdir");
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let owner = std::fs::metadata(&closed).expect("meta");
        // Its owner may; someone else may not.
        assert!(parents_traversable(&inner, owner.uid(), owner.gid()));
        assert!(!parents_traversable(&inner, 4_000_000, 4_000_000));
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        assert!(parents_traversable(&inner, 4_000_000, 4_000_000));
    }

    #[test]
    fn relocated_names_are_stable_and_distinct() {
        let a = relocated_name(Path::new("/root/demo/.guild/pg"));
        assert_eq!(a, relocated_name(Path::new("/root/demo/.guild/pg")));
        assert_ne!(a, relocated_name(Path::new("/root/other/.guild/pg")));
        assert_eq!(a.len(), "pg-".len() + 12);
    }
}
