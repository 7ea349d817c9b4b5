//! Writing a project's files to a directory the user named, without ever losing theirs.
//!
//! Guild keeps a manifest of what it wrote (`.guild-manifest.json`: each path and the
//! SHA-256 of what was written). A directory is written into only when it is empty or
//! holds Guild's own output: a file Guild wrote and nobody changed since may be replaced
//! or removed; any other file is the user's and is never replaced (unless `--force`) nor
//! removed. Everything is checked and staged before the first file is touched, so the
//! writing does not stop half-way on a path that cannot be written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use guild_core::paths::{path_clash, safe_path};
use serde::{Deserialize, Serialize};

/// The manifest's file name, in the output directory.
pub const MANIFEST: &str = ".guild-manifest.json";

/// What Guild wrote into a directory.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    project_id: String,
    /// Path → lowercase hex SHA-256 of the content written.
    files: BTreeMap<String, String>,
}

/// What [`write()`] did.
#[derive(Debug, Default)]
pub struct Written {
    pub files: usize,
    /// Files of an earlier run that are not in this project, removed.
    pub removed: Vec<String>,
    /// Files of an earlier run that someone changed since: kept, not replaced.
    pub kept_changed: Vec<String>,
}

/// Writes the latest files of project `project_id` under `out` (see [`write()`]), and with
/// `git` its history as a repository in `out/.git` (replacing one Guild wrote there
/// before).
///
/// # Errors
///
/// As [`write()`]; a `.git` in `out` that Guild did not write; the database failing.
pub async fn write_project(
    pool: &guild_store::PgPool,
    project_id: guild_core::ProjectId,
    out: &Path,
    force: bool,
    git: bool,
) -> anyhow::Result<Written> {
    let contents: Vec<(String, String)> = guild_store::files::latest(pool, project_id)
        .await?
        .into_iter()
        .map(|f| (f.path, f.content))
        .collect();
    let (dir, id) = (out.to_owned(), project_id.to_string());
    let written = tokio::task::spawn_blocking(move || write(&dir, &id, &contents, force))
        .await
        .context("writing the files")??;
    if git {
        let repository = out.join(".git");
        let marker = repository.join(GIT_MARKER);
        if repository.exists() {
            anyhow::ensure!(
                marker.exists(),
                "{} exists and Guild did not write it: move it away to write the project's history",
                repository.display()
            );
            std::fs::remove_dir_all(&repository)
                .with_context(|| format!("replacing {}", repository.display()))?;
        }
        if let Err(error) = guild_api::repository::write(pool, project_id, out, false).await {
            // A half-written `.git` without the marker would be refused as not Guild's.
            let _ = std::fs::remove_dir_all(&repository);
            return Err(anyhow::Error::new(error).context("writing the git history"));
        }
        std::fs::write(&marker, project_id.to_string())
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    Ok(written)
}

/// In a `.git` Guild wrote: the project's id, so a later run may replace it.
const GIT_MARKER: &str = "guild-project";

/// Writes `files` (path, content) of project `project_id` under `out`.
///
/// # Errors
///
/// When `out` holds files Guild did not write (and not `force`), when a path cannot be
/// written beside the directory's other files, or on an I/O error; in every case but the
/// last, before anything is written.
pub fn write(
    out: &Path,
    project_id: &str,
    files: &[(String, String)],
    force: bool,
) -> anyhow::Result<Written> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let previous = read_manifest(out)?;
    let ours = unchanged(out, previous.as_ref());
    let mut written = Written::default();
    if let Some(previous) = &previous {
        written.kept_changed = previous
            .files
            .keys()
            .filter(|p| !ours.contains_key(*p) && out.join(p).exists())
            .cloned()
            .collect();
    }
    check_writable(out, force)?;
    let mut planned: Vec<(String, &String)> = Vec::new();
    for (path, content) in files {
        let relative =
            safe_path(path).map_err(|e| anyhow::anyhow!("refusing to write `{path}`: {e}"))?;
        if let Some(clash) = planned.iter().find_map(|(p, _)| path_clash(p, &relative)) {
            bail!("cannot write the project: {clash}");
        }
        check_target(out, &relative, &ours, force)?;
        planned.push((relative, content));
    }
    // Stage every file first: a failure here leaves the directory as it was.
    let staging = tempfile::Builder::new()
        .prefix(".guild-staging-")
        .tempdir_in(out)
        .context("creating a staging directory")?;
    for (i, (_, content)) in planned.iter().enumerate() {
        std::fs::write(staging.path().join(i.to_string()), content).context("staging the files")?;
    }
    if let Some(previous) = &previous {
        for path in previous.files.keys() {
            if ours.contains_key(path) && !planned.iter().any(|(p, _)| p == path) {
                std::fs::remove_file(out.join(path))
                    .with_context(|| format!("removing {path} of the earlier run"))?;
                written.removed.push(path.clone());
            }
        }
    }
    let mut manifest = Manifest {
        project_id: project_id.to_owned(),
        files: BTreeMap::new(),
    };
    for (i, (path, content)) in planned.iter().enumerate() {
        let target = out.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::rename(staging.path().join(i.to_string()), &target)
            .with_context(|| format!("writing {}", target.display()))?;
        manifest
            .files
            .insert(path.clone(), guild_agents::files::sha256_hex(content));
    }
    std::fs::write(
        out.join(MANIFEST),
        serde_json::to_string_pretty(&manifest).context("the manifest")?,
    )
    .context("writing the manifest")?;
    written.files = planned.len();
    Ok(written)
}

/// Checks, before a run spends anything, that its output could be written to `out`: it
/// does not exist, is empty, or holds Guild's earlier output (or `force`).
///
/// # Errors
///
/// When `out` is not a directory, or holds files Guild did not write.
pub fn check_writable(out: &Path, force: bool) -> anyhow::Result<()> {
    if !out.exists() || force {
        return Ok(());
    }
    if !out.is_dir() {
        bail!("--out {} is a file, not a directory", out.display());
    }
    if read_manifest(out)?.is_none() && !is_empty(out)? {
        bail!(
            "{} is not empty and Guild did not write it (no {MANIFEST}): choose an empty or new \
             directory, or pass --force to write into it (files with the same paths are replaced)",
            out.display()
        );
    }
    Ok(())
}

/// Refuses a path whose target or one of its parents is in the way: a directory where
/// the file goes, a file where a directory must be, or a file that is not Guild's.
fn check_target(
    out: &Path,
    relative: &str,
    ours: &BTreeMap<String, PathBuf>,
    force: bool,
) -> anyhow::Result<()> {
    let target = out.join(relative);
    let mut parent = target.parent();
    while let Some(dir) = parent.filter(|d| *d != out) {
        if dir.exists() && !dir.is_dir() {
            bail!(
                "cannot write `{relative}`: {} is a file, not a directory",
                dir.display()
            );
        }
        parent = dir.parent();
    }
    if target.is_dir() {
        bail!(
            "cannot write `{relative}`: {} is a directory",
            target.display()
        );
    }
    if target.exists() && !ours.contains_key(relative) && !force {
        bail!(
            "{} exists and Guild did not write it (or it changed since): move it away, or pass \
             --force to replace it",
            target.display()
        );
    }
    Ok(())
}

fn read_manifest(out: &Path) -> anyhow::Result<Option<Manifest>> {
    let path = out.join(MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not Guild's manifest", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// The files of the manifest still as Guild wrote them.
fn unchanged(out: &Path, manifest: Option<&Manifest>) -> BTreeMap<String, PathBuf> {
    manifest
        .into_iter()
        .flat_map(|m| &m.files)
        .filter(|(path, sha)| {
            safe_path(path).is_ok_and(|p| &p == *path)
                && std::fs::read_to_string(out.join(path))
                    .is_ok_and(|content| guild_agents::files::sha256_hex(&content) == **sha)
        })
        .map(|(path, _)| (path.clone(), out.join(path)))
        .collect()
}

fn is_empty(dir: &Path) -> anyhow::Result<bool> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .next()
        .is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn a_directory_guild_did_not_write_is_refused_unless_forced() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("README.md"), "mine").expect("write");
        let error = write(dir.path(), "p1", &files(&[("README.md", "theirs")]), false)
            .expect_err("refused");
        assert!(error.to_string().contains("--force"), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("README.md")).expect("read"),
            "mine"
        );

        write(dir.path(), "p1", &files(&[("README.md", "theirs")]), true).expect("forced");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("README.md")).expect("read"),
            "theirs"
        );
    }

    #[test]
    fn a_rerun_replaces_exactly_what_guild_wrote() {
        let dir = tempfile::tempdir().expect("dir");
        write(
            dir.path(),
            "p1",
            &files(&[("a.ts", "1"), ("old.ts", "x"), ("b.ts", "2")]),
            false,
        )
        .expect("first");
        std::fs::write(dir.path().join("notes.txt"), "the user's").expect("write");
        std::fs::write(dir.path().join("b.ts"), "changed by the user").expect("write");

        let written = write(
            dir.path(),
            "p2",
            &files(&[("a.ts", "1'"), ("c.ts", "3")]),
            false,
        )
        .expect("second");
        assert_eq!(written.removed, ["old.ts"]);
        assert_eq!(written.kept_changed, ["b.ts"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.ts")).expect("a"),
            "1'"
        );
        assert!(!dir.path().join("old.ts").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).expect("n"),
            "the user's"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.ts")).expect("b"),
            "changed by the user"
        );
        // A changed file Guild wants to write again is the user's now.
        let error = write(dir.path(), "p3", &files(&[("b.ts", "2")]), false).expect_err("refused");
        assert!(error.to_string().contains("b.ts exists"), "{error}");
    }

    #[test]
    fn a_path_that_cannot_be_written_stops_before_anything_is_touched() {
        let dir = tempfile::tempdir().expect("dir");
        let error = write(
            dir.path(),
            "p1",
            &files(&[
                ("a.ts", "1"),
                ("src/config", "x"),
                ("src/config/index.ts", "y"),
            ]),
            false,
        )
        .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("needs `src/config` to be a directory"),
            "{error}"
        );
        assert!(!dir.path().join("a.ts").exists(), "nothing written");
        // A file of the user's where a directory must go, likewise.
        std::fs::write(dir.path().join("lib"), "a file").expect("write");
        let error = write(
            dir.path(),
            "p1",
            &files(&[("b.ts", "1"), ("lib/x.ts", "2")]),
            true,
        )
        .expect_err("refused");
        assert!(
            error.to_string().contains("is a file, not a directory"),
            "{error}"
        );
        assert!(!dir.path().join("b.ts").exists(), "nothing written");
    }
}
