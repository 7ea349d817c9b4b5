//! A project's history as a git repository ([`guild_history`]): one commit per task that
//! wrote files, in settle order, authored by its agent (`backend <agent@guild>`), its key
//! and summary as message, trailers for its task id, attempt, model, prompt version and
//! revision; a tag `rN` per revision. Served by `GET /projects/{id}/repository` and written
//! by `guild run --git`.

use std::collections::BTreeMap;
use std::path::Path;

use guild_core::ProjectId;
use guild_history::{Commit, HistoryError};
use guild_store::PgPool;
use guild_store::files::{self, WritingTask};

/// The commits of the tasks that wrote files, in settle order. A version older than one an
/// earlier commit already holds (two tasks settled in one batch, a gated task run again)
/// is left out, so the last commit's tree is the latest version of every file.
fn commits(tasks: Vec<WritingTask>) -> Vec<Commit> {
    let mut newest: BTreeMap<String, i32> = BTreeMap::new();
    tasks
        .into_iter()
        .filter_map(|mut task| {
            task.files.retain(|f| {
                let newer = newest.get(&f.path).is_none_or(|v| f.version > *v);
                if newer {
                    newest.insert(f.path.clone(), f.version);
                }
                newer
            });
            (!task.files.is_empty()).then(|| commit(task))
        })
        .collect()
}

/// The commit of one task's files.
fn commit(task: WritingTask) -> Commit {
    let summary = task
        .summary
        .as_deref()
        .map(|s| s.lines().next().unwrap_or_default().trim())
        .filter(|s| !s.is_empty())
        .unwrap_or("files");
    let mut message = format!("{}: {summary}\n\n", task.key);
    let mut trailer = |name: &str, value: &str| {
        message.push_str(name);
        message.push_str(": ");
        message.push_str(value);
        message.push('\n');
    };
    trailer("Task-Id", &task.task_id.to_string());
    trailer("Attempt", &task.attempt.to_string());
    if let Some(model) = &task.model {
        trailer("Model", model);
    }
    if let Some(version) = &task.prompt_version {
        trailer("Prompt-Version", version);
    }
    trailer("Revision", &task.revision.to_string());
    Commit {
        author: task.agent.to_string(),
        email: "agent@guild".to_owned(),
        time: task.written_at.timestamp(),
        message,
        files: task
            .files
            .into_iter()
            .map(|f| (f.path, f.content))
            .collect(),
        revision: task.revision,
    }
}

/// Why a project's repository could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error(transparent)]
    Store(#[from] guild_store::StoreError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("writing the repository stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Writes the project's history as a repository in `dir`: bare (for cloning), or as
/// `dir/.git` over the project's files already in `dir`. Returns the last commit's id,
/// `None` when no task wrote a file.
///
/// # Errors
///
/// The database failing, or the file system refusing a write.
pub async fn write(
    pool: &PgPool,
    id: ProjectId,
    dir: &Path,
    bare: bool,
) -> Result<Option<String>, RepositoryError> {
    let commits = commits(files::writing_tasks(pool, id).await?);
    let dir = dir.to_owned();
    Ok(tokio::task::spawn_blocking(move || guild_history::write(&dir, &commits, bare)).await??)
}

#[cfg(test)]
mod tests {
    use super::*;
    use guild_core::{AgentKind, TaskId};
    use guild_store::files::WrittenFile;

    fn task(key: &str, files: &[(&str, i32)]) -> WritingTask {
        WritingTask {
            task_id: TaskId::new(),
            key: key.into(),
            agent: AgentKind::Backend,
            attempt: 1,
            revision: 1,
            summary: Some(format!("{key} done\nmore")),
            model: Some("offline-1".into()),
            prompt_version: None,
            written_at: chrono::DateTime::UNIX_EPOCH,
            files: files
                .iter()
                .map(|(path, version)| WrittenFile {
                    path: (*path).into(),
                    version: *version,
                    content: format!("{path} v{version}"),
                })
                .collect(),
        }
    }

    #[test]
    fn an_older_version_settled_in_the_same_batch_never_ends_up_on_top() {
        // Settled together: `b` wrote README.md's version 2, then `c` its version 3, but
        // keys order `c` first.
        let commits = commits(vec![
            task("a", &[("README.md", 1), ("src/x.ts", 1)]),
            task("c", &[("README.md", 3)]),
            task("b", &[("README.md", 2), ("src/y.ts", 1)]),
            task("d", &[("README.md", 1)]),
        ]);
        let messages: Vec<&str> = commits
            .iter()
            .map(|c| c.message.lines().next().unwrap_or_default())
            .collect();
        assert_eq!(messages, ["a: a done", "c: c done", "b: b done"]);
        assert_eq!(
            commits[2].files,
            [("src/y.ts".to_owned(), "src/y.ts v1".to_owned())]
        );
        assert!(
            commits[1]
                .message
                .contains("\nModel: offline-1\nRevision: 1\n")
        );
        assert_eq!(commits[0].email, "agent@guild");
        assert_eq!(commits[0].author, "backend");
    }
}
