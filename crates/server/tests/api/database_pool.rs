//! The PostgreSQL connection pool: when no connection frees up within
//! `database_acquire_timeout`, a request is answered 503 `temporarily_unavailable` with
//! `Retry-After`, not a 500, and the server recovers once connections free up.

use std::time::Duration;

use sqlx::Connection;

use crate::helpers::*;

#[tokio::test]
async fn a_dry_pool_answers_503_temporarily_unavailable_then_recovers() {
    let app = spawn_on(Backend::Postgres, |c| {
        c.database_max_connections = 1;
        c.database_acquire_timeout = Duration::from_millis(300);
    })
    .await;
    app.scope("transactions:read", "Read your transactions")
        .await;
    // Opaque tokens: each is written to the database (clients are cached in memory).
    let client = app
        .client_with(
            "Reports",
            "transactions:read",
            false,
            &[tessera_protocol::GrantType::ClientCredentials],
            tessera_server::store::TokenFormat::Opaque,
        )
        .await;
    let params = [
        ("grant_type", "client_credentials"),
        ("scope", "transactions:read"),
    ];
    assert_eq!(app.token(&client, &params).await.status(), 200);

    // Another session locks the access token table: the request that holds the pool's
    // only connection waits on the lock, and the next finds no connection.
    let url = app.state.config.database_url.clone().unwrap();
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE access_tokens IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let first = {
        let (app_url, http, client) = (app.url.clone(), app.http.clone(), client.clone());
        tokio::spawn(async move {
            http.post(format!("{app_url}/token"))
                .basic_auth(&client.id, client.secret.as_deref())
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "transactions:read"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = app.token(&client, &params).await;
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_eq!(busy.headers()["cache-control"], "no-store");
    let body: serde_json::Value = busy.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(
        body["error_description"],
        "the database is busy; try again in a moment"
    );

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(first.await.unwrap(), 200, "the waiting request completes");
    assert_eq!(app.token(&client, &params).await.status(), 200);
}
