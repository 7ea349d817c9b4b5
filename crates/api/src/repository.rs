//! A project's history as a git repository ([`guild_history`]): one commit per task that
//! wrote files, in settle order, authored by its agent (`backend <agent@guild>`), its key
//! and summary as message, trailers for its task id, attempt, model, prompt version and
//! revision; a tag `rN` per revision. Served by `GET /projects/{id}/repository` and written
//! by `guild run --git`.

use std::path::Path;

use guild_core::ProjectId;
use guild_history::{Commit, HistoryError};
use guild_store::PgPool;
use guild_store::files::{self, WritingTask};

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
        files: task.files,
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
    let commits: Vec<Commit> = files::writing_tasks(pool, id)
        .await?
        .into_iter()
        .map(commit)
        .collect();
    let dir = dir.to_owned();
    Ok(tokio::task::spawn_blocking(move || guild_history::write(&dir, &commits, bare)).await??)
}
