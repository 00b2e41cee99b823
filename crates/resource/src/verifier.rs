//! The verifier: configuration, issuer discovery, and the dispatch between local JWT
//! verification, the revocation feed and introspection.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::feed::{self, Feed, FeedFallback, FeedStatus};
use crate::introspection::{Credentials, PositiveCache};
use crate::jwks::{parse_jwks, Algorithm, KeyCache};
use crate::jwt::{self, Expect};
use crate::jwt_cache::VerifiedJwts;
use crate::{BearerError, Claims};

/// How a verified JWT is checked for revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationCheck {
    /// Trust a valid JWT until it expires (no network call per request).
    UntilExpiry,
    /// Also introspect every JWT (subject to the positive cache), so that a revoked
    /// token is refused at once. Needs introspection credentials.
    Introspect,
    /// Follow the issuer's revocation feed (`tessera_revocation_feed_endpoint` in its
    /// metadata) and refuse JWTs of revoked grants or tokens locally: while the feed is
    /// synced, a revocation is enforced within a second and no request costs a network
    /// call. While it is not, `fallback` applies. Needs introspection credentials, which
    /// the feed is read with.
    Feed { fallback: FeedFallback },
}

/// Builds a [`Verifier`].
pub struct VerifierBuilder {
    issuer: String,
    audience: Option<String>,
    leeway: Duration,
    algorithms: Vec<Algorithm>,
    credentials: Option<Credentials>,
    cache_ttl: Option<Duration>,
    revocation: RevocationCheck,
    refetch_floor: Duration,
    realm: String,
    http: Option<reqwest::Client>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    jwt_cache: usize,
}

/// How many verified JWTs a verifier keeps by default.
pub const DEFAULT_JWT_CACHE: usize = 10_000;

impl VerifierBuilder {
    /// The `aud` this resource server requires (RFC 9068 §4). Without it, `aud` is not checked.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`. Default 30 seconds.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Accepted signature algorithms. Default: ES256, EdDSA, RS256.
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Client credentials for introspection (RFC 7662 §2.1); needed for opaque tokens.
    pub fn introspection(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        });
        self
    }

    /// Keep positive introspection answers this long (never past the token's expiry).
    /// Default: no cache.
    pub fn introspection_cache(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }

    /// How JWTs are checked for revocation. Default [`RevocationCheck::UntilExpiry`].
    /// [`RevocationCheck::Feed`] also needs [`VerifierBuilder::introspection`].
    pub fn revocation_check(mut self, check: RevocationCheck) -> Self {
        self.revocation = check;
        self
    }

    /// The least time between two fetches of the JWKS. Default 30 seconds.
    pub fn jwks_refetch_interval(mut self, floor: Duration) -> Self {
        self.refetch_floor = floor;
        self
    }

    /// Keep up to `capacity` verified JWTs (default [`DEFAULT_JWT_CACHE`]; 0 turns the
    /// cache off), so that the same token presented again is not verified again: its
    /// exact text is looked up, its `exp` and `nbf` are checked again, and revocation
    /// is checked as [`RevocationCheck`] says, on every request. This saves the
    /// signature verification (tens of microseconds for ES256) per request.
    pub fn jwt_cache(mut self, capacity: usize) -> Self {
        self.jwt_cache = capacity;
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges. Default: the issuer.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The HTTP client used to reach the issuer.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock, in Unix seconds (tests pin it).
    pub fn clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Build the verifier. Nothing is fetched until a token needs it.
    pub fn build(self) -> Verifier {
        let http = self.http.unwrap_or_else(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        });
        Verifier {
            inner: Arc::new(Inner {
                issuer: self.issuer.trim_end_matches('/').to_owned(),
                audience: self.audience,
                leeway: self.leeway.as_secs() as i64,
                algorithms: self.algorithms,
                credentials: self.credentials,
                cache: self.cache_ttl.map(PositiveCache::new),
                revocation: self.revocation,
                realm: self.realm.into(),
                http,
                clock: self.clock,
                metadata: OnceCell::new(),
                keys: KeyCache::new(self.refetch_floor),
                verified: VerifiedJwts::new(self.jwt_cache),
                feed: match self.revocation {
                    RevocationCheck::Feed { fallback } => Some(Feed::new(fallback)),
                    _ => None,
                },
            }),
        }
    }
}

/// Verifies access tokens issued by one Tessera issuer. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: Option<String>,
    leeway: i64,
    algorithms: Vec<Algorithm>,
    credentials: Option<Credentials>,
    cache: Option<PositiveCache>,
    revocation: RevocationCheck,
    realm: Arc<str>,
    http: reqwest::Client,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    metadata: OnceCell<Metadata>,
    keys: KeyCache,
    verified: VerifiedJwts,
    /// Present with [`RevocationCheck::Feed`].
    feed: Option<Feed>,
}

/// A verifier that may be gone: what its feed subscriber holds.
pub(crate) struct WeakVerifier(Weak<Inner>);

impl WeakVerifier {
    pub(crate) fn upgrade(&self) -> Option<Verifier> {
        self.0.upgrade().map(|inner| Verifier { inner })
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
    introspection_endpoint: Option<String>,
    tessera_revocation_feed_endpoint: Option<String>,
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Verifier {
    /// Start configuring a verifier for tokens of `issuer` (e.g. `https://auth.bank.example`).
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        let issuer = issuer.into();
        VerifierBuilder {
            realm: issuer.clone(),
            issuer,
            audience: None,
            leeway: Duration::from_secs(30),
            algorithms: vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256],
            credentials: None,
            cache_ttl: None,
            revocation: RevocationCheck::UntilExpiry,
            refetch_floor: Duration::from_secs(30),
            http: None,
            clock: Arc::new(system_now),
            jwt_cache: DEFAULT_JWT_CACHE,
        }
    }

    /// The realm used in challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// Verify a bearer token and return its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, BearerError> {
        if let Some(feed) = &self.inner.feed {
            feed.start(|| self.feed_source());
        }
        if !jwt::looks_like_jwt(token) {
            return self.introspect(token).await;
        }
        let claims = self.verify_jwt(token).await?;
        match &self.inner.feed {
            Some(feed) => self.check_feed(feed, token, &claims).await?,
            None if self.inner.revocation == RevocationCheck::Introspect => {
                self.introspect(token).await?;
            }
            None => {}
        }
        Ok(claims)
    }

    /// [`RevocationCheck::Feed`]: the revoked set, under a read lock, and while the feed
    /// is not live the fallback.
    async fn check_feed(
        &self,
        feed: &Feed,
        token: &str,
        claims: &Claims,
    ) -> Result<(), BearerError> {
        if feed.is_revoked(claims) {
            return Err(BearerError::invalid_token(
                &self.inner.realm,
                "the token has been revoked",
            ));
        }
        if feed.is_live() {
            return Ok(());
        }
        match feed.fallback() {
            FeedFallback::AcceptUntilExpiry => Ok(()),
            FeedFallback::Introspect if self.inner.credentials.is_none() => Err(self.unavailable(
                "the revocation feed is down and there are no credentials to introspect with",
            )),
            FeedFallback::Introspect => self.introspect(token).await.map(drop),
        }
    }

    /// Wait until the revocation feed is synced (starting its subscriber if need be), at
    /// most `timeout`. True once revoked JWTs are refused locally; false on timeout, or
    /// when revocation is not checked by a feed. For startup, and tests.
    pub async fn wait_for_feed(&self, timeout: Duration) -> bool {
        let Some(feed) = &self.inner.feed else {
            return false;
        };
        feed.start(|| self.feed_source());
        feed.wait_synced(timeout).await
    }

    /// The state of the revocation feed, for logs, health checks and tests.
    pub fn feed_status(&self) -> FeedStatus {
        self.inner
            .feed
            .as_ref()
            .map_or(FeedStatus::Off, Feed::status)
    }

    fn feed_source(&self) -> feed::Source {
        feed::Source {
            verifier: WeakVerifier(Arc::downgrade(&self.inner)),
            http: self.inner.http.clone(),
            credentials: self.inner.credentials.clone(),
            clock: self.inner.clock.clone(),
            leeway: self.inner.leeway,
        }
    }

    /// The revocation feed's URL in the issuer's metadata, if it has one.
    pub(crate) async fn feed_endpoint(&self) -> Result<Option<String>, BearerError> {
        let metadata = self.metadata().await?;
        Ok(metadata.tessera_revocation_feed_endpoint.clone())
    }

    fn unavailable(&self, what: impl std::fmt::Display) -> BearerError {
        tracing::warn!(issuer = %self.inner.issuer, error = %what, "cannot reach the authorization server");
        BearerError::Unavailable {
            realm: self.inner.realm.to_string(),
            description: "the authorization server cannot be reached".into(),
        }
    }

    async fn metadata(&self) -> Result<&Metadata, BearerError> {
        self.inner
            .metadata
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/oauth-authorization-server",
                    self.inner.issuer
                );
                let metadata: Metadata = self.get_json(&url).await?;
                // RFC 8414 §3.3: the metadata must name the issuer it was fetched for.
                if metadata.issuer != self.inner.issuer {
                    return Err(
                        self.unavailable(format!("metadata names issuer {}", metadata.issuer))
                    );
                }
                Ok(metadata)
            })
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, BearerError> {
        let response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        if !response.status().is_success() {
            return Err(self.unavailable(format!("{url} answered {}", response.status())));
        }
        response.json().await.map_err(|e| self.unavailable(e))
    }

    async fn verify_jwt(&self, token: &str) -> Result<Claims, BearerError> {
        let inner = &self.inner;
        let now = (inner.clock)();
        if let Some(claims) = inner.verified.get(token, now, inner.leeway) {
            return Ok(claims);
        }
        let parsed = jwt::parse(token, &inner.algorithms, &inner.realm)?;
        let metadata = self.metadata().await?;
        let key = inner
            .keys
            .get(&parsed.kid, || async {
                let response = inner
                    .http
                    .get(&metadata.jwks_uri)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let body = response.bytes().await.map_err(|e| e.to_string())?;
                parse_jwks(&body)
            })
            .await
            .map_err(|e| self.unavailable(e))?
            .ok_or_else(|| {
                BearerError::invalid_token(&inner.realm, "the token is signed by an unknown key")
            })?;
        let expect = Expect {
            issuer: &inner.issuer,
            audience: inner.audience.as_deref(),
            now,
            leeway: inner.leeway,
        };
        let claims = jwt::verify(parsed, &key, &expect, &inner.realm)?;
        inner.verified.put(token, &claims, now, inner.leeway);
        Ok(claims)
    }

    async fn introspect(&self, token: &str) -> Result<Claims, BearerError> {
        let inner = &self.inner;
        let now = (inner.clock)();
        if let Some(claims) = inner.cache.as_ref().and_then(|c| c.get(token, now)) {
            return Ok(claims);
        }
        let Some(credentials) = &inner.credentials else {
            return Err(BearerError::invalid_token(
                &inner.realm,
                "the token is not a JWT this server can verify",
            ));
        };
        let metadata = self.metadata().await?;
        let Some(endpoint) = &metadata.introspection_endpoint else {
            return Err(self.unavailable("the issuer has no introspection endpoint"));
        };
        let response = inner
            .http
            .post(endpoint)
            .basic_auth(&credentials.client_id, Some(&credentials.client_secret))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        if !response.status().is_success() {
            return Err(self.unavailable(format!("introspection answered {}", response.status())));
        }
        let mut answer: Map<String, Value> =
            response.json().await.map_err(|e| self.unavailable(e))?;
        if answer.remove("active") != Some(Value::Bool(true)) {
            return Err(BearerError::invalid_token(
                &inner.realm,
                "the token is not active",
            ));
        }
        // A refresh token is not an access token.
        if answer
            .get("token_type")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(BearerError::invalid_token(
                &inner.realm,
                "the token is not an access token",
            ));
        }
        let claims = Claims::from_json(answer, inner.realm.clone())
            .map_err(|e| BearerError::invalid_token(&inner.realm, e))?;
        if let Some(aud) = &inner.audience {
            if !claims.aud.is_empty() && !claims.aud.iter().any(|a| a == aud) {
                return Err(BearerError::invalid_token(
                    &inner.realm,
                    "the token is not meant for this resource server",
                ));
            }
        }
        if claims.exp + inner.leeway <= now {
            return Err(BearerError::invalid_token(
                &inner.realm,
                "the token has expired",
            ));
        }
        if let Some(cache) = &inner.cache {
            cache.put(token, &claims, now);
        }
        Ok(claims)
    }
}
