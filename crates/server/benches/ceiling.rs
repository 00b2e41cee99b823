//! The most any server can answer on this core in a `bench/run.sh` scenario: an HTTP
//! server on Tessera's own stack (tokio's multi-thread runtime, hyper through
//! `axum::serve`, `TCP_NODELAY`) that answers every `POST` with a fixed JSON body of
//! the scenario's size after `--work-us` microseconds of CPU on the request's task,
//! then yields once so that answers ready together leave together (as Tessera's do),
//! and does nothing else: no parsing, no client authentication, no store.
//!
//! `bench/run.sh` starts it pinned to the server's core beside Tessera and the peer,
//! with the work a scenario cannot do without (for a JWT, the signature's time,
//! measured by the `signing` benchmark in the same run; for the rest, none), and
//! drives it with the same `wrk` load. Its req/s over the peer's is the highest ratio
//! any server can reach in that scenario on this machine: where it falls short of a
//! target, no server meets the target here.
//!
//! ```text
//! cargo bench -p tessera-server --bench ceiling --no-run     # bench/run.sh builds it so
//! ceiling --listen 127.0.0.1:9000 --work-us 20.5 --body-bytes 600
//! ```
//!
//! Run by `cargo bench` (which passes `--bench` and no `--listen`), it prints what it
//! is and exits: it measures nothing on its own.

use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;

struct Args {
    listen: Option<String>,
    work: Duration,
    body_bytes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: None,
        work: Duration::ZERO,
        body_bytes: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => args.listen = Some(value("--listen")?),
            "--work-us" => {
                let us: f64 = value("--work-us")?
                    .parse()
                    .map_err(|e| format!("--work-us: {e}"))?;
                if !(0.0..=1_000_000.0).contains(&us) {
                    return Err("--work-us must be between 0 and 1000000".into());
                }
                args.work = Duration::from_secs_f64(us / 1e6);
            }
            "--body-bytes" => {
                args.body_bytes = value("--body-bytes")?
                    .parse()
                    .map_err(|e| format!("--body-bytes: {e}"))?;
                if !(64..=65_536).contains(&args.body_bytes) {
                    return Err("--body-bytes must be between 64 and 65536".into());
                }
            }
            // cargo bench's own flags.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// A token response of exactly `bytes` bytes (at least 64).
fn body_of(bytes: usize) -> String {
    let head = r#"{"token_type":"Bearer","expires_in":600,"access_token":""#;
    let tail = r#""}"#;
    let fill = bytes.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "A".repeat(fill))
}

/// Keep the calling thread busy for `work`, as a signature computed inline would.
fn busy(work: Duration) {
    if work.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < work {
        std::hint::spin_loop();
    }
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ceiling: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let Some(listen) = args.listen else {
        println!(
            "ceiling: the null server of bench/run.sh (start it with --listen ADDR \
             [--work-us US] [--body-bytes N]); nothing to measure on its own"
        );
        return std::process::ExitCode::SUCCESS;
    };
    let body: &'static str = Box::leak(body_of(args.body_bytes).into_boxed_str());
    let work = args.work;
    let answer = move || async move {
        busy(work);
        // As Tessera's responses made without waiting do (`detach::leave_together`):
        // the other ready requests are handled before this answer leaves.
        tokio::task::yield_now().await;
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (header::PRAGMA, HeaderValue::from_static("no-cache")),
            ],
            body,
        )
            .into_response()
    };
    let app = Router::new().fallback(post(answer));
    // The runtime Tessera's binary builds.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ceiling: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!("listening on {}", listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await
    });
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ceiling: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
