//! The client credentials grant (RFC 6749 §4.4) and the token endpoint's request
//! errors (§5.2): grant types, scopes, content type, repeated parameters.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::helpers::*;
use tessera_protocol::GrantType;
use tessera_server::store::TokenFormat;

async fn assert_error(r: reqwest::Response, status: u16, error: &str, description: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

#[tokio::test]
async fn jwt_access_token_verifies_against_the_jwks() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let r = app
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "transactions:read"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "RFC 6749 §4.4.3: no refresh token"
    );
    assert_eq!(body["scope"], "transactions:read");
    let at = body["access_token"].as_str().unwrap();
    let claims = jwt_payload(at);
    // RFC 9068 §2.2: sub is the client itself.
    assert_eq!(claims["sub"], client.id);
    assert_eq!(claims["client_id"], client.id);

    // Verify the ES256 signature with the published key, independently of the server.
    let jwks: serde_json::Value = app
        .http
        .get(format!("{}/jwks.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], jwt_header(at)["kid"]);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut point = vec![4u8];
    point.extend(b64.decode(key["x"].as_str().unwrap()).unwrap());
    point.extend(b64.decode(key["y"].as_str().unwrap()).unwrap());
    let (signed, sig) = at.rsplit_once('.').unwrap();
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        point,
    );
    public
        .verify(signed.as_bytes(), &b64.decode(sig).unwrap())
        .expect("valid ES256 signature");
}

#[tokio::test]
async fn default_scope_is_the_clients_allowed_set() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let body: serde_json::Value = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["scope"],
        "accounts:read transactions:read transactions:write"
    );
}

#[tokio::test]
async fn opaque_tokens_are_stored_hashed() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app
        .client_with(
            "Batch",
            "transactions:read",
            false,
            &[GrantType::ClientCredentials],
            TokenFormat::Opaque,
        )
        .await;
    let body: serde_json::Value = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    let at = body["access_token"].as_str().unwrap();
    // An 8-byte time-ordered id and 32 random bytes, BASE64URL; stored under the id
    // and the first 24 bytes of the token's SHA-256, never as the token itself.
    assert_eq!(at.len(), 54);
    assert!(!at.contains('.'));
    let decoded = URL_SAFE_NO_PAD.decode(at).expect("BASE64URL");
    assert_eq!(decoded.len(), 40);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, at.as_bytes());
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&decoded[..8]);
    hash[8..].copy_from_slice(&digest.as_ref()[..24]);
    let stored = app
        .state
        .store
        .find_access_token(&hash)
        .await
        .unwrap()
        .expect("stored by hash");
    assert_eq!(stored.client_id, client.id);
    let info = app.introspect(&client, at).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["scope"], "transactions:read");
}

#[tokio::test]
async fn scope_outside_the_client_is_invalid_scope() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let r = app
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "transactions:read admin"),
            ],
        )
        .await;
    assert_error(
        r,
        400,
        "invalid_scope",
        "scope not allowed for this client: admin",
    )
    .await;
    let r = app
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "bad\"scope"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test]
async fn grant_not_registered_is_unauthorized_client() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app
        .client_with(
            "Web",
            "transactions:read",
            false,
            &[GrantType::AuthorizationCode],
            TokenFormat::Jwt,
        )
        .await;
    let r = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await;
    assert_error(
        r,
        400,
        "unauthorized_client",
        "this client may not use the client_credentials grant",
    )
    .await;
}

#[tokio::test]
async fn removed_and_unknown_grants_are_unsupported() {
    let app = spawn_app().await;
    let client = app.standard().await;
    // OAuth 2.1 §10.1 and RFC 9700 §2.4: no password grant, no implicit.
    for g in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let r = app
            .token(
                &client,
                &[("grant_type", g), ("username", "alice"), ("password", "x")],
            )
            .await;
        assert_error(
            r,
            400,
            "unsupported_grant_type",
            &format!("grant_type '{g}' is not supported"),
        )
        .await;
    }
    let r = app.token(&client, &[("scope", "transactions:read")]).await;
    assert_error(r, 400, "invalid_request", "grant_type is required").await;
}

#[tokio::test]
async fn body_must_be_a_form_without_repeats() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let secret = client.secret.clone().unwrap();
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth(&client.id, Some(&secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_error(
        r,
        400,
        "invalid_request",
        "the body must be application/x-www-form-urlencoded",
    )
    .await;
    // RFC 6749 §3.2: parameters MUST NOT be included more than once.
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth(&client.id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=a&scope=b")
        .send()
        .await
        .unwrap();
    assert_error(
        r,
        400,
        "invalid_request",
        "parameter 'scope' is included more than once",
    )
    .await;
    // Hostile input: a huge body is refused, never a 500.
    let r = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth(&client.id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&x={}",
            "a".repeat(100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn access_token_lifetime_is_configurable() {
    let app = spawn_with(|c| c.tokens.access_token_ttl = std::time::Duration::from_secs(120)).await;
    let client = app.standard().await;
    let body: serde_json::Value = app
        .token(&client, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], 120);
    assert_eq!(
        jwt_payload(body["access_token"].as_str().unwrap())["exp"],
        app.now() + 120
    );
}
