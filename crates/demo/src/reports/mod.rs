//! The reports app: a third-party web client that, with the person's permission,
//! reads their transactions at the bank and draws a spending report. Server-rendered
//! HTML, no JavaScript; OAuth 2.1 authorization code flow with PKCE as a
//! confidential client.

mod actions;
mod authorize;
mod bank_client;
mod chart;
mod home;
mod oauth;
mod pages;
mod report;
mod request;
mod session;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::OnceCell;

/// Largest request body the app reads (its forms are tiny).
const BODY_LIMIT: usize = 16 * 1024;

/// How to start the reports app.
pub struct ReportsConfig {
    /// Tessera's issuer URL.
    pub issuer: String,
    /// The bank's base URL.
    pub bank_url: String,
    /// This app's own base URL; the redirect URI is `base_url + "/callback"`.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The scopes requested, e.g. `"accounts:read transactions:read"`.
    pub scope: String,
}

/// The app's state: configuration, HTTP client, issuer metadata and sessions.
#[derive(Clone)]
struct App(Arc<Inner>);

struct Inner {
    config: ReportsConfig,
    redirect_uri: String,
    http: reqwest::Client,
    metadata: OnceCell<oauth::Metadata>,
    sessions: session::Sessions,
}

impl Deref for App {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    fn new(mut config: ReportsConfig) -> Self {
        for url in [
            &mut config.issuer,
            &mut config.bank_url,
            &mut config.base_url,
        ] {
            let trimmed = url.trim_end_matches('/').len();
            url.truncate(trimmed);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let redirect_uri = format!("{}/callback", config.base_url);
        let secure = config.base_url.starts_with("https://");
        App(Arc::new(Inner {
            config,
            redirect_uri,
            http,
            metadata: OnceCell::new(),
            sessions: session::Sessions::new(secure),
        }))
    }
}

/// The app's pages and form actions.
pub fn router(config: ReportsConfig) -> Router {
    Router::new()
        .route("/", get(home::home))
        .route("/connect", post(authorize::connect))
        .route("/callback", get(authorize::callback))
        .route("/try-create", post(actions::try_create))
        .route("/disconnect", post(actions::disconnect))
        .route("/assets/reports.css", get(stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(App::new(config))
}

/// Serve the app on `listener` until `shutdown` completes, then finish the requests in flight.
pub async fn run(
    listener: TcpListener,
    config: ReportsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Content-Security-Policy of every response: no scripts at all, no framing.
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Anti-framing, no-script CSP, no referrer (the callback URL holds a code), and
/// no caching of personal pages unless a handler chose otherwise.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/reports.css"),
    )
}
