//! `/events`: Server-Sent Events of instance state changes, scale-set changes and activity.
//! `?scale_set=NAME` narrows the stream to one set; a caller sees the events of the scale
//! sets it may read. A subscriber that falls behind gets a
//! `lagged` event (with how many it missed) and should re-read state. Streams end when the
//! server shuts down.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::ApiState;
use super::error::ApiError;
use super::query::Params;
use axum::Extension;
use axum::http::StatusCode;
use flotilla_control::Caller;
use flotilla_domain::access::{Access, Role};

#[utoipa::path(get, path = "/events", tag = "events",
    params(("scale_set" = Option<String>, Query, description = "only events of this scale set")),
    responses((status = 503, description = "too many event streams are open", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "an unknown query parameter", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 200, content_type = "text/event-stream",
        description = "events `scale_set_changed`, `scale_set_removed`, `instance_changed`, `instance_removed`, `activity`, `rollout_changed`, `lifecycle` (data: the JSON of flotilla_domain::Event) and `lagged`")))]
pub async fn stream(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let p = Params::new(&query, &["scale_set"]);
    let only = p.text("scale_set");
    p.finish()?;
    if let Some(set) = &only {
        crate::auth::check(&caller, Access::Set(Role::Reader), Some(set))?;
    }
    let Ok(permit) = s.event_streams.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams are open (--max-event-streams); retry later",
        ));
    };
    let events = BroadcastStream::new(s.fleet.subscribe()).filter_map(move |item| match item {
        Ok(event) => {
            let set = event.scale_set();
            if only.as_deref().is_some_and(|name| set != Some(name)) || !super::sees(&caller, set) {
                return None;
            }
            let data = serde_json::to_string(&event).ok()?;
            Some(Ok(SseEvent::default().event(event.kind()).data(data)))
        }
        Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Ok(SseEvent::default()
            .event("lagged")
            .data(format!("{{\"missed\":{missed}}}")))),
    });
    let hello = tokio_stream::once(Ok(SseEvent::default().event("ready").data("{}")));
    let shutdown = s.shutdown.clone();
    // The permit goes with the stream: dropped when the client leaves.
    let stream =
        futures::StreamExt::take_until(
            hello.chain(events),
            async move { shutdown.cancelled().await },
        )
        .map(move |event| {
            let _open = &permit;
            event
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
