//! What Argon2id alone allows on one core: the verification a login runs (the
//! crate's defaults, m = 19 MiB, t = 2, p = 1, as `tessera_server::crypto` uses),
//! timed back to back on the calling thread.
//!
//! `cargo bench -p tessera-server --bench password [-- COUNT]` (COUNT verifications,
//! 64 by default). A benchmark, not a test: it prints figures and asserts nothing
//! about time. `bench/run.sh` runs it pinned to the server's core after the login
//! scenario, so that logins/s can be compared with Argon2id's rate in the same run.

use std::hint::black_box;
use std::time::Instant;

use tessera_server::crypto::{hash_password, verify_password};

fn main() {
    // cargo bench passes `--bench`; a number among the arguments is the count.
    let count: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(64)
        .clamp(1, 10_000);
    let password = "correct horse battery staple";
    let phc = hash_password(password).expect("hashing the benchmark's password");
    // One run first: the allocator's first 19 MiB, the code in the cache.
    assert!(verify_password(password, Some(&phc)));
    let start = Instant::now();
    for _ in 0..count {
        assert!(black_box(verify_password(
            black_box(password),
            Some(black_box(&phc))
        )));
    }
    let elapsed = start.elapsed();
    let per_call = elapsed.as_secs_f64() / f64::from(count);
    println!(
        "argon2id verify (m=19 MiB, t=2, p=1): {:.2} ms per call, {:.1} per second ({count} calls in {:.2} s)",
        per_call * 1e3,
        1.0 / per_call,
        elapsed.as_secs_f64()
    );
}
