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
mod introspection;
mod jwks;
mod jwt;
mod verifier;

pub use claims::Claims;
pub use error::BearerError;
pub use extract::{Bearer, RequireScope, ScopeName};
pub use jwks::Algorithm;
pub use verifier::{RevocationCheck, Verifier, VerifierBuilder};

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
