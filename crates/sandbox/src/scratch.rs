//! Scratch directories: the writable project directory of one piece of generated code, with
//! its private home and the host's sockets for its services.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::error::{SandboxError, io_error};
use crate::host::{RunAs, set_mode};

/// A fresh directory that commands run in, mounted writable at [`crate::PROJECT_DIR`]
/// inside. The host may write files into [`Scratch::path`] before a run; every run starts by
/// giving the sandbox user what the host wrote (as root). Removed, with everything in it, when
/// the `Scratch` and the last [`crate::Service`] started in it are dropped.
///
/// Treat its content as untrusted after a run: it may hold symbolic links to anywhere, so
/// read it without following links, and do not write into it while one of its services runs.
#[derive(Debug)]
pub struct Scratch {
    pub(crate) dirs: Arc<ScratchDirs>,
}

impl Scratch {
    /// The project directory on the host.
    pub fn path(&self) -> &Path {
        &self.dirs.project
    }
}

/// A scratch directory's parts on the host:
/// `<id>/project` (the sandbox user's, [`crate::PROJECT_DIR`] inside),
/// `<id>/home` (the sandbox user's, [`crate::HOME_DIR`]), and
/// `<id>/run` (this process's, read-only [`crate::RUN_DIR`]: the services' sockets).
#[derive(Debug)]
pub(crate) struct ScratchDirs {
    dir: PathBuf,
    pub(crate) project: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) run: PathBuf,
    run_as: RunAs,
    /// Held shared by every running command and service, exclusively while the project
    /// directory is handed over (no sandbox process may change the tree during the walk).
    activity: Arc<RwLock<()>>,
    next_service: AtomicU32,
}

impl ScratchDirs {
    /// Creates the parts of `dir`, a new empty directory.
    pub(crate) fn create_in(dir: PathBuf, run_as: RunAs) -> Result<Self, SandboxError> {
        let dirs = Self {
            project: dir.join("project"),
            home: dir.join("home"),
            run: dir.join("run"),
            dir,
            run_as,
            activity: Arc::new(RwLock::new(())),
            next_service: AtomicU32::new(0),
        };
        // Only this process and the sandbox user's group may traverse the scratch directory
        // and its sockets' directory: other users of the host have no business there.
        private_to_sandbox_group(run_as, &dirs.dir)?;
        for (path, mode) in [(&dirs.project, 0o755), (&dirs.home, 0o700)] {
            std::fs::create_dir(path).map_err(io_error(format!("creating {}", path.display())))?;
            set_mode(path, mode)?;
            run_as.hand_over(path)?;
        }
        std::fs::create_dir(&dirs.run)
            .map_err(io_error(format!("creating {}", dirs.run.display())))?;
        private_to_sandbox_group(run_as, &dirs.run)?;
        Ok(dirs)
    }

    /// Waits until a command may run here and returns the guard it holds while it runs. The
    /// first command after a quiet period hands what the host wrote over to the sandbox user.
    pub(crate) async fn enter(&self) -> Result<OwnedRwLockReadGuard<()>, SandboxError> {
        let Ok(exclusive) = self.activity.clone().try_write_owned() else {
            // Something runs here: the tree may change under a walk, so it is not handed over.
            return Ok(self.activity.clone().read_owned().await);
        };
        if let RunAs::Uid(_) = self.run_as {
            let (run_as, project) = (self.run_as, self.project.clone());
            tokio::task::spawn_blocking(move || run_as.hand_over_tree(&project))
                .await
                .map_err(|e| SandboxError::Io {
                    context: "handing the scratch directory over".into(),
                    source: std::io::Error::other(e),
                })??;
        }
        Ok(exclusive.downgrade())
    }

    /// A name for a new service's sockets, distinct within this scratch directory.
    pub(crate) fn service_name(&self) -> String {
        format!("svc{}", self.next_service.fetch_add(1, Ordering::Relaxed))
    }
}

fn private_to_sandbox_group(run_as: RunAs, dir: &Path) -> Result<(), SandboxError> {
    match run_as {
        RunAs::Uid(_) => {
            set_mode(dir, 0o750)?;
            run_as.share_group(dir)
        }
        RunAs::CurrentUser => set_mode(dir, 0o700),
    }
}

impl Drop for ScratchDirs {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.dir).is_ok() {
            return;
        }
        // A sandboxed command may have closed directories to their owner (`chmod 0`), which
        // stops a non-root owner from emptying them: reopen them and try again.
        reopen_dirs(&self.dir);
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %error, "could not remove a scratch directory");
        }
    }
}

fn reopen_dirs(dir: &Path) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let _ = set_mode(&dir, 0o700);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
}
