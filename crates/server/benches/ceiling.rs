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
//! With `--chains N` as well, the database first gets N refresh token chains, rows of
//! the shape and indexes of Tessera's `refresh_tokens`, and each answer also waits for
//! the rotation of one of them drawn at random: its row rewritten in place, in the
//! same transaction as the token's insert, as Tessera rotates a chain. Its req/s at
//! N = 1,000,000 against N = 1,024 is the most a server that keeps its chains in
//! SQLite can keep of its refresh rotation on a large store (`bench/store-ceiling.sh`).
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
//! ceiling --listen 127.0.0.1:9000 --durable /tmp/ceiling-store --chains 1000000
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
    chains: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: None,
        work: Duration::ZERO,
        body_bytes: 300,
        durable: None,
        chains: 0,
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
            "--chains" => {
                args.chains = value("--chains")?
                    .parse()
                    .map_err(|e| format!("--chains: {e}"))?;
                if !(1..=100_000_000).contains(&args.chains) {
                    return Err("--chains must be between 1 and 100000000".into());
                }
            }
            // cargo bench's own flags.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.chains > 0 && args.durable.is_none() {
        return Err("--chains needs --durable".into());
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

/// `--durable`: Tessera's group commit of opaque access tokens, reduced to its insert
/// (and with `--chains`, to its rotation of a refresh token chain).
mod durable {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rusqlite::{params, Connection};
    use tokio::sync::{mpsc, oneshot};

    /// Most inserts in one transaction, as Tessera's writer.
    const MAX_GROUP: usize = 256;
    /// How long the checkpointer lets commits accumulate, as Tessera's.
    const CHECKPOINT_DELAY: Duration = Duration::from_millis(10);
    /// WAL size past which the writer checkpoints itself, as Tessera's.
    const WAL_LIMIT: u64 = 64 * 1024 * 1024;

    /// A token's key, the chain to rotate (`--chains`), and whom to tell.
    type Job = (
        [u8; 32],
        Option<[u8; 16]>,
        oneshot::Sender<Result<(), String>>,
    );

    const HEX: &[u8; 16] = b"0123456789abcdef";

    pub struct Store {
        jobs: mpsc::Sender<Job>,
        next: AtomicU64,
        /// How many chains the database holds (0: none).
        chains: u64,
        /// Where the draw of chains starts, so that runs do not repeat one another's.
        seed: u64,
    }

    fn open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        Ok(conn)
    }

    impl Store {
        /// A fresh database in `dir` (which must not hold one) with `chains` refresh
        /// token chains, its writer and its checkpointer.
        pub fn start(dir: &Path, chains: u64) -> Result<Self, String> {
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
            fill_chains(&conn, chains).map_err(|e| format!("filling the chains: {e}"))?;
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
            let wal = dir.join("ceiling.db-wal");
            std::thread::spawn(move || write(conn, rx, committed, wal));
            Ok(Self {
                jobs,
                next: AtomicU64::new(0),
                chains,
                seed: now_nanos(),
            })
        }

        /// Commit one token's row; `Ok` once it is durable.
        pub async fn commit(&self) -> Result<(), String> {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let key = key_of(n);
            let chain = (self.chains > 0).then(|| {
                chain_of(splitmix(self.seed ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d)) % self.chains)
            });
            let (done, result) = oneshot::channel();
            self.jobs
                .send((key, chain, done))
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
        key[..8].copy_from_slice(&now_nanos().to_be_bytes());
        let mut x = n;
        for chunk in key[8..].chunks_mut(8) {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            chunk.copy_from_slice(&splitmix(x).to_le_bytes());
        }
        key
    }

    fn now_nanos() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }

    /// splitmix64's output function: `x`'s bits spread as a hash's are.
    fn splitmix(x: u64) -> u64 {
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The id of chain `i`: 16 bytes spread as the first 16 of a hash are, as Tessera's
    /// chain ids (the first 16 bytes of the first token's SHA-256).
    fn chain_of(i: u64) -> [u8; 16] {
        let mut chain = [0u8; 16];
        chain[..8].copy_from_slice(&splitmix(i.wrapping_add(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
        chain[8..].copy_from_slice(&splitmix(!i).to_le_bytes());
        chain
    }

    /// `chains` rows of Tessera's `refresh_tokens` (migrations 0007 to 0009: a chain's
    /// row, keyed by the chain id, `WITHOUT ROWID`, indexed by grant and by purge day),
    /// with values of the sizes `bench/sql/fill-sqlite.sql` gives them, inserted in
    /// key order in one transaction.
    fn fill_chains(conn: &Connection, chains: u64) -> rusqlite::Result<()> {
        conn.execute_batch(
            "CREATE TABLE refresh_tokens (chain BLOB PRIMARY KEY, token_hash BLOB NOT NULL,
                 grant_id TEXT NOT NULL, client_id TEXT NOT NULL, user_id TEXT, scope TEXT NOT NULL,
                 issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, purge_at INTEGER NOT NULL,
                 prev_hash BLOB, rotated_at INTEGER, grant_ends_at INTEGER,
                 grant_revoked_at INTEGER, username TEXT) WITHOUT ROWID;
             CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);
             CREATE INDEX refresh_tokens_purge ON refresh_tokens(purge_at);",
        )?;
        if chains == 0 {
            return Ok(());
        }
        let mut ids: Vec<(u64, [u8; 16])> = (0..chains).map(|i| (i, chain_of(i))).collect();
        ids.sort_unstable_by_key(|&(_, chain)| chain);
        let now = (now_nanos() / 1_000_000_000) as i64;
        conn.execute_batch("BEGIN")?;
        {
            let mut insert = conn.prepare(
                "INSERT INTO refresh_tokens (chain, token_hash, grant_id, client_id, user_id,
                     scope, issued_at, expires_at, purge_at, username)
                 VALUES (?1, ?2, ?3, '2310054086eb7b970f5b6881f4c4b11d', ?4, 'read write',
                     ?5, ?6, ?7, ?8)",
            )?;
            for (i, chain) in ids {
                let mut token_hash = [0u8; 32];
                token_hash[..16].copy_from_slice(&chain);
                token_hash[16..24].copy_from_slice(&splitmix(i ^ 0x5555).to_le_bytes());
                let (grant_id, user_id) = (
                    format!("{:016x}{:016x}", splitmix(i ^ 1), splitmix(i ^ 2)),
                    format!("{:016x}{:016x}", splitmix(i ^ 3), splitmix(i ^ 4)),
                );
                let issued_at = now - (i % 1200) as i64;
                let expires_at = issued_at + 2_592_000;
                insert.execute(params![
                    &chain[..],
                    &token_hash[..],
                    grant_id,
                    user_id,
                    issued_at,
                    expires_at,
                    (expires_at + 86_399) / 86_400 * 86_400,
                    format!("bench-user-{i}"),
                ])?;
            }
        }
        conn.execute_batch("COMMIT; PRAGMA wal_checkpoint(TRUNCATE);")
    }

    fn write(
        conn: Connection,
        mut rx: mpsc::Receiver<Job>,
        committed: std::sync::mpsc::SyncSender<()>,
        wal: PathBuf,
    ) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let mut since_wal_check = 0;
        while let Some(job) = rx.blocking_recv() {
            group.push(job);
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            let outcome = commit_group(&conn, &group).map_err(|e| e.to_string());
            for (_, _, done) in group.drain(..) {
                let _ = done.send(outcome.clone());
            }
            let _ = committed.try_send(());
            // As Tessera's writer: past WAL_LIMIT, a checkpoint between two groups
            // lets the next transaction start the WAL over. Without it the WAL of a
            // writer that never pauses grows for ever (the checkpointer never finds it
            // caught up at a transaction's start), and a checkpoint of seconds of
            // commits writes a page rewritten many times once.
            since_wal_check += 1;
            if since_wal_check < 64 {
                continue;
            }
            since_wal_check = 0;
            if std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT) {
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
            }
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
            let mut rotate = conn.prepare_cached(
                "UPDATE refresh_tokens SET token_hash = ?2, prev_hash = token_hash, rotated_at = ?3
                 WHERE chain = ?1 AND grant_revoked_at IS NULL",
            )?;
            for (key, chain, _) in group {
                if let Some(chain) = chain {
                    // The successor's key: the chain id, then the new token's own bytes.
                    let mut successor = [0u8; 32];
                    successor[..16].copy_from_slice(chain);
                    successor[16..].copy_from_slice(&key[16..]);
                    if rotate.execute(params![&chain[..], &successor[..], now])? != 1 {
                        return Err(rusqlite::Error::QueryReturnedNoRows);
                    }
                }
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
             [--work-us US] [--body-bytes N] [--durable DIR [--chains N]]); nothing to measure on its own"
        );
        return std::process::ExitCode::SUCCESS;
    };
    let body: &'static str = Box::leak(body_of(args.body_bytes).into_boxed_str());
    let work = args.work;
    let store: Option<&'static durable::Store> = match args
        .durable
        .as_deref()
        .map(|dir| durable::Store::start(dir, args.chains))
    {
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
