//! `/projects/{id}/files`: the generated files, one by one or as one archive.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use guild_core::ProjectId;
use guild_store::files;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, Problem, Result};
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::projects::existing;
use crate::state::AppState;
use crate::views::{FileList, FileView};

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
/// The file's content with a media type fitting its language; `ETag` is its SHA-256.
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
            (String = "text/html"), (String = "text/css")
        )),
        (status = 404, description = "No such file or version", body = Problem, content_type = "application/problem+json"),
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

/// Download all files
///
/// The latest version of every file as one `.tar.gz`.
#[utoipa::path(
    get, path = "/projects/{id}/archive", operation_id = "get_archive", tag = "files",
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, description = "A gzipped tar of the files: `application/gzip`, or `application/octet-stream` when the request's `Accept` asks for it (some client generators read only that as bytes)", content(
            (crate::views::Binary = "application/gzip"), (crate::views::Binary = "application/octet-stream")
        )),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_archive(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media_type =
        if accept.contains("application/octet-stream") && !accept.contains("application/gzip") {
            "application/octet-stream"
        } else {
            "application/gzip"
        };
    existing(&state.pool, id).await?;
    let files = files::latest(&state.pool, id).await?;
    let archive = tokio::task::spawn_blocking(move || {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(encoder);
        for file in &files {
            let mut header = tar::Header::new_gnu();
            header.set_size(file.content.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, &file.path, file.content.as_bytes())?;
        }
        tar.into_inner()?.finish()
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(|error| {
        tracing::error!(%error, "building an archive failed");
        ApiError::Internal
    })?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, media_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"project-{id}.tar.gz\""),
            ),
        ],
        Body::from(archive),
    )
        .into_response())
}
