//! Administrative operations shared by the CLI and the tests: creating clients with
//! generated secrets (or registered keys), rotating secrets, users with Argon2id
//! passwords, and the scope catalog.

use std::time::Duration;

use anyhow::{bail, Context};
use tessera_protocol::{GrantType, RedirectUri, Scope};

use crate::client_auth::jwk::parse_set;
use crate::crypto::{hash_password_bounded, hash_secret, random_id, random_token};
use crate::seal::Sealer;
use crate::store::{AuthMethod, Client, ClientMetadata, ScopeEntry, Store, TokenFormat, User};

/// What an administrator asks for when registering a client.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scope: String,
    /// Scopes the client cannot work without (a subset of `scope`).
    pub required_scope: String,
    pub public: bool,
    /// Empty means the default: `authorization_code` and `refresh_token`.
    pub grant_types: Vec<GrantType>,
    pub token_format: TokenFormat,
    /// `None`: `client_secret_basic` for a confidential client, `none` for a public one.
    pub auth_method: Option<AuthMethod>,
    pub metadata: ClientMetadata,
    /// Registered through RFC 7591.
    pub dynamic: bool,
}

impl NewClient {
    /// A client with the given name and every other setting at its default.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            redirect_uris: Vec::new(),
            scope: String::new(),
            required_scope: String::new(),
            public: false,
            grant_types: Vec::new(),
            token_format: TokenFormat::Jwt,
            auth_method: None,
            metadata: ClientMetadata::default(),
            dynamic: false,
        }
    }
}

/// A newly registered client and, for a client that uses one, its secret (shown once).
pub struct CreatedClient {
    pub client: Client,
    pub secret: Option<String>,
}

/// Redirect URIs must be https, http on loopback (RFC 8252 §7.3), or a private-use
/// scheme of a native app (RFC 8252 §7.1).
fn check_redirect_uri(raw: &str) -> anyhow::Result<RedirectUri> {
    let uri = RedirectUri::parse(raw).map_err(|e| anyhow::anyhow!("{raw}: {e}"))?;
    let url = uri.url();
    match url.scheme() {
        "https" => {}
        "http" if uri.is_loopback() || url.host_str() == Some("localhost") => {}
        "http" => bail!("{raw}: http redirect URIs are allowed only on loopback; use https"),
        "javascript" | "data" | "file" | "vbscript" => bail!("{raw}: scheme not allowed"),
        _ => {}
    }
    Ok(uri)
}

/// `jwks_uri` must be https, or http on loopback (for development).
fn check_jwks_uri(raw: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(raw).map_err(|e| anyhow::anyhow!("jwks_uri {raw}: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => bail!("jwks_uri {raw}: must be https (http is allowed only on loopback)"),
    }
}

/// Key metadata (RFC 7591 §2): `jwks` and `jwks_uri` never both; `jwks` a JWK Set of
/// public keys Tessera can verify with; `private_key_jwt` needs one of the two.
fn check_keys(method: AuthMethod, m: &ClientMetadata) -> anyhow::Result<()> {
    if m.jwks.is_some() && m.jwks_uri.is_some() {
        bail!("give jwks or jwks_uri, not both (RFC 7591 section 2)");
    }
    if let Some(uri) = &m.jwks_uri {
        check_jwks_uri(uri)?;
    }
    if let Some(set) = &m.jwks {
        parse_set(set).context("jwks")?;
    }
    if method == AuthMethod::PrivateKeyJwt && m.jwks.is_none() && m.jwks_uri.is_none() {
        bail!("a private_key_jwt client needs its public keys: jwks or jwks_uri");
    }
    Ok(())
}

/// Register a client. A `client_secret_jwt` client needs [`create_client_sealed`].
pub async fn create_client(
    store: &dyn Store,
    new: NewClient,
    now: i64,
) -> anyhow::Result<CreatedClient> {
    create(store, new, None, now).await
}

/// Register a client of any authentication method: `sealer` seals the secret of a
/// `client_secret_jwt` client (see [`crate::seal`] for why that secret alone is kept).
pub async fn create_client_sealed(
    store: &dyn Store,
    new: NewClient,
    sealer: &Sealer,
    now: i64,
) -> anyhow::Result<CreatedClient> {
    create(store, new, Some(sealer), now).await
}

/// A client's settings after the checks that creation and replacement share.
pub struct Settings {
    pub auth_method: AuthMethod,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<RedirectUri>,
    pub scope: Scope,
    pub required_scope: Scope,
}

/// Check a client's settings: name, authentication method and keys, grant types,
/// redirect URIs, scopes (which must exist in the catalog) and required scopes.
pub async fn check_settings(store: &dyn Store, new: &NewClient) -> anyhow::Result<Settings> {
    if new.name.trim().is_empty() {
        bail!("the client name must not be empty");
    }
    let auth_method = match (new.auth_method, new.public) {
        (None, true) | (Some(AuthMethod::None), _) => AuthMethod::None,
        (None, false) => AuthMethod::ClientSecretBasic,
        (Some(m), true) => bail!(
            "a public client does not authenticate: its method is none, not {}",
            m.as_str()
        ),
        (Some(m), false) => m,
    };
    let public = auth_method == AuthMethod::None;
    let grant_types = if new.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        let mut g = new.grant_types.clone();
        g.sort();
        g.dedup();
        g
    };
    if public && grant_types.contains(&GrantType::ClientCredentials) {
        bail!("a public client cannot use the client_credentials grant (RFC 6749 section 4.4)");
    }
    check_keys(auth_method, &new.metadata)?;
    let redirect_uris = new
        .redirect_uris
        .iter()
        .map(|u| check_redirect_uri(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        bail!("the authorization_code grant needs at least one redirect URI");
    }
    let scope = Scope::parse(&new.scope).map_err(|e| anyhow::anyhow!("{e}"))?;
    check_scopes_exist(store, &scope).await?;
    let required_scope = Scope::parse(&new.required_scope).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !required_scope.is_subset_of(&scope) {
        bail!("every required scope must also be among the client's scopes");
    }
    Ok(Settings {
        auth_method,
        grant_types,
        redirect_uris,
        scope,
        required_scope,
    })
}

async fn create(
    store: &dyn Store,
    new: NewClient,
    sealer: Option<&Sealer>,
    now: i64,
) -> anyhow::Result<CreatedClient> {
    let Settings {
        auth_method,
        grant_types,
        redirect_uris,
        scope,
        required_scope,
    } = check_settings(store, &new).await?;
    let id = random_id();
    // A key-based client (private_key_jwt) and a public one get no secret.
    let secret = auth_method.uses_secret().then(random_token);
    let secret_sealed = match (&secret, auth_method) {
        (Some(secret), AuthMethod::ClientSecretJwt) => Some(seal_secret(sealer, &id, secret)?),
        _ => None,
    };
    let client = Client {
        id,
        name: new.name,
        secret_hash: secret.as_deref().map(hash_secret),
        redirect_uris,
        scope,
        required_scope,
        grant_types,
        token_format: new.token_format,
        created_at: now,
        auth_method,
        metadata: new.metadata,
        dynamic: new.dynamic,
        registration_token_hash: None,
        previous_secret: None,
        secret_sealed,
        updated_at: None,
    };
    store.create_client(&client).await?;
    Ok(CreatedClient { client, secret })
}

/// The exception to "secrets are stored only as hashes": `client_secret_jwt` signs
/// with HMAC keyed by the secret itself (OpenID Connect Core §9), and a hash cannot key
/// an HMAC. The secret is sealed with AES-256-GCM, bound to the client id.
fn seal_secret(sealer: Option<&Sealer>, client_id: &str, secret: &str) -> anyhow::Result<Vec<u8>> {
    let sealer = sealer.context(
        "a client_secret_jwt client's secret must be sealed: use create_client_sealed or \
         rotate_client_secret_sealed with the server's sealer",
    )?;
    sealer.seal(client_id.as_bytes(), secret.as_bytes())
}

/// Give a client a new secret; the old one stops working at once.
/// A `client_secret_jwt` client needs [`rotate_client_secret_sealed`].
pub async fn rotate_client_secret(store: &dyn Store, id: &str) -> anyhow::Result<String> {
    // Only the record's `updated_at` reads the clock here.
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    rotate(store, id, None, None, now).await
}

/// Give a client a new secret. With a `grace` period the previous secret keeps working
/// until `now + grace`, so that the client's deployments can switch over; `None` (or
/// zero) ends it at once. A `client_secret_jwt` client needs
/// [`rotate_client_secret_sealed`].
pub async fn rotate_client_secret_with_grace(
    store: &dyn Store,
    id: &str,
    grace: Option<Duration>,
    now: i64,
) -> anyhow::Result<String> {
    rotate(store, id, grace, None, now).await
}

/// [`rotate_client_secret_with_grace`] for clients of any method: `sealer` seals the
/// new secret of a `client_secret_jwt` client. Such a client gets no grace period: its
/// assertions are checked against the sealed secret, and only the new one is sealed.
pub async fn rotate_client_secret_sealed(
    store: &dyn Store,
    id: &str,
    grace: Option<Duration>,
    sealer: &Sealer,
    now: i64,
) -> anyhow::Result<String> {
    rotate(store, id, grace, Some(sealer), now).await
}

async fn rotate(
    store: &dyn Store,
    id: &str,
    grace: Option<Duration>,
    sealer: Option<&Sealer>,
    now: i64,
) -> anyhow::Result<String> {
    let mut client = store
        .get_client(id)
        .await?
        .with_context(|| format!("no client {id}"))?;
    if !client.auth_method.uses_secret() {
        bail!(
            "client {id} authenticates with {} and has no secret",
            client.auth_method.as_str()
        );
    }
    let grace = grace.filter(|g| !g.is_zero());
    let secret = random_token();
    client.secret_sealed = match client.auth_method {
        AuthMethod::ClientSecretJwt => {
            if grace.is_some() {
                bail!("a client_secret_jwt client cannot keep its previous secret: rotate without a grace period");
            }
            Some(seal_secret(sealer, id, &secret)?)
        }
        _ => None,
    };
    client.previous_secret = match (grace, client.secret_hash) {
        (Some(g), Some(old)) => {
            let seconds = i64::try_from(g.as_secs()).unwrap_or(i64::MAX);
            Some((old, now.saturating_add(seconds)))
        }
        _ => None,
    };
    client.secret_hash = Some(hash_secret(&secret));
    client.updated_at = Some(now);
    if !store.update_client(&client).await? {
        bail!("no client {id}");
    }
    Ok(secret)
}

fn check_username(username: &str) -> anyhow::Result<()> {
    if username.is_empty()
        || username.len() > 64
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("a username is 1 to 64 characters without spaces");
    }
    Ok(())
}

fn check_password(password: &str) -> anyhow::Result<()> {
    if password.chars().count() < 8 {
        bail!("the password must have at least 8 characters");
    }
    if password.len() > 1024 {
        bail!("the password is too long");
    }
    Ok(())
}

pub async fn create_user(
    store: &dyn Store,
    username: &str,
    password: &str,
    now: i64,
) -> anyhow::Result<User> {
    check_username(username)?;
    check_password(password)?;
    if store.get_user_by_username(username).await?.is_some() {
        bail!("user {username} already exists");
    }
    let password = password.to_owned();
    let password_hash = hash_password_bounded(password).await?;
    let user = User {
        id: random_id(),
        username: username.to_owned(),
        password_hash,
        created_at: now,
    };
    store.create_user(&user).await?;
    Ok(user)
}

pub async fn set_password(store: &dyn Store, username: &str, password: &str) -> anyhow::Result<()> {
    check_password(password)?;
    let password = password.to_owned();
    let hash = hash_password_bounded(password).await?;
    if !store.set_password(username, &hash).await? {
        bail!("no user {username}");
    }
    Ok(())
}

pub async fn create_scope(store: &dyn Store, name: &str, description: &str) -> anyhow::Result<()> {
    if !Scope::is_valid_token(name) {
        bail!("{name:?} is not a valid scope name (RFC 6749 section 3.3)");
    }
    if description.trim().is_empty() {
        bail!("a scope needs a description: it is what the person reads on the consent page");
    }
    store
        .upsert_scope(&ScopeEntry {
            name: name.to_owned(),
            description: description.to_owned(),
        })
        .await
}

/// Every scope must be in the catalog.
pub async fn check_scopes_exist(store: &dyn Store, scope: &Scope) -> anyhow::Result<()> {
    let catalog = store.list_scopes().await?;
    let unknown: Vec<&str> = scope
        .iter()
        .filter(|s| !catalog.iter().any(|c| c.name == *s))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "unknown scope(s): {}; create them first with `tessera scope create`",
            unknown.join(" ")
        );
    }
    Ok(())
}
