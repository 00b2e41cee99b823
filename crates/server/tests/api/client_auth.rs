//! Client authentication at the token endpoint (RFC 6749 §2.3, §5.2):
//! `client_secret_basic`, `client_secret_post`, `none`; failures are 401
//! `invalid_client` with `WWW-Authenticate`.

use base64::Engine;

use crate::helpers::*;

async fn assert_invalid_client(r: reqwest::Response, description: &str) {
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"tessera\"");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], description);
}

#[tokio::test]
async fn basic_and_post_both_work() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let secret = client.secret.clone().unwrap();
    let r = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded() {
    let app = spawn_app().await;
    let client = app.standard().await;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64; our ids and
    // secrets are BASE64URL, so encoding a '-' as %2D must still authenticate.
    let secret = client
        .secret
        .clone()
        .unwrap()
        .replace('-', "%2D")
        .replace('_', "%5F");
    let id = client.id.replace('-', "%2D").replace('_', "%5F");
    let header = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .header("authorization", format!("Basic {header}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn wrong_secret_unknown_client_and_missing_auth() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let wrong = TestClient {
        id: client.id.clone(),
        secret: Some("x".repeat(43)),
    };
    let r = app
        .token(&wrong, &[("grant_type", "client_credentials")])
        .await;
    assert_invalid_client(r, "client authentication failed").await;
    let unknown = TestClient {
        id: "nobody".into(),
        secret: Some("x".repeat(43)),
    };
    let r = app
        .token(&unknown, &[("grant_type", "client_credentials")])
        .await;
    assert_invalid_client(r, "client authentication failed").await;
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_invalid_client(r, "client authentication is required").await;
    // A confidential client presenting only its id.
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_invalid_client(r, "this client must authenticate with its secret").await;
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .header("authorization", "Basic !!!")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_invalid_client(r, "the Authorization header is not valid Basic credentials").await;
}

#[tokio::test]
async fn two_methods_at_once_are_refused() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let secret = client.secret.clone().unwrap();
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth(&client.id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "the client used more than one authentication method"
    );
}

#[tokio::test]
async fn a_public_client_cannot_present_a_secret() {
    let app = spawn_app().await;
    app.standard().await;
    let public = app
        .client_with(
            "Mobile",
            "transactions:read",
            true,
            &[tessera_protocol::GrantType::AuthorizationCode],
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth(&public.id, Some("guess"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_invalid_client(r, "this public client has no secret").await;
}

#[tokio::test]
async fn rotated_secret_replaces_the_old_one() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let new_secret =
        tessera_server::admin::rotate_client_secret(app.state.store.as_ref(), &client.id)
            .await
            .unwrap();
    let r = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_invalid_client(r, "client authentication failed").await;
    let rotated = TestClient {
        id: client.id.clone(),
        secret: Some(new_secret),
    };
    assert_eq!(
        app.token(&rotated, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn secrets_are_stored_only_as_sha256() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let stored = app
        .state
        .store
        .get_client(&client.id)
        .await
        .unwrap()
        .unwrap();
    let secret = client.secret.unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    assert_eq!(stored.secret_hash.unwrap().as_slice(), digest.as_ref());
    // 256 bits of entropy: 32 bytes, 43 BASE64URL characters.
    assert_eq!(secret.len(), 43);
}
