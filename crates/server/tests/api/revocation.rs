//! Token revocation at `POST /revoke` (RFC 7009).

use serde_json::{json, Value};
use tessera_protocol::GrantType;
use tessera_server::store::TokenFormat;

use crate::helpers::*;

const FULL: &str = "accounts:read transactions:read transactions:write";

/// `POST /revoke` as `client`, with a `token_type_hint` when given.
async fn revoke(
    app: &TestApp,
    client: &TestClient,
    token: &str,
    hint: Option<&str>,
) -> reqwest::Response {
    let mut params = vec![("token", token)];
    if let Some(hint) = hint {
        params.push(("token_type_hint", hint));
    }
    app.post_auth("/revoke", client, &params).await
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    app.token(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

/// RFC 7009 §2.2: success is a 200.
async fn revoked(r: reqwest::Response) {
    let status = r.status();
    let body = r.text().await.expect("body");
    assert_eq!(status, 200, "body: {body}");
}

/// An error response (RFC 7009 §2.2.1, RFC 6749 §5.2); returns the body.
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

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;
    assert_eq!(
        app.introspect(&client, s(&tokens, "access_token")).await["active"],
        true
    );

    revoked(
        revoke(
            &app,
            &client,
            s(&tokens, "refresh_token"),
            Some("refresh_token"),
        )
        .await,
    )
    .await;

    // RFC 7009 §2.1: the refresh token is invalid at once...
    failure(
        refresh(&app, &client, s(&tokens, "refresh_token")).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.introspect(&client, s(&tokens, "refresh_token")).await,
        json!({"active": false})
    );
    // ...and so are the access tokens of the same grant.
    assert_eq!(
        app.introspect(&client, s(&tokens, "access_token")).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn revoking_a_jwt_access_token_leaves_the_refresh_token_working() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;

    revoked(
        revoke(
            &app,
            &client,
            s(&tokens, "access_token"),
            Some("access_token"),
        )
        .await,
    )
    .await;

    // RFC 7009 §2.1: the access token is invalid...
    assert_eq!(
        app.introspect(&client, s(&tokens, "access_token")).await,
        json!({"active": false})
    );
    // ...while the server MAY, but Tessera does not, revoke the refresh token with it.
    let r = refresh(&app, &client, s(&tokens, "refresh_token")).await;
    assert_eq!(r.status(), 200);
    let fresh: Value = r.json().await.expect("json");
    assert_eq!(
        app.introspect(&client, s(&fresh, "access_token")).await["active"],
        true
    );
}

#[tokio::test]
async fn revoking_an_opaque_access_token_makes_it_inactive() {
    let app = spawn_app().await;
    app.standard().await;
    let (client, r) = app.opaque_client_credentials().await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.expect("json");
    let token = s(&tokens, "access_token");
    assert!(
        !token.contains('.'),
        "expected an opaque token, got {token}"
    );
    assert_eq!(app.introspect(&client, token).await["active"], true);

    revoked(revoke(&app, &client, token, None).await).await;

    // RFC 7009 §2.1.
    assert_eq!(
        app.introspect(&client, token).await,
        json!({"active": false})
    );
    // Revoking it again is still a success (§2.2).
    revoked(revoke(&app, &client, token, None).await).await;
}

#[tokio::test]
async fn revoking_an_unknown_token_is_ok() {
    let app = spawn_app().await;
    let client = app.standard().await;
    // RFC 7009 §2.2: invalid tokens do not cause an error response.
    revoked(revoke(&app, &client, "no-such-token", None).await).await;
    revoked(revoke(&app, &client, "no.such.jwt", Some("access_token")).await).await;
}

#[tokio::test]
async fn revocation_without_a_token_is_invalid_request() {
    let app = spawn_app().await;
    let client = app.standard().await;
    // RFC 7009 §2.1: `token` is REQUIRED; RFC 6749 §5.2.
    let body = failure(
        app.post_auth("/revoke", &client, &[("token_type_hint", "access_token")])
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(s(&body, "error_description"), "token is required");
}

#[tokio::test]
async fn revocation_without_client_authentication_is_invalid_client() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;

    // RFC 7009 §2.1: the client authenticates; RFC 6749 §5.2: 401 with WWW-Authenticate.
    let r = app
        .http
        .post(format!("{}/revoke", app.url))
        .form(&[("token", s(&tokens, "refresh_token"))])
        .send()
        .await
        .expect("request");
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    failure(r, 401, "invalid_client").await;
    assert!(
        challenge.as_deref().is_some_and(|c| c.starts_with("Basic")),
        "challenge: {challenge:?}"
    );

    // A wrong secret is refused the same way.
    let impostor = TestClient {
        id: client.id.clone(),
        secret: Some("wrong-secret".into()),
    };
    let r = revoke(&app, &impostor, s(&tokens, "refresh_token"), None).await;
    assert!(r.headers().contains_key("www-authenticate"));
    failure(r, 401, "invalid_client").await;

    // Nothing was revoked.
    assert_eq!(
        app.introspect(&client, s(&tokens, "refresh_token")).await["active"],
        true
    );
}

#[tokio::test]
async fn revoking_another_clients_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let other = app
        .client_with("Dashboard", FULL, false, &GrantType::ALL, TokenFormat::Jwt)
        .await;
    let tokens = app.tokens_for(&client, FULL).await;

    // RFC 7009 §2.1: the server verifies the token was issued to the requesting client.
    for (kind, token) in [
        ("access_token", s(&tokens, "access_token")),
        ("refresh_token", s(&tokens, "refresh_token")),
    ] {
        failure(
            revoke(&app, &other, token, Some(kind)).await,
            400,
            "unauthorized_client",
        )
        .await;
        assert_eq!(
            app.introspect(&client, token).await["active"],
            true,
            "{kind} must stay active"
        );
    }
    let r = refresh(&app, &client, s(&tokens, "refresh_token")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_wrong_token_type_hint_still_revokes() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;

    // RFC 7009 §2.1: a wrong hint only widens the search; the token is still revoked.
    revoked(
        revoke(
            &app,
            &client,
            s(&tokens, "refresh_token"),
            Some("access_token"),
        )
        .await,
    )
    .await;
    failure(
        refresh(&app, &client, s(&tokens, "refresh_token")).await,
        400,
        "invalid_grant",
    )
    .await;

    let tokens = app.tokens_for(&client, FULL).await;
    revoked(
        revoke(
            &app,
            &client,
            s(&tokens, "access_token"),
            Some("refresh_token"),
        )
        .await,
    )
    .await;
    assert_eq!(
        app.introspect(&client, s(&tokens, "access_token")).await,
        json!({"active": false})
    );
    assert_eq!(
        app.introspect(&client, s(&tokens, "refresh_token")).await["active"],
        true
    );

    // The same for an opaque access token hinted as a refresh token.
    let (batch, r) = app.opaque_client_credentials().await;
    assert_eq!(r.status(), 200);
    let opaque: Value = r.json().await.expect("json");
    revoked(
        revoke(
            &app,
            &batch,
            s(&opaque, "access_token"),
            Some("refresh_token"),
        )
        .await,
    )
    .await;
    assert_eq!(
        app.introspect(&batch, s(&opaque, "access_token")).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_also_revokes_opaque_access_tokens_of_the_grant() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app.opaque_code_client(FULL).await;
    let tokens = app.tokens_for(&client, FULL).await;
    assert!(!s(&tokens, "access_token").contains('.'));
    assert_eq!(
        app.introspect(&client, s(&tokens, "access_token")).await["active"],
        true
    );

    // RFC 7009 §2.1: access tokens of the same grant SHOULD be invalidated too.
    revoked(revoke(&app, &client, s(&tokens, "refresh_token"), None).await).await;
    assert_eq!(
        app.introspect(&client, s(&tokens, "access_token")).await,
        json!({"active": false})
    );
    failure(
        refresh(&app, &client, s(&tokens, "refresh_token")).await,
        400,
        "invalid_grant",
    )
    .await;
}
