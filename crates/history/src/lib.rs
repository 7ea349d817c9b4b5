//! A generated project's history as a git repository, built with gitoxide (`gix`): one
//! commit per task that wrote files, in the order they were settled, authored by the
//! agent, with the task's key and summary as message and trailers for its task id,
//! attempt, model, prompt version and revision; a lightweight tag per revision (`r1`,
//! `r2`, …) on its last commit; `main` and `HEAD` on the last commit. Objects and refs are
//! written with gix; nothing shells out to `git`.

use std::collections::BTreeMap;
use std::path::Path;

use gix::ObjectId;
use gix::bstr::BString;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit};
use gix::refs::{FullName, Target};

/// One commit: the files a task left (path, content), on top of everything before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The agent's name: `backend`.
    pub author: String,
    /// `backend@guild`.
    pub email: String,
    /// Seconds since the Unix epoch, UTC.
    pub time: i64,
    /// Subject line, a blank line, body and trailers.
    pub message: String,
    pub files: Vec<(String, String)>,
    /// The revision it belongs to; the last commit of each revision gets its tag.
    pub revision: i32,
}

/// Why a history could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing the git history: {0}")]
pub struct HistoryError(String);

fn error(e: impl std::fmt::Display) -> HistoryError {
    HistoryError(e.to_string())
}

/// Writes `commits` as a repository at `dir`: bare (a `.git` directory's contents, for
/// cloning), or with its work tree's index (`dir/.git`, over files already in `dir`, so
/// `git status` is clean). Returns the id of the last commit.
///
/// # Errors
///
/// A commit with a path git cannot hold, or the file system refusing a write.
pub fn write(dir: &Path, commits: &[Commit], bare: bool) -> Result<Option<String>, HistoryError> {
    let repo = if bare {
        gix::init_bare(dir)
    } else {
        gix::init(dir)
    }
    .map_err(error)?;
    let mut state: BTreeMap<String, ObjectId> = BTreeMap::new();
    let mut parent: Option<ObjectId> = None;
    let mut last_tree = None;
    for (i, commit) in commits.iter().enumerate() {
        for (path, content) in &commit.files {
            let blob = repo.write_blob(content.as_bytes()).map_err(error)?.detach();
            state.insert(path.clone(), blob);
        }
        let tree = write_tree(&repo, &state, "")?;
        let signature = gix::actor::Signature {
            name: BString::from(commit.author.as_str()),
            email: BString::from(commit.email.as_str()),
            time: gix::date::Time {
                seconds: commit.time,
                offset: 0,
            },
        };
        let object = gix::objs::Commit {
            tree,
            parents: parent.into_iter().collect(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: BString::from(commit.message.as_str()),
            extra_headers: Vec::new(),
        };
        let id = repo.write_object(&object).map_err(error)?.detach();
        parent = Some(id);
        last_tree = Some(tree);
        let ends_revision = commits
            .get(i + 1)
            .is_none_or(|next| next.revision != commit.revision);
        if ends_revision {
            repo.tag_reference(format!("r{}", commit.revision), id, PreviousValue::Any)
                .map_err(error)?;
        }
    }
    let Some(head) = parent else {
        return Ok(None);
    };
    repo.reference(
        "refs/heads/main",
        head,
        PreviousValue::Any,
        "guild: the project's history",
    )
    .map_err(error)?;
    repo.edit_reference(RefEdit {
        change: Change::Update {
            log: LogChange::default(),
            expected: PreviousValue::Any,
            new: Target::Symbolic(FullName::try_from("refs/heads/main").map_err(error)?),
        },
        name: FullName::try_from("HEAD").map_err(error)?,
        deref: false,
    })
    .map_err(error)?;
    if !bare && let Some(tree) = last_tree {
        let mut index = repo.index_from_tree(&tree).map_err(error)?;
        index
            .write(gix::index::write::Options::default())
            .map_err(error)?;
    }
    Ok(Some(head.to_string()))
}

/// Writes the tree of the files under `prefix` (`""` for the root) and returns its id.
fn write_tree(
    repo: &gix::Repository,
    state: &BTreeMap<String, ObjectId>,
    prefix: &str,
) -> Result<ObjectId, HistoryError> {
    let mut entries = Vec::new();
    let mut directories: Vec<&str> = Vec::new();
    for (path, blob) in state.range(prefix.to_owned()..) {
        let Some(rest) = path.strip_prefix(prefix) else {
            break;
        };
        match rest.split_once('/') {
            None => entries.push(gix::objs::tree::Entry {
                mode: gix::objs::tree::EntryKind::Blob.into(),
                filename: BString::from(rest),
                oid: *blob,
            }),
            Some((directory, _)) => {
                if directories.last() != Some(&directory) {
                    directories.push(directory);
                }
            }
        }
    }
    for directory in directories {
        let oid = write_tree(repo, state, &format!("{prefix}{directory}/"))?;
        entries.push(gix::objs::tree::Entry {
            mode: gix::objs::tree::EntryKind::Tree.into(),
            filename: BString::from(directory),
            oid,
        });
    }
    entries.sort();
    let tree = gix::objs::Tree { entries };
    Ok(repo.write_object(&tree).map_err(error)?.detach())
}
