//! Signing keys in the database: encrypted under the master key, rotated by hand and on a
//! schedule, published before they sign (RFC 7517 JWKS), kept until the tokens they
//! signed have expired, and shared by every instance on one database.

use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_server::config::{Config, MasterKey};
use tessera_server::AppState;

use crate::helpers::*;

const HOUR: i64 = 3600;

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let r = app
        .http
        .get(format!("{}/jwks.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwks: Value = r.json().await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// A client credentials JWT access token from `app`; returns it and its `kid`.
async fn jwt(app: &TestApp, client: &TestClient) -> (String, String) {
    let r = app
        .token(
            client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "transactions:read"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let kid = jwt_header(&token)["kid"].as_str().unwrap().to_owned();
    (token, kid)
}

/// Poll `f` every 20 ms until it holds, for at most `limit`; returns the time it took.
async fn within<F, Fut>(limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_kept_until_its_tokens_expire() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (_, old) = jwt(&app, &client).await;
    assert_eq!(jwks_kids(&app).await, vec![old.clone()]);

    let new = app
        .state
        .keys
        .rotate(app.now(), Duration::from_secs(HOUR as u64))
        .await
        .unwrap();
    assert_eq!(new.state, "next");
    assert_eq!(new.activates_at, app.now() + HOUR);
    // Published at once, next to the key in use...
    let kids = jwks_kids(&app).await;
    assert!(kids.contains(&new.kid) && kids.contains(&old), "{kids:?}");
    // ...which keeps signing until the new key's time comes.
    let (before, kid) = jwt(&app, &client).await;
    assert_eq!(kid, old);
    app.clock.advance(HOUR - 1);
    assert_eq!(jwt(&app, &client).await.1, old);
    app.clock.advance(1);
    let (after, kid) = jwt(&app, &client).await;
    assert_eq!(kid, new.kid);
    // Tokens of both keys verify while they live.
    assert_eq!(app.introspect(&client, &after).await["active"], true);
    let states: Vec<_> = app.state.keys.list(app.now()).await.unwrap();
    let state_of = |kid: &str| states.iter().find(|k| k.kid == kid).unwrap().state;
    assert_eq!((state_of(&old), state_of(&new.kid)), ("retired", "signing"));

    // The old key stays published while a token it signed may live: the access token
    // lifetime (10 min), the reload interval (10 s) and a minute of clock leeway.
    let retained = 600 + 10 + 60;
    app.clock.advance(retained - 1);
    app.state.keys.maintain(app.now()).await.unwrap();
    assert_eq!(jwks_kids(&app).await.len(), 2);
    app.clock.advance(1);
    app.state.keys.maintain(app.now()).await.unwrap();
    assert_eq!(jwks_kids(&app).await, vec![new.kid.clone()]);
    // A token of the removed key no longer verifies (it had expired anyway).
    assert_eq!(app.introspect(&client, &before).await["active"], false);
}

#[tokio::test]
async fn keys_rotate_on_a_schedule() {
    let app = spawn_with(|c| {
        c.tokens.key_rotation.interval = Duration::from_secs(24 * HOUR as u64);
        c.tokens.key_rotation.publish_ahead = Duration::from_secs(HOUR as u64);
        c.tokens.key_rotation.reload = Duration::from_millis(50);
    })
    .await;
    let client = app.standard().await;
    let (_, first) = jwt(&app, &client).await;
    app.clock.advance(24 * HOUR - 60);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(jwks_kids(&app).await.len(), 1, "not due yet");

    // (The first key was created a moment after the clock was pinned: some margin.)
    app.clock.advance(120);
    // The server's own maintenance (every 50 ms here) starts the next key.
    within(Duration::from_secs(5), || async {
        jwks_kids(&app).await.len() == 2
    })
    .await;
    assert_eq!(jwt(&app, &client).await.1, first, "published, not signing");
    app.clock.advance(HOUR);
    let (_, second) = jwt(&app, &client).await;
    assert_ne!(second, first);
    assert!(jwks_kids(&app).await.contains(&second));
}

#[tokio::test]
async fn private_keys_are_stored_encrypted_and_another_master_key_is_refused() {
    let app = spawn_app().await;
    let records = app.state.store.list_signing_keys().await.unwrap();
    assert_eq!(records.len(), 1);
    let sealed = records[0].private_key.as_ref().expect("a private key");
    // nonce || ciphertext || tag.
    assert!(sealed.len() > 12 + 16);
    // The P-256 curve OID (1.2.840.10045.3.1.7) of the PKCS#8 structure is not there
    // in clear.
    let oid = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    assert!(!sealed.windows(oid.len()).any(|w| w == oid));

    let mut other: Config = (*app.state.config).clone();
    other.master_key = Some(MasterKey(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
    ));
    let err = AppState::open(other).await.err().expect("refused");
    assert!(
        format!("{err:#}").contains("the master key does not open signing key"),
        "{err:#}"
    );
}

#[tokio::test]
async fn postgres_without_a_master_key_is_refused_before_it_is_touched() {
    let config = Config {
        // Nothing listens on port 1: the refusal comes before any connection.
        database_url: Some("postgres://root@127.0.0.1:1/none".into()),
        master_key: None,
        ..Config::default()
    };
    let err = AppState::open(config).await.err().expect("refused");
    assert!(
        format!("{err:#}").contains("a master key is required with PostgreSQL"),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_key_file_of_an_earlier_version_is_imported() {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let der = pkcs8.as_ref().to_vec();
    let app = spawn_with(move |c| {
        let dir = c.data_dir.join("keys");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("es256.p8"), &der).unwrap();
    })
    .await;
    let jwks: Value = app
        .http
        .get(format!("{}/jwks.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let point = pair.public_key().as_ref();
    assert_eq!(jwks["keys"][0]["x"], b64.encode(&point[1..33]));
    assert_eq!(jwks["keys"][0]["y"], b64.encode(&point[33..65]));
    let client = app.standard().await;
    assert_eq!(jwt(&app, &client).await.1, jwks["keys"][0]["kid"]);
}

#[tokio::test]
async fn a_key_rotated_at_one_instance_is_served_by_the_other() {
    let fast = |c: &mut Config| c.tokens.key_rotation.reload = Duration::from_millis(100);
    let a = spawn_on(Backend::Postgres, fast).await;
    let b = spawn_sharing(&a, fast).await;
    // One key, created by the first instance, signs at both.
    let client = a.standard().await;
    let (_, first) = jwt(&a, &client).await;
    assert_eq!(jwt(&b, &client).await.1, first);
    assert_eq!(jwks_kids(&b).await, vec![first.clone()]);

    let new = a
        .state
        .keys
        .rotate(a.now(), Duration::from_secs(HOUR as u64))
        .await
        .unwrap();
    let took = within(Duration::from_secs(5), || async {
        jwks_kids(&b).await.contains(&new.kid)
    })
    .await;
    println!("the key rotated at one instance was in the other's JWKS after {took:?}");
    assert_eq!(
        jwt(&b, &client).await.1,
        first,
        "not signing before its time"
    );
    a.clock.advance(HOUR);
    let (token, kid) = jwt(&b, &client).await;
    assert_eq!(kid, new.kid);
    assert_eq!(a.introspect(&client, &token).await["active"], true);
}
