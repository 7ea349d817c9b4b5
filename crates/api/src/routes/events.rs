//! `/projects/{id}/events`: the event log as pages of JSON or as a live SSE stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use guild_core::ProjectId;
use guild_store::events::{self, Event};
use guild_store::projects;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, Problem, Result};
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::projects::existing;
use crate::state::AppState;
use crate::views::{EventList, EventView};

/// How often a stream looks for new events when nothing in this process said it should.
const STREAM_POLL: Duration = Duration::from_millis(500);
/// Events fetched per query while streaming.
const STREAM_BATCH: i64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events with a larger id.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size for JSON, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// List or stream a project's events
///
/// JSON: a page of events after `after`, oldest first. With `Accept: text/event-stream`: a
/// live Server-Sent Events stream (`id` = event id, `event` = kind, `data` = the event as
/// JSON) that resumes after `Last-Event-ID` and closes once the project has ended and every
/// event was sent.
#[utoipa::path(
    get, path = "/projects/{id}/events", operation_id = "list_events", tag = "events",
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("Last-Event-ID" = Option<i64>, Header, nullable = false, minimum = 0, description = "Resume a stream after this event"),
        EventQuery
    ),
    responses(
        (status = 200, description = "The events", body = EventList, content(
            (EventList = "application/json"),
            (String = "text/event-stream")
        )),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProjectId>,
    ApiQuery(query): ApiQuery<EventQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    existing(&state.pool, id).await?;
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be an event id".into()))
        })
        .transpose()?;
    if query.after.is_some_and(|after| after < 0) {
        return Err(ApiError::BadRequest("after must be 0 or more".into()));
    }
    let after = query.after.unwrap_or(0).max(last_event_id.unwrap_or(0));
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if wants_stream {
        return Ok(Sse::new(event_stream(state, id, after))
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be from 1 to 1000".into()));
    }
    let page = events::list(&state.pool, id, after, limit).await?;
    Ok(axum::Json(EventList {
        events: page.into_iter().map(EventView::from).collect(),
    })
    .into_response())
}

struct Cursor {
    state: AppState,
    project_id: ProjectId,
    after: i64,
    pending: VecDeque<Event>,
    /// The project has ended: one more read picks up events committed with its end.
    ending: bool,
}

fn to_sse(event: Event) -> SseEvent {
    let id = event.id;
    let kind = event.kind;
    let data = serde_json::to_string(&EventView::from(event)).unwrap_or_default();
    SseEvent::default()
        .id(id.to_string())
        .event(kind.as_str())
        .data(data)
}

fn event_stream(
    state: AppState,
    project_id: ProjectId,
    after: i64,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let cursor = Cursor {
        state,
        project_id,
        after,
        pending: VecDeque::new(),
        ending: false,
    };
    stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok(to_sse(event)), cursor));
            }
            let batch = match events::list(
                &cursor.state.pool,
                cursor.project_id,
                cursor.after,
                STREAM_BATCH,
            )
            .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "event stream read failed; closing it");
                    return None;
                }
            };
            if let Some(last) = batch.last() {
                cursor.after = last.id;
                cursor.pending.extend(batch);
                continue;
            }
            if cursor.ending {
                return None;
            }
            let mut activity = cursor.state.activity.clone();
            match projects::get(&cursor.state.pool, cursor.project_id).await {
                Ok(Some(project)) if project.status.is_finished() => cursor.ending = true,
                Ok(Some(_)) => {
                    tokio::select! {
                        // The server is shutting down: end the stream.
                        changed = activity.changed() => if changed.is_err() { return None; },
                        () = tokio::time::sleep(STREAM_POLL) => {}
                    }
                }
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(%error, "event stream read failed; closing it");
                    return None;
                }
            }
        }
    })
}
