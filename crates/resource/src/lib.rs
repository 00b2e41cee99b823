//! Accept [Tessera](https://github.com/)'s access tokens in a Rust resource server.
//!
//! A [`Verifier`] checks a bearer token and yields its [`Claims`]:
//! - JWT access tokens (RFC 9068) are verified locally against the issuer's JWKS,
//!   found through its metadata (RFC 8414), cached, and fetched again when a token
//!   names an unknown `kid` — at most once per [`VerifierBuilder::jwks_refetch_interval`],
//!   so a flood of forged tokens cannot hammer the issuer. `typ`, `iss`, `aud`,
//!   `exp` and `nbf` (with a small leeway) are checked, and only allow-listed
//!   algorithms that match the key are accepted (never `none`).
//! - Opaque tokens are checked by introspection (RFC 7662), with an optional short
//!   cache of positive answers.
//! - Revocation of JWTs is checked as the [`RevocationCheck`] says: not at all (a valid
//!   JWT is trusted until it expires, the default), by introspecting every JWT, or by
//!   following the issuer's revocation feed (below).
//!
//! # The revocation feed
//!
//! With [`RevocationCheck::Feed`], a [`Verifier`] subscribes to the Server-Sent Events
//! feed that Tessera names `tessera_revocation_feed_endpoint` in its metadata, reading
//! it with the introspection credentials ([`VerifierBuilder::introspection`]). One
//! background task per verifier (shared by its clones) starts with the first
//! [`Verifier::verify`] or [`Verifier::wait_for_feed`], and stops when the last clone
//! is dropped. It keeps in memory the revoked grants (the `grant_id` claim) and token
//! ids (`jti`), each until its `exp` plus the leeway has passed on the verifier's clock.
//!
//! **The guarantee**: while the feed is connected and synced, a JWT whose grant or `jti`
//! was revoked is refused within 1 second of the revocation (401 `invalid_token`, "the
//! token has been revoked"; a few milliseconds in practice), and an ordinary request
//! costs no network call: the check is a read lock on the revoked set.
//!
//! **When the feed is down** (not synced yet, disconnected, or silent, with neither an
//! event nor a keep-alive ping, for more than 30 seconds) the [`FeedFallback`] chosen
//! applies: [`FeedFallback::Introspect`] introspects every JWT and fails closed (503 if
//! introspection fails too); [`FeedFallback::AcceptUntilExpiry`] accepts valid JWTs.
//! Revocations already received stay enforced either way. A warning is logged when the
//! feed goes down and an info line when it is back; meanwhile the task reconnects with
//! backoff (100 ms doubling to 5 s), resuming after the last event seen
//! (`Last-Event-ID`), so no revocation is missed. The limit: a connection that dies
//! without a word is noticed only by its silence, so for up to 30 seconds the verifier
//! still counts as synced while revocations made meanwhile wait for the reconnection.
//!
//! ```no_run
//! use std::time::Duration;
//! use tessera_resource::{FeedFallback, RevocationCheck, Verifier};
//!
//! # async fn start() {
//! let verifier = Verifier::builder("https://auth.bank.example")
//!     .audience("https://api.bank.example")
//!     .introspection("bank", "bank-secret")
//!     .revocation_check(RevocationCheck::Feed {
//!         fallback: FeedFallback::Introspect,
//!     })
//!     .build();
//! // Optional: connect at startup rather than on the first request.
//! if !verifier.wait_for_feed(Duration::from_secs(5)).await {
//!     eprintln!("revocation feed not synced yet ({:?})", verifier.feed_status());
//! }
//! # }
//! ```
//!
//! # Extractors
//!
//! In axum, the [`Bearer`] extractor yields the verified claims and [`RequireScope`]
//! also demands a scope; refusals follow RFC 6750 §3: 401 with
//! `WWW-Authenticate: Bearer realm="...", error="invalid_token"`, or 403
//! `insufficient_scope` naming the scope needed. Tokens are read from the
//! `Authorization` header only, never from a query string.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tessera_resource::{Bearer, RequireScope, Verifier};
//!
//! tessera_resource::scope!(TransactionsRead = "transactions:read");
//!
//! async fn whoami(Bearer(claims): Bearer) -> String {
//!     format!("hello {}", claims.sub)
//! }
//!
//! async fn transactions(RequireScope(claims, ..): RequireScope<TransactionsRead>) -> String {
//!     format!("transactions of {}", claims.sub)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let verifier = Verifier::builder("https://auth.bank.example")
//!     .audience("https://api.bank.example")
//!     .realm("bank")
//!     .build();
//! let app: Router = Router::new()
//!     .route("/me", get(whoami))
//!     .route("/transactions", get(transactions))
//!     .with_state(verifier);
//!
//! // A request without a token is refused before any network call.
//! use tower::ServiceExt;
//! let response = app
//!     .oneshot(axum::http::Request::get("/transactions").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="bank""#);
//! # }
//! ```

mod claims;
mod error;
mod extract;
mod feed;
mod introspection;
mod jwks;
mod jwt;
mod jwt_cache;
mod verifier;

pub use claims::Claims;
pub use error::BearerError;
pub use extract::{Bearer, RequireScope, ScopeName};
pub use feed::{FeedFallback, FeedStatus};
pub use jwks::Algorithm;
pub use verifier::{RevocationCheck, Verifier, VerifierBuilder, DEFAULT_JWT_CACHE};

/// Declare a scope type for [`RequireScope`]: `scope!(TransactionsWrite = "transactions:write");`
#[macro_export]
macro_rules! scope {
    ($vis:vis $name:ident = $scope:literal) => {
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::ScopeName for $name {
            const SCOPE: &'static str = $scope;
        }
    };
}
