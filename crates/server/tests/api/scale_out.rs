//! Several instances on one PostgreSQL database, as behind a load balancer: two servers
//! on their own ports share a schema, the issuer (the first one's URL), the master key
//! and the clock, and a request may land on either. Codes stay single-use, refresh
//! token reuse is caught, revocations reach every instance's feed, and login sessions
//! and consent forms work wherever the next request goes. These tests always run on
//! PostgreSQL, whatever `TESSERA_TEST_BACKEND` says.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tessera_protocol::GrantType;
use tessera_resource::{BearerError, FeedFallback, FeedStatus, RevocationCheck, Verifier};
use tessera_server::store::TokenFormat;

use crate::helpers::*;

fn exchange<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

/// A successful token response: 200, never cached; returns the body.
async fn success(r: reqwest::Response) -> Value {
    let status = r.status();
    let cache = r.headers().get("cache-control").cloned();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(
        cache.as_ref().map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    body
}

/// An error response of the token endpoint (RFC 6749 §5.2).
async fn assert_error(r: reqwest::Response, status: u16, error: &str, description: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    app.token(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

#[tokio::test]
async fn a_code_issued_by_one_instance_is_redeemed_once_across_instances() {
    let (a, b) = spawn_pair().await;
    let issuer = a.url.clone();
    assert_eq!(b.state.config.issuer, issuer);
    let client = a.standard().await;

    // Login, consent and the code at A.
    let browser = a.browser();
    let (code, verifier) = a
        .authorize_code(&browser, &client, "transactions:read")
        .await;

    // Redeemed at B: tokens of the one issuer, signed with a key A publishes too.
    let tokens = success(b.token(&client, &exchange(&code, &verifier)).await).await;
    let at = s(&tokens, "access_token");
    let rt = s(&tokens, "refresh_token");
    let claims = jwt_payload(at);
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], issuer);
    assert_eq!(claims["scope"], "transactions:read");
    assert_eq!(a.introspect(&client, at).await["active"], true);

    // A second redemption, at A: the code was used at B.
    assert_error(
        a.token(&client, &exchange(&code, &verifier)).await,
        400,
        "invalid_grant",
        "the authorization code has already been used",
    )
    .await;
    // RFC 6749 §4.1.2: what the code issued at B is revoked, as both instances see.
    for app in [&a, &b] {
        assert_eq!(app.introspect(&client, at).await, json!({"active": false}));
        assert_eq!(app.introspect(&client, rt).await, json!({"active": false}));
    }
}

#[tokio::test]
async fn a_refresh_token_rotated_at_one_instance_and_replayed_at_another_revokes_the_family() {
    let (a, b) = spawn_pair().await;
    let client = a.standard().await;
    let first = a
        .tokens_for(&client, "accounts:read transactions:read")
        .await;

    // Rotated at A.
    let second = success(refresh(&a, &client, s(&first, "refresh_token")).await).await;
    assert_ne!(s(&second, "refresh_token"), s(&first, "refresh_token"));

    // The rotated token replayed at B: reuse (RFC 9700 §4.14.2).
    assert_error(
        refresh(&b, &client, s(&first, "refresh_token")).await,
        400,
        "invalid_grant",
        "the refresh token has already been used",
    )
    .await;
    // The family's newest refresh token is refused at A too, and its access tokens are
    // inactive at both.
    assert_error(
        refresh(&a, &client, s(&second, "refresh_token")).await,
        400,
        "invalid_grant",
        "the refresh token is invalid, expired or revoked",
    )
    .await;
    for app in [&a, &b] {
        for tokens in [&first, &second] {
            assert_eq!(
                app.introspect(&client, s(tokens, "access_token")).await,
                json!({"active": false})
            );
        }
    }
}

#[tokio::test]
async fn a_grant_revoked_at_one_instance_is_refused_by_a_resource_server_following_another() {
    let (a, b) = spawn_pair().await;
    let client = a.standard().await;
    let rs = a
        .client_with(
            "Bank",
            "",
            false,
            &[GrantType::ClientCredentials],
            TokenFormat::Jwt,
        )
        .await;
    // The resource server knows only the issuer's URL (A's); the load balancer sends
    // its requests to B, which this HTTP proxy stands for (B serves the absolute-form
    // requests of a forward proxy like any other).
    let via_b = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(&b.url).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let verifier = Verifier::builder(&a.url)
        .audience(&a.url)
        .realm("bank")
        .introspection(rs.id, rs.secret.unwrap())
        .revocation_check(RevocationCheck::Feed {
            fallback: FeedFallback::Introspect,
        })
        .http_client(via_b)
        .build();
    assert!(
        verifier.wait_for_feed(Duration::from_secs(5)).await,
        "subscribed to the feed"
    );
    assert_eq!(verifier.feed_status(), FeedStatus::Synced);
    // The subscription is B's, not A's.
    assert_eq!(b.state.feed.receiver_count(), 1);
    assert_eq!(a.state.feed.receiver_count(), 0);

    let tokens = a.tokens_for(&client, "transactions:read").await;
    let at = s(&tokens, "access_token");
    assert!(verifier.verify(at).await.is_ok());

    // RFC 7009 at A: revoking the refresh token revokes the grant. B learns of it from
    // the database (polled), not from A's process.
    let started = Instant::now();
    let r = a
        .post_auth(
            "/revoke",
            &client,
            &[("token", s(&tokens, "refresh_token"))],
        )
        .await;
    assert_eq!(r.status(), 200);
    let took = loop {
        match verifier.verify(at).await {
            Err(BearerError::InvalidToken { description, .. }) => {
                assert_eq!(description, "the token has been revoked");
                break started.elapsed();
            }
            Ok(_) if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            other => panic!("not refused within {:?}: {other:?}", started.elapsed()),
        }
    };
    println!("revoked at A, refused by a resource server following B after {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn a_login_session_and_consent_form_work_across_instances() {
    let (a, b) = spawn_pair().await;
    let client = a.standard().await;
    let at_a = a.browser();
    let at_b = at_a.at(&b);
    let (verifier, challenge) = pkce();

    // Sign in at A: the session cookie is set, the consent page follows.
    let r = at_a
        .authorize(
            &client,
            "transactions:read",
            &challenge,
            &[("state", "s-a")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let r = at_a.login(&page, ALICE).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("tessera_session=")),
        "session cookie"
    );
    assert!(r.text().await.unwrap().contains("/consent\""));

    // The next request lands on B: the session holds, straight to consent.
    let r = at_b
        .authorize(
            &client,
            "transactions:read",
            &challenge,
            &[("state", "s-b")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let page = r.text().await.unwrap();
    assert!(page.contains("/consent\""), "{page}");
    assert!(
        !page.contains("/login\""),
        "asked to sign in again:\n{page}"
    );

    // B's consent form posted to A: the CSRF token is B's form field and the browser's
    // cookie (double submit), which A checks like B would.
    let r = at_a.consent(&page, "approve").await;
    assert_eq!(r.status(), 303);
    let p = location_params(&r);
    assert_eq!(p["state"], "s-b");
    assert_eq!(p["iss"], a.url);
    let tokens = success(b.token(&client, &exchange(&p["code"], &verifier)).await).await;
    assert_eq!(s(&tokens, "scope"), "transactions:read");

    // The consent is remembered for both: B answers at once with a code.
    let r = at_b
        .authorize(
            &client,
            "transactions:read",
            &challenge,
            &[("state", "again")],
        )
        .await;
    assert_eq!(r.status(), 302);
    let p = location_params(&r);
    assert!(p.contains_key("code"));
    assert_eq!(p["state"], "again");
    assert_eq!(p["iss"], a.url);
}

/// An opaque client_credentials token of A's, introspected twice at B (active both
/// times: with kept answers, the second is B's kept one), then revoked at A (RFC 7009
/// §2.1). Returns the client and the token.
async fn revoked_at_a_after_b_introspected(a: &TestApp, b: &TestApp) -> (TestClient, String) {
    a.standard().await;
    let (client, r) = a.opaque_client_credentials().await;
    let tokens = success(r).await;
    let token = s(&tokens, "access_token").to_owned();
    for _ in 0..2 {
        assert_eq!(b.introspect(&client, &token).await["active"], true);
    }
    let r = a.post_auth("/revoke", &client, &[("token", &token)]).await;
    assert_eq!(r.status(), 200);
    (client, token)
}

#[tokio::test]
async fn a_token_revoked_at_one_instance_is_inactive_at_the_other_within_half_a_second() {
    let (a, b) = spawn_pair().await;
    let (client, token) = revoked_at_a_after_b_introspected(&a, &b).await;
    let revoked_at = Instant::now();

    // Inactive at A at once (A forgets its kept answers), and at B once its kept
    // answer is older than half a second.
    assert_eq!(
        a.introspect(&client, &token).await,
        json!({"active": false})
    );
    loop {
        if b.introspect(&client, &token).await == json!({"active": false}) {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_millis(750),
            "B still answers the revoked token active after {:?}",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn without_kept_answers_another_instances_revocation_is_seen_at_once() {
    let a = spawn_on(Backend::Postgres, |_| {}).await;
    let b = spawn_sharing(&a, |c| c.tokens.introspection_cache = Duration::ZERO).await;
    let (client, token) = revoked_at_a_after_b_introspected(&a, &b).await;
    // B reads the store for every introspection.
    assert_eq!(
        b.introspect(&client, &token).await,
        json!({"active": false})
    );
}
