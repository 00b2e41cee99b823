//! What checking a JWT costs a resource server inside `tessera-resource`: the `Bearer`
//! extractor and `Verifier::verify`, cold (the signature verified every time: the
//! verifier's JWT cache off) and cached (the same token presented again).
//!
//! `cargo bench -p tessera-resource --bench extractor`. A benchmark, not a test: it
//! prints figures and asserts nothing about time. It starts a minimal issuer
//! (metadata and JWKS) on 127.0.0.1 and signs an ES256 access token for it.

use std::hint::black_box;
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::Request;
use tessera_resource::{Bearer, Verifier};

#[path = "support/issuer.rs"]
mod issuer;

const AUD: &str = "https://bank.example";

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
    let key = issuer::new_key();
    let issuer = issuer::spawn_issuer(&key).await;
    let token = issuer::token(&key, &issuer, "4f1c0de5a1b2c3d4e5f60718293a4b5c", AUD);
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
