//! Tessera: an OAuth 2.1 authorization server.
//!
//! [`app`] builds the router from an [`AppState`]; [`run`] serves it on a listener
//! until the shutdown future completes.

pub mod admin;
pub mod audit;
pub mod authorize;
pub mod client_auth;
pub mod client_cache;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod detach;
pub mod endpoints;
pub mod error;
pub mod grants;
pub mod housekeeping;
pub mod master;
pub mod pages;
pub mod registration;
pub mod revocation;
pub mod seal;
pub mod session;
pub mod state;
pub mod store;
pub mod tokens;

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use state::AppState;

/// Largest request body accepted by any endpoint.
const BODY_LIMIT: usize = 64 * 1024;

/// The whole HTTP surface of the authorization server.
pub fn app(state: AppState) -> Router {
    use endpoints::*;
    let router = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::metadata),
        )
        .route("/jwks.json", get(metadata::jwks))
        .route("/authorize", get(authorize::authorize))
        .route("/login", post(login::login))
        .route("/consent", post(consent::consent))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .route("/introspect", post(introspect::introspect))
        .route("/revocation-feed", get(feed::feed))
        .route("/register", post(register::register))
        .route(
            "/register/{client_id}",
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        .route(
            "/account",
            get(|| async { axum::response::Redirect::to("/account/apps") }),
        )
        .route("/account/apps", get(account::apps))
        .route("/account/apps/revoke", post(account::revoke))
        .route("/account/logout", post(account::logout))
        .route("/assets/tessera.css", get(stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .nest(
            endpoints::admin::PREFIX,
            endpoints::admin::router(state.clone()),
        )
        // Store work is never cut off midway by a client that goes away (detach.rs).
        .layer(axum::middleware::from_fn(detach::detach))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    // A span and an event per request, at DEBUG level: only when that level is logged
    // for `tower_http` (`TESSERA_LOG=debug`). Otherwise the layer would still wrap
    // every request, its response and its body, and read the clock twice, for events
    // nothing records (about a microsecond of the server's core per request); errors
    // are logged where they happen (error.rs).
    let router = if tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG) {
        router.layer(TraceLayer::new_for_http())
    } else {
        router
    };
    router.with_state(state)
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        pages::STYLESHEET,
    )
}

/// Serve `state` on `listener` until `shutdown` completes, then finish the requests
/// in flight. Meanwhile expired rows are purged every `housekeeping.interval`.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.stopping.clone();
    tokio::spawn(housekeeping::run_periodically(state.clone()));
    tokio::spawn(tokens::ring::run_periodically(state.clone()));
    let signal = async move {
        shutdown.await;
        // Ends the revocation feed's streams, so their connections can close.
        stopping.send_replace(true);
    };
    // Small responses (token answers, feed events) leave at once, without waiting for
    // Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app(state))
        .with_graceful_shutdown(signal)
        .await
}
