//! The task that follows the issuer's revocation feed (Server-Sent Events): find it in
//! the metadata, apply the backlog and then live events, and reconnect with backoff,
//! resuming after the last event seen (`Last-Event-ID`).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use tokio::sync::watch;

use super::sse::{Event, Parser};
use super::{Shared, STALE_AFTER};
use crate::introspection::Credentials;
use crate::verifier::WeakVerifier;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long the feed may take to answer a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Overrides the HTTP client's total timeout, which would cut the endless stream;
/// silence is caught by [`STALE_AFTER`] instead.
const STREAM_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the subscriber needs of its verifier. It holds the verifier itself only while
/// looking up the metadata, so dropping the last clone stops it.
pub(crate) struct Source {
    pub verifier: WeakVerifier,
    pub http: reqwest::Client,
    pub credentials: Option<Credentials>,
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// An entry is kept until its `exp` plus this leeway, as long as a token is accepted.
    pub leeway: i64,
}

/// `event: revoked`: tokens of `grant_id`, or with this `jti`, are revoked.
#[derive(Deserialize)]
struct Revoked {
    seq: u64,
    grant_id: Option<String>,
    jti: Option<String>,
    exp: Option<i64>,
}

/// `event: synced`: the backlog is complete.
#[derive(Deserialize)]
struct Synced {
    cursor: u64,
}

/// Run the subscriber until `shutdown`'s sender is dropped.
pub(crate) fn spawn(shared: Arc<Shared>, source: Source, mut shutdown: watch::Receiver<()>) {
    tokio::spawn(async move {
        tokio::select! {
            _ = async { while shutdown.changed().await.is_ok() {} } => {}
            _ = run(&shared, &source) => {}
        }
        tracing::debug!("the revocation feed subscriber stopped");
    });
}

async fn run(shared: &Shared, source: &Source) {
    let Some(credentials) = &source.credentials else {
        shared
            .down("the revocation feed needs client credentials (VerifierBuilder::introspection)");
        return;
    };
    let mut backoff = MIN_BACKOFF;
    let endpoint = loop {
        let Some(verifier) = source.verifier.upgrade() else {
            return;
        };
        let found = verifier.feed_endpoint().await;
        drop(verifier);
        match found {
            Ok(Some(endpoint)) => break endpoint,
            Ok(None) => {
                shared.down("the issuer's metadata names no tessera_revocation_feed_endpoint");
                return;
            }
            Err(e) => shared.down(&e.to_string()),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    };
    let mut cursor = None;
    loop {
        let mut synced = false;
        let reason = follow(
            shared,
            source,
            credentials,
            &endpoint,
            &mut cursor,
            &mut synced,
        )
        .await;
        shared.down(&reason);
        if synced {
            backoff = MIN_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Follow one connection until it fails; returns why. `cursor` is the last event seen.
async fn follow(
    shared: &Shared,
    source: &Source,
    credentials: &Credentials,
    endpoint: &str,
    cursor: &mut Option<u64>,
    synced: &mut bool,
) -> String {
    let mut request = source
        .http
        .get(endpoint)
        .basic_auth(&credentials.client_id, Some(&credentials.client_secret))
        .header(ACCEPT, "text/event-stream")
        .timeout(STREAM_DEADLINE);
    if let Some(cursor) = cursor {
        request = request.header("last-event-id", cursor.to_string());
    }
    let mut response = match tokio::time::timeout(CONNECT_TIMEOUT, request.send()).await {
        Err(_) => return "the feed did not answer in time".into(),
        Ok(Err(e)) => return format!("cannot reach the feed: {e}"),
        Ok(Ok(response)) => response,
    };
    if !response.status().is_success() {
        return format!("the feed answered {}", response.status());
    }
    let content_type = response.headers().get(CONTENT_TYPE);
    if !content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
    {
        return "the feed is not an event stream".into();
    }
    shared.heard();
    let mut parser = Parser::default();
    let mut events = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(STALE_AFTER, response.chunk()).await {
            Err(_) => return "no event or ping for 30 seconds".into(),
            Ok(Err(e)) => return format!("the feed broke off: {e}"),
            Ok(Ok(None)) => return "the feed closed the stream".into(),
            Ok(Ok(Some(chunk))) => chunk,
        };
        shared.heard();
        if let Err(e) = parser.push(&chunk, &mut events) {
            return e;
        }
        if let Err(e) = apply(shared, source, &mut events, cursor, synced) {
            return e;
        }
    }
}

/// Apply the events of one chunk and prune, under one write lock, then mark the feed
/// synced if it said so: a request never sees `synced` before the backlog.
fn apply(
    shared: &Shared,
    source: &Source,
    events: &mut Vec<Event>,
    cursor: &mut Option<u64>,
    synced: &mut bool,
) -> Result<(), String> {
    let now = (source.clock)();
    let mut said_synced = false;
    let entries = {
        let mut set = shared.write();
        for event in events.drain(..) {
            match event.event.as_str() {
                "revoked" => {
                    let revoked: Revoked = serde_json::from_str(&event.data)
                        .map_err(|e| format!("a revoked event is malformed: {e}"))?;
                    let forget_at = revoked.exp.map(|exp| exp.saturating_add(source.leeway));
                    set.insert(revoked.grant_id, revoked.jti, forget_at);
                    *cursor = Some(revoked.seq);
                }
                "synced" => {
                    let synced: Synced = serde_json::from_str(&event.data)
                        .map_err(|e| format!("a synced event is malformed: {e}"))?;
                    *cursor = Some(synced.cursor);
                    said_synced = true;
                }
                _ => {} // unknown events are for newer verifiers
            }
        }
        set.prune(now);
        set.len()
    };
    if said_synced && !*synced {
        *synced = true;
        shared.synced(entries);
    }
    Ok(())
}
