//! What the token check costs the demo bank (issue 7: its authenticated GET at ≥ 80%
//! of the same route without auth): the bank's `GET /accounts` through its router,
//! with an ES256 access token checked by `tessera-resource`'s `Bearer` extractor,
//! against the same handler and layers answering for the same person without a token
//! (`Bank::router_without_auth`, built only with the `bench` feature).
//!
//! `cargo bench -p tessera-demo --bench bank --features bench`. A benchmark, not a
//! test: it prints figures and asserts nothing about time. It starts a minimal issuer
//! (metadata and JWKS) on 127.0.0.1, signs one access token for it, opens a bank on a
//! temporary SQLite file with the demo's accounts for one person, checks that both
//! routes give the same answer, then times batches of each, alternating. In process
//! (`tower::ServiceExt::oneshot`, no HTTP), so the ratio is a lower bound of the one
//! over HTTP, where both routes also pay for the exchange.

use std::hint::black_box;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use tessera_demo::bank::{Bank, BankConfig};
use tower::ServiceExt;

#[path = "../../resource/benches/support/issuer.rs"]
mod issuer;

const AUD: &str = "http://bank.bench";
const SUB: &str = "4f1c0de5a1b2c3d4e5f60718293a4b5c";
/// Requests per batch, and batches per route.
const BATCH: u32 = 250;
const ROUNDS: usize = 41;

/// `GET /accounts` on `router`, with `token` as a bearer token if given: the status
/// and the body.
async fn get_accounts(router: &Router, token: Option<&str>) -> (StatusCode, axum::body::Bytes) {
    let mut request = Request::builder().uri("/accounts");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
}

/// Nanoseconds per request over one batch.
async fn batch(router: &Router, token: Option<&str>, expect: StatusCode) -> f64 {
    let started = Instant::now();
    for _ in 0..BATCH {
        let (status, body) = get_accounts(router, token).await;
        assert_eq!(status, expect);
        black_box(body);
    }
    started.elapsed().as_nanos() as f64 / f64::from(BATCH)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let key = issuer::new_key();
    let issuer = issuer::spawn_issuer(&key).await;
    let token = issuer::token(&key, &issuer, SUB, AUD);

    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::open(BankConfig {
        issuer,
        audience: AUD.into(),
        database: dir.path().join("bank.db"),
        introspection: None,
    })
    .await
    .unwrap();
    bank.seed_demo_accounts(SUB, "alice").await.unwrap();
    let with_auth = bank.router();
    let without_auth = bank.router_without_auth(SUB.into());

    // The same answer from both (the JWKS fetched, the token verified once).
    let (status, authed) = get_accounts(&with_auth, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{authed:?}");
    let (status, open) = get_accounts(&without_auth, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(authed, open, "both routes answer the same");
    let (status, _) = get_accounts(&with_auth, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (mut a, mut o, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        a.push(batch(&with_auth, Some(&token), StatusCode::OK).await);
        o.push(batch(&without_auth, None, StatusCode::OK).await);
        r.push(batch(&with_auth, None, StatusCode::UNAUTHORIZED).await);
    }
    let (a, o, r) = (median(a), median(o), median(r));
    println!(
        "demo bank GET /accounts in process, {} bytes of JSON; ES256 token of {} bytes; \
         medians of {ROUNDS} alternating batches of {BATCH}",
        authed.len(),
        token.len()
    );
    println!(
        "{:<52} {:>8.1} µs/request",
        "with a bearer token (Bearer extractor)",
        a / 1e3
    );
    println!(
        "{:<52} {:>8.1} µs/request",
        "the same route without auth",
        o / 1e3
    );
    println!(
        "{:<52} {:>8.1} µs/request",
        "no token: 401 invalid_token",
        r / 1e3
    );
    println!(
        "{:<52} {:>8.1} µs/request",
        "the token check's cost (with - without)",
        (a - o) / 1e3
    );
    println!(
        "authenticated at {:.1}% of the route without auth (target ≥ 80%)",
        100.0 * o / a
    );
}
