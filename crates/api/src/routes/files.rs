//! `/projects/{id}/files`: the generated files, one by one or as one archive.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use guild_core::ProjectId;
use guild_store::files;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, Problem, Result};
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::changes::{diff_response, tree_at};
use crate::routes::projects::existing;
use crate::state::AppState;
use crate::views::{FileList, FileView};
use crate::{diff, repository};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// Only this path.
    pub path: Option<String>,
    /// Every version of `path`, oldest first, rather than the latest (needs `path`).
    #[serde(default)]
    pub history: bool,
}

/// List a project's files
///
/// The latest version of each file: path, size, hash, language, its validation (valid,
/// invalid with the errors, or unchecked), any conflict, and its provenance: the task,
/// agent, attempt, model, prompt version and repair round that produced it. With `path`
/// and `history=true`, every version of that file.
#[utoipa::path(
    get, path = "/projects/{id}/files", operation_id = "list_files", tag = "files",
    params(("id" = Uuid, Path, description = "Project id"), FileQuery),
    responses(
        (status = 200, description = "The files", body = FileList),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`history=true` without `path`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_files(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    ApiQuery(query): ApiQuery<FileQuery>,
) -> Result<axum::Json<FileList>> {
    if query
        .path
        .as_deref()
        .is_some_and(|path| path.contains('\0'))
    {
        return Err(ApiError::invalid("path", "must not contain NUL characters"));
    }
    let files = match (&query.path, query.history) {
        (Some(path), true) => files::history(&state.pool, id, path).await?,
        (None, true) => return Err(ApiError::invalid("history", "needs `path`")),
        (path, false) => {
            let mut files = files::list_latest(&state.pool, id).await?;
            if let Some(path) = path {
                files.retain(|f| &f.path == path);
            }
            files
        }
    };
    if files.is_empty() {
        existing(&state.pool, id).await?;
    }
    Ok(axum::Json(FileList {
        files: files.into_iter().map(FileView::from).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileVersion {
    /// An older version; the latest when absent.
    #[param(minimum = 1)]
    pub version: Option<i32>,
    /// A unified diff of the file instead of its content: `3..5` from version 3 to 5, or
    /// `r1..r2` from the file as it stood at revision 1 to revision 2 (absent at one end:
    /// added or deleted). Not with `version`.
    #[param(pattern = "^r?[0-9]+\\.\\.r?[0-9]+$", example = "r1..r2")]
    pub diff: Option<String>,
}

/// One end of a `diff` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Version(i32),
    Revision(i32),
}

/// Reads `a..b`, both versions or both revisions.
fn diff_range(range: &str) -> Result<(End, End)> {
    let end = |s: &str| -> Option<End> {
        match s.strip_prefix('r') {
            Some(n) => n.parse().ok().filter(|n| *n >= 1).map(End::Revision),
            None => s.parse().ok().filter(|n| *n >= 1).map(End::Version),
        }
    };
    range
        .split_once("..")
        .and_then(|(a, b)| Some((end(a)?, end(b)?)))
        .filter(|(a, b)| {
            matches!(
                (a, b),
                (End::Version(_), End::Version(_)) | (End::Revision(_), End::Revision(_))
            )
        })
        .ok_or_else(|| {
            ApiError::invalid(
                "diff",
                "must be two versions (`3..5`) or two revisions (`r1..r2`), each from 1 to 2147483647",
            )
        })
}

/// The file's content at one end of a range (`None`: it did not exist there).
async fn content_at(
    state: &AppState,
    id: ProjectId,
    path: &str,
    end: End,
) -> Result<Option<String>> {
    Ok(match end {
        End::Version(v) => Some(
            files::get(&state.pool, id, path, Some(v))
                .await?
                .ok_or(ApiError::NotFound("file version"))?
                .content,
        ),
        End::Revision(r) => tree_at(state, id, r).await?.remove(path),
    })
}

/// The media type for a generated file's language.
fn content_type(language: Option<&str>) -> &'static str {
    match language {
        Some("json") => "application/json",
        Some("markdown") => "text/markdown; charset=utf-8",
        Some("yaml") => "application/yaml",
        Some("javascript" | "jsx") => "text/javascript; charset=utf-8",
        Some("typescript" | "tsx") => "application/typescript; charset=utf-8",
        Some("python") => "text/x-python; charset=utf-8",
        Some("sql") => "application/sql",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("toml") => "application/toml",
        _ => "text/plain; charset=utf-8",
    }
}

/// Get a file
///
/// The file's content with a media type fitting its language; `ETag` is its SHA-256. With
/// `diff`, a unified diff between two versions or two revisions of it (`text/x-diff`).
#[utoipa::path(
    get, path = "/projects/{id}/files/{path}", operation_id = "get_file", tag = "files",
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("path" = String, Path, description = "The file's path, slashes included (at most 512 bytes, no control characters: 400 otherwise)"),
        FileVersion
    ),
    responses(
        (status = 200, description = "The content, with a media type fitting its language", content(
            (String = "text/plain"), (String = "text/markdown"), (String = "application/typescript"),
            (String = "text/javascript"), (String = "text/x-python"),
            (crate::views::AnyDocument = "application/json"), (crate::views::AnyDocument = "application/yaml"),
            (String = "application/sql"), (String = "application/toml"),
            (String = "text/html"), (String = "text/css"), (String = "text/x-diff")
        )),
        (status = 404, description = "No such file or version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A `diff` that is not a range of versions or revisions, or `diff` with `version`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_file(
    State(state): State<AppState>,
    ApiPath((id, path)): ApiPath<(ProjectId, String)>,
    ApiQuery(query): ApiQuery<FileVersion>,
) -> Result<Response> {
    if path.len() > 512 || path.chars().any(char::is_control) {
        return Err(ApiError::BadRequest("invalid file path".into()));
    }
    if query.version.is_some_and(|v| v < 1) {
        return Err(ApiError::BadRequest("version must be 1 or more".into()));
    }
    if let Some(range) = &query.diff {
        if query.version.is_some() {
            return Err(ApiError::invalid("diff", "cannot be used with `version`"));
        }
        let (from, to) = diff_range(range)?;
        let project = existing(&state.pool, id).await?;
        if [from, to]
            .iter()
            .any(|end| matches!(end, End::Revision(r) if *r > project.revision))
        {
            return Err(ApiError::NotFound("revision"));
        }
        let old = content_at(&state, id, &path, from).await?;
        let new = content_at(&state, id, &path, to).await?;
        if old.is_none() && new.is_none() {
            return Err(ApiError::NotFound("file"));
        }
        return Ok(diff_response(diff::file(
            &path,
            old.as_deref(),
            new.as_deref(),
        )));
    }
    let file = files::get(&state.pool, id, &path, query.version)
        .await?
        .ok_or(ApiError::NotFound("file"))?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                content_type(file.language.as_deref()).to_owned(),
            ),
            (header::ETAG, format!("\"{}\"", file.sha256)),
        ],
        file.content,
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArchiveQuery {
    /// The files as they stood at this revision; the latest when absent.
    #[param(minimum = 1)]
    pub revision: Option<i32>,
}

/// The archive's media type: gzip, or octet-stream when the request asks for only that.
fn archive_media_type(headers: &HeaderMap) -> &'static str {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("application/octet-stream") && !accept.contains("application/gzip") {
        "application/octet-stream"
    } else {
        "application/gzip"
    }
}

/// A `std::io::Write` that sends what is written, chunk by chunk, to a response body.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type TarGz = tar::Builder<flate2::write::GzEncoder<std::io::BufWriter<ChannelWriter>>>;

/// Streams a gzipped tar that `fill` writes on a blocking thread: the response starts at
/// once and holds one 64 KiB buffer at a time, whatever the size.
fn tar_gz_response(
    media_type: &'static str,
    filename: String,
    fill: impl FnOnce(&mut TarGz) -> std::io::Result<()> + Send + 'static,
) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let errors = tx.clone();
    tokio::task::spawn_blocking(move || {
        let writer = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx));
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            writer,
            flate2::Compression::default(),
        ));
        let done = match fill(&mut tar) {
            Ok(()) => tar
                .into_inner()
                .and_then(flate2::write::GzEncoder::finish)
                .and_then(|mut w| std::io::Write::flush(&mut w)),
            Err(error) => {
                // The error goes first, so the client sees a cut body, never the valid
                // short archive that dropping the builder would finish.
                tracing::error!(%error, "streaming an archive failed");
                let _ = errors.blocking_send(Err(error));
                drop(tar);
                return;
            }
        };
        if let Err(error) = done {
            tracing::error!(%error, "streaming an archive failed");
            let _ = errors.blocking_send(Err(error));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, media_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Download all files
///
/// The latest version of every file as one `.tar.gz`, or with `revision` the files as
/// they stood at that revision.
#[utoipa::path(
    get, path = "/projects/{id}/archive", operation_id = "get_archive", tag = "files",
    params(("id" = Uuid, Path, description = "Project id"), ArchiveQuery),
    responses(
        (status = 200, description = "A gzipped tar of the files: `application/gzip`, or `application/octet-stream` when the request's `Accept` asks for it (some client generators read only that as bytes)", content(
            (crate::views::Binary = "application/gzip"), (crate::views::Binary = "application/octet-stream")
        )),
        (status = 404, description = "No such project or revision", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_archive(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    ApiQuery(query): ApiQuery<ArchiveQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let project = existing(&state.pool, id).await?;
    let files: Vec<(String, String)> = match query.revision {
        Some(r) if r < 1 || r > project.revision => return Err(ApiError::NotFound("revision")),
        Some(r) => tree_at(&state, id, r).await?.into_iter().collect(),
        None => files::latest(&state.pool, id)
            .await?
            .into_iter()
            .map(|f| (f.path, f.content))
            .collect(),
    };
    let name = match query.revision {
        Some(r) => format!("project-{id}-r{r}.tar.gz"),
        None => format!("project-{id}.tar.gz"),
    };
    Ok(tar_gz_response(
        archive_media_type(&headers),
        name,
        move |tar| {
            for (path, content) in &files {
                let mut header = tar::Header::new_gnu();
                header.set_size(content.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_cksum();
                tar.append_data(&mut header, path, content.as_bytes())?;
            }
            Ok(())
        },
    ))
}

/// Download the git history
///
/// The project as a git repository in a `.tar.gz`: a bare repository (`project.git/`) with
/// one commit per task that wrote files, in the order they were settled, authored by the
/// agent (`backend <agent@guild>`), the task's key and summary as message and trailers
/// `Task-Id`, `Attempt`, `Model`, `Prompt-Version` and `Revision`; a tag per revision
/// (`r1`, `r2`, …) and `main`. Unpack it and `git clone project.git`.
#[utoipa::path(
    get, path = "/projects/{id}/repository", operation_id = "get_repository", tag = "files",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "A gzipped tar of a bare git repository", content(
            (crate::views::Binary = "application/gzip"), (crate::views::Binary = "application/octet-stream")
        )),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No task of the project has written a file yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_repository(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    headers: HeaderMap,
) -> Result<Response> {
    existing(&state.pool, id).await?;
    let dir = tempfile::tempdir().map_err(|error| {
        tracing::error!(%error, "no scratch directory for a repository");
        ApiError::Internal
    })?;
    let written = repository::write(&state.pool, id, dir.path(), true)
        .await
        .map_err(|error| match error {
            repository::RepositoryError::Store(e) => ApiError::from(e),
            error => {
                tracing::error!(%id, %error, "writing a repository failed");
                ApiError::Internal
            }
        })?;
    if written.is_none() {
        return Err(ApiError::Conflict(
            "no task of the project has written a file yet".into(),
        ));
    }
    Ok(tar_gz_response(
        archive_media_type(&headers),
        format!("project-{id}.git.tar.gz"),
        move |tar| {
            tar.mode(tar::HeaderMode::Deterministic);
            tar.append_dir_all("project.git", dir.path())
        },
    ))
}
