//! The bank: a resource server with a JSON API over its own SQLite database, accepting
//! Tessera's access tokens through `tessera_resource`.

mod api;
mod db;
mod error;
mod input;
mod seed;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use sqlx::SqlitePool;
use tessera_resource::{FeedFallback, RevocationCheck, Verifier};
use tokio::net::TcpListener;

/// Largest request body the bank reads.
const BODY_LIMIT: usize = 16 * 1024;

/// How to start the bank.
pub struct BankConfig {
    /// Tessera's issuer URL, e.g. `http://127.0.0.1:8080`.
    pub issuer: String,
    /// The `aud` the bank requires (its own base URL).
    pub audience: String,
    /// The bank's own SQLite file (created if missing).
    pub database: PathBuf,
    /// Client credentials of the bank at Tessera. When Some, the bank subscribes to
    /// Tessera's revocation feed (RevocationCheck::Feed), so a revoked grant is refused
    /// within a second with no network call per request; while the feed is down it
    /// falls back to introspecting every token (fail closed).
    pub introspection: Option<(String, String)>,
}

/// The bank: its database and the verifier of access tokens. Cheap to clone; it is
/// also the router's state, so the `Bearer` and `RequireScope` extractors find the verifier.
#[derive(Clone, FromRef)]
pub struct Bank {
    pool: SqlitePool,
    verifier: Verifier,
}

impl Bank {
    /// Open (or create) the database and prepare the verifier. Nothing is fetched
    /// from Tessera until a token needs it.
    pub async fn open(config: BankConfig) -> anyhow::Result<Bank> {
        let pool = db::connect(&config.database).await.with_context(|| {
            format!(
                "cannot open the bank database {}",
                config.database.display()
            )
        })?;
        let mut builder = Verifier::builder(config.issuer)
            .audience(config.audience)
            .realm("bank");
        if let Some((client_id, client_secret)) = config.introspection {
            builder = builder
                .introspection(client_id, client_secret)
                .revocation_check(RevocationCheck::Feed {
                    fallback: FeedFallback::Introspect,
                });
        }
        Ok(Bank {
            pool,
            verifier: builder.build(),
        })
    }

    /// Wait until the verifier has caught up with Tessera's revocation feed (true), or
    /// `timeout` passed. Call once Tessera is serving.
    pub async fn wait_for_feed(&self, timeout: std::time::Duration) -> bool {
        self.verifier.wait_for_feed(timeout).await
    }

    /// Create demo accounts and about three months of varied transactions for one
    /// person, owned by `owner_sub` (Tessera's user id, the token `sub`). The data
    /// depends only on `owner_name` and today's date. Does nothing if the owner
    /// already has accounts.
    pub async fn seed_demo_accounts(
        &self,
        owner_sub: &str,
        owner_name: &str,
    ) -> anyhow::Result<()> {
        let accounts = seed::generate(owner_name, crate::date::today());
        if db::seed(&self.pool, owner_sub, &accounts).await? {
            tracing::info!(owner_sub, owner_name, "demo accounts created");
        }
        Ok(())
    }

    /// The bank's HTTP API.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/accounts", get(api::list_accounts))
            .route(
                "/accounts/{id}/transactions",
                get(api::list_transactions).post(api::create_transaction),
            )
            .route("/healthz", get(|| async { "ok" }));
        self.with_layers(routes)
    }

    /// `routes` with the layers and state every bank route has.
    fn with_layers(&self, routes: Router<Bank>) -> Router {
        routes
            .layer(axum::middleware::map_response(no_store))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.clone())
    }

    /// Only for `cargo bench -p tessera-demo --bench bank --features bench` (issue 7:
    /// the authenticated `GET /accounts` against the same route without auth): the
    /// bank's `GET /accounts`, with the router's layers, answering for the person `sub`
    /// without asking for a token. Never in a build without the `bench` feature.
    #[cfg(feature = "bench")]
    pub fn router_without_auth(&self, sub: String) -> Router {
        let sub: std::sync::Arc<str> = sub.into();
        self.with_layers(Router::new().route(
            "/accounts",
            get(
                move |axum::extract::State(bank): axum::extract::State<Bank>| {
                    let sub = sub.clone();
                    async move { api::accounts_of(&bank, &sub).await }
                },
            ),
        ))
    }
}

/// Account data is personal: no cache may keep it.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serve `bank` on `listener` until `shutdown` completes, then finish the requests in flight.
pub async fn run(
    listener: TcpListener,
    bank: Bank,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, bank.router())
        .with_graceful_shutdown(shutdown)
        .await
}
