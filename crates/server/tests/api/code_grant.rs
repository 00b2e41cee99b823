//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3) with PKCE
//! (RFC 7636 §4.6): single use, 60-second lifetime, bound to client, redirect URI and
//! verifier.

use futures::future::join_all;
use serde_json::Value;

use crate::helpers::*;

fn exchange<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

async fn assert_error(r: reqwest::Response, status: u16, error: &str, description: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

/// The answer to a code used before (RFC 6749 §4.1.2).
async fn spent(r: reqwest::Response) {
    assert_error(
        r,
        400,
        "invalid_grant",
        "the authorization code has already been used",
    )
    .await;
}

#[tokio::test]
async fn code_exchange_issues_rfc9068_tokens() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let r = app.token(&client, &exchange(&code, &verifier)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "transactions:read");
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    let at = body["access_token"].as_str().unwrap();
    let header = jwt_header(at);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let claims = jwt_payload(at);
    assert_eq!(claims["iss"], app.url);
    assert_eq!(claims["aud"], app.url);
    assert_eq!(claims["client_id"], client.id);
    assert_eq!(claims["scope"], "transactions:read");
    assert_eq!(claims["iat"], app.now());
    assert_eq!(claims["exp"], app.now() + 600);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let user = app
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], user.id);
}

#[tokio::test]
async fn second_use_fails_and_revokes_what_the_code_issued() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let first: serde_json::Value = app
        .token(&client, &exchange(&code, &verifier))
        .await
        .json()
        .await
        .unwrap();
    let at = first["access_token"].as_str().unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, at).await["active"], true);

    spent(app.token(&client, &exchange(&code, &verifier)).await).await;
    // RFC 6749 §4.1.2: the tokens issued from the code are revoked.
    assert_eq!(
        app.introspect(&client, at).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        app.introspect(&client, rt).await,
        serde_json::json!({"active": false})
    );
    let r = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn twenty_parallel_redemptions_one_winner() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let params = exchange(&code, &verifier);
    let responses = join_all((0..20).map(|_| app.token(&client, &params))).await;
    let mut ok = 0;
    for r in responses {
        match r.status().as_u16() {
            200 => ok += 1,
            400 => {
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"], "invalid_grant");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn code_expires_after_60_seconds() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    app.clock.advance(60);
    let r = app.token(&client, &exchange(&code, &verifier)).await;
    assert_error(
        r,
        400,
        "invalid_grant",
        "the authorization code has expired",
    )
    .await;

    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    app.clock.advance(59);
    assert_eq!(
        app.token(&client, &exchange(&code, &verifier))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn wrong_verifier_is_invalid_grant() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let (other, _) = pkce();
    let r = app.token(&client, &exchange(&code, &other)).await;
    assert_error(
        r,
        400,
        "invalid_grant",
        "code_verifier does not match the code_challenge",
    )
    .await;

    // The refused attempt spent the code: one guess of the verifier per code.
    spent(app.token(&client, &exchange(&code, &verifier)).await).await;
}

#[tokio::test]
async fn missing_or_malformed_verifier_is_invalid_request() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (code, _) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let r = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_error(r, 400, "invalid_request", "code_verifier is required").await;
    let r = app.token(&client, &exchange(&code, "too-short")).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn redirect_uri_must_match_the_authorization_request() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let r = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9001/cb"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_error(
        r,
        400,
        "invalid_grant",
        "redirect_uri does not match the authorization request",
    )
    .await;

    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let r = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_error(
        r,
        400,
        "invalid_grant",
        "redirect_uri is required for this code",
    )
    .await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_client() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let other = app
        .client_with(
            "Other",
            "transactions:read",
            false,
            &tessera_protocol::GrantType::ALL,
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let r = app.token(&other, &exchange(&code, &verifier)).await;
    assert_error(r, 400, "invalid_grant", "the authorization code is invalid").await;
    // The attempt did not burn the code for its rightful client.
    assert_eq!(
        app.token(&client, &exchange(&code, &verifier))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_code_is_invalid_grant() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let (verifier, _) = pkce();
    let r = app
        .token(&client, &exchange("no-such-code", &verifier))
        .await;
    assert_error(r, 400, "invalid_grant", "the authorization code is invalid").await;
}

#[tokio::test]
async fn public_client_redeems_with_pkce_alone() {
    let app = spawn_app().await;
    app.standard().await;
    let public = app
        .client_with(
            "Mobile",
            "transactions:read",
            true,
            &[
                tessera_protocol::GrantType::AuthorizationCode,
                tessera_protocol::GrantType::RefreshToken,
            ],
            tessera_server::store::TokenFormat::Jwt,
        )
        .await;
    assert!(public.secret.is_none());
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &public, "transactions:read")
        .await;
    // helpers::TestApp::token sends client_id in the body for a client without a secret.
    let r = app.token(&public, &exchange(&code, &verifier)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_opaque_clients_code_is_redeemed_for_a_stored_access_token() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app
        .opaque_code_client("accounts:read transactions:read")
        .await;
    let browser = app.browser();
    let (code, verifier) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let r = app.token(&client, &exchange(&code, &verifier)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert!(!access.contains('.'), "not opaque: {access}");

    // RFC 7662 §2.2: the token was stored with what the code was issued for.
    let info = app.introspect(&client, access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["scope"], "transactions:read");
    assert_eq!(info["username"], "alice");
    assert_eq!(info["client_id"], client.id.as_str());
    // So was the refresh token, in the same redemption.
    let refresh = body["refresh_token"].as_str().unwrap();
    let info = app.introspect(&client, refresh).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["scope"], "transactions:read");
}
