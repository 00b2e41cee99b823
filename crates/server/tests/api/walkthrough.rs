//! The bank walkthrough end to end: Tessera, the demo bank and the demo reports app on
//! port 0, driven over real HTTP by a cookie-keeping browser.

use std::future::pending;

use tessera_demo::{bank, reports};
use tessera_protocol::GrantType;
use tessera_server::admin::{self, NewClient};
use tessera_server::config::ScopeConfig;
use tessera_server::store::TokenFormat;
use tokio::net::TcpListener;

use crate::helpers::*;

const BOB: (&str, &str) = ("bob", "bob-password-1");

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// Everything of the walkthrough, running.
struct Walkthrough {
    app: TestApp,
    reports_url: String,
    bank_db: std::path::PathBuf,
    _bank_dir: tempfile::TempDir,
}

async fn start() -> Walkthrough {
    let (bank_listener, bank_url) = listener().await;
    let (reports_listener, reports_url) = listener().await;
    let audience = bank_url.clone();
    let app = spawn_with(move |c| {
        c.tokens.audience = Some(audience);
        c.scopes = [
            ("accounts:read", "See your bank accounts and their balances"),
            ("transactions:read", "Read your transactions"),
            ("transactions:write", "Create transactions in your accounts"),
        ]
        .iter()
        .map(|(n, d)| ScopeConfig {
            name: (*n).into(),
            description: (*d).into(),
        })
        .collect();
    })
    .await;
    app.user(ALICE.0, ALICE.1).await;
    app.user(BOB.0, BOB.1).await;
    let store = app.state.store.as_ref();
    let reports_client = admin::create_client(
        store,
        NewClient {
            name: "Reports (demo)".into(),
            redirect_uris: vec![format!("{reports_url}/callback")],
            scope: "accounts:read transactions:read transactions:write".into(),
            required_scope: "transactions:read".into(),
            public: false,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            token_format: TokenFormat::Jwt,
            ..NewClient::named("")
        },
        app.now(),
    )
    .await
    .unwrap();
    let bank_client = admin::create_client(
        store,
        NewClient {
            name: "Bank".into(),
            redirect_uris: vec![],
            scope: String::new(),
            required_scope: String::new(),
            public: false,
            grant_types: vec![GrantType::ClientCredentials],
            token_format: TokenFormat::Jwt,
            ..NewClient::named("")
        },
        app.now(),
    )
    .await
    .unwrap();

    let bank_dir = tempfile::tempdir().unwrap();
    let bank_db = bank_dir.path().join("bank.db");
    let the_bank = bank::Bank::open(bank::BankConfig {
        issuer: app.url.clone(),
        audience: bank_url.clone(),
        database: bank_db.clone(),
        introspection: Some((bank_client.client.id, bank_client.secret.unwrap())),
    })
    .await
    .unwrap();
    for name in ["alice", "bob"] {
        let user = store.get_user_by_username(name).await.unwrap().unwrap();
        the_bank.seed_demo_accounts(&user.id, name).await.unwrap();
    }
    let feed_watcher = the_bank.clone();
    tokio::spawn(bank::run(bank_listener, the_bank, pending()));
    // The bank verifies JWTs locally and learns of revocations from Tessera's feed.
    assert!(
        feed_watcher
            .wait_for_feed(std::time::Duration::from_secs(5))
            .await,
        "the bank subscribed to the feed"
    );
    let config = reports::ReportsConfig {
        issuer: app.url.clone(),
        bank_url,
        base_url: reports_url.clone(),
        client_id: reports_client.client.id,
        client_secret: reports_client.secret.unwrap(),
        scope: "accounts:read transactions:read".into(),
    };
    tokio::spawn(reports::run(reports_listener, config, pending()));
    Walkthrough {
        app,
        reports_url,
        bank_db,
        _bank_dir: bank_dir,
    }
}

impl Walkthrough {
    async fn get(&self, browser: &Browser, url: &str) -> reqwest::Response {
        browser.http.get(url).send().await.unwrap()
    }

    /// Post a reports-app form (carrying the CSRF token of `page`).
    async fn post(&self, browser: &Browser, path: &str, page: &str) -> reqwest::Response {
        let csrf = hidden_field(page, "csrf");
        browser
            .http
            .post(format!("{}{path}", self.reports_url))
            .form(&[("csrf", csrf)])
            .send()
            .await
            .unwrap()
    }

    /// Follow redirects by hand (the browser does not), returning the final response.
    async fn follow(&self, browser: &Browser, mut r: reqwest::Response) -> reqwest::Response {
        for _ in 0..5 {
            if !r.status().is_redirection() {
                return r;
            }
            let location = r.headers()["location"].to_str().unwrap().to_owned();
            let url = if location.starts_with('/') {
                format!("{}{location}", self.reports_url)
            } else {
                location
            };
            r = self.get(browser, &url).await;
        }
        r
    }

    /// The number of transactions the bank holds for `username`.
    async fn transactions_of(&self, username: &str) -> i64 {
        let user = self
            .app
            .state
            .store
            .get_user_by_username(username)
            .await
            .unwrap()
            .unwrap();
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.bank_db.display()))
            .await
            .unwrap();
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM transactions t JOIN accounts a ON a.id = t.account_id WHERE a.owner_sub = ?",
        )
        .bind(user.id)
        .fetch_one(&pool)
        .await
        .unwrap();
        n
    }

    async fn alice_grants(&self) -> Vec<tessera_server::store::Grant> {
        let alice = self
            .app
            .state
            .store
            .get_user_by_username("alice")
            .await
            .unwrap()
            .unwrap();
        self.app
            .state
            .store
            .list_user_grants(&alice.id)
            .await
            .unwrap()
    }
}

/// The transaction count in the report's "Total" row.
fn total_count(report: &str) -> i64 {
    let row = &report[report.find("<tfoot>").expect("a totals row")..];
    let start = row.find("<td class=\"num\">").unwrap() + "<td class=\"num\">".len();
    row[start..start + row[start..].find('<').unwrap()]
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn connect_read_refuse_refresh_disconnect() {
    let w = start().await;
    let browser = w.app.browser();

    // The reports app invites alice to connect her bank.
    let home = w
        .get(&browser, &format!("{}/", w.reports_url))
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains("Connect your bank"), "{home}");

    // "Connect your bank" sends her to Tessera's authorization endpoint.
    let r = w.post(&browser, "/connect", &home).await;
    assert_eq!(r.status(), 303);
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", w.app.url)),
        "{authorize}"
    );
    assert!(authorize.contains("code_challenge_method=S256"));

    // She signs in at Tessera (the app never sees her password) and reads the consent page.
    let login = w.get(&browser, &authorize).await;
    assert_eq!(login.status(), 200);
    let consent = browser.login(&login.text().await.unwrap(), ALICE).await;
    assert_eq!(consent.status(), 200);
    let consent = consent.text().await.unwrap();
    assert!(consent.contains("Reports (demo)"));
    assert!(consent.contains("See your bank accounts and their balances"));
    assert!(consent.contains("Read your transactions"));
    assert!(
        !consent.contains("Create transactions"),
        "the app asks for read access only"
    );

    // She allows it; the app exchanges the code and shows her report.
    let r = browser.consent(&consent, "approve").await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&format!("{}/callback?", w.reports_url)));
    let report = w.follow(&browser, r).await;
    assert_eq!(report.status(), 200);
    let report = report.text().await.unwrap();
    assert!(report.contains("Your spending report"), "{report}");
    assert!(report.contains("<svg"), "an inline chart");
    // Alice's transactions and none of bob's.
    let (alice, bob) = (
        w.transactions_of("alice").await,
        w.transactions_of("bob").await,
    );
    assert!(alice > 0 && bob > 0);
    assert_eq!(total_count(&report), alice);

    // The app may read but not write: the bank refuses with 403 insufficient_scope.
    let refused = w
        .post(&browser, "/try-create", &report)
        .await
        .text()
        .await
        .unwrap();
    assert!(refused.contains("insufficient_scope"), "{refused}");
    assert!(refused.contains("transactions:write"));

    // The access token expires (Tessera's clock moves past its 10 minutes); the app
    // refreshes it and the report still loads.
    w.app.clock.advance(601);
    let report = w
        .get(&browser, &format!("{}/", w.reports_url))
        .await
        .text()
        .await
        .unwrap();
    assert!(report.contains("Your spending report"), "{report}");
    assert_eq!(total_count(&report), alice);
    assert_eq!(w.alice_grants().await.len(), 1);

    // Disconnect: the app revokes its tokens (RFC 7009); the bank then answers 401.
    let done = w
        .post(&browser, "/disconnect", &report)
        .await
        .text()
        .await
        .unwrap();
    assert!(done.contains("Disconnected"), "{done}");
    assert!(done.contains("401 invalid_token"), "{done}");
    assert!(
        w.alice_grants().await.is_empty(),
        "the grant is revoked at Tessera"
    );
    let home = w
        .get(&browser, &format!("{}/", w.reports_url))
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains("Connect your bank"));
}

#[tokio::test]
async fn revoking_on_the_connected_apps_page_shows_reconnect() {
    let w = start().await;
    let browser = w.app.browser();
    let home = w
        .get(&browser, &format!("{}/", w.reports_url))
        .await
        .text()
        .await
        .unwrap();
    let r = w.post(&browser, "/connect", &home).await;
    let r = w
        .get(&browser, r.headers()["location"].to_str().unwrap())
        .await;
    let r = browser.complete(r, ALICE).await;
    let report = w.follow(&browser, r).await.text().await.unwrap();
    assert!(report.contains("Your spending report"));

    // The person revokes the app on Tessera's connected apps page.
    let apps = w
        .get(&browser, &format!("{}/account/apps", w.app.url))
        .await
        .text()
        .await
        .unwrap();
    assert!(apps.contains("Reports (demo)"), "{apps}");
    let client_id = hidden_field(&apps, "client_id");
    let r = browser
        .http
        .post(format!("{}/account/apps/revoke", w.app.url))
        .form(&[
            ("csrf", hidden_field(&apps, "csrf")),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(w.alice_grants().await.is_empty());
    // The bank learns of it through the feed (within a second); the reports app then
    // finds its token refused and its refresh token revoked.
    let started = std::time::Instant::now();
    let page = loop {
        let page = w
            .get(&browser, &format!("{}/", w.reports_url))
            .await
            .text()
            .await
            .unwrap();
        if page.contains("Access revoked — reconnect")
            || started.elapsed() > std::time::Duration::from_secs(2)
        {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(page.contains("Access revoked — reconnect"), "{page}");
    // End to end (page, feed, bank, reports app, refresh attempt): well within 2 s; the
    // resource server's own 1 s guarantee is measured in revocation_latency.rs.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    // Reconnecting: the consent was forgotten, so Tessera asks again.
    let r = w.post(&browser, "/connect", &page).await;
    let r = w
        .get(&browser, r.headers()["location"].to_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let consent = r.text().await.unwrap();
    assert!(consent.contains("Allow access?"));
    let r = browser.consent(&consent, "approve").await;
    let report = w.follow(&browser, r).await.text().await.unwrap();
    assert!(report.contains("Your spending report"));
}

#[tokio::test]
async fn remembered_consent_reconnects_silently() {
    let w = start().await;
    let browser = w.app.browser();
    let home = w
        .get(&browser, &format!("{}/", w.reports_url))
        .await
        .text()
        .await
        .unwrap();
    let r = w.post(&browser, "/connect", &home).await;
    let r = w
        .get(&browser, r.headers()["location"].to_str().unwrap())
        .await;
    let r = browser.complete(r, ALICE).await;
    let report = w.follow(&browser, r).await.text().await.unwrap();
    let done = w
        .post(&browser, "/disconnect", &report)
        .await
        .text()
        .await
        .unwrap();
    assert!(done.contains("Disconnected"));
    let page = w
        .get(&browser, &format!("{}/", w.reports_url))
        .await
        .text()
        .await
        .unwrap();
    // Reconnecting: consent is remembered, so Tessera sends her straight back.
    let r = w.post(&browser, "/connect", &page).await;
    let r = w
        .get(&browser, r.headers()["location"].to_str().unwrap())
        .await;
    assert_eq!(
        r.status(),
        302,
        "no login or consent page: session and consent remembered"
    );
    let report = w.follow(&browser, r).await.text().await.unwrap();
    assert!(report.contains("Your spending report"));
}

#[tokio::test]
async fn declining_consent_is_reported() {
    let w = start().await;
    let browser = w.app.browser();
    let home = w
        .get(&browser, &format!("{}/", w.reports_url))
        .await
        .text()
        .await
        .unwrap();
    let r = w.post(&browser, "/connect", &home).await;
    let r = w
        .get(&browser, r.headers()["location"].to_str().unwrap())
        .await;
    let consent = browser
        .login(&r.text().await.unwrap(), BOB)
        .await
        .text()
        .await
        .unwrap();
    let r = browser.consent(&consent, "deny").await;
    let page = w.follow(&browser, r).await.text().await.unwrap();
    assert!(page.contains("You declined"), "{page}");
}
