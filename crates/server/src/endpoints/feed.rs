//! `GET /revocation-feed`: Tessera's revocation feed for resource servers, as
//! Server-Sent Events. Authenticated with client credentials (RFC 6749 §2.3).
//!
//! Each `revoked` event (`id: <seq>`) names a revoked `grant_id` (every token carrying
//! it is revoked) or `jti`, with `exp`, after which the entry may be forgotten. A
//! subscriber resumes after a disconnect with `Last-Event-ID` (or `?cursor=`); without
//! one it gets the whole retained history. After the backlog comes one `synced` event;
//! then entries arrive as they are appended: at once for revocations made by this
//! process, within half a second for those made by another (the table is polled).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use tessera_protocol::Form;
use tokio::sync::watch;

use crate::client_auth::{authenticate, Method};
use crate::error::OAuthError;
use crate::state::AppState;

/// How often the table is read when nothing woke the stream.
const POLL: Duration = Duration::from_millis(500);
const BATCH: u32 = 500;

pub async fn feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match start(state, &headers, query.as_deref().unwrap_or("")).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn start(state: AppState, headers: &HeaderMap, query: &str) -> Result<Response, OAuthError> {
    let caller = authenticate(&state, headers, &Form::default()).await?;
    if caller.method == Method::None {
        return Err(OAuthError::InvalidClient(
            "the revocation feed requires client authentication".into(),
        ));
    }
    let query = Form::parse(query.as_bytes())
        .map_err(|e| OAuthError::InvalidRequest(e.to_string().into()))?;
    let raw_cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.get("cursor"));
    let cursor = match raw_cursor {
        None => 0,
        Some(c) => c
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .ok_or_else(|| {
                OAuthError::InvalidRequest("the cursor must be a non-negative integer".into())
            })?,
    };
    tracing::info!(client_id = %caller.client.id, cursor, "revocation feed subscriber connected");
    let feed = Feed {
        rx: state.feed.subscribe(),
        stopping: state.stopping.subscribe(),
        state,
        cursor,
        synced: false,
        queue: VecDeque::new(),
    };
    let events = stream::unfold(feed, Feed::next);
    let sse = Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(10))
            .text("ping"),
    );
    let mut response = sse.into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

struct Feed {
    state: AppState,
    rx: watch::Receiver<()>,
    stopping: watch::Receiver<bool>,
    cursor: i64,
    synced: bool,
    queue: VecDeque<Event>,
}

impl Feed {
    /// The next event, or `None` when the server stops (or the store fails: the
    /// subscriber reconnects and resumes from its cursor).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if *self.stopping.borrow() {
                return None;
            }
            if let Some(event) = self.queue.pop_front() {
                return Some((Ok(event), self));
            }
            // Mark the wake-up seen before reading, so none is missed.
            self.rx.borrow_and_update();
            match self.state.store.revocations_after(self.cursor, BATCH).await {
                Ok(batch) if !batch.is_empty() => {
                    for entry in batch {
                        self.cursor = entry.seq;
                        let data = serde_json::to_string(&entry).unwrap_or_default();
                        self.queue.push_back(
                            Event::default()
                                .id(entry.seq.to_string())
                                .event("revoked")
                                .data(data),
                        );
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "reading the revocation feed failed"
                    );
                    return None;
                }
            }
            if !self.synced {
                self.synced = true;
                let data = serde_json::json!({ "cursor": self.cursor }).to_string();
                return Some((Ok(Event::default().event("synced").data(data)), self));
            }
            tokio::select! {
                _ = self.rx.changed() => {}
                _ = self.stopping.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}
