//! Start a server per test and drive it like a client and a browser would.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::redirect::Policy;
use serde_json::Value;
use tessera_protocol::GrantType;
use tessera_server::admin::{self, NewClient};
use tessera_server::clock::{Clock, FixedClock};
use tessera_server::config::{Config, MasterKey};
use tessera_server::store::TokenFormat;
use tessera_server::AppState;
use tokio::sync::oneshot;

pub const REDIRECT: &str = "http://127.0.0.1:9000/cb";
pub const ALICE: (&str, &str) = ("alice", "alice-password-1");

/// The master key of every test server: 32 bytes ("tessera-test-master-key-32-bytes")
/// in standard base64, the same on every instance sharing a database.
pub const MASTER_KEY: &str = "dGVzc2VyYS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";

/// The database a test server runs on, chosen by `TESSERA_TEST_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in the server's data dir (the default).
    Sqlite,
    /// A fresh schema in the database at `TESSERA_TEST_DATABASE_URL`.
    Postgres,
}

impl Backend {
    /// `TESSERA_TEST_BACKEND`: `sqlite` (the default) or `postgres`.
    pub fn from_env() -> Self {
        match std::env::var("TESSERA_TEST_BACKEND").as_deref() {
            Err(_) | Ok("" | "sqlite") => Self::Sqlite,
            Ok("postgres") => Self::Postgres,
            Ok(other) => panic!("TESSERA_TEST_BACKEND must be sqlite or postgres, not {other:?}"),
        }
    }
}

/// The PostgreSQL database the tests use: `TESSERA_TEST_DATABASE_URL`, by default
/// `postgres://root@127.0.0.1:5432/test` (trust auth; `.ci/run` starts it).
pub fn postgres_base_url() -> String {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// A fresh schema in the test database, dropped (with everything in it) when the
/// last owner lets go of it. Connections made with [`PgSchema::url`] use it as their
/// `search_path` and name it as their `application_name`, so that the drop can end
/// them first (a server still running would otherwise hold the schema's locks).
pub struct PgSchema {
    base: String,
    pub name: String,
    pub url: String,
}

impl PgSchema {
    pub async fn create(prefix: &str) -> Self {
        let base = postgres_base_url();
        let name = format!(
            "{prefix}_{}",
            tessera_server::crypto::random_string(9)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let mut admin = Self::admin(&base).await;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut admin)
            .await
            .expect("create schema");
        let _ = sqlx::Connection::close(admin).await;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}&application_name={name}");
        Self { base, name, url }
    }

    async fn admin(base: &str) -> sqlx::PgConnection {
        <sqlx::PgConnection as sqlx::Connection>::connect(base)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is needed at {base} (TESSERA_TEST_DATABASE_URL): {e}; `.ci/run` starts it")
            })
    }

    async fn drop_now(base: &str, name: &str) {
        let mut admin = Self::admin(base).await;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut admin)
        .await
        .expect("end the schema's connections");
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
            .execute(&mut admin)
            .await
            .expect("drop schema");
        let _ = sqlx::Connection::close(admin).await;
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop may run inside a test's runtime (which must not block on itself) or
        // outside any: a thread of its own with a small runtime, joined.
        let (base, name) = (self.base.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(Self::drop_now(&base, &name))
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("could not drop schema {}", self.name);
        }
    }
}

/// Where a test server keeps its data: its own data dir (always; it holds the SQLite
/// database on that backend) and, on PostgreSQL, a schema that other instances and
/// restarts may share.
#[derive(Clone)]
struct Storage {
    dir: Arc<tempfile::TempDir>,
    schema: Option<Arc<PgSchema>>,
}

impl Storage {
    async fn fresh(backend: Backend) -> Self {
        Self {
            dir: Arc::new(tempfile::tempdir().expect("temp dir")),
            schema: match backend {
                Backend::Sqlite => None,
                Backend::Postgres => Some(Arc::new(PgSchema::create("api").await)),
            },
        }
    }
}

/// A running server with its own data dir and clock.
pub struct TestApp {
    /// Base URL, also the issuer (unless a test configured another).
    pub url: String,
    pub clock: FixedClock,
    pub state: AppState,
    /// A plain HTTP client that does not follow redirects.
    pub http: reqwest::Client,
    pub backend: Backend,
    storage: Storage,
    shutdown: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

/// A registered client as the tests know it.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Start a server on the backend `TESSERA_TEST_BACKEND` names, after `configure` has
/// adjusted the config (issuer, data dir, master key and database URL are set).
pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_on(Backend::from_env(), configure).await
}

/// Start a server on `backend`, whatever `TESSERA_TEST_BACKEND` says.
pub async fn spawn_on(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    // Pinned at the real time of the test's start, so that parts with their own
    // clocks (the demo bank and reports app) agree with it until a test moves it.
    let clock = FixedClock::new(tessera_server::clock::SystemClock.now());
    spawn_in(Storage::fresh(backend).await, clock, configure).await
}

/// Two instances on one PostgreSQL schema (whatever `TESSERA_TEST_BACKEND` says), as
/// behind a load balancer: the same issuer (the first one's URL), master key and
/// clock; each has its own data dir and port.
pub async fn spawn_pair() -> (TestApp, TestApp) {
    let a = spawn_on(Backend::Postgres, |_| {}).await;
    let b = spawn_sharing(&a, |_| {}).await;
    (a, b)
}

/// Another instance on `app`'s database (a PostgreSQL one), with `app`'s issuer,
/// master key and clock, its own data dir and port.
pub async fn spawn_sharing(app: &TestApp, configure: impl FnOnce(&mut Config)) -> TestApp {
    assert_eq!(
        app.backend,
        Backend::Postgres,
        "instances share a PostgreSQL database"
    );
    let storage = Storage {
        dir: Arc::new(tempfile::tempdir().expect("temp dir")),
        schema: app.storage.schema.clone(),
    };
    let issuer = app.state.config.issuer.clone();
    spawn_in(storage, app.clock.clone(), move |c| {
        c.issuer = issuer;
        configure(c);
    })
    .await
}

/// Start a server on `storage` (fresh or used) with `clock`.
async fn spawn_in(
    storage: Storage,
    clock: FixedClock,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = Config {
        issuer: url.clone(),
        data_dir: storage.dir.path().to_owned(),
        database_url: storage.schema.as_ref().map(|s| s.url.clone()),
        master_key: Some(MasterKey(MASTER_KEY.into())),
        ..Config::default()
    };
    configure(&mut config);
    let state = AppState::open(config)
        .await
        .expect("open state")
        .with_clock(Arc::new(clock.clone()));
    let (tx, rx) = oneshot::channel::<()>();
    let server_state = state.clone();
    let server = tokio::spawn(async move {
        tessera_server::run(listener, server_state, async {
            let _ = rx.await;
        })
        .await
        .expect("server");
    });
    TestApp {
        url,
        clock,
        state,
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client"),
        backend: if storage.schema.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        },
        storage,
        shutdown: tx,
        server,
    }
}

impl TestApp {
    /// Stop the server gracefully (waiting for it to finish) and start a new one on the
    /// same data dir (and PostgreSQL schema) and clock. The new one listens on another port.
    pub async fn restart(self) -> TestApp {
        let _ = self.shutdown.send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), self.server)
            .await
            .expect("the server stops within 10 s")
            .expect("server task");
        spawn_in(self.storage, self.clock, |_| {}).await
    }
}

/// A fresh PKCE pair (RFC 7636 §4.1–§4.2).
pub fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("rng");
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// The query parameters of a redirect's `Location`.
pub fn location_params(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header; status {}", response.status()))
        .to_str()
        .expect("location");
    url::Url::parse(location)
        .expect("absolute location")
        .query_pairs()
        .into_owned()
        .collect()
}

/// The value of a hidden form field in a page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in page:\n{html}"))
        + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html_unescape(&html[start..end])
}

fn html_unescape(s: &str) -> String {
    // Named and numeric (decimal or hex) character references.
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(|d| d.parse::<u32>()))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `(name, value)` of every checked `<input type="{kind}">` in a page.
pub fn checked_inputs(html: &str, kind: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let marker = format!("{name}=\"");
        let start = tag.find(&marker)? + marker.len();
        Some(html_unescape(&tag[start..start + tag[start..].find('"')?]))
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|tag| tag.contains(&format!("type=\"{kind}\"")) && tag.contains(" checked"))
        .filter_map(|tag| {
            Some((
                attr(tag, "name")?,
                attr(tag, "value").unwrap_or_else(|| "on".into()),
            ))
        })
        .collect()
}

/// The JSON payload of a JWT, unverified.
pub fn jwt_payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64")).expect("json")
}

/// The JSON header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().expect("JWT header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64")).expect("json")
}

impl TestApp {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub async fn scope(&self, name: &str, description: &str) {
        admin::create_scope(self.state.store.as_ref(), name, description)
            .await
            .expect("scope");
    }

    /// Register a client with the given settings.
    pub async fn client_with(
        &self,
        name: &str,
        scope: &str,
        public: bool,
        grants: &[GrantType],
        format: TokenFormat,
    ) -> TestClient {
        let created = admin::create_client(
            self.state.store.as_ref(),
            NewClient {
                name: name.into(),
                redirect_uris: vec![REDIRECT.into()],
                scope: scope.into(),
                required_scope: String::new(),
                public,
                grant_types: grants.to_vec(),
                token_format: format,
                ..NewClient::named("")
            },
            self.now(),
        )
        .await
        .expect("client");
        TestClient {
            id: created.client.id,
            secret: created.secret,
        }
    }

    /// "Ledger": a confidential client of the code flow, with refresh tokens, whose
    /// access tokens are opaque.
    pub async fn opaque_code_client(&self, scope: &str) -> TestClient {
        self.client_with(
            "Ledger",
            scope,
            false,
            &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            TokenFormat::Opaque,
        )
        .await
    }

    /// A confidential client with opaque access tokens and the client_credentials
    /// grant, and the token endpoint's answer to its `grant_type=client_credentials`
    /// request.
    pub async fn opaque_client_credentials(&self) -> (TestClient, reqwest::Response) {
        let client = self
            .client_with(
                "Batch",
                "accounts:read",
                false,
                &[GrantType::ClientCredentials],
                TokenFormat::Opaque,
            )
            .await;
        let r = self
            .token(&client, &[("grant_type", "client_credentials")])
            .await;
        (client, r)
    }

    pub async fn user(&self, username: &str, password: &str) {
        admin::create_user(self.state.store.as_ref(), username, password, self.now())
            .await
            .expect("user");
    }

    /// The usual fixture: the bank's scopes, user alice, and a confidential client
    /// "Reports" with every grant type and JWT access tokens.
    pub async fn standard(&self) -> TestClient {
        self.scope("accounts:read", "See your accounts").await;
        self.scope("transactions:read", "Read your transactions")
            .await;
        self.scope("transactions:write", "Create transactions")
            .await;
        self.user(ALICE.0, ALICE.1).await;
        self.client_with(
            "Reports",
            "accounts:read transactions:read transactions:write",
            false,
            &GrantType::ALL,
            TokenFormat::Jwt,
        )
        .await
    }

    /// A browser: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .build()
                .expect("browser"),
            base: self.url.clone(),
        }
    }

    /// `POST /token` with Basic authentication (when the client has a secret).
    pub async fn token(&self, client: &TestClient, params: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.post(format!("{}/token", self.url)).form(params);
        if let Some(secret) = &client.secret {
            req = req.basic_auth(&client.id, Some(secret));
        } else {
            let mut p = params.to_vec();
            p.push(("client_id", &client.id));
            req = self.http.post(format!("{}/token", self.url)).form(&p);
        }
        req.send().await.expect("token request")
    }

    /// `POST` a form to an endpoint with Basic authentication.
    pub async fn post_auth(
        &self,
        path: &str,
        client: &TestClient,
        params: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(params)
            .send()
            .await
            .expect("request")
    }

    /// Introspect a token as `client`; returns the JSON answer.
    pub async fn introspect(&self, client: &TestClient, token: &str) -> Value {
        let r = self
            .post_auth("/introspect", client, &[("token", token)])
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    /// Run the authorization request through login and consent; returns the code and verifier.
    pub async fn authorize_code(
        &self,
        browser: &Browser,
        client: &TestClient,
        scope: &str,
    ) -> (String, String) {
        let (verifier, challenge) = pkce();
        let r = browser
            .authorize(client, scope, &challenge, &[("state", "xyz")])
            .await;
        let r = browser.complete(r, ALICE).await;
        // 303 after the forms; 302 straight from /authorize when consent is remembered.
        assert!(
            matches!(r.status().as_u16(), 302 | 303),
            "expected the redirect with the code, got {}",
            r.status()
        );
        let params = location_params(&r);
        assert_eq!(params.get("state").map(String::as_str), Some("xyz"));
        (params["code"].clone(), verifier)
    }

    /// Authorization code flow through token redemption; returns the token response.
    pub async fn tokens_for(&self, client: &TestClient, scope: &str) -> Value {
        let browser = self.browser();
        let (code, verifier) = self.authorize_code(&browser, client, scope).await;
        let r = self
            .token(
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }
}

/// A cookie-keeping HTTP client standing in for the person's browser.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

impl Browser {
    /// The same browser (same cookie jar) talking to `app`: another instance on the
    /// same host, as when a load balancer routes the next request elsewhere.
    pub fn at(&self, app: &TestApp) -> Browser {
        Browser {
            http: self.http.clone(),
            base: app.url.clone(),
        }
    }

    /// `GET /authorize` for `client` with PKCE and extra parameters.
    pub async fn authorize(
        &self,
        client: &TestClient,
        scope: &str,
        challenge: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        self.get("/authorize", &params).await
    }

    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .query(params)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(params)
            .send()
            .await
            .expect("POST")
    }

    /// Submit the login form found in `page`.
    pub async fn login(&self, page: &str, (username, password): (&str, &str)) -> reqwest::Response {
        let csrf = hidden_field(page, "csrf");
        let request = hidden_field(page, "request");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Submit the consent form found in `page` with `decision` (approve or deny), as a
    /// browser would: every ticked scope box and the ticked duration.
    pub async fn consent(&self, page: &str, decision: &str) -> reqwest::Response {
        self.consent_with(page, decision, &[], None).await
    }

    /// Submit the consent form with some scopes unticked and a chosen duration.
    pub async fn consent_with(
        &self,
        page: &str,
        decision: &str,
        untick: &[&str],
        duration: Option<&str>,
    ) -> reqwest::Response {
        let csrf = hidden_field(page, "csrf");
        let request = hidden_field(page, "request");
        let boxes: Vec<String> = checked_inputs(page, "checkbox")
            .into_iter()
            .filter(|(name, _)| !untick.iter().any(|u| *name == format!("scope.{u}")))
            .map(|(name, _)| name)
            .collect();
        let default_duration = checked_inputs(page, "radio")
            .into_iter()
            .next()
            .map(|(_, v)| v);
        let duration = duration
            .map(str::to_owned)
            .or(default_duration)
            .unwrap_or_default();
        let mut form: Vec<(&str, &str)> = vec![
            ("csrf", &csrf),
            ("request", &request),
            ("decision", decision),
        ];
        form.extend(boxes.iter().map(|b| (b.as_str(), "on")));
        form.push(("duration", &duration));
        self.post("/consent", &form).await
    }

    /// From an authorize response, sign in (if asked) and approve (if asked).
    pub async fn complete(
        &self,
        mut response: reqwest::Response,
        credentials: (&str, &str),
    ) -> reqwest::Response {
        for _ in 0..2 {
            if response.status() != 200 && response.status() != 401 {
                return response;
            }
            let page = response.text().await.expect("page");
            response = if page.contains("action=\"") && page.contains("/login\"") {
                self.login(&page, credentials).await
            } else if page.contains("/consent\"") {
                self.consent(&page, "approve").await
            } else {
                panic!("unexpected page:\n{page}");
            };
        }
        response
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Reads Server-Sent Events from a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` if the stream ends or nothing
    /// arrives within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    ..SseEvent::default()
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value);
                        match field {
                            "event" => event.event = value.to_owned(),
                            "id" => event.id = Some(value.to_owned()),
                            "data" => event.data.push_str(value),
                            _ => continue,
                        }
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }
}
