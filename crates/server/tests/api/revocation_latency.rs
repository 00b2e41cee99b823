//! The guarantee of the revocation feed: a resource server verifying JWTs locally
//! (`tessera-resource` subscribed to the feed) refuses a token within 1 second of its
//! grant's revocation, while ordinary requests cost no network call. Measured over
//! 100 revocations; the median and maximum are printed (`--nocapture`).

use std::time::{Duration, Instant};

use tessera_protocol::GrantType;
use tessera_resource::{BearerError, FeedFallback, FeedStatus, RevocationCheck, Verifier};
use tessera_server::store::TokenFormat;

use crate::helpers::*;

const REVOCATIONS: usize = 100;
const GUARANTEE: Duration = Duration::from_secs(1);

async fn subscribed_verifier(app: &TestApp) -> Verifier {
    let rs = app
        .client_with(
            "Bank",
            "",
            false,
            &[GrantType::ClientCredentials],
            TokenFormat::Jwt,
        )
        .await;
    let verifier = Verifier::builder(&app.url)
        .audience(&app.url)
        .realm("bank")
        .introspection(rs.id, rs.secret.unwrap())
        .revocation_check(RevocationCheck::Feed {
            fallback: FeedFallback::Introspect,
        })
        .build();
    assert!(
        verifier.wait_for_feed(Duration::from_secs(5)).await,
        "subscribed to the feed"
    );
    assert_eq!(verifier.feed_status(), FeedStatus::Synced);
    verifier
}

/// Poll the verifier until it refuses `token`; returns how long that took.
async fn time_to_refusal(verifier: &Verifier, token: &str, since: Instant) -> Duration {
    loop {
        match verifier.verify(token).await {
            Err(BearerError::InvalidToken { description, .. }) => {
                assert_eq!(description, "the token has been revoked");
                return since.elapsed();
            }
            Ok(_) if since.elapsed() < GUARANTEE * 5 => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            other => panic!("not refused within {:?}: {other:?}", since.elapsed()),
        }
    }
}

#[tokio::test]
async fn revoked_on_the_page_refused_by_the_resource_server_within_a_second() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let verifier = subscribed_verifier(&app).await;
    let browser = app.browser();
    let (code, verifier_code) = app
        .authorize_code(&browser, &client, "transactions:read")
        .await;
    let tokens: serde_json::Value = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier_code),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    assert!(verifier.verify(at).await.is_ok());

    let page = browser
        .get("/account/apps", &[])
        .await
        .text()
        .await
        .unwrap();
    let started = Instant::now();
    let r = browser
        .post(
            "/account/apps/revoke",
            &[
                ("csrf", &hidden_field(&page, "csrf")),
                ("client_id", &client.id),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let took = time_to_refusal(&verifier, at, started).await;
    println!("connected apps page revocation refused by the resource server after {took:?}");
    assert!(took < GUARANTEE, "took {took:?}");
}

#[tokio::test]
async fn a_hundred_revocations_each_refused_within_a_second() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let verifier = subscribed_verifier(&app).await;
    let browser = app.browser();
    let mut grants = Vec::with_capacity(REVOCATIONS);
    for _ in 0..REVOCATIONS {
        // The first authorization signs in and consents; the rest are remembered.
        let (code, code_verifier) = app
            .authorize_code(&browser, &client, "transactions:read")
            .await;
        let tokens: serde_json::Value = app
            .token(
                &client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &code_verifier),
                ],
            )
            .await
            .json()
            .await
            .unwrap();
        let at = tokens["access_token"].as_str().unwrap().to_owned();
        let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
        grants.push((at, rt));
    }
    // Ordinary requests: verified locally, no network call (the feed is live).
    for (at, _) in &grants {
        assert!(verifier.verify(at).await.is_ok());
    }
    let mut latencies = Vec::with_capacity(REVOCATIONS);
    for (at, rt) in &grants {
        let started = Instant::now();
        // RFC 7009: revoking the refresh token revokes the grant.
        let r = app.post_auth("/revoke", &client, &[("token", rt)]).await;
        assert_eq!(r.status(), 200);
        latencies.push(time_to_refusal(&verifier, at, started).await);
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    println!(
        "revocation to refusal over {REVOCATIONS} revocations: median {median:?}, max {max:?}"
    );
    assert!(max < GUARANTEE, "slowest {max:?}");
}
