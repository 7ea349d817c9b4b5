//! The host side: which user sandboxes run as, the programs they need, and the paths of the
//! host they see.

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Relay;
use crate::error::{SandboxError, io_error};

/// Who sandboxes run as on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAs {
    /// This process's own user (this process is not root).
    CurrentUser,
    /// An unprivileged uid (with the same gid), because this process is root: the kernel does
    /// not enforce `RLIMIT_NPROC` on processes whose real uid is root.
    Uid(u32),
}

impl RunAs {
    pub(crate) fn detect(uid: u32) -> Result<Self, SandboxError> {
        // The owner of /proc/self is this process's effective user.
        let euid = std::fs::metadata("/proc/self")
            .map_err(io_error("reading /proc/self"))?
            .uid();
        match (euid, uid) {
            (0, 0) => Err(SandboxError::RootUid),
            (0, uid) => Ok(Self::Uid(uid)),
            _ => Ok(Self::CurrentUser),
        }
    }

    /// The uid sandboxes have on the host.
    pub(crate) fn host_uid(self) -> Result<u32, SandboxError> {
        match self {
            Self::Uid(uid) => Ok(uid),
            Self::CurrentUser => Ok(std::fs::metadata("/proc/self")
                .map_err(io_error("reading /proc/self"))?
                .uid()),
        }
    }

    /// Gives `path` itself (not what it links to) to the sandbox user.
    pub(crate) fn hand_over(self, path: &Path) -> Result<(), SandboxError> {
        if let Self::Uid(uid) = self {
            std::os::unix::fs::lchown(path, Some(uid), Some(uid))
                .map_err(io_error(format!("handing {} to uid {uid}", path.display())))?;
        }
        Ok(())
    }

    /// Lets the sandbox user's group into `path`, which stays this process's.
    pub(crate) fn share_group(self, path: &Path) -> Result<(), SandboxError> {
        if let Self::Uid(gid) = self {
            std::os::unix::fs::lchown(path, None, Some(gid)).map_err(io_error(format!(
                "sharing {} with gid {gid}",
                path.display()
            )))?;
        }
        Ok(())
    }

    /// Gives every entry under `dir` that is not the sandbox user's to it, without following
    /// symbolic links. Only safe while no sandbox process can change the tree (a process
    /// swapping a directory for a link during the walk could redirect it): the caller holds
    /// the scratch directory's exclusive lock.
    pub(crate) fn hand_over_tree(self, dir: &Path) -> Result<(), SandboxError> {
        let Self::Uid(uid) = self else {
            return Ok(());
        };
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let entries =
                std::fs::read_dir(&dir).map_err(io_error(format!("reading {}", dir.display())))?;
            for entry in entries {
                let path = entry
                    .map_err(io_error(format!("reading {}", dir.display())))?
                    .path();
                let meta = std::fs::symlink_metadata(&path)
                    .map_err(io_error(format!("reading {}", path.display())))?;
                if meta.uid() != uid || meta.gid() != uid {
                    self.hand_over(&path)?;
                }
                if meta.is_dir() {
                    pending.push(path);
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), SandboxError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_error(format!("setting the mode of {}", path.display())))
}

/// Whether a user other than the owner can traverse every parent of `path` and, when `path`
/// is a file, execute it.
pub(crate) fn open_to_others(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.is_file() && meta.mode() & 0o001 == 0 {
        return false;
    }
    path.ancestors().skip(1).all(|dir| {
        std::fs::metadata(dir).is_ok_and(|meta| meta.is_dir() && meta.mode() & 0o001 != 0)
    })
}

/// Checks that the sandbox user can traverse every parent of `root` (`root` itself is made
/// `0755` by the caller).
pub(crate) fn check_reachable(run_as: RunAs, root: &Path) -> Result<(), SandboxError> {
    let RunAs::Uid(uid) = run_as else {
        return Ok(());
    };
    let closed = root.ancestors().skip(1).any(|dir| {
        !std::fs::metadata(dir).is_ok_and(|meta| meta.mode() & 0o001 != 0 || meta.uid() == uid)
    });
    if closed {
        return Err(SandboxError::Unreachable {
            path: root.to_path_buf(),
            uid,
        });
    }
    Ok(())
}

/// The first of `candidates` that is an executable file.
pub(crate) fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// `bwrap` from this process's `PATH`, or its usual place.
pub(crate) fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("bwrap"))
        .chain([PathBuf::from("/usr/bin/bwrap")])
        .find(|path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// The relay program as the sandbox user can run it: its own path when that is open to
/// other users, otherwise a copy under `root/bin`, made once per build of the program (the
/// copy's name carries the program's size and modification time).
pub(crate) fn install_relay(
    run_as: RunAs,
    root: &Path,
    relay: &Relay,
) -> Result<PathBuf, SandboxError> {
    let program = std::fs::canonicalize(&relay.program).map_err(io_error(format!(
        "finding the relay program {}",
        relay.program.display()
    )))?;
    if run_as == RunAs::CurrentUser || open_to_others(&program) {
        return Ok(program);
    }
    let meta =
        std::fs::metadata(&program).map_err(io_error(format!("reading {}", program.display())))?;
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).map_err(io_error(format!("creating {}", bin.display())))?;
    set_mode(&bin, 0o755)?;
    let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    let copy = bin.join(format!("relay-{}-{mtime_ns}", meta.len()));
    if copy.exists() {
        return Ok(copy);
    }
    // Copied under a temporary name and renamed, so a concurrent start never runs half a file.
    let partial = bin.join(format!(".relay-{}.partial", std::process::id()));
    std::fs::copy(&program, &partial).map_err(io_error(format!(
        "copying the relay program to {}",
        partial.display()
    )))?;
    set_mode(&partial, 0o755)?;
    std::fs::rename(&partial, &copy).map_err(io_error(format!("renaming {}", copy.display())))?;
    Ok(copy)
}

/// The uid and gid processes have inside the sandbox, whoever they are on the host.
pub(crate) const INSIDE_ID: u32 = 1000;

/// Writes the `passwd` and `group` files shown inside (so `whoami`, `os.userInfo()` and
/// Python's `pwd` find the sandbox user) into `etc`.
pub(crate) fn write_identity_files(etc: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(etc).map_err(io_error(format!("creating {}", etc.display())))?;
    set_mode(etc, 0o755)?;
    let id = INSIDE_ID;
    let files = [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/bin/sh\n\
                 sandbox:x:{id}:{id}:sandbox:{}:/bin/sh\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                crate::HOME_DIR
            ),
        ),
        (
            "group",
            format!("root:x:0:\nsandbox:x:{id}:\nnogroup:x:65534:\n"),
        ),
    ];
    for (name, content) in files {
        let path = etc.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == content) {
            continue;
        }
        let partial = etc.join(format!(".{name}-{}.partial", std::process::id()));
        std::fs::write(&partial, content)
            .map_err(io_error(format!("writing {}", partial.display())))?;
        set_mode(&partial, 0o644)?;
        std::fs::rename(&partial, &path)
            .map_err(io_error(format!("renaming {}", path.display())))?;
    }
    Ok(())
}

/// Read-only host paths every sandbox sees, found once.
#[derive(Debug, Clone)]
pub(crate) struct SystemView {
    args: Vec<OsString>,
}

/// Entries of the host's `/etc` a sandbox sees (when they exist): name resolution, TLS
/// certificates, the dynamic linker's cache, Debian's alternatives and Python's site files.
/// Nothing else of `/etc` (host configuration may hold secrets, such as an `npmrc` token).
const ETC_ENTRIES: &[&str] = &[
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "crypto-policies",
    "gai.conf",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "pki",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
    "timezone",
];

impl SystemView {
    pub(crate) fn of_host() -> Self {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["--ro-bind", "/usr", "/usr"]);
        // On merged-/usr systems these are links into /usr; elsewhere directories.
        for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::symlink_metadata(dir) {
                Ok(meta) if meta.is_symlink() => {
                    if let Ok(target) = std::fs::read_link(dir) {
                        args.extend(["--symlink".into(), target.into(), dir.into()]);
                    }
                }
                Ok(meta) if meta.is_dir() => {
                    args.extend(["--ro-bind".into(), dir.into(), dir.into()]);
                }
                _ => {}
            }
        }
        let mut etc: Vec<String> = ETC_ENTRIES.iter().map(|e| format!("/etc/{e}")).collect();
        if let Ok(entries) = std::fs::read_dir("/etc") {
            etc.extend(
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| name.starts_with("python3"))
                    .map(|name| format!("/etc/{name}")),
            );
        }
        for path in etc {
            if Path::new(&path).exists() {
                args.extend(["--ro-bind-try".into(), path.clone().into(), path.into()]);
            }
        }
        Self { args }
    }

    pub(crate) fn args(&self) -> &[OsString] {
        &self.args
    }
}
