//! What signing a JWT access token costs on one core, with nothing else: the work
//! [`Keys::sign_jwt`] does for a client_credentials token (the claims to JSON,
//! BASE64URL, the signature), and the signature alone, for ES256 and EdDSA, timed
//! back to back on the calling thread.
//!
//! `cargo bench -p tessera-server --bench signing [-- COUNT]` (medians of 5
//! alternating rounds of COUNT calls, 5,000 by default). A benchmark, not a test: it prints figures and asserts
//! nothing about time. `bench/run.sh` runs it pinned to the server's core after the
//! JWT client_credentials scenarios, so that a JWT token's request time can be set
//! against its signature's in the same run.

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use tessera_server::config::SigningAlg;
use tessera_server::tokens::keys::{generate, KeyEntry, Keys};
use tessera_server::tokens::AccessClaims;

/// Microseconds per call of `f`, over `count` calls.
fn per_call(count: u32, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(count)
}

/// Medians of `ROUNDS` alternating timings of `a` and `b` (`count` calls each), so
/// that a slow moment of the machine weighs on both alike.
fn medians(count: u32, a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> (f64, f64) {
    const ROUNDS: usize = 5;
    per_call(count / 10 + 1, a);
    per_call(count / 10 + 1, b);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        xs.push(per_call(count, a));
        ys.push(per_call(count, b));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[ROUNDS / 2]
    };
    (median(&mut xs), median(&mut ys))
}

fn main() {
    // cargo bench passes `--bench`; a number among the arguments is the count.
    let count: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000)
        .clamp(1, 10_000_000);
    // The claims of a client_credentials token as the bench clients get them.
    let claims = AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: "3f0b6c1d2e4a5b6c7d8e9f00".into(),
        aud: "http://127.0.0.1:8080".into(),
        client_id: "3f0b6c1d2e4a5b6c7d8e9f00".into(),
        scope: "read".into(),
        jti: "AZN7fQ2kRkq1b3c4d5e6f7".into(),
        exp: 1_790_000_600,
        iat: 1_790_000_000,
        grant_id: None,
        auth_time: None,
    };
    let rng = SystemRandom::new();
    for alg in [SigningAlg::ES256, SigningAlg::EdDSA] {
        let key = generate(alg).expect("generating a key");
        let keys = Keys::new(
            alg,
            vec![KeyEntry {
                alg,
                jwk: key.jwk,
                pkcs8: Some(key.pkcs8.clone()),
                activates_at: 0,
            }],
        )
        .expect("loading the key");
        let token = keys.sign_jwt(1_790_000_000, &claims).expect("signing");
        assert!(keys.verify_jwt(&token).is_some(), "the token must verify");
        let signed_part = token.rsplit_once('.').map(|(m, _)| m.len()).unwrap_or(0);
        let msg = &token.as_bytes()[..signed_part];
        let mut whole = || {
            black_box(keys.sign_jwt(1_790_000_000, black_box(&claims)).unwrap());
        };
        let (whole, alone) = match alg {
            SigningAlg::ES256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.pkcs8)
                    .expect("ES256 key");
                medians(count, &mut whole, &mut || {
                    black_box(kp.sign(&rng, black_box(msg)).unwrap());
                })
            }
            _ => {
                let kp = Ed25519KeyPair::from_pkcs8(&key.pkcs8).expect("Ed25519 key");
                medians(count, &mut whole, &mut || {
                    black_box(kp.sign(black_box(msg)));
                })
            }
        };
        println!(
            "{} sign_jwt: {whole:.2} us per token ({:.0} per second); the signature alone: {alone:.2} us ({} bytes signed; medians of 5 rounds of {count} calls)",
            alg.as_str(),
            1e6 / whole,
            msg.len()
        );
    }
}
