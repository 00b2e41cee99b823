//! Secret-based methods: `client_secret_jwt` (OpenID Connect Core §9) and the grace
//! period of a rotated `client_secret_basic` secret.

use std::time::Duration;

use serde_json::{json, Value};
use tessera_protocol::GrantType;
use tessera_server::admin::{self, NewClient};
use tessera_server::store::AuthMethod;

use super::keys::jws;
use super::*;

#[tokio::test]
async fn client_secret_jwt_with_hs256() {
    let app = setup().await;
    let created = admin::create_client_sealed(
        app.state.store.as_ref(),
        NewClient {
            scope: "transactions:read".into(),
            grant_types: vec![GrantType::ClientCredentials],
            auth_method: Some(AuthMethod::ClientSecretJwt),
            ..NewClient::named("HMAC job")
        },
        &app.state.sealer,
        app.now(),
    )
    .await
    .unwrap();
    let id = created.client.id.clone();
    let secret = created
        .secret
        .clone()
        .expect("client_secret_jwt gets a secret");
    // The one exception to hash-only storage: the secret is also sealed.
    assert!(created.client.secret_sealed.is_some());
    assert!(created.client.secret_hash.is_some());
    // OpenID Connect Core §9: HMAC-SHA256 keyed by the octets of the secret.
    let hs256 = |secret: &str, claims: &Value| {
        jws(&json!({"alg": "HS256", "typ": "JWT"}), claims, |m| {
            let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
            aws_lc_rs::hmac::sign(&k, m).as_ref().to_vec()
        })
    };
    assert_token_ok(token_with(&app, &hs256(&secret, &claims(&app, &id))).await).await;
    assert_invalid_client(
        token_with(&app, &hs256("wrong-secret", &claims(&app, &id))).await,
        "client authentication failed",
    )
    .await;
    // Not with the secret itself, though.
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_invalid_client(
        r,
        "this client must authenticate with a client_secret_jwt assertion",
    )
    .await;
    // Without the sealer such a client cannot be made (its secret could not key an HMAC).
    let refused = admin::create_client(
        app.state.store.as_ref(),
        NewClient {
            auth_method: Some(AuthMethod::ClientSecretJwt),
            grant_types: vec![GrantType::ClientCredentials],
            ..NewClient::named("HMAC job 2")
        },
        app.now(),
    )
    .await;
    assert!(refused.is_err());
    // Rotation seals the new secret; the old one stops working.
    let rotated = admin::rotate_client_secret_sealed(
        app.state.store.as_ref(),
        &id,
        None,
        &app.state.sealer,
        app.now(),
    )
    .await
    .unwrap();
    // Changed behind the server's back (as by the `tessera` command): the server's
    // client cache forgets it within a second; the admin API evicts it at once.
    app.state.clients.invalidate(&id);
    assert_invalid_client(
        token_with(&app, &hs256(&secret, &claims(&app, &id))).await,
        "client authentication failed",
    )
    .await;
    assert_token_ok(token_with(&app, &hs256(&rotated, &claims(&app, &id))).await).await;
    // A secret client keeps its secret as a hash only.
    let basic = app
        .client_with(
            "Reports",
            "transactions:read",
            false,
            &[GrantType::ClientCredentials],
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    let stored = app
        .state
        .store
        .get_client(&basic.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_sealed.is_none());
}

#[tokio::test]
async fn previous_secret_works_during_the_grace_period_only() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let new_secret = admin::rotate_client_secret_with_grace(
        app.state.store.as_ref(),
        &client.id,
        Some(Duration::from_secs(600)),
        app.now(),
    )
    .await
    .unwrap();
    app.state.clients.invalidate(&client.id);
    let rotated = TestClient {
        id: client.id.clone(),
        secret: Some(new_secret),
    };
    let grant = [("grant_type", "client_credentials")];
    // Both secrets work until the grace period ends…
    assert_eq!(app.token(&client, &grant).await.status(), 200);
    assert_eq!(app.token(&rotated, &grant).await.status(), 200);
    app.clock.advance(599);
    assert_eq!(app.token(&client, &grant).await.status(), 200);
    // …then only the new one.
    app.clock.advance(1);
    assert_invalid_client(
        app.token(&client, &grant).await,
        "client authentication failed",
    )
    .await;
    assert_eq!(app.token(&rotated, &grant).await.status(), 200);
    // A rotation without grace ends the previous secret at once.
    let newest = admin::rotate_client_secret_with_grace(
        app.state.store.as_ref(),
        &client.id,
        None,
        app.now(),
    )
    .await
    .unwrap();
    app.state.clients.invalidate(&client.id);
    assert_invalid_client(
        app.token(&rotated, &grant).await,
        "client authentication failed",
    )
    .await;
    let newest = TestClient {
        id: client.id.clone(),
        secret: Some(newest),
    };
    assert_eq!(app.token(&newest, &grant).await.status(), 200);
}

#[tokio::test]
async fn a_secret_rotated_behind_the_servers_back_stops_working_within_a_second() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let grant = [("grant_type", "client_credentials")];
    assert_eq!(app.token(&client, &grant).await.status(), 200);
    // As `tessera client rotate-secret` does from another process: straight to the
    // database, so this server's client cache is not told.
    admin::rotate_client_secret_with_grace(app.state.store.as_ref(), &client.id, None, app.now())
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let r = app.token(&client, &grant).await;
        if r.status() == 401 {
            assert_invalid_client(r, "client authentication failed").await;
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            start.elapsed() < tessera_server::client_cache::TTL + Duration::from_millis(500),
            "the old secret still worked after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
