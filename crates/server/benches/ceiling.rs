//! The most any server can answer on this core in a `bench/run.sh` scenario: an HTTP
//! server on Tessera's own stack (tokio's multi-thread runtime, hyper through
//! `axum::serve`, `TCP_NODELAY`) that answers every `POST` with a fixed JSON body of
//! the scenario's size after `--work-us` microseconds of CPU on the request's task,
//! then yields once so that answers ready together leave together (as Tessera's do),
//! and does nothing else: no parsing, no client authentication, no store.
//!
//! With `--durable DIR`, each answer also waits for a row of the size of an opaque
//! access token's to be committed to a SQLite database in DIR, the way Tessera commits
//! them: WAL, `synchronous = FULL`, one writer thread committing every insert waiting
//! at that moment in one transaction (group commit), and checkpoints on a thread of
//! their own a few milliseconds after commits. Its req/s is the most a server on this
//! stack can answer when each token is committed before its answer leaves: the
//! opaque scenario's ceiling.
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
//! ceiling --listen 127.0.0.1:9000 --body-bytes 300 --durable /tmp/ceiling-store
//! ```
//!
//! Run by `cargo bench` (which passes `--bench` and no `--listen`), it prints what it
//! is and exits: it measures nothing on its own.

use std::path::PathBuf;
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
    durable: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: None,
        work: Duration::ZERO,
        body_bytes: 300,
        durable: None,
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
            "--durable" => args.durable = Some(PathBuf::from(value("--durable")?)),
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

/// `--durable`: Tessera's group commit of opaque access tokens, reduced to its insert.
mod durable {
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rusqlite::{params, Connection};
    use tokio::sync::{mpsc, oneshot};

    /// Most inserts in one transaction, as Tessera's writer.
    const MAX_GROUP: usize = 256;
    /// How long the checkpointer lets commits accumulate, as Tessera's.
    const CHECKPOINT_DELAY: Duration = Duration::from_millis(10);

    type Job = ([u8; 32], oneshot::Sender<Result<(), String>>);

    const HEX: &[u8; 16] = b"0123456789abcdef";

    pub struct Store {
        jobs: mpsc::Sender<Job>,
        next: AtomicU64,
    }

    fn open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        Ok(conn)
    }

    impl Store {
        /// A fresh database in `dir` (which must not hold one), its writer and its
        /// checkpointer.
        pub fn start(dir: &Path) -> Result<Self, String> {
            let path = dir.join("ceiling.db");
            if path.exists() {
                return Err(format!(
                    "{} exists: give an empty directory",
                    path.display()
                ));
            }
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let conn = open(&path).map_err(|e| e.to_string())?;
            // An opaque access token's row and its housekeeping index, as Tessera's.
            conn.execute_batch(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;
                 CREATE TABLE tokens (token_hash BLOB PRIMARY KEY, jti TEXT NOT NULL,
                     client_id TEXT NOT NULL, scope TEXT NOT NULL, audience TEXT NOT NULL,
                     issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
                 CREATE INDEX tokens_expires ON tokens(expires_at);",
            )
            .map_err(|e| e.to_string())?;
            let checkpointer = open(&path).map_err(|e| e.to_string())?;
            let (committed, commits) = std::sync::mpsc::sync_channel::<()>(1);
            std::thread::spawn(move || {
                while commits.recv().is_ok() {
                    std::thread::sleep(CHECKPOINT_DELAY);
                    while commits.try_recv().is_ok() {}
                    let _ = checkpointer.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
                }
            });
            let (jobs, rx) = mpsc::channel(4096);
            std::thread::spawn(move || write(conn, rx, committed));
            Ok(Self {
                jobs,
                next: AtomicU64::new(0),
            })
        }

        /// Commit one token's row; `Ok` once it is durable.
        pub async fn commit(&self) -> Result<(), String> {
            let key = key_of(self.next.fetch_add(1, Ordering::Relaxed));
            let (done, result) = oneshot::channel();
            self.jobs
                .send((key, done))
                .await
                .map_err(|_| "the writer has stopped".to_string())?;
            result
                .await
                .map_err(|_| "the writer dropped a write".to_string())?
        }
    }

    /// A key as Tessera's opaque tokens have (`crypto::hash_secret` of an
    /// `ordered_token`): nanoseconds since the epoch, big-endian, so that keys sort by
    /// time, then 24 bytes spread as a hash's are (splitmix64 of the counter).
    fn key_of(n: u64) -> [u8; 32] {
        let mut key = [0u8; 32];
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        key[..8].copy_from_slice(&nanos.to_be_bytes());
        let mut x = n;
        for chunk in key[8..].chunks_mut(8) {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        key
    }

    fn write(
        conn: Connection,
        mut rx: mpsc::Receiver<Job>,
        committed: std::sync::mpsc::SyncSender<()>,
    ) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Some(job) = rx.blocking_recv() {
            group.push(job);
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            let outcome = commit_group(&conn, &group).map_err(|e| e.to_string());
            for (_, done) in group.drain(..) {
                let _ = done.send(outcome.clone());
            }
            let _ = committed.try_send(());
        }
    }

    fn commit_group(conn: &Connection, group: &[Job]) -> rusqlite::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let inserted = (|| {
            let mut insert = conn.prepare_cached(
                "INSERT INTO tokens (token_hash, jti, client_id, scope, audience, issued_at,
                                     expires_at) VALUES (?1, ?2, 'bench-service', 'read',
                                     'https://bank.example', ?3, ?4)",
            )?;
            for (key, _) in group {
                // A jti of Tessera's length (22 characters): the key's bytes in hex.
                let mut jti = [0u8; 22];
                for (pair, b) in jti.chunks_mut(2).zip(&key[8..]) {
                    pair[0] = HEX[usize::from(b >> 4)];
                    pair[1] = HEX[usize::from(b & 15)];
                }
                let jti = std::str::from_utf8(&jti).unwrap_or_default();
                insert.execute(params![&key[..], jti, now, now + 600])?;
            }
            Ok(())
        })();
        match inserted.and_then(|()| conn.execute_batch("COMMIT")) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
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
             [--work-us US] [--body-bytes N] [--durable DIR]); nothing to measure on its own"
        );
        return std::process::ExitCode::SUCCESS;
    };
    let body: &'static str = Box::leak(body_of(args.body_bytes).into_boxed_str());
    let work = args.work;
    let store: Option<&'static durable::Store> =
        match args.durable.as_deref().map(durable::Store::start) {
            None => None,
            Some(Ok(store)) => Some(Box::leak(Box::new(store))),
            Some(Err(e)) => {
                eprintln!("ceiling: --durable: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
    let answer = move || async move {
        busy(work);
        if let Some(store) = store {
            if let Err(e) = store.commit().await {
                eprintln!("ceiling: a commit failed: {e}");
                return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
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
