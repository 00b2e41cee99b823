//! What checking a JWT costs a resource server inside `tessera-resource`: the `Bearer`
//! extractor and `Verifier::verify`, cold (the signature verified every time: the
//! verifier's JWT cache off) and cached (the same token presented again).
//!
//! `cargo bench -p tessera-resource --bench extractor`. A benchmark, not a test: it
//! prints figures and asserts nothing about time. It starts a minimal issuer
//! (metadata and JWKS) on 127.0.0.1 and signs an ES256 access token for it.

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::extract::FromRequestParts;
use axum::http::Request;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use tessera_resource::{Bearer, Verifier};

const AUD: &str = "https://bank.example";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An issuer at `url` publishing the public half of `key` as `k1`.
async fn spawn_issuer(key: &EcdsaKeyPair) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let p = key.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
        "use": "sig", "x": b64(&p[1..33]), "y": b64(&p[33..65])}]});
    let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json")});
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { Json(metadata) }),
        )
        .route("/jwks.json", get(move || async move { Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn token(key: &EcdsaKeyPair, issuer: &str) -> String {
    let header = b64(br#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": issuer, "sub": "4f1c0de5a1b2c3d4e5f60718293a4b5c", "aud": AUD,
        "client_id": "reports", "scope": "accounts:read transactions:read",
        "jti": "Zx9y8W7v6U5t4S3r", "iat": now, "exp": now + 3600,
        "grant_id": "9a8b7c6d5e4f30211f2e3d4c5b6a7988"});
    let signed = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let signature = key.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(signature.as_ref()))
}

/// Nanoseconds per evaluation of `$body`: the median of 5 batches of `$n`.
macro_rules! per_call {
    ($n:expr, $body:expr) => {{
        let mut batches = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            for _ in 0..$n {
                black_box($body);
            }
            batches.push(started.elapsed().as_nanos() as f64 / f64::from($n as u32));
        }
        batches.sort_by(f64::total_cmp);
        batches[2]
    }};
}

fn show(what: &str, ns: f64) {
    if ns >= 10_000.0 {
        println!("{what:<48} {:>9.1} µs/op", ns / 1000.0);
    } else {
        println!("{what:<48} {:>9.0} ns/op", ns);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let issuer = spawn_issuer(&key).await;
    let token = token(&key, &issuer);
    let build = |cache: usize| {
        Verifier::builder(&issuer)
            .audience(AUD)
            .jwt_cache(cache)
            .build()
    };
    let cold = build(0);
    let cached = build(tessera_resource::DEFAULT_JWT_CACHE);
    // Metadata and JWKS fetched, the token verified once.
    for v in [&cold, &cached] {
        v.verify(&token).await.expect("the token verifies");
    }
    let request = || {
        Request::builder()
            .uri("/accounts")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    println!(
        "tessera-resource, ES256 access token of {} bytes; medians of 5 batches",
        token.len()
    );
    let ns = per_call!(2_000, cold.verify(black_box(&token)).await.unwrap());
    show("Verifier::verify, cold (signature each time)", ns);
    let ns = per_call!(200_000, cached.verify(black_box(&token)).await.unwrap());
    show("Verifier::verify, cached", ns);
    let mut parts = request();
    let ns = per_call!(
        2_000,
        Bearer::from_request_parts(&mut parts, &cold).await.unwrap()
    );
    show("Bearer extractor, cold", ns);
    let ns = per_call!(
        200_000,
        Bearer::from_request_parts(&mut parts, &cached)
            .await
            .unwrap()
    );
    show("Bearer extractor, cached", ns);
}
