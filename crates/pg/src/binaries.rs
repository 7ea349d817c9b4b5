//! Finding PostgreSQL's server binaries.

use std::path::{Path, PathBuf};

use crate::PgError;

/// The server binaries a cluster needs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
}

impl Binaries {
    /// Looks on PATH first, then in Debian's versioned directories (newest first).
    pub fn locate() -> Result<Self, PgError> {
        Ok(Self {
            initdb: locate("initdb")?,
            pg_ctl: locate("pg_ctl")?,
        })
    }
}

fn locate(name: &'static str) -> Result<PathBuf, PgError> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    // Newest major version first: "15" sorts after "9" only when compared as numbers.
    debian.sort_by_key(|dir| std::cmp::Reverse(major_version(dir)));
    on_path
        .into_iter()
        .chain(debian)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or(PgError::MissingBinary(name))
}

fn major_version(bin_dir: &Path) -> u32 {
    bin_dir
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .and_then(|name| name.parse().ok())
        .unwrap_or(0)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
