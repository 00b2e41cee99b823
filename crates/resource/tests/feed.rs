//! The revocation feed against a stand-in issuer on port 0 that serves metadata, a
//! JWKS, introspection and a Server-Sent Events feed whose events the tests push.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Value};
use tessera_resource::{BearerError, Claims, FeedFallback, FeedStatus, RevocationCheck, Verifier};
use tokio::sync::broadcast;

const NOW: i64 = 1_790_000_000;
const AUD: &str = "https://bank.example";
/// The guarantee: a revoked JWT is refused by a connected verifier within this.
const GUARANTEE: Duration = Duration::from_secs(1);

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 signing key, kid `k1`.
struct Signer(EcdsaKeyPair);

impl Signer {
    fn new() -> Self {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
        Self(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref()).unwrap())
    }

    fn jwk(&self) -> Value {
        let p = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
               "x": b64(&p[1..33]), "y": b64(&p[33..65])})
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "at+jwt", "alg": "ES256", "kid": "k1"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

/// What the stand-in feed sends to its open streams.
#[derive(Clone)]
enum Frame {
    Event(u64, String),
    Ping,
    /// End every open stream.
    Close,
}

/// One request to the feed, as the stand-in saw it.
struct Connection {
    last_event_id: Option<String>,
    status: StatusCode,
    /// The seq of every `revoked` event sent on it, backlog and live.
    sent: Arc<Mutex<Vec<u64>>>,
}

#[derive(Default)]
struct FeedState {
    /// The `revoked` frames pushed so far; seq = index + 1.
    history: Mutex<Vec<String>>,
    live: Option<broadcast::Sender<Frame>>,
    down: AtomicBool,
    /// How long the backlog takes to follow the response head.
    backlog_delay: Mutex<Duration>,
    connections: Mutex<Vec<Connection>>,
    open: Arc<AtomicUsize>,
}

/// The stand-in issuer.
#[derive(Clone)]
struct Issuer {
    url: String,
    feed_endpoint: Arc<Mutex<String>>,
    jwk: Arc<Mutex<Value>>,
    requests: Arc<AtomicUsize>,
    introspections: Arc<AtomicUsize>,
    introspection_down: Arc<AtomicBool>,
    active: Arc<Mutex<HashMap<String, Value>>>,
    feed: Arc<FeedState>,
}

impl Issuer {
    /// Push a `revoked` event; returns its seq.
    fn revoke(&self, grant_id: Option<&str>, jti: Option<&str>, exp: Option<i64>) -> u64 {
        let mut history = self.feed.history.lock().unwrap();
        let seq = history.len() as u64 + 1;
        let data = json!({"seq": seq, "grant_id": grant_id, "jti": jti, "exp": exp, "at": NOW});
        let frame = format!("event: revoked\r\nid: {seq}\r\ndata: {data}\r\n\r\n");
        history.push(frame.clone());
        self.send(Frame::Event(seq, frame));
        seq
    }

    fn send(&self, frame: Frame) {
        let _ = self.feed.live.as_ref().unwrap().send(frame);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn introspections(&self) -> usize {
        self.introspections.load(Ordering::SeqCst)
    }

    fn open_streams(&self) -> usize {
        self.feed.open.load(Ordering::SeqCst)
    }
}

/// Decrements the count of open streams when the stream is dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn feed(
    State(i): State<Issuer>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    i.requests.fetch_add(1, Ordering::SeqCst);
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let after: u64 = last_event_id
        .as_ref()
        .or(query.get("cursor"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let expected = format!("Basic {}", STANDARD.encode("bank:bank-secret"));
    let status = if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected) {
        StatusCode::UNAUTHORIZED
    } else if i.feed.down.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    i.feed.connections.lock().unwrap().push(Connection {
        last_event_id,
        status,
        sent: sent.clone(),
    });
    if status != StatusCode::OK {
        return status.into_response();
    }
    // Subscribe before reading the history, so that no event falls in between.
    let live = i.feed.live.as_ref().unwrap().subscribe();
    let (backlog, head) = {
        let history = i.feed.history.lock().unwrap();
        let head = history.len() as u64;
        let backlog: String = history[after.min(head) as usize..].concat();
        sent.lock().unwrap().extend(after + 1..=head);
        (backlog, head)
    };
    i.feed.open.fetch_add(1, Ordering::SeqCst);
    let open = Open(i.feed.open.clone());
    let first = format!(
        "{backlog}: the backlog is complete\nevent: synced\ndata: {{\"cursor\":{head}}}\n\n"
    );
    let later = futures::stream::unfold(
        (live, open, sent),
        move |(mut live, open, sent)| async move {
            loop {
                let text = match live.recv().await {
                    Ok(Frame::Event(seq, text)) if seq > head => {
                        sent.lock().unwrap().push(seq);
                        text
                    }
                    Ok(Frame::Event(..)) => continue,
                    Ok(Frame::Ping) => ": ping\n\n".to_owned(),
                    Ok(Frame::Close) | Err(_) => return None,
                };
                return Some((Ok::<_, Infallible>(text), (live, open, sent)));
            }
        },
    );
    let delay = *i.feed.backlog_delay.lock().unwrap();
    let backlog = async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(first)
    };
    let stream = futures::stream::once(backlog).chain(later);
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn spawn_issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = Issuer {
        feed_endpoint: Arc::new(Mutex::new(format!("{url}/revocations"))),
        url,
        jwk: Arc::default(),
        requests: Arc::default(),
        introspections: Arc::default(),
        introspection_down: Arc::default(),
        active: Arc::default(),
        feed: Arc::new(FeedState {
            live: Some(broadcast::channel(1024).0),
            ..FeedState::default()
        }),
    };
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(|State(i): State<Issuer>| async move {
                i.requests.fetch_add(1, Ordering::SeqCst);
                Json(
                    json!({"issuer": i.url, "jwks_uri": format!("{}/jwks.json", i.url),
                            "introspection_endpoint": format!("{}/introspect", i.url),
                            "tessera_revocation_feed_endpoint": *i.feed_endpoint.lock().unwrap()}),
                )
            }),
        )
        .route(
            "/jwks.json",
            get(|State(i): State<Issuer>| async move {
                i.requests.fetch_add(1, Ordering::SeqCst);
                Json(json!({ "keys": [*i.jwk.lock().unwrap()] }))
            }),
        )
        .route(
            "/introspect",
            post(|State(i): State<Issuer>, body: String| async move {
                i.requests.fetch_add(1, Ordering::SeqCst);
                i.introspections.fetch_add(1, Ordering::SeqCst);
                if i.introspection_down.load(Ordering::SeqCst) {
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
                // JWTs hold no character that form encoding escapes.
                let token = body
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("token="))
                    .unwrap_or_default();
                let answer = i.active.lock().unwrap().get(token).cloned();
                Json(answer.unwrap_or(json!({"active": false}))).into_response()
            }),
        )
        .route("/revocations", get(feed))
        .with_state(issuer.clone());
    // Without TCP_NODELAY, as axum's default: a small live event written after the
    // head and backlog waits for the client's delayed ACK (~40 ms on Linux), the worst
    // case a Tessera server may show (with `tap_io(|s| s.set_nodelay(true))`: ~2 ms).
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

struct Setup {
    issuer: Issuer,
    signer: Signer,
}

impl Setup {
    async fn new() -> Self {
        let issuer = spawn_issuer().await;
        let signer = Signer::new();
        *issuer.jwk.lock().unwrap() = signer.jwk();
        Self { issuer, signer }
    }

    /// A JWT of grant `grant_id` with the token id `jti`, valid for ten minutes.
    fn token(&self, grant_id: &str, jti: &str) -> String {
        self.signer.sign(&json!({
            "iss": self.issuer.url, "sub": "alice-id", "aud": AUD, "client_id": "reports",
            "scope": "transactions:read", "grant_id": grant_id, "jti": jti,
            "iat": NOW, "exp": NOW + 600,
        }))
    }

    fn verifier(&self, fallback: FeedFallback) -> Verifier {
        self.verifier_at(fallback, Arc::new(AtomicI64::new(NOW)))
    }

    /// A verifier whose clock reads `clock`.
    fn verifier_at(&self, fallback: FeedFallback, clock: Arc<AtomicI64>) -> Verifier {
        Verifier::builder(&self.issuer.url)
            .audience(AUD)
            .realm("bank")
            .clock(move || clock.load(Ordering::SeqCst))
            .introspection("bank", "bank-secret")
            .revocation_check(RevocationCheck::Feed { fallback })
            .build()
    }

    fn activate(&self, token: &str) {
        self.issuer.active.lock().unwrap().insert(
            token.to_owned(),
            json!({"active": true, "sub": "alice-id", "aud": AUD, "exp": NOW + 600}),
        );
    }
}

fn assert_invalid(result: Result<Claims, BearerError>, description: &str) {
    match result {
        Err(e @ BearerError::InvalidToken { .. }) => {
            assert_eq!(e.status(), 401);
            assert_eq!(e.code(), Some("invalid_token"));
            let BearerError::InvalidToken { description: d, .. } = e else {
                unreachable!()
            };
            assert_eq!(d, description);
        }
        other => panic!("expected invalid_token ({description}), got {other:?}"),
    }
}

fn assert_revoked(result: Result<Claims, BearerError>) {
    assert_invalid(result, "the token has been revoked");
}

/// Wait, at most 5 seconds, until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Run `push`, then verify `token` every millisecond until it is refused as revoked;
/// returns how long that took. Fails past the guarantee.
async fn time_to_refusal(v: &Verifier, token: &str, push: impl FnOnce()) -> Duration {
    let start = Instant::now();
    push();
    loop {
        match v.verify(token).await {
            Ok(_) => {
                let elapsed = start.elapsed();
                assert!(elapsed < GUARANTEE, "still accepted after {elapsed:?}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            refused => {
                assert_revoked(refused);
                return start.elapsed();
            }
        }
    }
}

#[tokio::test]
async fn a_synced_verifier_makes_no_network_call_per_request() {
    let s = Setup::new().await;
    let v = s.verifier(FeedFallback::Introspect);
    assert_eq!(v.feed_status(), FeedStatus::Off, "nothing started yet");
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    assert_eq!(v.feed_status(), FeedStatus::Synced);
    let token = s.token("g1", "j1");
    let claims = v.verify(&token).await.unwrap();
    assert_eq!(claims.grant_id.as_deref(), Some("g1"));
    // Metadata, the feed and the JWKS: fetched once each.
    let requests = s.issuer.requests();
    assert_eq!(requests, 3);
    for _ in 0..200 {
        v.verify(&token).await.unwrap();
    }
    assert_eq!(s.issuer.requests(), requests, "no request per verify");
    assert_eq!(s.issuer.introspections(), 0);
    assert_eq!(s.issuer.feed.connections.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_first_verify_starts_the_subscriber() {
    let s = Setup::new().await;
    let v = s.verifier(FeedFallback::AcceptUntilExpiry);
    let token = s.token("g1", "j1");
    v.verify(&token).await.unwrap();
    assert_ne!(v.feed_status(), FeedStatus::Off);
    until("the feed to sync", || v.feed_status() == FeedStatus::Synced).await;
    let took = time_to_refusal(&v, &token, || {
        s.issuer.revoke(Some("g1"), None, None);
    })
    .await;
    println!("push-to-refusal after a lazy start: {took:?}");
}

#[tokio::test]
async fn a_revoked_grant_is_refused_within_a_second() {
    let s = Setup::new().await;
    let v = s.verifier(FeedFallback::Introspect);
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    let (token, other) = (s.token("g1", "j1"), s.token("g2", "j2"));
    v.verify(&token).await.unwrap();
    let took = time_to_refusal(&v, &token, || {
        s.issuer.revoke(Some("g1"), None, Some(NOW + 600));
    })
    .await;
    println!("push-to-refusal (grant_id): {took:?}");
    // Another token of the same grant is refused too; another grant is not.
    assert_revoked(v.verify(&s.token("g1", "j9")).await);
    v.verify(&other).await.unwrap();
    assert_eq!(s.issuer.introspections(), 0);
}

#[tokio::test]
async fn a_revoked_jti_is_refused_within_a_second() {
    let s = Setup::new().await;
    let v = s.verifier(FeedFallback::Introspect);
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    let token = s.token("g1", "j1");
    v.verify(&token).await.unwrap();
    let took = time_to_refusal(&v, &token, || {
        s.issuer.revoke(None, Some("j1"), Some(NOW + 600));
    })
    .await;
    println!("push-to-refusal (jti): {took:?}");
    // Only that token: another of the same grant is still accepted.
    v.verify(&s.token("g1", "j2")).await.unwrap();
    assert_eq!(s.issuer.introspections(), 0);
}

#[tokio::test]
async fn the_backlog_is_applied_before_synced() {
    let s = Setup::new().await;
    s.issuer.revoke(Some("g1"), None, None);
    s.issuer.revoke(None, Some("j9"), Some(NOW + 600));
    // A slow backlog: the response head comes first.
    *s.issuer.feed.backlog_delay.lock().unwrap() = Duration::from_millis(100);
    let v = s.verifier(FeedFallback::AcceptUntilExpiry);
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    // No polling: synced means the backlog is in.
    assert_revoked(v.verify(&s.token("g1", "j1")).await);
    assert_revoked(v.verify(&s.token("g2", "j9")).await);
    v.verify(&s.token("g2", "j2")).await.unwrap();
    let connections = s.issuer.feed.connections.lock().unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].last_event_id, None, "the whole history");
    assert_eq!(*connections[0].sent.lock().unwrap(), [1, 2]);
}

#[tokio::test]
async fn a_dropped_feed_resumes_after_the_last_event() {
    let s = Setup::new().await;
    let v = s.verifier(FeedFallback::Introspect);
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    let (g1, g2, g3) = (
        s.token("g1", "j1"),
        s.token("g2", "j2"),
        s.token("g3", "j3"),
    );
    time_to_refusal(&v, &g1, || {
        s.issuer.revoke(Some("g1"), None, None);
    })
    .await;
    // The feed drops the connection and refuses new ones for a while.
    s.issuer.feed.down.store(true, Ordering::SeqCst);
    s.issuer.send(Frame::Close);
    until("the feed to be down", || {
        v.feed_status() == FeedStatus::Down
    })
    .await;
    // Meanwhile the fallback introspects, and what was revoked stays revoked.
    assert_invalid(v.verify(&g3).await, "the token is not active");
    assert_eq!(s.issuer.introspections(), 1);
    assert_revoked(v.verify(&g1).await);
    s.issuer.revoke(Some("g2"), None, None);
    until("a reconnection attempt", || {
        s.issuer.feed.connections.lock().unwrap().len() >= 2
    })
    .await;
    s.issuer.feed.down.store(false, Ordering::SeqCst);
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    assert_revoked(v.verify(&g2).await);
    s.activate(&g3);
    v.verify(&g3).await.unwrap();
    assert_eq!(
        s.issuer.introspections(),
        1,
        "synced again: no introspection"
    );

    let connections = s.issuer.feed.connections.lock().unwrap();
    assert_eq!(connections[0].last_event_id, None);
    assert_eq!(*connections[0].sent.lock().unwrap(), [1]);
    for c in &connections[1..] {
        assert_eq!(c.last_event_id.as_deref(), Some("1"), "resumes after seq 1");
    }
    let resumed = connections.last().unwrap();
    assert_eq!(resumed.status, StatusCode::OK);
    assert_eq!(*resumed.sent.lock().unwrap(), [2], "only the later event");
}

#[tokio::test]
async fn a_down_feed_falls_back_to_introspection() {
    let s = Setup::new().await;
    s.issuer.feed.down.store(true, Ordering::SeqCst);
    let v = s.verifier(FeedFallback::Introspect);
    let token = s.token("g1", "j1");
    assert_invalid(v.verify(&token).await, "the token is not active");
    assert_eq!(s.issuer.introspections(), 1);
    s.activate(&token);
    v.verify(&token).await.unwrap();
    assert_eq!(s.issuer.introspections(), 2);
    assert!(!v.wait_for_feed(Duration::from_millis(200)).await);
    assert_eq!(v.feed_status(), FeedStatus::Down);
    // Fail closed: introspection failing too is a 503, not an acceptance.
    s.issuer.introspection_down.store(true, Ordering::SeqCst);
    let refused = v.verify(&token).await.unwrap_err();
    assert!(
        matches!(refused, BearerError::Unavailable { .. }),
        "{refused:?}"
    );
    assert_eq!(refused.status(), 503);
    // The feed comes back: no more introspection.
    s.issuer.feed.down.store(false, Ordering::SeqCst);
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    let introspections = s.issuer.introspections();
    v.verify(&token).await.unwrap();
    assert_eq!(s.issuer.introspections(), introspections);
    let connections = s.issuer.feed.connections.lock().unwrap();
    assert!(connections.iter().any(|c| c.status == 503));
}

#[tokio::test]
async fn a_gone_feed_accepts_until_expiry() {
    let s = Setup::new().await;
    // The metadata names a listener that is gone.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    *s.issuer.feed_endpoint.lock().unwrap() =
        format!("http://{}/revocations", gone.local_addr().unwrap());
    drop(gone);
    let v = s.verifier(FeedFallback::AcceptUntilExpiry);
    let token = s.token("g1", "j1");
    v.verify(&token).await.unwrap();
    until("the feed to be down", || {
        v.feed_status() == FeedStatus::Down
    })
    .await;
    for _ in 0..10 {
        v.verify(&token).await.unwrap();
    }
    assert!(!v.wait_for_feed(Duration::from_millis(100)).await);
    assert_eq!(s.issuer.introspections(), 0);
}

#[tokio::test]
async fn bad_credentials_leave_the_feed_down() {
    let s = Setup::new().await;
    let v = Verifier::builder(&s.issuer.url)
        .audience(AUD)
        .realm("bank")
        .clock(|| NOW)
        .introspection("bank", "wrong")
        .revocation_check(RevocationCheck::Feed {
            fallback: FeedFallback::AcceptUntilExpiry,
        })
        .build();
    assert!(!v.wait_for_feed(Duration::from_millis(300)).await);
    assert_eq!(v.feed_status(), FeedStatus::Down);
    let connections = s.issuer.feed.connections.lock().unwrap();
    assert!(connections.iter().all(|c| c.status == 401));
}

#[tokio::test]
async fn expired_revocations_are_forgotten() {
    let s = Setup::new().await;
    // In the backlog, an entry already past its exp (and the leeway): never kept.
    s.issuer.revoke(Some("g0"), None, Some(NOW - 31));
    let clock = Arc::new(AtomicI64::new(NOW));
    let v = s.verifier_at(FeedFallback::AcceptUntilExpiry, clock.clone());
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    v.verify(&s.token("g0", "j0")).await.unwrap();

    // Tokens outliving their revocation's exp, so that forgetting shows.
    let g1 = s.token("g1", "j1");
    time_to_refusal(&v, &g1, || {
        s.issuer.revoke(Some("g1"), None, Some(NOW + 60));
    })
    .await;
    // Kept while a token of it could be accepted within the 30 s leeway...
    clock.store(NOW + 89, Ordering::SeqCst);
    time_to_refusal(&v, &s.token("g2", "j2"), || {
        s.issuer.revoke(Some("g2"), None, None);
    })
    .await;
    assert_revoked(v.verify(&g1).await);
    // ...and forgotten from then on, as the next chunk from the feed (a ping) shows.
    clock.store(NOW + 90, Ordering::SeqCst);
    s.issuer.send(Frame::Ping);
    let deadline = Instant::now() + GUARANTEE;
    while v.verify(&g1).await.is_err() {
        assert!(Instant::now() < deadline, "g1 was not forgotten");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_revoked(v.verify(&s.token("g2", "j2")).await);
}

#[tokio::test]
async fn the_subscriber_stops_with_the_last_verifier() {
    let s = Setup::new().await;
    let v = s.verifier(FeedFallback::AcceptUntilExpiry);
    assert!(v.wait_for_feed(Duration::from_secs(5)).await);
    assert_eq!(s.issuer.open_streams(), 1);
    let clone = v.clone();
    drop(v);
    s.issuer.send(Frame::Ping);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.issuer.open_streams(), 1, "a clone still holds it");
    assert_eq!(clone.feed_status(), FeedStatus::Synced);
    drop(clone);
    // The server notices a closed stream when it writes to it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.issuer.open_streams() > 0 {
        assert!(Instant::now() < deadline, "the stream is still open");
        s.issuer.send(Frame::Ping);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.issuer.feed.connections.lock().unwrap().len(), 1);
}
