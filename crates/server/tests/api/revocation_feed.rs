//! The revocation feed: Server-Sent Events of revoked grants and tokens for resource
//! servers, authenticated, resumable from a cursor, surviving a restart.

use std::time::Duration;

use crate::helpers::*;
use tessera_protocol::GrantType;
use tessera_server::store::TokenFormat;

const WAIT: Duration = Duration::from_secs(5);

/// A confidential client standing for a resource server.
async fn resource_server(app: &TestApp) -> TestClient {
    app.client_with(
        "Bank",
        "",
        false,
        &[GrantType::ClientCredentials],
        TokenFormat::Jwt,
    )
    .await
}

async fn subscribe(app: &TestApp, rs: &TestClient, last_event_id: Option<&str>) -> SseReader {
    let mut req = app
        .http
        .get(format!("{}/revocation-feed", app.url))
        .basic_auth(&rs.id, rs.secret.as_deref());
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    SseReader::new(r)
}

fn data(e: &SseEvent) -> serde_json::Value {
    serde_json::from_str(&e.data).unwrap()
}

/// A user grant through the code flow; returns its token response and grant id.
async fn user_grant(app: &TestApp, client: &TestClient) -> (serde_json::Value, String) {
    let tokens = app.tokens_for(client, "transactions:read").await;
    let grant_id = jwt_payload(tokens["access_token"].as_str().unwrap())["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (tokens, grant_id)
}

#[tokio::test]
async fn the_feed_is_advertised_and_authenticated() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let m: serde_json::Value = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["tessera_revocation_feed_endpoint"],
        format!("{}/revocation-feed", app.url)
    );
    let r = app
        .http
        .get(format!("{}/revocation-feed", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let r = app
        .http
        .get(format!("{}/revocation-feed?cursor=-3", app.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn backlog_then_synced_then_live_events() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let rs = resource_server(&app).await;
    let (first, first_grant) = user_grant(&app, &client).await;
    let r = app
        .post_auth(
            "/revoke",
            &client,
            &[("token", first["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status(), 200);

    let mut feed = subscribe(&app, &rs, None).await;
    let e = feed.next(WAIT).await.expect("the backlog");
    assert_eq!(e.event, "revoked");
    assert_eq!(e.id.as_deref(), Some("1"));
    assert_eq!(data(&e)["grant_id"], first_grant);
    assert!(data(&e)["exp"].as_i64().unwrap() > app.now());
    let e = feed.next(WAIT).await.expect("synced");
    assert_eq!(e.event, "synced");
    assert_eq!(data(&e)["cursor"], 1);

    // Live: a JWT access token revoked by its client arrives by jti.
    let (second, _) = user_grant(&app, &client).await;
    let at = second["access_token"].as_str().unwrap();
    app.post_auth("/revoke", &client, &[("token", at)]).await;
    let e = feed.next(WAIT).await.expect("a live event");
    assert_eq!(e.id.as_deref(), Some("2"));
    assert_eq!(data(&e)["jti"], jwt_payload(at)["jti"]);
    assert_eq!(data(&e)["grant_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn resume_from_the_cursor_after_a_restart() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let rs = resource_server(&app).await;
    let mut grants = Vec::new();
    for _ in 0..2 {
        let (tokens, grant) = user_grant(&app, &client).await;
        app.post_auth(
            "/revoke",
            &client,
            &[("token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
        grants.push(grant);
    }
    let mut feed = subscribe(&app, &rs, None).await;
    let mut last = None;
    while let Some(e) = feed.next(WAIT).await {
        if e.event == "synced" {
            break;
        }
        last = e.id;
    }
    assert_eq!(last.as_deref(), Some("2"));

    // The server restarts (gracefully, with the feed connection open) on the same data.
    let app = app.restart().await;
    let (tokens, third) = user_grant(&app, &client).await;
    app.post_auth(
        "/revoke",
        &client,
        &[("token", tokens["refresh_token"].as_str().unwrap())],
    )
    .await;

    let mut feed = subscribe(&app, &rs, last.as_deref()).await;
    let e = feed.next(WAIT).await.expect("the missed event");
    assert_eq!(e.id.as_deref(), Some("3"));
    assert_eq!(data(&e)["grant_id"], third);
    let e = feed.next(WAIT).await.expect("synced");
    assert_eq!(e.event, "synced");
    assert_eq!(data(&e)["cursor"], 3);
}

#[tokio::test]
async fn revocations_by_another_process_arrive_by_polling() {
    let app = spawn_app().await;
    let client = app.standard().await;
    let rs = resource_server(&app).await;
    let (_, grant) = user_grant(&app, &client).await;
    let mut feed = subscribe(&app, &rs, None).await;
    assert_eq!(feed.next(WAIT).await.unwrap().event, "synced");
    // Write straight to the store, as `tessera grant revoke` in another process does:
    // nothing wakes this server's feed, the poll finds it.
    let now = app.now();
    let revoked = app
        .state
        .store
        .revoke_grant(&grant, now, tessera_server::store::Actor::Admin, now + 700)
        .await
        .unwrap();
    assert!(revoked);
    let started = std::time::Instant::now();
    let e = feed.next(WAIT).await.expect("the polled event");
    assert_eq!(data(&e)["grant_id"], grant);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}
