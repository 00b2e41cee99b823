//! The bank's SQLite database: schema, queries, and the one-shot demo seed.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use super::seed::SeedAccount;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id        TEXT PRIMARY KEY,
    owner_sub TEXT NOT NULL,
    name      TEXT NOT NULL,
    currency  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_owner ON accounts (owner_sub);
CREATE TABLE IF NOT EXISTS transactions (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    date         TEXT NOT NULL,
    description  TEXT NOT NULL,
    category     TEXT NOT NULL,
    amount_cents INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_account_date ON transactions (account_id, date);
";

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub balance_cents: i64,
}

/// A transaction as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transaction {
    pub id: String,
    pub account_id: String,
    pub date: String,
    pub description: String,
    pub category: String,
    pub amount_cents: i64,
}

/// Open the database file (creating it and its directory if missing) in WAL mode
/// and create the tables.
pub async fn connect(path: &Path) -> anyhow::Result<SqlitePool> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    Ok(pool)
}

const ACCOUNT_COLUMNS: &str =
    "SELECT a.id, a.name, a.currency, COALESCE(SUM(t.amount_cents), 0) AS balance
     FROM accounts a LEFT JOIN transactions t ON t.account_id = a.id";

fn account(row: &sqlx::sqlite::SqliteRow) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        currency: row.try_get("currency")?,
        balance_cents: row.try_get("balance")?,
    })
}

/// The accounts of `owner`, with their balances.
pub async fn accounts_of(pool: &SqlitePool, owner: &str) -> anyhow::Result<Vec<Account>> {
    let sql =
        format!("{ACCOUNT_COLUMNS} WHERE a.owner_sub = ? GROUP BY a.id ORDER BY a.name, a.id");
    let rows = sqlx::query(&sql).bind(owner).fetch_all(pool).await?;
    Ok(rows.iter().map(account).collect::<Result<_, _>>()?)
}

/// The account `id` if it exists and belongs to `owner`; `None` otherwise, so that
/// other people's accounts look exactly like missing ones.
pub async fn account_of(
    pool: &SqlitePool,
    owner: &str,
    id: &str,
) -> anyhow::Result<Option<Account>> {
    let sql = format!("{ACCOUNT_COLUMNS} WHERE a.owner_sub = ? AND a.id = ? GROUP BY a.id");
    let row = sqlx::query(&sql)
        .bind(owner)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(account).transpose()?)
}

/// The transactions of an account, newest first.
pub async fn transactions(pool: &SqlitePool, account_id: &str) -> anyhow::Result<Vec<Transaction>> {
    let rows = sqlx::query(
        "SELECT id, account_id, date, description, category, amount_cents FROM transactions
         WHERE account_id = ? ORDER BY date DESC, rowid DESC",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await?;
    let read = |row: &sqlx::sqlite::SqliteRow| -> Result<Transaction, sqlx::Error> {
        Ok(Transaction {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            date: row.try_get("date")?,
            description: row.try_get("description")?,
            category: row.try_get("category")?,
            amount_cents: row.try_get("amount_cents")?,
        })
    };
    Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
}

async fn insert<'e, E: sqlx::SqliteExecutor<'e>>(executor: E, t: &Transaction) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO transactions (id, account_id, date, description, category, amount_cents)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(&t.account_id)
    .bind(&t.date)
    .bind(&t.description)
    .bind(&t.category)
    .bind(t.amount_cents)
    .execute(executor)
    .await?;
    Ok(())
}

/// Store a new transaction.
pub async fn insert_transaction(pool: &SqlitePool, t: &Transaction) -> anyhow::Result<()> {
    Ok(insert(pool, t).await?)
}

/// Create `accounts` for `owner` unless they already have some, in one write
/// transaction (`BEGIN IMMEDIATE`, so two concurrent seeds cannot both insert).
/// Returns whether anything was created.
pub async fn seed(
    pool: &SqlitePool,
    owner: &str,
    accounts: &[SeedAccount],
) -> anyhow::Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE owner_sub = ?")
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Ok(false);
    }
    for seeded in accounts {
        let account_id = random_id("acc")?;
        sqlx::query("INSERT INTO accounts (id, owner_sub, name, currency) VALUES (?, ?, ?, ?)")
            .bind(&account_id)
            .bind(owner)
            .bind(seeded.name)
            .bind(seeded.currency)
            .execute(&mut *tx)
            .await?;
        for t in &seeded.transactions {
            let row = Transaction {
                id: random_id("tx")?,
                account_id: account_id.clone(),
                date: t.date.clone(),
                description: t.description.clone(),
                category: t.category.to_owned(),
                amount_cents: t.amount_cents,
            };
            insert(&mut *tx, &row).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// A fresh random identifier: `prefix_` and 96 random bits in hex.
pub fn random_id(prefix: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{prefix}_{hex}"))
}
