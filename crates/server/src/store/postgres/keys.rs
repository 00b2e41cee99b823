//! [`SigningKeyStore`] on PostgreSQL.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresStore;
use crate::store::{SigningKeyRecord, SigningKeyStore, StoreResult};

/// Keys superseded (a later key of the same algorithm active) at or before `$1`.
const SUPERSEDED: &str = "EXISTS (SELECT 1 FROM signing_keys n
     WHERE n.alg = signing_keys.alg AND n.activates_at > signing_keys.activates_at
       AND n.activates_at <= $1)";

/// The advisory lock that serialises key creation across instances.
const KEY_LOCK: i64 = 0x7465_7373_6b65_7973; // "tesskeys"

#[async_trait]
impl SigningKeyStore for PostgresStore {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, alg, public_jwk, private_key, created_at, activates_at
             FROM signing_keys ORDER BY activates_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| SigningKeyRecord {
                kid: r.get("kid"),
                alg: r.get("alg"),
                public_jwk: r.get("public_jwk"),
                private_key: r.get("private_key"),
                created_at: r.get("created_at"),
                activates_at: r.get("activates_at"),
            })
            .collect())
    }

    async fn add_signing_key(
        &self,
        key: &SigningKeyRecord,
        unless_created_after: Option<i64>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // Under READ COMMITTED two transactions could both find no recent key; the
        // transaction-scoped advisory lock makes the check and the insert one step.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        if let Some(after) = unless_created_after {
            let recent: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM signing_keys WHERE alg = $1 AND created_at > $2 LIMIT 1",
            )
            .bind(&key.alg)
            .bind(after)
            .fetch_optional(&mut *tx)
            .await?;
            if recent.is_some() {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, public_jwk, private_key, created_at, activates_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.public_jwk)
        .bind(&key.private_key)
        .bind(key.created_at)
        .bind(key.activates_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn retire_signing_keys(
        &self,
        wipe_before: i64,
        delete_before: i64,
    ) -> StoreResult<(u64, u64)> {
        let wiped = sqlx::query(&format!(
            "UPDATE signing_keys SET private_key = NULL
             WHERE private_key IS NOT NULL AND {SUPERSEDED}"
        ))
        .bind(wipe_before)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let deleted = sqlx::query(&format!("DELETE FROM signing_keys WHERE {SUPERSEDED}"))
            .bind(delete_before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok((wiped, deleted))
    }
}
