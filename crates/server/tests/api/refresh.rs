//! The refresh token grant with rotation and reuse detection (RFC 6749 §6, OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).

use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};
use tessera_protocol::GrantType;
use tessera_server::clock::Clock;
use tessera_server::store::TokenFormat;

use crate::helpers::*;

const FULL: &str = "accounts:read transactions:read transactions:write";

/// `grant_type=refresh_token`, with `scope` when given.
async fn refresh(
    app: &TestApp,
    client: &TestClient,
    token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    app.token(client, &params).await
}

/// A successful token response (RFC 6749 §5.1): 200, never cached, JSON.
async fn success(r: reqwest::Response) -> Value {
    let status = r.status();
    let no_store = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(no_store.as_deref(), Some("no-store"));
    body
}

/// An error response (RFC 6749 §5.2): the status and `error` code; returns the body.
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

/// A refresh with `token` refused with `invalid_grant` (RFC 6749 §5.2) whose
/// `error_description` says `words`.
async fn refused(app: &TestApp, client: &TestClient, token: &str, words: &str) {
    let body = failure(
        refresh(app, client, token, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        s(&body, "error_description").contains(words),
        "body: {body}"
    );
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

#[tokio::test]
async fn refresh_issues_new_access_and_refresh_tokens_with_the_same_scope() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let first = app.tokens_for(&client, FULL).await;

    // RFC 6749 §6 and §5.1; OAuth 2.1 §4.3.1: rotation issues a new refresh token.
    let r = refresh(&app, &client, s(&first, "refresh_token"), None).await;
    assert_eq!(
        r.headers().get("pragma").map(|v| v.to_str().unwrap()),
        Some("no-cache")
    );
    let second = success(r).await;
    assert_eq!(s(&second, "token_type"), "Bearer");
    assert_eq!(second["expires_in"], 600);
    assert_eq!(s(&second, "scope"), FULL);
    assert_ne!(s(&second, "access_token"), s(&first, "access_token"));
    assert_ne!(s(&second, "refresh_token"), s(&first, "refresh_token"));
    assert_ne!(
        jwt_payload(s(&second, "access_token"))["jti"],
        jwt_payload(s(&first, "access_token"))["jti"]
    );

    let info = app.introspect(&client, s(&second, "access_token")).await;
    assert_eq!(info["active"], true);
    assert_eq!(s(&info, "scope"), FULL);
    // The rotated refresh token is no longer active (RFC 7662 §2.2).
    assert_eq!(
        app.introspect(&client, s(&first, "refresh_token")).await,
        json!({"active": false})
    );
    assert_eq!(
        app.introspect(&client, s(&second, "refresh_token")).await["active"],
        true
    );
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let first = app.tokens_for(&client, FULL).await;
    let second = success(refresh(&app, &client, s(&first, "refresh_token"), None).await).await;
    assert_eq!(
        app.introspect(&client, s(&second, "access_token")).await["active"],
        true
    );

    // RFC 9700 §4.14.2: the rotated token presented again is refused...
    refused(
        &app,
        &client,
        s(&first, "refresh_token"),
        "already been used",
    )
    .await;

    // ...and the family is revoked: the newest refresh token fails too...
    refused(&app, &client, s(&second, "refresh_token"), "revoked").await;
    // ...and every access token of the family is inactive (RFC 7662 §2.2).
    for token in [&first, &second] {
        assert_eq!(
            app.introspect(&client, s(token, "access_token")).await,
            json!({"active": false})
        );
    }
    assert_eq!(
        app.introspect(&client, s(&second, "refresh_token")).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn only_one_of_twenty_concurrent_refreshes_succeeds() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, FULL).await;
    let token = s(&tokens, "refresh_token");

    // OAuth 2.1 §4.3.1: a refresh token is single-use, even under a race.
    let responses = join_all((0..20).map(|_| refresh(&app, &client, token, None))).await;
    let mut ok = 0;
    for r in responses {
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("json");
        match status {
            200 => ok += 1,
            400 => assert_eq!(body["error"], "invalid_grant", "body: {body}"),
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one refresh must succeed");
}

#[tokio::test]
async fn narrower_scope_on_refresh_keeps_the_full_scope_in_the_new_refresh_token() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let first = app.tokens_for(&client, FULL).await;

    // RFC 6749 §6: a scope narrower than the original grant may be requested.
    let narrow = success(
        refresh(
            &app,
            &client,
            s(&first, "refresh_token"),
            Some("accounts:read"),
        )
        .await,
    )
    .await;
    assert_eq!(s(&narrow, "scope"), "accounts:read");
    assert_eq!(
        jwt_payload(s(&narrow, "access_token"))["scope"],
        "accounts:read"
    );
    assert_eq!(
        s(
            &app.introspect(&client, s(&narrow, "access_token")).await,
            "scope"
        ),
        "accounts:read"
    );

    // The new refresh token still carries the grant's full scope.
    let info = app.introspect(&client, s(&narrow, "refresh_token")).await;
    assert_eq!(s(&info, "scope"), FULL);
    let full = success(refresh(&app, &client, s(&narrow, "refresh_token"), None).await).await;
    assert_eq!(s(&full, "scope"), FULL);
    assert_eq!(jwt_payload(s(&full, "access_token"))["scope"], FULL);
}

#[tokio::test]
async fn wider_scope_on_refresh_is_invalid_scope() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, "accounts:read").await;

    // RFC 6749 §6: the scope "MUST NOT include any scope not originally granted", even
    // one the client is registered for.
    let body = failure(
        refresh(
            &app,
            &client,
            s(&tokens, "refresh_token"),
            Some("accounts:read transactions:write"),
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(
        s(&body, "error_description").contains("exceeds"),
        "body: {body}"
    );
}

#[tokio::test]
async fn refused_refresh_request_leaves_the_refresh_token_usable() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let tokens = app.tokens_for(&client, "accounts:read").await;
    let token = s(&tokens, "refresh_token");

    failure(
        refresh(
            &app,
            &client,
            token,
            Some("accounts:read transactions:write"),
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;

    // RFC 6749 §6: the old refresh token may be revoked only "after issuing a new
    // refresh token"; an error response issues none, so the token must still work.
    let again = success(refresh(&app, &client, token, None).await).await;
    assert_eq!(s(&again, "scope"), "accounts:read");
}

#[tokio::test]
async fn expired_refresh_token_is_invalid_grant() {
    let app = spawn_with(|c| c.tokens.refresh_token_ttl = Duration::from_secs(3600)).await;
    let client = app.standard().await;
    let first = app.tokens_for(&client, FULL).await;

    // Still valid just before its lifetime ends; the rotated token starts a new lifetime.
    app.clock.advance(3599);
    let second = success(refresh(&app, &client, s(&first, "refresh_token"), None).await).await;

    // RFC 6749 §5.2: an expired refresh token is invalid_grant.
    app.clock.advance(3600);
    refused(&app, &client, s(&second, "refresh_token"), "expired").await;
    assert_eq!(
        app.introspect(&client, s(&second, "refresh_token")).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn refresh_token_of_another_client_is_invalid_grant() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let other = app
        .client_with("Dashboard", FULL, false, &GrantType::ALL, TokenFormat::Jwt)
        .await;
    let tokens = app.tokens_for(&client, FULL).await;

    // RFC 6749 §6: the refresh token must have been issued to the authenticated client.
    failure(
        refresh(&app, &other, s(&tokens, "refresh_token"), None).await,
        400,
        "invalid_grant",
    )
    .await;

    // The attempt neither consumed nor revoked it: its own client can still use it.
    let again = success(refresh(&app, &client, s(&tokens, "refresh_token"), None).await).await;
    assert_eq!(s(&again, "scope"), FULL);
    assert_eq!(
        app.introspect(&client, s(&tokens, "access_token")).await["active"],
        true
    );
}

#[tokio::test]
async fn reuse_within_the_grace_period_succeeds_and_after_it_revokes_the_family() {
    let app = spawn_with(|c| c.tokens.refresh_grace_period = Duration::from_secs(10)).await;
    let client = app.standard().await;
    let first = app.tokens_for(&client, FULL).await;
    let old = s(&first, "refresh_token");
    let second = success(refresh(&app, &client, old, None).await).await;

    // Within the grace period a second use is a race of the client's own requests.
    app.clock.advance(5);
    let third = success(refresh(&app, &client, old, None).await).await;
    assert_ne!(s(&third, "refresh_token"), s(&second, "refresh_token"));
    assert_eq!(s(&third, "scope"), FULL);
    for token in [&second, &third] {
        assert_eq!(
            app.introspect(&client, s(token, "access_token")).await["active"],
            true
        );
        assert_eq!(
            app.introspect(&client, s(token, "refresh_token")).await["active"],
            true
        );
    }

    // RFC 9700 §4.14.2: past the grace period it is reuse, and the family is revoked.
    app.clock.advance(6);
    failure(
        refresh(&app, &client, old, None).await,
        400,
        "invalid_grant",
    )
    .await;
    for token in [&second, &third] {
        failure(
            refresh(&app, &client, s(token, "refresh_token"), None).await,
            400,
            "invalid_grant",
        )
        .await;
        assert_eq!(
            app.introspect(&client, s(token, "access_token")).await,
            json!({"active": false})
        );
    }
}

#[tokio::test]
async fn client_without_the_refresh_grant_gets_no_refresh_token() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app
        .client_with(
            "Kiosk",
            FULL,
            false,
            &[GrantType::AuthorizationCode],
            TokenFormat::Jwt,
        )
        .await;

    let tokens = app.tokens_for(&client, "accounts:read").await;
    assert!(tokens["access_token"].is_string());
    assert!(
        tokens.get("refresh_token").is_none(),
        "unexpected refresh token: {tokens}"
    );

    // RFC 6749 §5.2: nor may it use the grant.
    failure(
        refresh(&app, &client, "anything", None).await,
        400,
        "unauthorized_client",
    )
    .await;
}

#[tokio::test]
async fn unknown_or_missing_refresh_token_is_refused() {
    let app = spawn_app().await;
    let client = app.standard().await;

    // RFC 6749 §5.2: an invalid refresh token is invalid_grant...
    failure(
        refresh(&app, &client, "not-a-refresh-token", None).await,
        400,
        "invalid_grant",
    )
    .await;
    // ...and a missing one a malformed request.
    let r = app.token(&client, &[("grant_type", "refresh_token")]).await;
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let body = failure(r, 400, "invalid_request").await;
    assert_eq!(s(&body, "error_description"), "refresh_token is required");
}

/// Refresh tokens minted before chains (54 characters: time-ordered id and 32 random
/// bytes; 43 characters: keyed by their whole SHA-256) rotate into a chain of their
/// own, and presenting one again is still reuse.
#[tokio::test]
async fn refresh_tokens_minted_before_chains_still_rotate() {
    use tessera_server::crypto::{hash_secret, ordered_token, random_token, refresh_key};

    let app = spawn_app().await;
    let client = app.standard().await;
    for legacy in [ordered_token(), random_token()] {
        let first = app.tokens_for(&client, FULL).await;
        let minted = s(&first, "refresh_token");
        // The same grant's token, stored under a key of the older kind.
        let mut row = app
            .state
            .store
            .find_refresh_token(&refresh_key(minted))
            .await
            .expect("store")
            .expect("the minted token is stored under its key");
        row.token_hash = hash_secret(&legacy);
        app.state
            .store
            .insert_refresh_token(&row)
            .await
            .expect("store");

        let second = success(refresh(&app, &client, &legacy, None).await).await;
        assert_eq!(s(&second, "refresh_token").len(), 64);
        assert_eq!(s(&second, "scope"), FULL);
        // Presenting the rotated token again revokes the family (RFC 9700 §4.14.2).
        refused(&app, &client, &legacy, "already been used").await;
        assert_eq!(
            app.introspect(&client, s(&second, "refresh_token")).await,
            json!({"active": false})
        );
    }
}

/// Every token of a chain carries the chain's id; the store keeps the current one
/// only, and any earlier one presented (not only the one just before) is reuse: the
/// family is revoked (RFC 9700 §4.14.2).
#[tokio::test]
async fn every_earlier_token_of_a_chain_is_reuse() {
    use base64::Engine;

    let app = spawn_app().await;
    let client = app.standard().await;
    let first = app.tokens_for(&client, FULL).await;
    let mut tokens = vec![s(&first, "refresh_token").to_owned()];
    for _ in 0..3 {
        let next = success(refresh(&app, &client, tokens.last().unwrap(), None).await).await;
        tokens.push(s(&next, "refresh_token").to_owned());
    }
    let chain = |t: &str| {
        assert_eq!(t.len(), 64, "{t}");
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .unwrap()[..16]
            .to_vec()
    };
    assert!(
        tokens.iter().all(|t| chain(t) == chain(&tokens[0])),
        "one chain id: {tokens:?}"
    );
    let current = tokens.last().unwrap();
    assert_eq!(app.introspect(&client, current).await["active"], true);
    for old in &tokens[..3] {
        assert_eq!(
            app.introspect(&client, old).await,
            json!({"active": false}),
            "an earlier token is inactive"
        );
    }

    // The first token, three rotations back.
    refused(&app, &client, &tokens[0], "already been used").await;
    refused(&app, &client, current, "revoked").await;
}

/// A rotation writes the chain's row and not the grant's (but once a day), yet the
/// grant's last use, as the connected apps page shows it, is that of the latest
/// rotation.
#[tokio::test]
async fn a_grants_last_use_is_its_latest_rotation() {
    use tessera_server::crypto::refresh_key;

    let app = spawn_app().await;
    let client = app.standard().await;
    let mut rt = s(&app.tokens_for(&client, FULL).await, "refresh_token").to_owned();
    let grant_id = app
        .state
        .store
        .find_refresh_token(&refresh_key(&rt))
        .await
        .expect("store")
        .expect("stored")
        .grant_id;
    for _ in 0..3 {
        app.clock.advance(100);
        let next = success(refresh(&app, &client, &rt, None).await).await;
        rt = s(&next, "refresh_token").to_owned();
        let grant = app
            .state
            .store
            .get_grant(&grant_id)
            .await
            .expect("store")
            .expect("the grant");
        assert_eq!(grant.last_used_at, Some(app.clock.now()));
    }
}

/// The kinds of the audit events recorded for the test user, oldest first.
async fn audit_kinds(app: &TestApp, client: &TestClient) -> Vec<String> {
    let events = app
        .state
        .store
        .list_audit(&tessera_server::store::AuditFilter {
            user_id: None,
            client_id: Some(client.id.clone()),
            limit: 100,
        })
        .await
        .unwrap();
    events.into_iter().rev().map(|e| e.kind).collect()
}

#[tokio::test]
async fn rotations_are_audited_once_per_period_by_default_and_each_with_zero() {
    // Default `audit.refresh_interval` (1 day): of three rotations in the period of
    // the code's redemption and two the next day, only the first of the next day is
    // recorded.
    let app = spawn_app().await;
    let client = app.standard().await;
    let mut rt = s(&app.tokens_for(&client, FULL).await, "refresh_token").to_owned();
    for day in [0, 1] {
        app.clock.advance(day * 86_400);
        for _ in 0..2 + (1 - day) {
            let next = success(refresh(&app, &client, &rt, None).await).await;
            rt = s(&next, "refresh_token").to_owned();
        }
    }
    assert_eq!(audit_kinds(&app, &client).await, ["grant", "refresh"]);

    // `0s`: every rotation is recorded.
    let app = spawn_with(|c| c.audit.refresh_interval = Duration::ZERO).await;
    let client = app.standard().await;
    let mut rt = s(&app.tokens_for(&client, FULL).await, "refresh_token").to_owned();
    for _ in 0..3 {
        let next = success(refresh(&app, &client, &rt, None).await).await;
        rt = s(&next, "refresh_token").to_owned();
    }
    assert_eq!(
        audit_kinds(&app, &client).await,
        ["grant", "refresh", "refresh", "refresh"]
    );
}

#[tokio::test]
async fn an_opaque_clients_rotation_stores_an_access_token_of_the_grant() {
    let app = spawn_app().await;
    app.standard().await;
    let client = app.opaque_code_client(FULL).await;
    let tokens = app.tokens_for(&client, FULL).await;
    let rotated = success(
        refresh(
            &app,
            &client,
            s(&tokens, "refresh_token"),
            Some("accounts:read"),
        )
        .await,
    )
    .await;
    let access = s(&rotated, "access_token");
    assert!(!access.contains('.'), "not opaque: {access}");
    assert_eq!(s(&rotated, "scope"), "accounts:read");

    // RFC 7662 §2.2: the stored token answers with what the rotation issued it for:
    // the narrowed scope, the grant's user, its own lifetime.
    let info = app.introspect(&client, access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(s(&info, "scope"), "accounts:read");
    assert_eq!(s(&info, "client_id"), client.id);
    assert_eq!(s(&info, "username"), "alice");
    let lifetime = info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap();
    assert_eq!(Some(lifetime), rotated["expires_in"].as_i64(), "{info}");

    // It is of the grant: the spent token presented again revokes the family
    // (RFC 9700 §4.14.2), this access token with it.
    refused(
        &app,
        &client,
        s(&tokens, "refresh_token"),
        "already been used",
    )
    .await;
    assert_eq!(
        app.introspect(&client, access).await,
        json!({"active": false})
    );
}
