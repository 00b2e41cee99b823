//! Administrative operations shared by the CLI and the tests: creating clients with
//! generated secrets, users with Argon2id passwords, and the scope catalog.

use anyhow::{bail, Context};
use tessera_protocol::{GrantType, RedirectUri, Scope};

use crate::crypto::{hash_password, hash_secret, random_string, random_token};
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

/// A newly registered client and, for a confidential one, its secret (shown once).
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

pub async fn create_client(
    store: &dyn Store,
    new: NewClient,
    now: i64,
) -> anyhow::Result<CreatedClient> {
    if new.name.trim().is_empty() {
        bail!("the client name must not be empty");
    }
    let grant_types = if new.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        let mut g = new.grant_types.clone();
        g.sort();
        g.dedup();
        g
    };
    if new.public && grant_types.contains(&GrantType::ClientCredentials) {
        bail!("a public client cannot use the client_credentials grant (RFC 6749 section 4.4)");
    }
    let redirect_uris = new
        .redirect_uris
        .iter()
        .map(|u| check_redirect_uri(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        bail!("the authorization_code grant needs at least one --redirect-uri");
    }
    let scope = Scope::parse(&new.scope).map_err(|e| anyhow::anyhow!("{e}"))?;
    check_scopes_exist(store, &scope).await?;
    let required_scope = Scope::parse(&new.required_scope).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !required_scope.is_subset_of(&scope) {
        bail!("every required scope must also be among the client's scopes");
    }
    let secret = (!new.public).then(random_token);
    let client = Client {
        id: random_string(16),
        name: new.name,
        secret_hash: secret.as_deref().map(hash_secret),
        redirect_uris,
        scope,
        required_scope,
        grant_types,
        token_format: new.token_format,
        created_at: now,
        auth_method: new.auth_method.unwrap_or(if new.public {
            AuthMethod::None
        } else {
            AuthMethod::ClientSecretBasic
        }),
        metadata: new.metadata,
        dynamic: new.dynamic,
        registration_token_hash: None,
        previous_secret: None,
        secret_sealed: None,
        updated_at: None,
    };
    store.create_client(&client).await?;
    Ok(CreatedClient { client, secret })
}

/// Give a confidential client a new secret; the old one stops working at once.
pub async fn rotate_client_secret(store: &dyn Store, id: &str) -> anyhow::Result<String> {
    let client = store
        .get_client(id)
        .await?
        .with_context(|| format!("no client {id}"))?;
    if client.is_public() {
        bail!("client {id} is public and has no secret");
    }
    let secret = random_token();
    store.set_client_secret(id, &hash_secret(&secret)).await?;
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
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    let user = User {
        id: random_string(16),
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
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
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
