//! Token introspection at `POST /introspect` (RFC 7662).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tessera_protocol::GrantType;
use tessera_server::store::TokenFormat;

use crate::helpers::*;

const FULL: &str = "accounts:read transactions:read transactions:write";

/// `POST /introspect` as `client`; asserts a 200 that is never cached (RFC 7662 §2.2,
/// RFC 6749 §5.1) and returns the JSON answer.
async fn introspect_checked(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let r = app
        .post_auth("/introspect", client, &[("token", token)])
        .await;
    let status = r.status();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (cache, content_type) = (header("cache-control"), header("content-type"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert!(content_type.is_some_and(|c| c.starts_with("application/json")));
    body
}

/// An error response (RFC 7662 §2.3, RFC 6749 §5.2); returns the body.
async fn failure(r: reqwest::Response, status: u16, code: &str) -> Value {
    let got = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "body: {body}"
    );
    body
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

async fn alice_id(app: &TestApp) -> String {
    app.state
        .store
        .get_user_by_username(ALICE.0)
        .await
        .expect("store")
        .expect("alice")
        .id
}

#[tokio::test]
async fn active_jwt_access_token_is_described_in_full() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;
    let token = s(&tokens, "access_token");
    let claims = jwt_payload(token);
    let now = app.now();

    // RFC 7662 §2.2.
    let info = introspect_checked(&app, &client, token).await;
    assert_eq!(
        info,
        json!({
            "active": true,
            "scope": FULL,
            "client_id": client.id,
            "sub": alice_id(&app).await,
            "username": "alice",
            "token_type": "Bearer",
            "exp": now + 600,
            "iat": now,
            "iss": app.url,
            "aud": app.url,
            "jti": claims["jti"],
        })
    );
    assert_eq!(info["sub"], claims["sub"]);
}

#[tokio::test]
async fn active_refresh_token_is_described_as_a_refresh_token() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app
        .tokens_for(&client, "accounts:read transactions:read")
        .await;
    let now = app.now();

    // RFC 7662 §2.2: token_type is the type of the token presented.
    let info = introspect_checked(&app, &client, s(&tokens, "refresh_token")).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["scope"], "accounts:read transactions:read");
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["sub"], alice_id(&app).await.as_str());
    assert_eq!(info["username"], "alice");
    assert_eq!(info["iat"], now);
    assert_eq!(info["exp"], now + 30 * 24 * 3600);
    assert_eq!(info["iss"], app.url.as_str());
}

#[tokio::test]
async fn active_opaque_access_token_is_described() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app.opaque_code_client(FULL).await;
    let tokens = app.tokens_for(&client, "accounts:read").await;
    let token = s(&tokens, "access_token");
    assert!(
        !token.contains('.'),
        "expected an opaque token, got {token}"
    );
    let now = app.now();

    // RFC 7662 §2.2.
    let info = introspect_checked(&app, &client, token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["scope"], "accounts:read");
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["sub"], alice_id(&app).await.as_str());
    assert_eq!(info["username"], "alice");
    assert_eq!(info["exp"], now + 600);
    assert_eq!(info["iat"], now);
    assert_eq!(info["iss"], app.url.as_str());
    assert_eq!(info["aud"], app.url.as_str());
    assert!(
        info["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "info: {info}"
    );
}

#[tokio::test]
async fn client_credentials_opaque_token_has_the_client_as_subject() {
    let app = spawn_app().await;
    app.standard().await;
    let (client, r) = app.opaque_client_credentials().await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.expect("json");

    // RFC 7662 §2.2; RFC 9068 §2.2: no user, so the subject is the client.
    let info = introspect_checked(&app, &client, s(&tokens, "access_token")).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], client.id.as_str());
    assert_eq!(info["client_id"], client.id.as_str());
    assert!(info.get("username").is_none(), "info: {info}");
}

#[tokio::test]
async fn expired_access_token_is_only_inactive() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;
    let token = s(&tokens, "access_token");

    app.clock.advance(599);
    assert_eq!(
        introspect_checked(&app, &client, token).await["active"],
        true
    );

    // RFC 7662 §2.2: an expired token is inactive, and nothing else is said about it.
    app.clock.advance(2);
    assert_eq!(
        introspect_checked(&app, &client, token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn expired_opaque_access_token_is_only_inactive() {
    let app = spawn_app().await;
    app.standard().await;
    let (client, r) = app.opaque_client_credentials().await;
    let tokens: Value = r.json().await.expect("json");

    app.clock.advance(601);
    // RFC 7662 §2.2.
    assert_eq!(
        introspect_checked(&app, &client, s(&tokens, "access_token")).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn garbage_token_is_inactive() {
    let app = spawn_app().await;
    let client = app.standard().await;
    // RFC 7662 §2.2: a token the server does not know is simply inactive.
    for token in ["garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "...."] {
        assert_eq!(
            introspect_checked(&app, &client, token).await,
            json!({"active": false}),
            "token {token}"
        );
    }
}

#[tokio::test]
async fn forged_jwt_is_inactive() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;
    let token = s(&tokens, "access_token");
    assert_eq!(
        introspect_checked(&app, &client, token).await["active"],
        true
    );
    let parts: Vec<&str> = token.split('.').collect();

    // A signature altered in its first character.
    let sig = parts[2];
    let swapped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered_sig = format!("{}.{}.{swapped}{}", parts[0], parts[1], &sig[1..]);
    // Claims altered under the original signature.
    let mut claims = jwt_payload(token);
    claims["scope"] = json!("accounts:read transactions:read transactions:write admin");
    let tampered_claims = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    // The same claims with `alg: none` and no signature.
    let mut header = jwt_header(token);
    header["alg"] = json!("none");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        parts[1]
    );

    // RFC 7662 §2.2 (and RFC 9068 §4: a token must be validated before it is trusted).
    for forged in [&tampered_sig, &tampered_claims, &unsigned] {
        assert_eq!(
            introspect_checked(&app, &client, forged).await,
            json!({"active": false}),
            "token {forged}"
        );
    }
}

#[tokio::test]
async fn public_client_may_not_introspect() {
    let app = spawn_app().await;
    app.standard().await;
    let public = app
        .client_with(
            "Mobile",
            FULL,
            true,
            &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            TokenFormat::Jwt,
        )
        .await;
    assert!(public.secret.is_none());
    let tokens = app.tokens_for(&public, "accounts:read").await;

    // RFC 7662 §2.1: the caller must authenticate; identifying itself is not enough.
    let r = app
        .http
        .post(format!("{}/introspect", app.url))
        .form(&[
            ("token", s(&tokens, "access_token")),
            ("client_id", public.id.as_str()),
        ])
        .send()
        .await
        .expect("request");
    assert!(r.headers().contains_key("www-authenticate"));
    let body = failure(r, 401, "invalid_client").await;
    assert!(body.get("active").is_none(), "body: {body}");
}

#[tokio::test]
async fn introspection_without_client_authentication_is_invalid_client() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;

    // RFC 7662 §2.1; RFC 6749 §5.2: 401 with WWW-Authenticate.
    let r = app
        .http
        .post(format!("{}/introspect", app.url))
        .form(&[("token", s(&tokens, "access_token"))])
        .send()
        .await
        .expect("request");
    assert!(r
        .headers()
        .get("www-authenticate")
        .is_some_and(|v| v.to_str().unwrap().starts_with("Basic")));
    failure(r, 401, "invalid_client").await;

    let impostor = TestClient {
        id: client.id.clone(),
        secret: Some("wrong-secret".into()),
    };
    let r = app
        .post_auth(
            "/introspect",
            &impostor,
            &[("token", s(&tokens, "access_token"))],
        )
        .await;
    failure(r, 401, "invalid_client").await;
}

#[tokio::test]
async fn introspection_without_a_token_is_invalid_request() {
    let app = spawn_app().await;
    let client = app.standard().await;
    // RFC 7662 §2.1: `token` is REQUIRED.
    let body = failure(
        app.post_auth(
            "/introspect",
            &client,
            &[("token_type_hint", "access_token")],
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(s(&body, "error_description"), "token is required");
}

#[tokio::test]
async fn introspection_with_a_json_body_is_invalid_request() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;

    // RFC 7662 §2.1: the request is application/x-www-form-urlencoded.
    let r = app
        .http
        .post(format!("{}/introspect", app.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .json(&json!({"token": s(&tokens, "access_token")}))
        .send()
        .await
        .expect("request");
    let body = failure(r, 400, "invalid_request").await;
    assert!(
        s(&body, "error_description").contains("x-www-form-urlencoded"),
        "body: {body}"
    );
}

/// Opaque access tokens are minted with a time-ordered id (54 characters); one stored
/// under the whole SHA-256 of its text (every token minted before ordered ids, 43
/// characters) is still found, and still revocable (RFC 7009 §2.1).
#[tokio::test]
async fn opaque_tokens_stored_under_their_whole_sha256_are_still_found() {
    use aws_lc_rs::digest;
    use tessera_server::crypto::{hash_secret, random_token};

    let app = spawn_app().await;
    app.standard().await;
    let (client, r) = app.opaque_client_credentials().await;
    let tokens: Value = r.json().await.expect("json");
    let minted = s(&tokens, "access_token");
    assert_eq!(minted.len(), 54, "8-byte id and 32 random bytes: {minted}");

    let mut row = app
        .state
        .store
        .find_access_token(&hash_secret(minted))
        .await
        .expect("store")
        .expect("the minted token is stored under its key");
    let legacy = random_token();
    row.token_hash
        .copy_from_slice(digest::digest(&digest::SHA256, legacy.as_bytes()).as_ref());
    row.jti = "legacy-jti".into();
    app.state
        .store
        .insert_access_token(&row)
        .await
        .expect("store");

    let info = introspect_checked(&app, &client, &legacy).await;
    assert_eq!(info["active"], true, "info: {info}");
    assert_eq!(info["jti"], "legacy-jti");
    // RFC 7009 §2.2: revocation answers 200 and the token is inactive afterwards.
    let r = app
        .post_auth("/revoke", &client, &[("token", &legacy)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        introspect_checked(&app, &client, &legacy).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect_checked(&app, &client, minted).await["active"],
        true
    );
}

#[tokio::test]
async fn a_refresh_tokens_answer_ends_with_its_rotation() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let first = app.tokens_for(&client, FULL).await;
    let rt = s(&first, "refresh_token");
    for _ in 0..2 {
        let info = introspect_checked(&app, &client, rt).await;
        assert_eq!(info["active"], true);
        assert_eq!(info["token_type"], "refresh_token");
    }

    // A rotation is no revocation, yet the rotated token is done with (RFC 9700 §4.14.2).
    let r = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.expect("json");
    assert_eq!(
        introspect_checked(&app, &client, rt).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect_checked(&app, &client, s(&second, "refresh_token")).await["active"],
        true
    );
}

#[tokio::test]
async fn an_answer_given_again_is_the_same_until_the_token_expires() {
    let app = spawn_app().await;
    app.standard().await;
    let (client, r) = app.opaque_client_credentials().await;
    let tokens: Value = r.json().await.expect("json");
    let token = s(&tokens, "access_token");
    let first = introspect_checked(&app, &client, token).await;
    assert_eq!(first["active"], true);
    app.clock.advance(599);
    assert_eq!(introspect_checked(&app, &client, token).await, first);

    // RFC 7662 §2.2: from `exp` on, inactive, however it was answered before.
    app.clock.advance(1);
    assert_eq!(
        introspect_checked(&app, &client, token).await,
        json!({"active": false})
    );
}
