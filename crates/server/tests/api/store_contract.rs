//! One contract for every store: the promises of `tessera_server::store`'s traits,
//! checked against SQLite and PostgreSQL alike (each test on a fresh database file or
//! a fresh PostgreSQL schema). PostgreSQL is reached at `TESSERA_TEST_DATABASE_URL`
//! (default `postgres://root@127.0.0.1:5432/test`; `.ci/run` starts it).

use std::sync::Arc;

use futures::future::join_all;
use tessera_protocol::{GrantType, RedirectUri, Scope};
use tessera_server::crypto::{
    chained_token, hash_secret, new_chain, random_string, refresh_key, ChainId,
};
use tessera_server::store::*;

/// A store under test and what to clean up afterwards.
struct Backend {
    store: Arc<dyn Store>,
    cleanup: Option<(sqlx::PgPool, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("contract.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        Self {
            store: Arc::new(store),
            cleanup: None,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Self {
        let (admin, schema, url) = postgres_schema().await;
        let store = PostgresStore::connect(&url, 8).await.unwrap();
        Self {
            store: Arc::new(store),
            cleanup: Some((admin, schema)),
            _dir: None,
        }
    }

    async fn finish(self) {
        drop(self.store);
        if let Some((admin, schema)) = self.cleanup {
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await;
        }
    }
}

/// A fresh, empty PostgreSQL schema: a pool on the server's database (to drop the
/// schema afterwards), the schema's name, and a URL whose connections use it.
async fn postgres_schema() -> (sqlx::PgPool, String, String) {
    let base = std::env::var("TESSERA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into());
    let admin = sqlx::PgPool::connect(&base).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is needed for the store contract tests ({base}): {e}; `.ci/run` starts it"
        )
    });
    let schema = format!(
        "contract_{}",
        random_string(9).to_lowercase().replace(['-', '_'], "x")
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    (admin, schema, url)
}

/// Each contract function, run once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let b = super::Backend::sqlite().await;
                super::$name(b.store.clone()).await;
                b.finish().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let b = super::Backend::postgres().await;
                super::$name(b.store.clone()).await;
                b.finish().await;
            }
        }
    )* };
}

contract!(
    concurrent_consents_keep_every_scope,
    scopes,
    clients,
    users_and_sessions,
    consents,
    grants_and_feed,
    codes_are_single_use,
    refresh_rotation_is_single_use,
    refresh_chains_rotate_in_place_and_know_their_earlier_tokens,
    rotation_writes_its_successors_or_nothing,
    issuance_is_all_or_nothing,
    access_tokens_and_jtis,
    access_tokens_of_a_rotation_carry_their_grants_state,
    audit_trail,
    assertion_jtis,
    admin_tokens,
    initial_access_tokens,
    housekeeping_purges_expired_rows,
    housekeeping_purges_every_free_grant_past_those_that_wait,
    housekeeping_purges_audit_events_past_retention,
    signing_keys,
    concurrent_writes_answer_each_for_itself,
    concurrent_revocations_of_a_grant_revoke_it_once,
);

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn scope(s: &str) -> Scope {
    Scope::parse(s).unwrap()
}

fn client(id: &str) -> Client {
    Client {
        id: id.into(),
        name: format!("Client {id}"),
        secret_hash: Some(hash_secret(id)),
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
        scope: scope("a b"),
        required_scope: scope("a"),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        token_format: TokenFormat::Jwt,
        created_at: NOW,
        auth_method: AuthMethod::ClientSecretBasic,
        metadata: ClientMetadata {
            client_uri: Some("https://app.example".into()),
            contacts: vec!["dev@app.example".into()],
            jwks: Some(serde_json::json!({"keys": []})),
            ..ClientMetadata::default()
        },
        dynamic: true,
        registration_token_hash: Some(hash_secret("rat")),
        previous_secret: Some((hash_secret("old"), NOW + 60)),
        secret_sealed: Some(vec![1, 2, 3]),
        updated_at: None,
    }
}

fn user(id: &str) -> User {
    User {
        id: id.into(),
        username: format!("user-{id}"),
        password_hash: "$argon2id$x".into(),
        created_at: NOW,
    }
}

fn grant(id: &str, client_id: &str, user_id: &str, expires_at: Option<i64>) -> Grant {
    Grant {
        id: id.into(),
        client_id: client_id.into(),
        user_id: Some(user_id.into()),
        scope: scope("a"),
        created_at: NOW,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    }
}

/// A client, a user and a grant of theirs.
async fn seed(store: &dyn Store) {
    store.create_client(&client("c1")).await.unwrap();
    store.create_client(&client("c2")).await.unwrap();
    store.create_user(&user("u1")).await.unwrap();
    store
        .create_grant(&grant("g1", "c1", "u1", None))
        .await
        .unwrap();
}

async fn scopes(store: Arc<dyn Store>) {
    let entry = ScopeEntry {
        name: "a".into(),
        description: "Read".into(),
    };
    store.upsert_scope(&entry).await.unwrap();
    store
        .upsert_scope(&ScopeEntry {
            name: "b".into(),
            description: "Write".into(),
        })
        .await
        .unwrap();
    store
        .upsert_scope(&ScopeEntry {
            name: "a".into(),
            description: "Read all".into(),
        })
        .await
        .unwrap();
    let list = store.list_scopes().await.unwrap();
    assert_eq!(
        list.iter()
            .map(|s| (s.name.as_str(), s.description.as_str()))
            .collect::<Vec<_>>(),
        [("a", "Read all"), ("b", "Write")]
    );
    assert!(store.delete_scope("a").await.unwrap());
    assert!(!store.delete_scope("a").await.unwrap());
}

async fn clients(store: Arc<dyn Store>) {
    let c = client("c1");
    store.create_client(&c).await.unwrap();
    assert!(store.create_client(&c).await.is_err(), "ids are unique");
    let got = store.get_client("c1").await.unwrap().unwrap();
    assert_eq!(got.scope, c.scope);
    assert_eq!(got.required_scope, c.required_scope);
    assert_eq!(got.metadata, c.metadata);
    assert_eq!(got.previous_secret, c.previous_secret);
    assert_eq!(got.secret_sealed, c.secret_sealed);
    assert_eq!(got.registration_token_hash, c.registration_token_hash);
    assert!(got.dynamic);
    for id in ["c3", "c2", "c4"] {
        store.create_client(&client(id)).await.unwrap();
    }
    let page = store.list_clients_page(None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    let page = store.list_clients_page(Some("c2"), 2).await.unwrap();
    assert_eq!(
        page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c3", "c4"]
    );
    assert_eq!(store.list_clients().await.unwrap().len(), 4);
    let mut changed = got.clone();
    changed.name = "Renamed".into();
    changed.metadata.logo_uri = Some("https://app.example/logo.png".into());
    changed.updated_at = Some(NOW + 5);
    assert!(store.update_client(&changed).await.unwrap());
    let again = store.get_client("c1").await.unwrap().unwrap();
    assert_eq!(again.name, "Renamed");
    assert_eq!(
        again.metadata.logo_uri.as_deref(),
        Some("https://app.example/logo.png")
    );
    assert!(store
        .set_client_secret("c1", &hash_secret("new"))
        .await
        .unwrap());
    assert_eq!(
        store.get_client("c1").await.unwrap().unwrap().secret_hash,
        Some(hash_secret("new"))
    );
    assert!(store.delete_client("c1").await.unwrap());
    assert!(store.get_client("c1").await.unwrap().is_none());
    assert!(!store.update_client(&changed).await.unwrap());
}

async fn users_and_sessions(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    assert!(
        store
            .create_user(&User {
                id: "u2".into(),
                ..user("u1")
            })
            .await
            .is_err(),
        "usernames are unique"
    );
    assert_eq!(
        store
            .get_user_by_username("user-u1")
            .await
            .unwrap()
            .unwrap()
            .id,
        "u1"
    );
    let session = Session {
        user_id: "u1".into(),
        auth_time: NOW,
        expires_at: NOW + 100,
    };
    store
        .create_session(&hash_secret("s1"), &session)
        .await
        .unwrap();
    assert!(store
        .get_session(&hash_secret("s1"), NOW + 99)
        .await
        .unwrap()
        .is_some());
    assert!(
        store
            .get_session(&hash_secret("s1"), NOW + 100)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    // A new password ends the sessions.
    assert!(store.set_password("user-u1", "$argon2id$y").await.unwrap());
    assert!(store
        .get_session(&hash_secret("s1"), NOW)
        .await
        .unwrap()
        .is_none());
    store
        .create_session(&hash_secret("s2"), &session)
        .await
        .unwrap();
    store.delete_session(&hash_secret("s2")).await.unwrap();
    assert!(store
        .get_session(&hash_secret("s2"), NOW)
        .await
        .unwrap()
        .is_none());
    // Deleting the user takes their grants along.
    assert!(store.delete_user("user-u1", NOW, NOW + DAY).await.unwrap());
    assert!(store.get_grant("g1").await.unwrap().is_none());
    assert!(!store.delete_user("user-u1", NOW, NOW + DAY).await.unwrap());
}

async fn consents(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    assert!(store.get_consent("u1", "c1", NOW).await.unwrap().is_none());
    store
        .add_consent("u1", "c1", &scope("a"), NOW, None)
        .await
        .unwrap();
    store
        .add_consent("u1", "c1", &scope("b"), NOW, Some(NOW + 10))
        .await
        .unwrap();
    let c = store.get_consent("u1", "c1", NOW).await.unwrap().unwrap();
    assert_eq!(c.scope, scope("a b"), "scopes are widened");
    assert_eq!(c.expires_at, Some(NOW + 10), "the new lifetime applies");
    assert!(
        store
            .get_consent("u1", "c1", NOW + 10)
            .await
            .unwrap()
            .is_none(),
        "lapsed"
    );
    store
        .add_consent("u1", "c1", &scope("b"), NOW + 20, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_consent("u1", "c1", NOW + 20)
            .await
            .unwrap()
            .unwrap()
            .scope,
        scope("b"),
        "a lapsed consent is not widened"
    );
    store.delete_consent("u1", "c1").await.unwrap();
    assert!(store.get_consent("u1", "c1", NOW).await.unwrap().is_none());
}

async fn grants_and_feed(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store
        .create_grant(&grant("g2", "c1", "u1", Some(NOW + 10)))
        .await
        .unwrap();
    store
        .create_grant(&grant("g3", "c2", "u1", None))
        .await
        .unwrap();
    assert!(store.grant_active("g2", NOW + 9).await.unwrap());
    assert!(!store.grant_active("g2", NOW + 10).await.unwrap(), "lapsed");
    assert!(!store.grant_active("nope", NOW).await.unwrap());
    assert_eq!(store.list_user_grants("u1").await.unwrap().len(), 3);
    assert_eq!(store.list_client_grants("c1").await.unwrap().len(), 2);
    store.touch_grant("g1", NOW + 3).await.unwrap();
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().last_used_at,
        Some(NOW + 3)
    );

    assert!(store
        .revoke_grant("g1", NOW + 4, Actor::Person, NOW + 700)
        .await
        .unwrap());
    assert!(
        !store
            .revoke_grant("g1", NOW + 5, Actor::Person, NOW + 700)
            .await
            .unwrap(),
        "revoking twice"
    );
    assert!(!store.grant_active("g1", NOW + 4).await.unwrap());
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 4)
    );
    assert_eq!(
        store.list_user_grants("u1").await.unwrap().len(),
        2,
        "revoked grants are not listed"
    );
    store
        .revoke_grant("g3", NOW + 6, Actor::Admin, NOW + 706)
        .await
        .unwrap();
    let feed = store.revocations_after(0, 10).await.unwrap();
    assert_eq!(feed.len(), 2, "one entry per revocation");
    assert_eq!(feed[0].grant_id.as_deref(), Some("g1"));
    assert_eq!(feed[0].exp, Some(NOW + 700));
    assert_eq!(feed[0].at, NOW + 4);
    assert!(feed[1].seq > feed[0].seq);
    assert_eq!(
        store.revocations_after(feed[0].seq, 10).await.unwrap(),
        feed[1..].to_vec()
    );
    assert_eq!(
        store.revocations_after(0, 1).await.unwrap().len(),
        1,
        "limited"
    );
}

fn code(hash: &str, grant_id: &str) -> AuthCode {
    AuthCode {
        code_hash: hash_secret(hash),
        grant_id: grant_id.into(),
        client_id: "c1".into(),
        user_id: "u1".into(),
        redirect_uri: "https://app.example/cb".into(),
        redirect_uri_given: true,
        scope: scope("a"),
        code_challenge: "x".repeat(43),
        auth_time: NOW,
        expires_at: NOW + 60,
    }
}

async fn codes_are_single_use(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store.insert_code(&code("k1", "g1")).await.unwrap();
    assert!(
        matches!(
            store
                .consume_code(&hash_secret("k1"), "c2", NOW)
                .await
                .unwrap(),
            CodeConsumption::Unknown
        ),
        "another client's code"
    );
    let attempts = join_all((0..20).map(|_| {
        let store = store.clone();
        async move {
            store
                .consume_code(&hash_secret("k1"), "c1", NOW)
                .await
                .unwrap()
        }
    }))
    .await;
    let consumed = attempts
        .iter()
        .filter(|a| matches!(a, CodeConsumption::Consumed(_)))
        .count();
    let used = attempts
        .iter()
        .filter(|a| matches!(a, CodeConsumption::AlreadyUsed { grant_id } if grant_id == "g1"))
        .count();
    assert_eq!((consumed, used), (1, 19));
    let CodeConsumption::Consumed(record) = attempts
        .into_iter()
        .find(|a| matches!(a, CodeConsumption::Consumed(_)))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(record.scope, scope("a"));
    assert!(record.redirect_uri_given);
    assert!(matches!(
        store
            .consume_code(&hash_secret("nope"), "c1", NOW)
            .await
            .unwrap(),
        CodeConsumption::Unknown
    ));
}

fn refresh(hash: &str, grant_id: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        token_hash: hash_secret(hash),
        grant_id: grant_id.into(),
        client_id: "c1".into(),
        user_id: Some("u1".into()),
        scope: scope("a b"),
        issued_at: NOW,
        expires_at,
        used_at: None,
    }
}

/// A token of the refresh token chain `chain` (of grant g1, client c1): its key and row.
fn chained(chain: &ChainId, issued_at: i64, expires_at: i64) -> (TokenHash, RefreshToken) {
    let key = refresh_key(&chained_token(chain));
    let row = RefreshToken {
        token_hash: key,
        issued_at,
        ..refresh("unused", "g1", expires_at)
    };
    (key, row)
}

/// Rotate `key` at `now` with `next` as its successor.
async fn rotate(
    store: &dyn Store,
    key: &TokenHash,
    client: &str,
    now: i64,
    next: Option<RefreshToken>,
) -> Rotation {
    let then = Issuance {
        refresh_token: next,
        ..Issuance::default()
    };
    store
        .rotate_refresh_token(key, client, now, &then)
        .await
        .unwrap()
}

/// RFC 9700 §4.14.2 with one row per chain: a successor of the same chain replaces the
/// current token in place, and every earlier token of the chain (by its chain id) is
/// recognised as used, however old.
async fn refresh_chains_rotate_in_place_and_know_their_earlier_tokens(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let store = store.as_ref();
    let chain = new_chain();
    let (k0, first) = chained(&chain, NOW, NOW + 100);
    let first_purge = first.purge_at();
    store.insert_refresh_token(&first).await.unwrap();
    // The second token expires a day later than the first.
    let (k1, second) = chained(&chain, NOW + 10, NOW + 10 + DAY);
    match rotate(store, &k0, "c1", NOW + 10, Some(second)).await {
        Rotation::Rotated(t) => {
            assert_eq!(
                t.token_hash, k1,
                "the successor is the chain's current token"
            );
            assert_eq!((t.issued_at, t.expires_at), (NOW + 10, NOW + 10 + DAY));
        }
        other => panic!("{other:?}"),
    }
    let (k2, third) = chained(&chain, NOW + 20, NOW + 20 + DAY);
    assert!(matches!(
        rotate(store, &k1, "c1", NOW + 20, Some(third)).await,
        Rotation::Rotated(_)
    ));

    // Only the current token is active; any token of the chain finds the chain.
    for (key, active) in [(&k0, false), (&k1, false), (&k2, true)] {
        let found = store
            .find_active_refresh_token(key, NOW + 30)
            .await
            .unwrap();
        assert_eq!(found.is_some(), active);
        let chain_row = store.find_refresh_token(key).await.unwrap().unwrap();
        assert_eq!(chain_row.token_hash, k2);
        let view = store.view_refresh_token(key).await.unwrap().unwrap();
        assert_eq!(view.token.token_hash, k2);
        assert_eq!(view.token.grant_id, "g1");
    }

    // Rotations that do not touch the grant still tell its last use: the current
    // token's issue time.
    let g1 = store.get_grant("g1").await.unwrap().unwrap();
    assert_eq!(g1.last_used_at, Some(NOW + 20));
    let listed = store.list_user_grants("u1").await.unwrap();
    let g1 = listed.iter().find(|g| g.id == "g1").unwrap();
    assert_eq!(g1.last_used_at, Some(NOW + 20));
    store.touch_grant("g1", NOW + 25).await.unwrap();
    let listed = store.list_client_grants("c1").await.unwrap();
    let g1 = listed.iter().find(|g| g.id == "g1").unwrap();
    assert_eq!(g1.last_used_at, Some(NOW + 25), "the later of the two");

    // The token before was rotated at NOW + 20; older ones, and a token made up with
    // the chain's id, are earlier tokens of unknown time: reuse either way.
    let forged = refresh_key(&chained_token(&chain));
    for (key, used_at) in [(&k1, NOW + 20), (&k0, 0), (&forged, 0)] {
        match rotate(store, key, "c1", NOW + 30, None).await {
            Rotation::AlreadyUsed(t) => {
                assert_eq!(t.used_at, Some(used_at));
                assert_eq!(t.grant_id, "g1");
            }
            other => panic!("{other:?}"),
        }
    }
    // Another client's, and a token of no chain, are invalid; nothing changed.
    assert!(matches!(
        rotate(store, &k1, "c2", NOW + 30, None).await,
        Rotation::Invalid
    ));
    assert!(matches!(
        rotate(store, &k2, "c2", NOW + 30, None).await,
        Rotation::Invalid
    ));
    let unknown = refresh_key(&chained_token(&new_chain()));
    assert!(matches!(
        rotate(store, &unknown, "c1", NOW + 30, None).await,
        Rotation::Invalid
    ));
    assert!(store.find_refresh_token(&unknown).await.unwrap().is_none());
    assert!(store
        .find_active_refresh_token(&k2, NOW + 30)
        .await
        .unwrap()
        .is_some());

    // The chain goes the day after its current token expires, not its first one's.
    let purged = store.purge_expired(first_purge, None, 10).await.unwrap();
    assert_eq!(purged.refresh_tokens, 0);
    assert!(store.find_refresh_token(&k2).await.unwrap().is_some());
    let purged = store
        .purge_expired(first_purge + DAY, None, 10)
        .await
        .unwrap();
    assert_eq!(purged.refresh_tokens, 1);
    assert!(store.find_refresh_token(&k0).await.unwrap().is_none());
}

async fn refresh_rotation_is_single_use(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store
        .insert_refresh_token(&refresh("r1", "g1", NOW + 100))
        .await
        .unwrap();
    assert!(store
        .find_active_refresh_token(&hash_secret("r1"), NOW)
        .await
        .unwrap()
        .is_some());
    assert!(
        matches!(
            store
                .rotate_refresh_token(&hash_secret("r1"), "c2", NOW, &Issuance::default())
                .await
                .unwrap(),
            Rotation::Invalid
        ),
        "another client's token"
    );
    let attempts = join_all((0..20).map(|_| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token(&hash_secret("r1"), "c1", NOW + 1, &Issuance::default())
                .await
                .unwrap()
        }
    }))
    .await;
    let rotated = attempts
        .iter()
        .filter(|a| matches!(a, Rotation::Rotated(_)))
        .count();
    let reused = attempts
        .iter()
        .filter(|a| matches!(a, Rotation::AlreadyUsed(t) if t.used_at == Some(NOW + 1)))
        .count();
    assert_eq!((rotated, reused), (1, 19));
    assert!(
        store
            .find_active_refresh_token(&hash_secret("r1"), NOW + 1)
            .await
            .unwrap()
            .is_none(),
        "used"
    );
    assert!(store
        .find_refresh_token(&hash_secret("r1"))
        .await
        .unwrap()
        .is_some());
    // The view: the row whatever its state, with when its grant lapses.
    let view = store
        .view_refresh_token(&hash_secret("r1"))
        .await
        .unwrap()
        .expect("a used token is still seen");
    assert_eq!(view.token.grant_id, "g1");
    assert!(view.token.used_at.is_some());
    assert_eq!(view.grant_expires_at, None, "g1 does not lapse");
    store
        .create_grant(&grant("g-lapsing", "c1", "u1", Some(NOW + 100)))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("r-lapsing", "g-lapsing", NOW + 50))
        .await
        .unwrap();
    let view = store
        .view_refresh_token(&hash_secret("r-lapsing"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.grant_expires_at, Some(NOW + 100));
    assert!(store
        .view_refresh_token(&hash_secret("r-unknown"))
        .await
        .unwrap()
        .is_none());
    // Expired, and of a revoked grant: invalid and left unused.
    store
        .insert_refresh_token(&refresh("r2", "g1", NOW + 5))
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh_token(&hash_secret("r2"), "c1", NOW + 5, &Issuance::default())
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    store
        .insert_refresh_token(&refresh("r3", "g1", NOW + 100))
        .await
        .unwrap();
    store
        .revoke_grant("g1", NOW + 2, Actor::Client, NOW + 700)
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh_token(&hash_secret("r3"), "c1", NOW + 3, &Issuance::default())
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    assert!(store
        .find_active_refresh_token(&hash_secret("r3"), NOW + 3)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .find_refresh_token(&hash_secret("r3"))
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None
    );
}

/// An opaque access token of client c1 and user u1, of `grant` if any, valid for 600 s.
fn opaque(hash: &str, grant: Option<&str>) -> OpaqueAccessToken {
    OpaqueAccessToken {
        token_hash: hash_secret(hash),
        jti: format!("jti-{hash}"),
        grant_id: grant.map(str::to_owned),
        client_id: "c1".into(),
        // A token of a user is of one of the user's grants (g1 and g2 are u1's).
        user_id: grant.map(|_| "u1".into()),
        scope: scope("a"),
        audience: "https://api.example".into(),
        issued_at: NOW,
        expires_at: NOW + 600,
        revoked_at: None,
    }
}

/// What a refresh leaves behind: the successors, the grant's use time, an audit event
/// whose username the store looks up.
fn successors(n: &str, at: i64) -> Issuance {
    Issuance {
        access_token: Some(opaque(&format!("at-{n}"), Some("g1"))),
        refresh_token: Some(refresh(&format!("rt-{n}"), "g1", NOW + 100)),
        grant_used: Some(("g1".into(), at)),
        audit: Some(refresh_event(at, format!("refresh {n}"))),
    }
}

/// The audit event of a refresh of grant g1 (user u1, client c1), its username left
/// for the store to look up.
fn refresh_event(at: i64, detail: String) -> AuditEvent {
    AuditEvent {
        id: 0,
        at,
        kind: "refresh".into(),
        actor: Actor::Client,
        user_id: Some("u1".into()),
        username: None,
        client_id: Some("c1".into()),
        grant_id: Some("g1".into()),
        detail,
    }
}

async fn rotation_writes_its_successors_or_nothing(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store
        .insert_refresh_token(&refresh("r1", "g1", NOW + 100))
        .await
        .unwrap();
    // Concurrent rotations of one token, each with its own successors: exactly one
    // rotates, and only its successors exist afterwards.
    let attempts = join_all((0..8).map(|n| {
        let store = store.clone();
        async move {
            let outcome = store
                .rotate_refresh_token(
                    &hash_secret("r1"),
                    "c1",
                    NOW + 1,
                    &successors(&n.to_string(), NOW + 1),
                )
                .await
                .unwrap();
            (n, outcome)
        }
    }))
    .await;
    let winners: Vec<_> = attempts
        .iter()
        .filter(|(_, a)| matches!(a, Rotation::Rotated(_)))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "{attempts:?}");
    for n in 0..8 {
        let access = store
            .find_active_access_token(&hash_secret(&format!("at-{n}")), NOW + 1)
            .await
            .unwrap();
        let refresh = store
            .find_active_refresh_token(&hash_secret(&format!("rt-{n}")), NOW + 1)
            .await
            .unwrap();
        let won = winners.contains(&n);
        assert_eq!(access.is_some(), won, "access token of attempt {n}");
        assert_eq!(refresh.is_some(), won, "refresh token of attempt {n}");
    }
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().last_used_at,
        Some(NOW + 1)
    );
    let events = store
        .list_audit(&AuditFilter {
            user_id: Some("u1".into()),
            client_id: None,
            limit: 50,
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "one audit event: the winner's");
    assert_eq!(events[0].username.as_deref(), Some("user-u1"));
    assert_eq!(events[0].detail, format!("refresh {}", winners[0]));

    // Successors that cannot be written (a refresh token hash that exists already):
    // the error is returned and the presented token stays unused.
    store
        .insert_refresh_token(&refresh("r2", "g1", NOW + 100))
        .await
        .unwrap();
    let mut clash = successors("clash", NOW + 2);
    clash.refresh_token = Some(refresh(&format!("rt-{}", winners[0]), "g1", NOW + 100));
    assert!(store
        .rotate_refresh_token(&hash_secret("r2"), "c1", NOW + 2, &clash)
        .await
        .is_err());
    assert!(
        store
            .find_active_refresh_token(&hash_secret("r2"), NOW + 2)
            .await
            .unwrap()
            .is_some(),
        "a failed rotation leaves the token unused"
    );
    assert!(store
        .find_access_token(&hash_secret("at-clash"))
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store
            .rotate_refresh_token(
                &hash_secret("r2"),
                "c1",
                NOW + 3,
                &successors("r2", NOW + 3)
            )
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
}

async fn issuance_is_all_or_nothing(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store.issue_tokens(&successors("a", NOW + 5)).await.unwrap();
    assert!(store
        .find_active_access_token(&hash_secret("at-a"), NOW + 5)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_active_refresh_token(&hash_secret("rt-a"), NOW + 5)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().last_used_at,
        Some(NOW + 5)
    );
    // The access token goes first; the refresh token clashes: neither is kept, nor the
    // grant's use time, nor the audit event.
    let mut clash = successors("b", NOW + 9);
    clash.refresh_token = Some(refresh("rt-a", "g1", NOW + 100));
    // Several at once, so that on SQLite they share a group commit with a good one.
    let fine = successors("c", NOW + 7);
    let (bad, good) = tokio::join!(store.issue_tokens(&clash), store.issue_tokens(&fine));
    assert!(bad.is_err());
    good.unwrap();
    assert!(store
        .find_access_token(&hash_secret("at-b"))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_access_token(&hash_secret("at-c"))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().last_used_at,
        Some(NOW + 7)
    );
    let details: Vec<_> = store
        .list_audit(&AuditFilter {
            user_id: None,
            client_id: Some("c1".into()),
            limit: 50,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.detail)
        .collect();
    assert_eq!(details, ["refresh c", "refresh a"]);
    // Nothing to write is no error.
    store.issue_tokens(&Issuance::default()).await.unwrap();
}

async fn access_tokens_and_jtis(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let token = opaque;
    store.insert_access_token(&token("t1", None)).await.unwrap();
    store
        .insert_access_token(&token("t2", Some("g1")))
        .await
        .unwrap();
    let found = store
        .find_active_access_token(&hash_secret("t1"), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.jti, "jti-t1");
    assert!(
        store
            .find_active_access_token(&hash_secret("t1"), NOW + 600)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    store
        .revoke_access_token(&hash_secret("t1"), NOW)
        .await
        .unwrap();
    assert!(store
        .find_active_access_token(&hash_secret("t1"), NOW)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .find_access_token(&hash_secret("t1"))
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW),
        "found whatever its state, with its revocation time"
    );
    // The view: the row whatever its state, its grant's state and its user's name.
    let view = |hash: &'static str, at: i64| {
        let store = store.clone();
        async move {
            store
                .view_access_token(&hash_secret(hash), at)
                .await
                .unwrap()
        }
    };
    let t1 = view("t1", NOW)
        .await
        .expect("a revoked token is still seen");
    assert_eq!(t1.token.revoked_at, Some(NOW));
    assert!(
        t1.grant_active,
        "a token without a grant has no grant to lapse"
    );
    assert_eq!(t1.username, None, "a client's own token has no user");
    let t2 = view("t2", NOW).await.unwrap();
    assert_eq!(t2.token.grant_id.as_deref(), Some("g1"));
    assert!(t2.grant_active);
    assert_eq!(t2.username.as_deref(), Some("user-u1"));
    assert!(view("t-unknown", NOW).await.is_none());
    // A token of a grant that does not exist is refused, and a token of a user is of a
    // grant.
    assert!(store
        .insert_access_token(&token("t-orphan", Some("g-none")))
        .await
        .is_err());
    assert!(view("t-orphan", NOW).await.is_none());
    let mut userless_grant = token("t-no-grant", None);
    userless_grant.user_id = Some("u1".into());
    assert!(store.insert_access_token(&userless_grant).await.is_err());
    assert!(view("t-no-grant", NOW).await.is_none());
    store
        .create_grant(&grant("g-lapsing", "c1", "u1", Some(NOW + 60)))
        .await
        .unwrap();
    store
        .insert_access_token(&token("t3", Some("g-lapsing")))
        .await
        .unwrap();
    assert!(view("t3", NOW).await.unwrap().grant_active);
    assert!(
        !view("t3", NOW + 60).await.unwrap().grant_active,
        "the grant has lapsed"
    );
    store
        .revoke_grant("g1", NOW, Actor::Person, NOW + 700)
        .await
        .unwrap();
    assert!(
        store
            .find_active_access_token(&hash_secret("t2"), NOW)
            .await
            .unwrap()
            .is_none(),
        "grant revoked"
    );
    assert!(
        !view("t2", NOW).await.unwrap().grant_active,
        "grant revoked"
    );
    assert!(
        view("t3", NOW).await.unwrap().grant_active,
        "another grant's token is not touched by g1's revocation"
    );
    assert_eq!(
        view("t2", NOW).await.unwrap().token.revoked_at,
        None,
        "the token itself was not revoked: its grant was"
    );
    // A token inserted after its grant was revoked (a token request that raced the
    // revocation) is seen under a revoked grant too.
    store
        .insert_access_token(&token("t5", Some("g1")))
        .await
        .unwrap();
    assert!(
        !view("t5", NOW).await.unwrap().grant_active,
        "inserted after its grant was revoked"
    );
    let user_less = OpaqueAccessToken {
        user_id: None,
        ..token("t4", None)
    };
    store.insert_access_token(&user_less).await.unwrap();
    assert_eq!(view("t4", NOW).await.unwrap().username, None);

    assert!(!store.jti_revoked("j9").await.unwrap());
    store.revoke_jti("j9", NOW + 600, NOW).await.unwrap();
    store.revoke_jti("j9", NOW + 600, NOW).await.unwrap();
    assert!(store.jti_revoked("j9").await.unwrap());
    let feed = store.revocations_after(0, 10).await.unwrap();
    let jtis: Vec<_> = feed
        .iter()
        .filter(|r| r.jti.as_deref() == Some("j9"))
        .collect();
    assert_eq!(jtis.len(), 1, "revoking a jti twice appends once");
    assert_eq!(jtis[0].exp, Some(NOW + 600));

    // A user's deletion takes their grants. Their tokens stay until they expire, and
    // are refused: each grant is in the feed, g1 since its revocation, g-lapsing (still
    // live) from the deletion. A client's own tokens are untouched.
    let before = store.revocations_after(0, 100).await.unwrap().len();
    assert!(store.delete_user("user-u1", NOW, NOW + 700).await.unwrap());
    for refused in ["t2", "t3", "t5"] {
        assert!(
            !view(refused, NOW).await.unwrap().grant_active,
            "{refused} is refused once its user is gone"
        );
    }
    let feed = store.revocations_after(0, 100).await.unwrap();
    assert_eq!(
        feed.len(),
        before + 1,
        "one entry, for the grant still live"
    );
    let entry = feed.last().unwrap();
    assert_eq!(entry.grant_id.as_deref(), Some("g-lapsing"));
    assert_eq!(entry.exp, Some(NOW + 700));
    assert!(view("t1", NOW).await.unwrap().grant_active);
    assert!(view("t4", NOW).await.unwrap().grant_active);
}

/// The access token a refresh rotation writes carries its grant's state and its user's
/// name, with or without the grant's use time in the same write (PostgreSQL writes
/// both in one statement, the copies then come from the grant's update), and is seen
/// under a revoked grant once the grant is revoked.
async fn access_tokens_of_a_rotation_carry_their_grants_state(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let store = store.as_ref();
    store
        .create_grant(&grant("g-ends", "c1", "u1", Some(NOW + 60)))
        .await
        .unwrap();
    let chain = new_chain();
    let (k0, first) = chained(&chain, NOW, NOW + DAY);
    let first = RefreshToken {
        grant_id: "g-ends".into(),
        ..first
    };
    store.insert_refresh_token(&first).await.unwrap();
    let mut key = k0;
    for (i, touch) in [true, false].into_iter().enumerate() {
        let (next_key, next) = chained(&chain, NOW + 1, NOW + DAY);
        let hash = format!("rotated-{i}");
        let then = Issuance {
            access_token: Some(opaque(&hash, Some("g-ends"))),
            refresh_token: Some(RefreshToken {
                grant_id: "g-ends".into(),
                ..next
            }),
            grant_used: touch.then(|| ("g-ends".to_owned(), NOW + 1)),
            ..Issuance::default()
        };
        let rotation = store
            .rotate_refresh_token(&key, "c1", NOW + 1, &then)
            .await
            .unwrap();
        assert!(matches!(rotation, Rotation::Rotated(_)), "{rotation:?}");
        key = next_key;
        let key = hash_secret(&hash);
        let view = |at| store.view_access_token(&key, at);
        let seen = view(NOW + 1).await.unwrap().expect("written");
        assert!(seen.grant_active, "grant use written: {touch}");
        assert_eq!(seen.username.as_deref(), Some("user-u1"));
        assert!(
            !view(NOW + 60).await.unwrap().unwrap().grant_active,
            "the copy knows when the grant lapses (grant use written: {touch})"
        );
    }
    store
        .revoke_grant("g-ends", NOW + 2, Actor::Person, NOW + 700)
        .await
        .unwrap();
    for hash in ["rotated-0", "rotated-1"] {
        let seen = store
            .view_access_token(&hash_secret(hash), NOW + 2)
            .await
            .unwrap()
            .unwrap();
        assert!(!seen.grant_active, "{hash}: grant revoked");
    }
}

/// `audit_before`: events recorded before it go, oldest (by id) first, and only up to
/// the first one to keep; without it, the trail is kept whole.
async fn housekeeping_purges_audit_events_past_retention(store: Arc<dyn Store>) {
    // Recorded in this order; the fifth with a clock behind the fourth's (another
    // instance), so it stays until the fourth goes.
    let ats = [
        NOW - 500,
        NOW - 400,
        NOW - 300,
        NOW - 100,
        NOW - 200,
        NOW - 50,
        NOW,
    ];
    for (i, at) in ats.iter().enumerate() {
        store
            .record_audit(&refresh_event(*at, format!("event {i}")))
            .await
            .unwrap();
    }
    let left = || async {
        let mut events = store
            .list_audit(&AuditFilter {
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        events.reverse();
        events.into_iter().map(|e| e.at - NOW).collect::<Vec<_>>()
    };

    let kept = store.purge_expired(NOW, None, 2).await.unwrap();
    assert_eq!(
        kept,
        PurgeReport::default(),
        "no retention: the trail is kept"
    );
    assert_eq!(left().await.len(), 7);

    // Nothing before the cutoff at the head: nothing goes, whatever follows.
    let none = store.purge_expired(NOW, Some(NOW - 600), 2).await.unwrap();
    assert_eq!(none.audit_events, 0);

    // The three oldest go; the event at -200 is kept
    // behind the one at -100, recorded before it.
    let report = store.purge_expired(NOW, Some(NOW - 150), 2).await.unwrap();
    assert_eq!(
        report,
        PurgeReport {
            audit_events: 3,
            ..PurgeReport::default()
        }
    );
    assert_eq!(left().await, [-100, -200, -50, 0]);

    // Once the event at -100 is old enough too, the one behind it goes with it.
    let later = store.purge_expired(NOW, Some(NOW - 60), 2).await.unwrap();
    assert_eq!(later.audit_events, 2);
    assert_eq!(left().await, [-50, 0]);

    // Everything old: the whole trail goes.
    let all = store.purge_expired(NOW, Some(NOW + 1), 2).await.unwrap();
    assert_eq!(all.audit_events, 2);
    assert_eq!(all.total(), 2);
    assert!(left().await.is_empty());
}

async fn audit_trail(store: Arc<dyn Store>) {
    let event = |id: i64, user: &str, client: &str, kind: &str| AuditEvent {
        id,
        at: NOW + id,
        kind: kind.into(),
        actor: Actor::System,
        user_id: Some(user.into()),
        username: Some(format!("name-{user}")),
        client_id: Some(client.into()),
        grant_id: None,
        detail: format!("event {id}"),
    };
    for (i, (u, c, k)) in [
        ("u1", "c1", "grant"),
        ("u2", "c1", "refresh"),
        ("u1", "c2", "revoke"),
    ]
    .iter()
    .enumerate()
    {
        store.record_audit(&event(i as i64, u, c, k)).await.unwrap();
    }
    let all = store
        .list_audit(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["revoke", "refresh", "grant"],
        "newest first"
    );
    let mine = store
        .list_audit(&AuditFilter {
            user_id: Some("u1".into()),
            client_id: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 2);
    let both = store
        .list_audit(&AuditFilter {
            user_id: Some("u1".into()),
            client_id: Some("c1".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].actor, Actor::System);
    assert_eq!(both[0].username.as_deref(), Some("name-u1"));
    assert_eq!(
        store
            .list_audit(&AuditFilter {
                limit: 1,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn assertion_jtis(store: Arc<dyn Store>) {
    assert!(store
        .use_assertion_jti("c1", "j1", NOW + 60, NOW)
        .await
        .unwrap());
    assert!(
        !store
            .use_assertion_jti("c1", "j1", NOW + 60, NOW + 1)
            .await
            .unwrap(),
        "replay"
    );
    assert!(
        store
            .use_assertion_jti("c2", "j1", NOW + 60, NOW + 1)
            .await
            .unwrap(),
        "per client"
    );
    assert!(
        store
            .use_assertion_jti("c1", "j1", NOW + 200, NOW + 60)
            .await
            .unwrap(),
        "after expiry"
    );
    let attempts = join_all((0..10).map(|_| {
        let store = store.clone();
        async move {
            store
                .use_assertion_jti("c3", "race", NOW + 60, NOW)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(attempts.iter().filter(|a| **a).count(), 1);
}

async fn admin_tokens(store: Arc<dyn Store>) {
    let token = AdminToken {
        id: "a1".into(),
        name: "ops".into(),
        token_hash: hash_secret("t"),
        created_at: NOW,
        revoked_at: None,
    };
    store.create_admin_token(&token).await.unwrap();
    assert_eq!(
        store
            .find_admin_token(&hash_secret("t"))
            .await
            .unwrap()
            .unwrap()
            .name,
        "ops"
    );
    assert_eq!(store.list_admin_tokens().await.unwrap().len(), 1);
    assert!(store.revoke_admin_token("a1", NOW).await.unwrap());
    assert!(!store.revoke_admin_token("a1", NOW).await.unwrap());
    assert!(store
        .find_admin_token(&hash_secret("t"))
        .await
        .unwrap()
        .is_none());
}

async fn initial_access_tokens(store: Arc<dyn Store>) {
    let iat = |id: &str, uses: Option<i64>, expires_at: Option<i64>| InitialAccessToken {
        id: id.into(),
        token_hash: hash_secret(id),
        scope: scope("a"),
        uses_left: uses,
        expires_at,
        created_at: NOW,
    };
    store
        .create_initial_access_token(&iat("twice", Some(2), None))
        .await
        .unwrap();
    assert!(store
        .find_initial_access_token(&hash_secret("twice"), NOW)
        .await
        .unwrap()
        .is_some());
    let uses = join_all((0..6).map(|_| {
        let store = store.clone();
        async move {
            store
                .use_initial_access_token(&hash_secret("twice"), NOW)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(uses.iter().filter(|u| u.is_some()).count(), 2);
    assert!(
        store
            .find_initial_access_token(&hash_secret("twice"), NOW)
            .await
            .unwrap()
            .is_none(),
        "used up"
    );
    store
        .create_initial_access_token(&iat("short", None, Some(NOW + 5)))
        .await
        .unwrap();
    assert_eq!(
        store
            .use_initial_access_token(&hash_secret("short"), NOW)
            .await
            .unwrap()
            .unwrap()
            .scope,
        scope("a")
    );
    assert!(
        store
            .use_initial_access_token(&hash_secret("short"), NOW + 5)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
}

async fn concurrent_consents_keep_every_scope(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let names: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let results = join_all(names.iter().map(|name| {
        let store = store.clone();
        let name = name.clone();
        async move {
            store
                .add_consent("u1", "c1", &scope(&name), NOW, None)
                .await
        }
    }))
    .await;
    for r in results {
        r.unwrap();
    }
    let consent = store.get_consent("u1", "c1", NOW).await.unwrap().unwrap();
    assert_eq!(
        consent.scope,
        Scope::from_tokens(names),
        "no consent overwrote another"
    );
}

async fn housekeeping_purges_expired_rows(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let past = NOW - 1;
    let live = NOW + 100;
    for (id, expires_at) in [
        ("g-dead", None),
        ("g-lapsed", Some(past)),
        ("g-rev", None),
        ("g-future", Some(NOW + 10)),
    ] {
        store
            .create_grant(&grant(id, "c1", "u1", expires_at))
            .await
            .unwrap();
    }
    let access = |hash: &str, grant: Option<&str>, expires_at: i64| OpaqueAccessToken {
        token_hash: hash_secret(hash),
        jti: format!("jti-{hash}"),
        grant_id: grant.map(str::to_owned),
        client_id: "c1".into(),
        user_id: grant.map(|_| "u1".into()),
        scope: scope("a"),
        audience: "https://api.example".into(),
        issued_at: NOW - 600,
        expires_at,
        revoked_at: None,
    };
    let session = |expires_at| Session {
        user_id: "u1".into(),
        auth_time: NOW - 600,
        expires_at,
    };

    // Expired: three of each kind on the live grant g1 (so batches of 2 repeat), and
    // one of each on g-dead, a revoked grant that may go once they have.
    for (hash, grant_id) in [("k1", "g1"), ("k2", "g1"), ("k3", "g1"), ("kd", "g-dead")] {
        store
            .insert_code(&AuthCode {
                expires_at: past,
                ..code(hash, grant_id)
            })
            .await
            .unwrap();
        // A refresh token chain goes the day after its token expired (`purge_at`).
        store
            .insert_refresh_token(&refresh(&format!("r{hash}"), grant_id, past - DAY))
            .await
            .unwrap();
        store
            .insert_access_token(&access(&format!("t{hash}"), Some(grant_id), past))
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .consume_code(&hash_secret("k1"), "c1", NOW - 30)
            .await
            .unwrap(),
        CodeConsumption::Consumed(_)
    ));
    for i in 0..3 {
        store
            .create_session(&hash_secret(&format!("s{i}")), &session(past))
            .await
            .unwrap();
        store
            .revoke_jti(&format!("j{i}"), past, NOW - 600)
            .await
            .unwrap();
        assert!(store
            .use_assertion_jti("c1", &format!("a{i}"), past, NOW - 600)
            .await
            .unwrap());
    }
    store
        .revoke_grant("g-dead", NOW - 50, Actor::Admin, past)
        .await
        .unwrap();

    // Live.
    store.insert_code(&code("k-live", "g1")).await.unwrap();
    store
        .insert_refresh_token(&refresh("r-live", "g1", live))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("r-rev", "g-rev", live))
        .await
        .unwrap();
    store
        .insert_access_token(&access("t-live", None, live))
        .await
        .unwrap();
    store
        .create_session(&hash_secret("s-live"), &session(live))
        .await
        .unwrap();
    store.revoke_jti("j-live", live, NOW - 10).await.unwrap();
    assert!(store
        .use_assertion_jti("c1", "a-live", live, NOW - 10)
        .await
        .unwrap());
    store
        .revoke_grant("g-rev", NOW - 50, Actor::Person, live)
        .await
        .unwrap();

    let report = store.purge_expired(NOW, None, 2).await.unwrap();
    assert_eq!(
        report,
        PurgeReport {
            auth_codes: 4,
            sessions: 3,
            refresh_tokens: 4,
            access_tokens: 4,
            revoked_jtis: 3,
            client_assertion_jtis: 3,
            revocations: 4,
            grants: 2,
            audit_events: 0,
        }
    );
    assert_eq!(report.total(), 27);
    assert_eq!(
        store.purge_expired(NOW, None, 2).await.unwrap(),
        PurgeReport::default(),
        "nothing left to purge"
    );

    // The expired rows are gone.
    for hash in ["rk1", "rk2", "rk3", "rkd"] {
        assert!(store
            .find_refresh_token(&hash_secret(hash))
            .await
            .unwrap()
            .is_none());
    }
    for hash in ["tk1", "tk2", "tkd"] {
        assert!(store
            .find_access_token(&hash_secret(hash))
            .await
            .unwrap()
            .is_none());
    }
    assert!(matches!(
        store
            .consume_code(&hash_secret("k2"), "c1", NOW)
            .await
            .unwrap(),
        CodeConsumption::Unknown
    ));
    assert!(store
        .get_session(&hash_secret("s0"), past - 10)
        .await
        .unwrap()
        .is_none());
    assert!(!store.jti_revoked("j0").await.unwrap());
    assert!(store.get_grant("g-dead").await.unwrap().is_none());
    assert!(store.get_grant("g-lapsed").await.unwrap().is_none());

    // The live ones remain.
    for id in ["g1", "g-rev", "g-future"] {
        assert!(store.get_grant(id).await.unwrap().is_some(), "{id}");
    }
    for hash in ["r-live", "r-rev"] {
        assert!(store
            .find_refresh_token(&hash_secret(hash))
            .await
            .unwrap()
            .is_some());
    }
    assert!(store
        .find_active_access_token(&hash_secret("t-live"), NOW)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .get_session(&hash_secret("s-live"), NOW)
        .await
        .unwrap()
        .is_some());
    assert!(store.jti_revoked("j-live").await.unwrap());
    assert!(
        !store
            .use_assertion_jti("c1", "a-live", live, NOW)
            .await
            .unwrap(),
        "still a replay"
    );
    let feed = store.revocations_after(0, 100).await.unwrap();
    let mut kept: Vec<_> = feed
        .iter()
        .map(|r| r.grant_id.clone().or(r.jti.clone()).unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["g-rev", "j-live"]);
    assert!(matches!(
        store
            .consume_code(&hash_secret("k-live"), "c1", NOW)
            .await
            .unwrap(),
        CodeConsumption::Consumed(_)
    ));

    // The revoked grant goes once its refresh token chain has: on the day after the
    // chain's token expired, not before.
    let at_expiry = store.purge_expired(live, None, 2).await.unwrap();
    assert_eq!(at_expiry.refresh_tokens, 0);
    assert_eq!(at_expiry.grants, 1, "the lapsed g-future");
    assert!(store.get_grant("g-rev").await.unwrap().is_some());
    let later = store.purge_expired(live + DAY, None, 2).await.unwrap();
    assert_eq!(later.refresh_tokens, 2);
    assert_eq!(later.grants, 1, "g-rev");
    assert!(store.get_grant("g-rev").await.unwrap().is_none());
    assert!(store.get_grant("g-future").await.unwrap().is_none());
    assert!(
        store.get_grant("g1").await.unwrap().is_some(),
        "an active grant stays"
    );
}

/// Lapsed and revoked grants go once their tokens have; those whose tokens remain are
/// passed over, not in the way: batches smaller than the grants that wait, lapsed at
/// the same second (ties of `expires_at`) or a second apart, and inserted in an order
/// unlike that of their ids, still reach every grant that may go, in one purge.
async fn housekeeping_purges_every_free_grant_past_those_that_wait(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let live = NOW + 100;
    let mut free = Vec::new();
    let mut waiting = Vec::new();
    for i in 0..30 {
        // Two thirds lapsed at the same second; ids out of insertion order.
        let lapsed = if i % 3 == 2 { NOW - 1 - i } else { NOW - 40 };
        let id = format!("g-{:02}", (i * 7) % 30);
        store
            .create_grant(&grant(&id, "c1", "u1", Some(lapsed)))
            .await
            .unwrap();
        // Most wait for a refresh token chain, which stays until the day after its
        // token expired.
        if i % 4 != 0 {
            store
                .insert_refresh_token(&refresh(&format!("r{id}"), &id, live))
                .await
                .unwrap();
            waiting.push(id);
        } else {
            free.push(id);
        }
    }
    // Revoked grants: one in three waits for its chain, one for its entry in the
    // revocation feed (introspection reads it until the grant's access tokens have
    // expired), and one has neither left.
    for i in 0..6 {
        let id = format!("g-rev-{i}");
        store
            .create_grant(&grant(&id, "c1", "u1", None))
            .await
            .unwrap();
        let forget_after = match i % 3 {
            0 => {
                store
                    .insert_refresh_token(&refresh(&format!("r{id}"), &id, live))
                    .await
                    .unwrap();
                waiting.push(id.clone());
                NOW - 1
            }
            1 => {
                waiting.push(id.clone());
                live
            }
            _ => {
                free.push(id.clone());
                NOW - 1
            }
        };
        store
            .revoke_grant(&id, NOW - 50, Actor::Admin, forget_after)
            .await
            .unwrap();
    }
    assert_eq!((free.len(), waiting.len()), (10, 26));

    let report = store.purge_expired(NOW, None, 2).await.unwrap();
    assert_eq!(report.grants, free.len() as u64, "{report:?}");
    for id in &free {
        assert!(store.get_grant(id).await.unwrap().is_none(), "{id} went");
    }
    for id in waiting.iter().chain([&"g1".to_owned()]) {
        assert!(store.get_grant(id).await.unwrap().is_some(), "{id} stays");
    }
    assert_eq!(
        store.purge_expired(NOW, None, 2).await.unwrap(),
        PurgeReport::default()
    );
    // The day after their chains' tokens expired, the chains go, the feed entries
    // too, then their grants.
    let later = store.purge_expired(live + DAY, None, 2).await.unwrap();
    assert_eq!(
        (later.refresh_tokens, later.revocations, later.grants),
        (24, 2, waiting.len() as u64)
    );
    assert!(store.get_grant("g1").await.unwrap().is_some());
}

/// SQLite: the writer does not checkpoint the WAL itself, the checkpointer thread
/// does, so the WAL is started over and stays small however much is written (without
/// checkpoints these writes leave a WAL of tens of megabytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wal.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    seed(&store).await;
    let wal = dir.path().join("wal.db-wal");
    let mut largest = 0;
    for burst in 0..200 {
        let writes = (0..50).map(|i| {
            let store = &store;
            async move {
                store
                    .insert_access_token(&opaque(&format!("at-{burst}-{i}"), Some("g1")))
                    .await
            }
        });
        for written in futures::future::join_all(writes).await {
            written.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert!(largest < 4 * 1024 * 1024, "the WAL grew to {largest} bytes");
    assert!(store
        .find_access_token(&hash_secret("at-199-49"))
        .await
        .unwrap()
        .is_some());
}

/// Insert `token` into `store` while another connection holds what the insert needs:
/// the insert is still waiting 300 ms later; once `release` has run, it succeeds
/// within 5 s.
async fn insert_waits_for(
    store: Arc<dyn Store>,
    token: OpaqueAccessToken,
    what: &str,
    release: impl std::future::Future<Output = ()>,
) {
    let insert = tokio::spawn(async move { store.insert_access_token(&token).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!insert.is_finished(), "the insert did not wait for {what}");
    release.await;
    tokio::time::timeout(std::time::Duration::from_secs(5), insert)
        .await
        .unwrap_or_else(|_| panic!("the insert is not done 5 s after {what} ended"))
        .unwrap()
        .expect("the insert succeeds after waiting");
}

/// SQLite: a token write waits while another process holds the write lock (`tessera
/// gc`, an admin command), neither failing with `SQLITE_BUSY` nor going through, and
/// is committed once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_for_a_lock_held_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("locked.db");
    let store = Arc::new(
        SqliteStore::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap(),
    );
    seed(&*store).await;
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    insert_waits_for(
        store.clone(),
        opaque("at-locked", Some("g1")),
        "the lock",
        async { other.execute_batch("COMMIT").unwrap() },
    )
    .await;
    assert!(store
        .find_access_token(&hash_secret("at-locked"))
        .await
        .unwrap()
        .is_some());
}

/// PostgreSQL: an access token inserted while its grant is being revoked on another
/// connection (another instance) carries the revocation. The other connection runs
/// `revoke_grant`'s statements (its chains' copies, the grant's row, its tokens' copies) and
/// commits only after the insert has started: the insert's snapshot then still shows
/// the grant active, and the revocation's update of the tokens has already run. The
/// insert reads the grant with `FOR SHARE`, so it waits for that commit and copies the
/// revoked grant; without the lock it would copy an active grant for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_token_inserted_during_a_revocation_carries_it() {
    let (b, schema, mut other) = postgres_and_another_transaction().await;
    let store = b.store.clone();
    for statement in revocation_of_g1(&schema) {
        sqlx::query(&statement).execute(&mut *other).await.unwrap();
    }
    insert_waits_for(
        store.clone(),
        opaque("during", Some("g1")),
        "the revocation in progress",
        async {
            sqlx::query("COMMIT").execute(&mut *other).await.unwrap();
        },
    )
    .await;
    let seen = store
        .view_access_token(&hash_secret("during"), NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(!seen.grant_active, "the token's copy missed the revocation");
    drop(other);
    drop(store);
    b.finish().await;
}

include!("../fixtures/tokens_before_0006.rs");
include!("../fixtures/chains_before_grant_state.rs");
include!("../fixtures/tokens_before_user_copies.rs");

/// A fresh PostgreSQL schema migrated up to the migration before `version`, holding
/// the rows of `grants-before-0006.sql`: as [`postgres_schema`], and a pool on it.
async fn postgres_migrated_before(version: i64) -> (sqlx::PgPool, String, String, sqlx::PgPool) {
    let (admin, schema, url) = postgres_schema().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut before = sqlx::migrate!("./migrations/postgres");
    before.migrations = std::borrow::Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect(),
    );
    before.run(&pool).await.unwrap();
    sqlx::raw_sql(include_str!("../fixtures/grants-before-0006.sql"))
        .execute(&pool)
        .await
        .unwrap();
    (admin, schema, url, pool)
}

/// PostgreSQL's migration 0006 gives the opaque access tokens already stored the
/// copies of their user's name and their grant's state that introspection now reads:
/// a token of a grant revoked before the upgrade stays refused after it.
#[tokio::test]
async fn postgres_migration_0006_copies_the_user_and_grant_state_into_stored_tokens() {
    let (admin, schema, url, pool) = postgres_migrated_before(6).await;
    for (token, grant, user) in TOKENS_BEFORE_0006 {
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at)
             VALUES ($1, $2, $3, 'c1', $4, 'a', 'https://api.example', 0, 1000)",
        )
        .bind(hash_secret(token).to_vec())
        .bind(token)
        .bind(grant)
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = PostgresStore::connect(&url, 2).await.unwrap();
    // (token, at, grant active, username)
    let expected = [
        ("t-live", 200, true, Some("alice")),
        ("t-revoked", 200, false, Some("alice")),
        ("t-lapsing", 200, true, Some("alice")),
        ("t-lapsing", 500, false, Some("alice")),
        ("t-client", 200, true, None),
    ];
    for (token, at, active, username) in expected {
        let seen = store
            .view_access_token(&hash_secret(token), at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (seen.grant_active, seen.username.as_deref()),
            (active, username),
            "{token} at {at}"
        );
    }
    drop(store);
    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await;
}

/// Spawn `work`, which must still be running 300 ms later: waiting for `what`.
async fn spawn_waiting<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
    what: &str,
) -> tokio::task::JoinHandle<T> {
    let task = tokio::spawn(work);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "it did not wait for {what}");
    task
}

/// What `task` returns, within 5 s of the end of `what` it waited for.
async fn done_after<T>(task: tokio::task::JoinHandle<T>, what: &str) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap_or_else(|_| panic!("not done 5 s after {what}"))
        .unwrap()
}

/// A PostgreSQL store seeded with grant g1, and a connection of another instance on
/// its schema with a transaction open.
async fn postgres_and_another_transaction(
) -> (Backend, String, sqlx::pool::PoolConnection<sqlx::Postgres>) {
    let b = Backend::postgres().await;
    seed(b.store.as_ref()).await;
    let (admin, schema) = b.cleanup.clone().unwrap();
    let mut other = admin.acquire().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *other).await.unwrap();
    (b, schema, other)
}

/// The statements of `revoke_grant` on PostgreSQL, for grant g1 at `NOW` in `schema`,
/// up to the update of its access tokens' copies: its chains' copies, then the grant.
fn revocation_of_g1(schema: &str) -> [String; 3] {
    [
        format!("UPDATE {schema}.refresh_tokens SET grant_revoked_at = {NOW} WHERE grant_id = 'g1' AND grant_revoked_at IS NULL"),
        format!("UPDATE {schema}.grants SET revoked_at = {NOW}, revoked_by = 'person' WHERE id = 'g1'"),
        format!("UPDATE {schema}.access_tokens SET grant_revoked_at = {NOW} WHERE grant_id = 'g1' AND grant_revoked_at IS NULL"),
    ]
}

/// PostgreSQL: a refresh token rotated while its grant is being revoked on another
/// connection waits for the revocation's commit (the revocation holds the chain's row)
/// and is then refused: the rotation reads the grant's state from the chain's copy
/// (migration 0007), which the revocation marks under that lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rotation_during_a_revocation_is_refused() {
    let (b, schema, mut other) = postgres_and_another_transaction().await;
    let store = b.store.clone();
    let chain = new_chain();
    let (key, row) = chained(&chain, NOW, NOW + DAY);
    store.insert_refresh_token(&row).await.unwrap();
    for statement in revocation_of_g1(&schema) {
        sqlx::query(&statement).execute(&mut *other).await.unwrap();
    }
    let next = chained(&chain, NOW + 1, NOW + DAY).1;
    let rotation = spawn_waiting(
        async move { rotate(store.as_ref(), &key, "c1", NOW + 1, Some(next)).await },
        "the revocation",
    )
    .await;
    sqlx::query("COMMIT").execute(&mut *other).await.unwrap();
    let rotation = done_after(rotation, "the revocation's commit").await;
    assert!(matches!(rotation, Rotation::Invalid), "{rotation:?}");
    drop(other);
    b.finish().await;
}

/// PostgreSQL: a revocation that meets a rotation holding its chain's row waits for
/// it, and the rotation may then record the grant's use (update the grant's row)
/// without a deadlock: `revoke_grant` takes the chains' rows before the grant's, in
/// the rotation's order. The chain ends up refused, the grant revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_revocation_waits_for_a_rotation_without_deadlock() {
    let (b, schema, mut other) = postgres_and_another_transaction().await;
    let store = b.store.clone();
    let chain = new_chain();
    let (key, row) = chained(&chain, NOW, NOW + DAY);
    store.insert_refresh_token(&row).await.unwrap();
    // A rotation's first statement: the chain's row.
    sqlx::query(&format!(
        "UPDATE {schema}.refresh_tokens SET rotated_at = {NOW} WHERE chain = $1"
    ))
    .bind(&chain[..])
    .execute(&mut *other)
    .await
    .unwrap();
    let revocation = spawn_waiting(
        {
            let store = store.clone();
            async move {
                store
                    .revoke_grant("g1", NOW + 1, Actor::Person, NOW + DAY)
                    .await
            }
        },
        "the rotation",
    )
    .await;
    // Then the grant's use time, as a rotation records it; PostgreSQL detects a
    // deadlock after deadlock_timeout (1 s) and fails one of the two.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sqlx::query(&format!(
            "UPDATE {schema}.grants SET last_used_at = {NOW} WHERE id = 'g1'"
        ))
        .execute(&mut *other),
    )
    .await
    .expect("the grant's row is not held by the waiting revocation")
    .expect("no deadlock");
    sqlx::query("COMMIT").execute(&mut *other).await.unwrap();
    let revoked = done_after(revocation, "the rotation's commit").await;
    assert!(revoked.unwrap());
    assert!(store
        .find_active_refresh_token(&key, NOW + 2)
        .await
        .unwrap()
        .is_none());
    drop(other);
    drop(store);
    b.finish().await;
}

/// PostgreSQL: a rotation that records its grant's use (the chain's first rotation of
/// the day) during a revocation of the grant does not deadlock with it. The case: the
/// chain was inserted after the revocation marked the grant's chains, so the
/// revocation holds the grant's row and, marking the chains again, wants the chain's.
/// A rotation that held the chain's row while it waited for the grant's (to record the
/// use) closed the cycle, and PostgreSQL failed one of the two after deadlock_timeout.
/// The rotation now commits before it records the use, so the revocation's second
/// marking finds the chain free and the rotation's use waits for the revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rotation_recording_use_during_a_revocation_does_not_deadlock() {
    let (b, schema, mut other) = postgres_and_another_transaction().await;
    let store = b.store.clone();
    let [mark_chains, revoke, _] = revocation_of_g1(&schema);
    // The revocation's first marking, before the chain exists.
    sqlx::query(&mark_chains)
        .execute(&mut *other)
        .await
        .unwrap();
    let chain = new_chain();
    let (key, row) = chained(&chain, NOW, NOW + DAY);
    store.insert_refresh_token(&row).await.unwrap();
    // The grant's row.
    sqlx::query(&revoke).execute(&mut *other).await.unwrap();
    let (successor, next) = chained(&chain, NOW + 1, NOW + DAY);
    let rotation = spawn_waiting(
        {
            let store = store.clone();
            async move {
                let then = Issuance {
                    refresh_token: Some(next),
                    grant_used: Some(("g1".into(), NOW + 1)),
                    ..Issuance::default()
                };
                store.rotate_refresh_token(&key, "c1", NOW + 1, &then).await
            }
        },
        "the grant's row",
    )
    .await;
    // The revocation's second marking: the chain inserted meanwhile.
    let marked = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sqlx::query(&mark_chains).execute(&mut *other),
    )
    .await
    .expect("the chain's row is not held by the rotation waiting for the grant's")
    .expect("no deadlock");
    assert_eq!(marked.rows_affected(), 1, "the rotated chain is marked");
    sqlx::query("COMMIT").execute(&mut *other).await.unwrap();
    let rotation = done_after(rotation, "the revocation's commit")
        .await
        .expect("the rotation fails");
    assert!(matches!(rotation, Rotation::Rotated(_)), "{rotation:?}");
    // The successor is refused (the revocation marked the chain after the rotation),
    // and the grant's use time was recorded.
    assert!(store
        .find_active_refresh_token(&successor, NOW + 2)
        .await
        .unwrap()
        .is_none());
    let used: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT last_used_at FROM {schema}.grants WHERE id = 'g1'"
    ))
    .fetch_one(&mut *other)
    .await
    .unwrap();
    assert_eq!(used, Some(NOW + 1));
    drop(other);
    drop(store);
    b.finish().await;
}

/// PostgreSQL: a refresh token chain inserted by a transaction that read its grant
/// active (holding the grant's row with `FOR SHARE`, as `insert_refresh_token` does)
/// while a revocation runs carries the revocation: the revocation's update of the
/// grant waits for that transaction, and it marks the grant's chains again after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_chain_inserted_during_a_revocation_carries_it() {
    let (b, schema, mut other) = postgres_and_another_transaction().await;
    let store = b.store.clone();
    let chain = new_chain();
    let key = refresh_key(&chained_token(&chain));
    sqlx::query(&format!(
        "SELECT revoked_at FROM {schema}.grants WHERE id = 'g1' FOR SHARE"
    ))
    .execute(&mut *other)
    .await
    .unwrap();
    let revocation = spawn_waiting(
        {
            let store = store.clone();
            async move {
                store
                    .revoke_grant("g1", NOW, Actor::Person, NOW + DAY)
                    .await
            }
        },
        "the grant's row",
    )
    .await;
    // The chain, with the grant's state as read above: active.
    sqlx::query(&format!(
        "INSERT INTO {schema}.refresh_tokens (chain, token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, purge_at)
         VALUES ($1, $2, 'g1', 'c1', 'u1', 'a', {NOW}, {}, {})",
        NOW + DAY,
        NOW + 2 * DAY
    ))
    .bind(&chain[..])
    .bind(&key[..])
    .execute(&mut *other)
    .await
    .unwrap();
    sqlx::query("COMMIT").execute(&mut *other).await.unwrap();
    let revoked = done_after(revocation, "the insert's commit").await;
    assert!(revoked.unwrap());
    assert!(
        store
            .find_active_refresh_token(&key, NOW + 1)
            .await
            .unwrap()
            .is_none(),
        "the chain's copy missed the revocation"
    );
    drop(other);
    drop(store);
    b.finish().await;
}

/// PostgreSQL's migration 0007 gives the refresh token chains already stored the copy
/// of their grant's state that rotations now read: a chain of a grant revoked before
/// the upgrade stays refused after it, one of a lapsing grant lapses with it.
#[tokio::test]
async fn postgres_migration_0007_copies_the_grant_state_into_stored_chains() {
    let (admin, schema, url, pool) = postgres_migrated_before(7).await;
    for grant in CHAIN_GRANTS {
        postgres_chain_before(&pool, grant).await;
    }
    pool.close().await;
    let store = PostgresStore::connect(&url, 2).await.unwrap();
    assert_chains_keep_their_grant_state(&store).await;
    drop(store);
    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await;
}

/// Store the chain of `grant` of `chains_before_grant_state.rs` as the schema before
/// the migrations of its copies has it (no copy).
async fn postgres_chain_before(pool: &sqlx::PgPool, grant: &str) {
    let key = refresh_key(&chain_token(grant));
    sqlx::query(
        "INSERT INTO refresh_tokens (chain, token_hash, grant_id, client_id, user_id, scope, issued_at, expires_at, purge_at)
         VALUES ($1, $2, $3, 'c1', 'u1', 'a', 100, 86500, 172800)",
    )
    .bind(&key[..tessera_server::crypto::CHAIN_LEN])
    .bind(&key[..])
    .bind(grant)
    .execute(pool)
    .await
    .unwrap();
}

/// PostgreSQL's migration 0008 drops the access tokens' foreign keys to their grant
/// and user (a rotation's token is known to be of its chain's grant and user) and
/// gives the chains their user's name: the stored tokens stay, and still go with
/// their user.
#[tokio::test]
async fn postgres_migration_0008_keeps_stored_tokens_and_their_user() {
    let (admin, schema, url, pool) = postgres_migrated_before(8).await;
    for (token, grant, user) in TOKENS_BEFORE_USER_COPIES {
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at,
                                        username)
             VALUES ($1, $2, $3, 'c1', $4, 'a', 'https://api.example', 0, 1000,
                     (SELECT username FROM users WHERE id = $4))",
        )
        .bind(hash_secret(token).to_vec())
        .bind(token)
        .bind(grant)
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }
    postgres_chain_before(&pool, "g-live").await;
    pool.close().await;
    let store = PostgresStore::connect(&url, 2).await.unwrap();
    assert_tokens_keep_their_user(&store).await;
    drop(store);
    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await;
}

/// A database migrated by a newer Tessera is refused, on both databases.
#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("newer.db").display());
    drop(SqliteStore::connect(&url).await.unwrap());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', 1, X'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let err = format!(
        "{:#}",
        SqliteStore::connect(&url).await.err().expect("refused")
    );
    assert!(
        err.contains("migrated by a newer Tessera (migration 9999"),
        "{err}"
    );

    let b = Backend::postgres().await;
    let (admin, schema) = b.cleanup.clone().unwrap();
    sqlx::query(&format!(
        "INSERT INTO {schema}._sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', true, '\\x00', 0)"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let base = std::env::var("TESSERA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into());
    let sep = if base.contains('?') { '&' } else { '?' };
    let err = PostgresStore::connect(
        &format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        2,
    )
    .await
    .err()
    .expect("refused");
    assert!(
        format!("{err:#}").contains("migrated by a newer Tessera (migration 9999"),
        "{err:#}"
    );
    b.finish().await;
}

fn key(kid: &str, alg: &str, created_at: i64, activates_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: alg.into(),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        private_key: Some(vec![1, 2, 3]),
        created_at,
        activates_at,
    }
}

async fn signing_keys(store: Arc<dyn Store>) {
    // Of several instances adding "the next key unless one was created since T" at
    // once, exactly one succeeds.
    let results = join_all((0..12).map(|i| {
        let store = store.clone();
        async move {
            store
                .add_signing_key(&key(&format!("k{i}"), "ES256", NOW, NOW), Some(NOW - 10))
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| **r).count(), 1, "{results:?}");
    let winner = store.list_signing_keys().await.unwrap();
    assert_eq!(winner.len(), 1);
    let first = winner[0].kid.clone();
    // The condition is per algorithm; no condition always inserts.
    assert!(store
        .add_signing_key(&key("ed", "EdDSA", NOW, NOW), Some(NOW - 10))
        .await
        .unwrap());
    assert!(!store
        .add_signing_key(&key("es-2", "ES256", NOW + 1, NOW + 100), Some(NOW - 10))
        .await
        .unwrap());
    assert!(store
        .add_signing_key(&key("es-2", "ES256", NOW + 1, NOW + 100), None)
        .await
        .unwrap());
    let listed = store.list_signing_keys().await.unwrap();
    let order: Vec<_> = listed.iter().map(|k| k.kid.as_str()).collect();
    // By activation, then kid ("ed" < "k…").
    assert_eq!(order, vec!["ed", first.as_str(), "es-2"]);
    assert_eq!(listed[2], key("es-2", "ES256", NOW + 1, NOW + 100));

    // Nothing is superseded before the next key of its algorithm activates (NOW + 100).
    assert_eq!(
        store.retire_signing_keys(NOW + 99, NOW + 99).await.unwrap(),
        (0, 0)
    );
    // Superseded at NOW + 100: wiped first, deleted later; the EdDSA key has no successor.
    assert_eq!(
        store.retire_signing_keys(NOW + 100, NOW).await.unwrap(),
        (1, 0)
    );
    let listed = store.list_signing_keys().await.unwrap();
    assert_eq!(listed[1].kid, first);
    assert_eq!(listed[1].private_key, None);
    assert!(listed[0].private_key.is_some() && listed[2].private_key.is_some());
    assert_eq!(
        store
            .retire_signing_keys(NOW + 100, NOW + 100)
            .await
            .unwrap(),
        (0, 1)
    );
    let kids: Vec<_> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec!["ed".to_owned(), "es-2".to_owned()]);
}

/// Writes sent at once (SQLite commits them in groups) each succeed or fail alone, and
/// a success is readable as soon as it is answered.
async fn concurrent_writes_answer_each_for_itself(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let token = |n: usize| OpaqueAccessToken {
        token_hash: hash_secret(&format!("w{n}")),
        jti: format!("jti-w{n}"),
        grant_id: None,
        client_id: "c1".into(),
        user_id: None,
        scope: scope("a"),
        audience: "https://api.example".into(),
        issued_at: NOW,
        expires_at: NOW + 600,
        revoked_at: None,
    };
    // Five tokens exist already: writing them again must fail (the hash is the key).
    for n in 0..5 {
        store.insert_access_token(&token(n)).await.unwrap();
    }
    let results = join_all((0..60).map(|n| {
        let store = store.clone();
        let t = token(n);
        async move {
            let r = store.insert_access_token(&t).await;
            let found = store
                .find_active_access_token(&t.token_hash, NOW)
                .await
                .unwrap();
            (n, r.is_ok(), found.is_some())
        }
    }))
    .await;
    for (n, ok, found) in results {
        assert_eq!(ok, n >= 5, "write {n}");
        assert!(found, "token {n} is readable once answered");
    }
}

/// Revocations of one grant at once (two instances, or the person and an admin) each
/// finish, with no deadlock and no error, and revoke it once: one of them reports it,
/// the revocation feed has one event, and the grant's chains and tokens are all marked.
/// (On PostgreSQL each revocation locks the grant's chains first, in the order of the
/// same index, then the grant's row.)
async fn concurrent_revocations_of_a_grant_revoke_it_once(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    for round in 0..8 {
        let id = format!("g-both-{round}");
        store
            .create_grant(&grant(&id, "c1", "u1", None))
            .await
            .unwrap();
        let mut chains = vec![];
        for n in 0..4 {
            let chain = refresh(&format!("rt-{round}-{n}"), &id, NOW + DAY);
            store.insert_refresh_token(&chain).await.unwrap();
            chains.push(chain.token_hash);
            store
                .insert_access_token(&opaque(&format!("at-{round}-{n}"), Some(&id)))
                .await
                .unwrap();
        }
        let revoked = join_all((0..3).map(|_| {
            let (store, id) = (store.clone(), id.clone());
            async move { store.revoke_grant(&id, NOW, Actor::Admin, NOW + DAY).await }
        }))
        .await;
        let revoked: Vec<bool> = revoked
            .into_iter()
            .map(|r| r.expect("a revocation fails"))
            .collect();
        assert_eq!(
            revoked.iter().filter(|r| **r).count(),
            1,
            "round {round}: {revoked:?}"
        );
        let events = store.revocations_after(0, 1000).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.grant_id.as_deref() == Some(id.as_str()))
                .count(),
            1,
            "round {round}: one event in the feed"
        );
        for key in &chains {
            assert!(store
                .find_active_refresh_token(key, NOW)
                .await
                .unwrap()
                .is_none());
        }
        for n in 0..4 {
            let token = store
                .view_access_token(&hash_secret(&format!("at-{round}-{n}")), NOW)
                .await
                .unwrap()
                .unwrap();
            assert!(!token.grant_active, "round {round}: at-{round}-{n}");
        }
    }
}
