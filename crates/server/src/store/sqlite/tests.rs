//! Tests of the SQLite store that need its insides (the migrations as embedded).

use std::borrow::Cow;

use super::*;
use crate::crypto::{hash_secret, refresh_key};

/// A database in a new directory, migrated up to the migration before `version`:
/// the directory (deleted when dropped), the database URL and a pool on it.
async fn migrated_before(version: i64) -> (tempfile::TempDir, String, sqlx::SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations = Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect(),
    );
    before.run(&pool).await.unwrap();
    (dir, url, pool)
}

include!("../../../tests/fixtures/tokens_before_0006.rs");
include!("../../../tests/fixtures/chains_before_grant_state.rs");
include!("../../../tests/fixtures/tokens_before_user_copies.rs");

/// The rows of `grants-before-0006.sql`: a client, a user, and a grant that is live,
/// one revoked and one that lapses at 500.
async fn grants_before_0006(pool: &sqlx::SqlitePool) {
    sqlx::raw_sql(include_str!(
        "../../../tests/fixtures/grants-before-0006.sql"
    ))
    .execute(pool)
    .await
    .unwrap();
}

/// Migration 0006 gives the opaque access tokens already stored the copies of
/// their user's name and their grant's state that introspection now reads, so that
/// a token of a grant revoked before the upgrade stays refused after it.
#[tokio::test]
async fn migration_0006_copies_the_user_and_grant_state_into_stored_tokens() {
    // The schema as the version before 0006 left it, with rows of that version.
    let (_dir, url, pool) = migrated_before(6).await;
    grants_before_0006(&pool).await;
    for (token, grant, user) in TOKENS_BEFORE_0006 {
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at)
             VALUES (?, ?, ?, 'c1', ?, 'a', 'https://api.example', 0, 1000)",
        )
        .bind(&hash_secret(token)[..])
        .bind(token)
        .bind(grant)
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = SqliteStore::connect(&url).await.unwrap();
    let view = |token: &'static str, now: i64| {
        let store = &store;
        async move {
            store
                .view_access_token(&hash_secret(token), now)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let live = view("t-live", 200).await;
    assert!(live.grant_active);
    assert_eq!(live.username.as_deref(), Some("alice"));
    assert!(
        !view("t-revoked", 200).await.grant_active,
        "revoked before the upgrade"
    );
    assert!(view("t-lapsing", 200).await.grant_active);
    assert!(
        !view("t-lapsing", 500).await.grant_active,
        "lapsed at its grant's end"
    );
    let client = view("t-client", 200).await;
    assert!(client.grant_active, "no grant to lapse");
    assert_eq!(client.username, None);
}

/// Migration 0007 turns each stored refresh token into a chain of its own: an unused
/// one stays current (and rotates), a used one stays recognised as used, so that
/// presenting it after the upgrade is still reuse.
#[tokio::test]
async fn migration_0007_keeps_stored_refresh_tokens_and_their_use() {
    let (_dir, url, pool) = migrated_before(7).await;
    sqlx::query(
        "INSERT INTO clients (id, name, redirect_uris, scope, grant_types, token_format, created_at)
         VALUES ('c1', 'app', '[]', 'a', 'authorization_code', 'opaque', 0);
         INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'alice', 'x', 0);
         INSERT INTO grants (id, client_id, user_id, scope, created_at) VALUES ('g1', 'c1', 'u1', 'a', 0);",
    )
    .execute(&pool)
    .await
    .unwrap();
    // A 54-character token of the time-ordered kind, and a 43-character one keyed by
    // its whole SHA-256; the second was used at 150.
    let (ordered, plain) = (
        crate::crypto::ordered_token(),
        crate::crypto::random_token(),
    );
    for (token, used_at) in [(&ordered, None), (&plain, Some(150i64))] {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, used_at)
             VALUES (?, 'g1', 'c1', 'u1', 'a', 100, 86500, ?)",
        )
        .bind(&hash_secret(token)[..])
        .bind(used_at)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = SqliteStore::connect(&url).await.unwrap();
    let current = store
        .find_active_refresh_token(&refresh_key(&ordered), 200)
        .await
        .unwrap()
        .expect("an unused token is its chain's current one");
    assert_eq!(current.used_at, None);
    assert_eq!(
        current.purge_at(),
        2 * 86_400,
        "its expiry, rounded up to a day"
    );
    match store
        .rotate_refresh_token(&refresh_key(&plain), "c1", 200, &Issuance::default())
        .await
        .unwrap()
    {
        Rotation::AlreadyUsed(t) => {
            assert_eq!(t.used_at, Some(150));
            // No current token: the chain id and 16 zero bytes, which no token has.
            assert_eq!(t.token_hash[..16], refresh_key(&plain)[..16]);
            assert_eq!(t.token_hash[16..], [0u8; 16]);
        }
        other => panic!("a token used before the upgrade is still used: {other:?}"),
    }
    match store
        .rotate_refresh_token(&refresh_key(&ordered), "c1", 200, &Issuance::default())
        .await
        .unwrap()
    {
        Rotation::Rotated(t) => assert_eq!(t.grant_id, "g1"),
        other => panic!("{other:?}"),
    }
    // Both chains are purged the day after their token expired.
    let purged = store.purge_expired(2 * 86_400, None, 10).await.unwrap();
    assert_eq!(purged.refresh_tokens, 2);
}

/// Migration 0008 gives the refresh token chains already stored the copies of their
/// grant's lapse and revocation times that rotations now read instead of the grant:
/// a chain of a grant revoked before the upgrade stays refused after it, and one of a
/// lapsing grant still lapses with it.
#[tokio::test]
async fn migration_0008_copies_the_grant_state_into_stored_chains() {
    let (_dir, url, pool) = migrated_before(8).await;
    grants_before_0006(&pool).await;
    for grant in CHAIN_GRANTS {
        chain_before(&pool, grant).await;
    }
    pool.close().await;
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_chains_keep_their_grant_state(&store).await;
}

/// Store the chain of `grant` of `chains_before_grant_state.rs` as the schema before
/// the migrations of its copies has it (no copy).
async fn chain_before(pool: &sqlx::SqlitePool, grant: &str) {
    let key = refresh_key(&chain_token(grant));
    sqlx::query(
        "INSERT INTO refresh_tokens (chain, token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, purge_at)
         VALUES (?, ?, ?, 'c1', 'u1', 'a', 100, 86500, 172800)",
    )
    .bind(&key[..crate::crypto::CHAIN_LEN])
    .bind(&key[..])
    .bind(grant)
    .execute(pool)
    .await
    .unwrap();
}

/// Migration 0009 drops the access tokens' foreign keys to their grant and user (a
/// rotation's token is known to be of its chain's grant and user) and gives the
/// chains their user's name: the stored tokens stay, and still go with their user.
#[tokio::test]
async fn migration_0009_keeps_stored_tokens_and_their_user() {
    let (_dir, url, pool) = migrated_before(9).await;
    grants_before_0006(&pool).await;
    for (token, grant, user) in TOKENS_BEFORE_USER_COPIES {
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at,
                                        username)
             VALUES (?, ?, ?, 'c1', ?, 'a', 'https://api.example', 0, 1000,
                     (SELECT username FROM users WHERE id = ?4))",
        )
        .bind(&hash_secret(token)[..])
        .bind(token)
        .bind(grant)
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }
    chain_before(&pool, "g-live").await;
    pool.close().await;
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_tokens_keep_their_user(&store).await;
}

/// The request path's read connections map as much of the database file as
/// `database_sqlite_mmap_size` says (none with `0`), and read the same rows whether
/// they map it or not: a token of a live grant and one of a revoked grant, written by
/// the writer's connection.
#[tokio::test]
async fn readers_map_the_file_as_configured_and_read_the_same_rows() {
    for size in [0, 1 << 20, crate::config::SQLITE_MMAP_SIZE] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
        let settings = SqliteSettings {
            read_mmap_size: size,
        };
        let store = SqliteStore::connect_with(&url, &settings).await.unwrap();
        grants_before_0006(&store.pool).await;
        for grant in ["g-live", "g-revoked"] {
            let token = OpaqueAccessToken {
                token_hash: hash_secret(grant),
                jti: format!("jti-{grant}"),
                grant_id: Some(grant.into()),
                client_id: "c1".into(),
                user_id: Some("u1".into()),
                scope: Scope::parse("a").unwrap(),
                audience: "https://api.example".into(),
                issued_at: 0,
                expires_at: 1000,
                revoked_at: None,
            };
            store.insert_access_token(&token).await.unwrap();
        }

        let mapped: i64 = store
            .readers
            .read(|c| Ok(c.query_row("PRAGMA mmap_size", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(mapped as u64, size);
        let live = store
            .view_access_token(&hash_secret("g-live"), 10)
            .await
            .unwrap()
            .expect("the live grant's token is found");
        assert!(live.grant_active, "mmap_size {size}");
        assert_eq!(live.username.as_deref(), Some("alice"));
        assert_eq!(live.token.jti, "jti-g-live");
        let revoked = store
            .view_access_token(&hash_secret("g-revoked"), 10)
            .await
            .unwrap()
            .expect("the revoked grant's token is found");
        assert!(!revoked.grant_active, "mmap_size {size}");
        assert!(store
            .view_access_token(&hash_secret("unknown"), 10)
            .await
            .unwrap()
            .is_none());
    }
}
