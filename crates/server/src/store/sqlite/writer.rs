//! Group commit for SQLite: the writes of the token hot path (codes issued and consumed,
//! access and refresh tokens, refresh rotation, grant use times, audit events) go
//! through one thread that runs every write waiting at that moment in a single
//! `BEGIN IMMEDIATE … COMMIT`, and answers each caller only once the transaction is
//! committed (durable: `synchronous = FULL`).
//!
//! SQLite commits one transaction at a time, and each commit waits for the disk. One
//! transaction per request caps throughput at the disk's flush rate; one per group of
//! waiting requests shares each flush among all of them, with no added delay when the
//! server is idle (a lone write is committed at once).
//!
//! The writer owns a connection of its own on a thread of its own and runs each
//! write's statements there directly, from a cache of prepared statements: a write
//! costs one hand-over to the thread and one back, whatever its number of statements
//! (through sqlx each statement was a round trip to the connection's worker thread,
//! which bounded refresh rotation at a few hundred microseconds of writer time).
//!
//! A write that fails reports its error and leaves nothing behind; the others in its
//! group are unaffected. That is why a write given to the writer changes the database
//! with one statement at most ([`Writer::write`]), or runs inside its own savepoint
//! ([`Writer::write_atomic`]): SQLite undoes a failed statement, not the transaction.
//! If the commit itself fails, every write of the group reports that failure (none of
//! them happened).
//!
//! The writer does not checkpoint the WAL itself (`wal_autocheckpoint = 0`): a
//! checkpoint copies about a thousand pages to the database file and syncs it, which
//! held every waiting write for tens of milliseconds (the p99 of the token endpoint).
//! A checkpointer thread with a connection of its own does it instead, a few
//! milliseconds after commits, concurrently with the writer (a WAL checkpoint does not
//! block writers). Should the WAL still grow past [`WAL_LIMIT`] (the checkpointer kept
//! behind a writer that never paused), the writer checkpoints between two groups,
//! which finishes the job and lets the next transaction start the WAL over.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreResult;

/// Most writes in one transaction.
const MAX_GROUP: usize = 256;
/// Writes waiting for the writer before callers wait to enqueue (backpressure).
const QUEUE: usize = 4096;
/// How long the checkpointer lets commits accumulate before it checkpoints them.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(10);
/// WAL size past which the writer checkpoints itself (checked every 64 groups).
const WAL_LIMIT: u64 = 64 * 1024 * 1024;

/// What a job leaves to do once the group's commit is known: send its result.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Finish + Send>;

/// A handle to the writer thread; cheap to clone. The thread ends when every handle
/// is gone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// Open a connection to the database file at `path` with the settings every Tessera
/// SQLite connection has: WAL, `synchronous = FULL` (a committed token survives power
/// loss), foreign keys, and a 10 s wait for another writer's lock.
fn open(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The writer's busy handler, while another connection (`tessera gc` or an admin
/// command, in another process) holds the write lock: try again every 250 µs for the
/// first 20 ms, then every 2 ms, about 10 s in all. SQLite's own handler
/// (`busy_timeout`) sleeps 1, 2, 5, 10, ... up to 100 ms between tries, so a purge
/// batch holding the lock for 10 ms kept every waiting token write waiting for up to
/// twice that. The writer is a thread of its own: its short sleeps block nothing else.
fn retry_soon(tries: i32) -> bool {
    const QUICK: i32 = 80;
    const ALL: i32 = QUICK + 4_990;
    match tries {
        t if t < QUICK => std::thread::sleep(Duration::from_micros(250)),
        t if t < ALL => std::thread::sleep(Duration::from_millis(2)),
        _ => return false,
    }
    true
}

/// Where SQLite keeps the WAL of the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

impl Writer {
    /// Start the writer thread on a connection of its own to the database at `path`.
    pub(crate) fn start(path: &Path) -> anyhow::Result<Self> {
        let conn = open(path)?;
        // The WAL file keeps its largest size unless told otherwise: cut back to the
        // limit when it is started over, so that the size check below stays false.
        let limit = format!("PRAGMA journal_size_limit = {WAL_LIMIT};");
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = 0; {limit}"))?;
        conn.busy_handler(Some(retry_soon))?;
        let checkpointer = open(path)?;
        checkpointer.execute_batch(&limit)?;
        let (committed, commits) = std::sync::mpsc::sync_channel(1);
        // Thread names: Linux keeps 15 bytes of them, so both are short enough to be
        // told apart in `top -H` and profiles.
        std::thread::Builder::new()
            .name("sqlite-ckpt".into())
            .spawn(move || checkpoint(checkpointer, commits))
            .context("starting the SQLite checkpointer thread")?;
        let (jobs, rx) = mpsc::channel(QUEUE);
        let wal = wal_path(path);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, committed, wal))
            .context("starting the SQLite writer thread")?;
        Ok(Self { jobs })
    }

    /// Run `op`, which may change the database with several statements, in the next
    /// group, inside a savepoint: if `op` fails, what it changed is undone and the
    /// rest of the group is unaffected.
    pub(crate) async fn write_atomic<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.write(move |conn| {
            conn.prepare_cached("SAVEPOINT unit")?.execute([])?;
            let outcome = op(conn);
            if outcome.is_err() {
                conn.prepare_cached("ROLLBACK TO unit")?.execute([])?;
            }
            conn.prepare_cached("RELEASE unit")?.execute([])?;
            outcome
        })
        .await
    }

    /// Run `op`, which changes the database with at most one statement, in the next
    /// group; its result is returned once the group is committed.
    pub(crate) async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (done, result) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn: &Connection| {
            let outcome = op(conn);
            Box::new(move |commit: Result<(), String>| {
                let _ = done.send(match commit {
                    Ok(()) => outcome,
                    Err(e) => Err(anyhow::anyhow!("committing the write failed: {e}")),
                });
            }) as Finish
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow::anyhow!("the SQLite writer has stopped"))?;
        result
            .await
            .map_err(|_| anyhow::anyhow!("the SQLite writer dropped a write"))?
    }
}

fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    committed: std::sync::mpsc::SyncSender<()>,
    wal: PathBuf,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut since_wal_check = 0_u32;
    while let Some(job) = rx.blocking_recv() {
        group.push(job);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (finishes, outcome) = match commit_group(&conn, group.drain(..)) {
            Ok(finishes) => (finishes, Ok(())),
            Err((finishes, e)) => {
                tracing::error!(error = %e, "a group of SQLite writes failed to commit");
                (finishes, Err(e))
            }
        };
        for finish in finishes {
            finish(outcome.clone());
        }
        // Wake the checkpointer (if it is already due to run, once is enough).
        let _ = committed.try_send(());
        since_wal_check += 1;
        if since_wal_check == 64 {
            since_wal_check = 0;
        } else {
            continue;
        }
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT) {
            if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                tracing::warn!(error = %e, "checkpointing the SQLite WAL failed");
            }
        }
    }
}

/// Checkpoint the WAL a little after each burst of commits, until the writer is gone.
fn checkpoint(conn: Connection, commits: std::sync::mpsc::Receiver<()>) {
    while commits.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_DELAY);
        // What came in while sleeping is covered by this checkpoint.
        while commits.try_recv().is_ok() {}
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
            tracing::warn!(error = %e, "checkpointing the SQLite WAL failed");
        }
    }
}

/// Run `jobs` in one transaction; the finishers, and the error if it did not commit.
fn commit_group(
    conn: &Connection,
    jobs: impl Iterator<Item = Job>,
) -> Result<Vec<Finish>, (Vec<Finish>, String)> {
    let jobs: Vec<Job> = jobs.collect();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Nothing ran: each job still has to answer, with the error.
        return Err((
            jobs.into_iter().map(|_| refusal()).collect(),
            format!("cannot begin: {e}"),
        ));
    }
    let mut finishes = Vec::with_capacity(jobs.len());
    for job in jobs {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))) {
            Ok(finish) => finishes.push(finish),
            Err(_) => {
                // What the job left half done cannot be told apart from the rest:
                // the whole group is undone and reports the failure.
                let _ = conn.execute_batch("ROLLBACK");
                finishes.push(refusal());
                return Err((finishes, "a write panicked".into()));
            }
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => Ok(finishes),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err((finishes, e.to_string()))
        }
    }
}

/// A job that never ran: dropping it drops its sender, so its caller gets an error.
fn refusal() -> Finish {
    Box::new(|_| {})
}
