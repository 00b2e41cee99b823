//! Keys by reference: a client's `jwks_uri` served by a small axum server on port 0.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tessera_server::store::ClientMetadata;

use super::keys::Key;
use super::*;

/// A client's key server: serves `/jwks` from `keys`, counting fetches.
struct KeyServer {
    url: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn key_server() -> KeyServer {
    use axum::routing::get;
    let keys = Arc::new(Mutex::new(json!({"keys": []})));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f) = (keys.clone(), fetches.clone());
    let router = axum::Router::new()
        .route(
            "/jwks",
            get(move || {
                let (k, f) = (k.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    axum::Json(k.lock().unwrap().clone())
                }
            }),
        )
        .route(
            "/moved",
            get(|| async { axum::response::Redirect::temporary("/jwks") }),
        )
        .route("/huge", get(|| async { "x".repeat(70 * 1024) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    KeyServer { url, keys, fetches }
}

#[tokio::test]
async fn jwks_uri_is_fetched_cached_and_refetched_on_an_unknown_kid() {
    let app = setup().await;
    let server = key_server().await;
    let (k1, k2) = (Key::es256(), Key::eddsa());
    *server.keys.lock().unwrap() = json!({"keys": [k1.jwk("k1")]});
    let id = key_client(
        &app,
        ClientMetadata {
            jwks_uri: Some(format!("{}/jwks", server.url)),
            ..ClientMetadata::default()
        },
    )
    .await;
    let fetches = || server.fetches.load(Ordering::SeqCst);
    assert_token_ok(token_with(&app, &k1.assertion("k1", &claims(&app, &id))).await).await;
    assert_token_ok(token_with(&app, &k1.assertion("k1", &claims(&app, &id))).await).await;
    assert_eq!(fetches(), 1, "cached for 5 minutes");
    // The client publishes a new key. Within 30 s of the last fetch an unknown kid
    // does not cause another fetch.
    *server.keys.lock().unwrap() = json!({"keys": [k1.jwk("k1"), k2.jwk("k2")]});
    assert_invalid_client(
        token_with(&app, &k2.assertion("k2", &claims(&app, &id))).await,
        UNKNOWN_KEY,
    )
    .await;
    assert_eq!(fetches(), 1);
    // After 30 s it does, once (OpenID Connect Core §10.1.1).
    app.clock.advance(31);
    assert_token_ok(token_with(&app, &k2.assertion("k2", &claims(&app, &id))).await).await;
    assert_eq!(fetches(), 2);
    assert_invalid_client(
        token_with(&app, &k2.assertion("k3", &claims(&app, &id))).await,
        UNKNOWN_KEY,
    )
    .await;
    assert_eq!(fetches(), 2, "at most one forced fetch per 30 s");
    // After 5 minutes the cache expires.
    app.clock.advance(300);
    assert_token_ok(token_with(&app, &k1.assertion("k1", &claims(&app, &id))).await).await;
    assert_eq!(fetches(), 3);
}

#[tokio::test]
async fn jwks_uri_redirects_and_oversized_documents_are_refused() {
    let app = setup().await;
    let server = key_server().await;
    let key = Key::es256();
    *server.keys.lock().unwrap() = json!({"keys": [key.jwk("k1")]});
    for path in ["/moved", "/huge", "/missing"] {
        let id = key_client(
            &app,
            ClientMetadata {
                jwks_uri: Some(format!("{}{path}", server.url)),
                ..ClientMetadata::default()
            },
        )
        .await;
        assert_invalid_client(
            token_with(&app, &key.assertion("k1", &claims(&app, &id))).await,
            "the client's jwks_uri could not be fetched",
        )
        .await;
    }
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        0,
        "redirect not followed"
    );
}
