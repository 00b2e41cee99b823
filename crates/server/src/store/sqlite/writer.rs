//! Group commit for SQLite: the writes of the token hot path (codes issued and consumed,
//! access and refresh tokens, refresh rotation, grant use times, audit events) go
//! through one task that runs every write waiting at that moment in a single
//! `BEGIN IMMEDIATE … COMMIT`, and answers each caller only once the transaction is
//! committed (durable: `synchronous = FULL`).
//!
//! SQLite commits one transaction at a time, and each commit waits for the disk. One
//! transaction per request caps throughput at the disk's flush rate; one per group of
//! waiting requests shares each flush among all of them, with no added delay when the
//! server is idle (a lone write is committed at once).
//!
//! A write that fails reports its error and leaves nothing behind; the others in its
//! group are unaffected. That is why a write given to the writer changes the database
//! with one statement at most ([`Writer::write`]), or runs inside its own savepoint
//! ([`Writer::write_atomic`]): SQLite undoes a failed statement, not the transaction.
//! If the commit itself fails, every write of the group reports that failure (none of
//! them happened).

use futures::future::BoxFuture;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreResult;

/// Most writes in one transaction.
const MAX_GROUP: usize = 256;
/// Writes waiting for the writer before callers wait to enqueue (backpressure).
const QUEUE: usize = 4096;

/// What a job leaves to do once the group's commit is known: send its result.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Finish> + Send>;

/// A handle to the writer task; cheap to clone. The task ends when every handle is gone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Start the writer task on `pool`.
    pub(crate) fn start(pool: SqlitePool) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        Self { jobs }
    }

    /// Run `op`, which may change the database with several statements, in the next
    /// group, inside a savepoint: if `op` fails, what it changed is undone and the
    /// rest of the group is unaffected.
    pub(crate) async fn write_atomic<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("SAVEPOINT unit").execute(&mut *conn).await?;
                let outcome = op(&mut *conn).await;
                if outcome.is_err() {
                    sqlx::query("ROLLBACK TO unit").execute(&mut *conn).await?;
                }
                sqlx::query("RELEASE unit").execute(&mut *conn).await?;
                outcome
            })
        })
        .await
    }

    /// Run `op`, which changes the database with at most one statement, in the next
    /// group; its result is returned once the group is committed.
    pub(crate) async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let (done, result) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn: &mut SqliteConnection| {
            Box::pin(async move {
                let outcome = op(conn).await;
                Box::new(move |commit: Result<(), String>| {
                    let _ = done.send(match commit {
                        Ok(()) => outcome,
                        Err(e) => Err(anyhow::anyhow!("committing the write failed: {e}")),
                    });
                }) as Finish
            })
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

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let finishes = commit_group(&pool, group.drain(..)).await;
        let (finishes, outcome) = match finishes {
            Ok(finishes) => (finishes, Ok(())),
            Err((finishes, e)) => {
                tracing::error!(error = %e, "a group of SQLite writes failed to commit");
                (finishes, Err(e))
            }
        };
        for finish in finishes {
            finish(outcome.clone());
        }
    }
}

/// Run `jobs` in one transaction; the finishers, and the error if it did not commit.
async fn commit_group(
    pool: &SqlitePool,
    jobs: impl Iterator<Item = Job>,
) -> Result<Vec<Finish>, (Vec<Finish>, String)> {
    let jobs: Vec<Job> = jobs.collect();
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            // Nothing ran: each job still has to answer, with the error.
            return Err((
                jobs.into_iter().map(|_| refusal()).collect(),
                format!("no SQLite connection: {e}"),
            ));
        }
    };
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        return Err((
            jobs.into_iter().map(|_| refusal()).collect(),
            format!("cannot begin: {e}"),
        ));
    }
    let mut finishes = Vec::with_capacity(jobs.len());
    for job in jobs {
        finishes.push(job(&mut conn).await);
    }
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => Ok(finishes),
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err((finishes, e.to_string()))
        }
    }
}

/// A job that never ran: dropping it drops its sender, so its caller gets an error.
fn refusal() -> Finish {
    Box::new(|_| {})
}
