//! `tessera client|user|scope ...`: administration against the configured database.

use std::io::Read;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use tessera_protocol::GrantType;
use tessera_server::admin::{self, NewClient};
use tessera_server::clock::{Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::revocation;
use tessera_server::state::{open_sealer, open_store};
use tessera_server::store::{
    Actor, AuditFilter, AuthMethod, Client, ClientMetadata, Store, TokenFormat,
};
use tessera_server::AppState;

#[derive(Clone, Copy, ValueEnum)]
pub enum GrantArg {
    #[value(name = "authorization_code")]
    AuthorizationCode,
    #[value(name = "refresh_token")]
    RefreshToken,
    #[value(name = "client_credentials")]
    ClientCredentials,
}

impl From<GrantArg> for GrantType {
    fn from(g: GrantArg) -> Self {
        match g {
            GrantArg::AuthorizationCode => GrantType::AuthorizationCode,
            GrantArg::RefreshToken => GrantType::RefreshToken,
            GrantArg::ClientCredentials => GrantType::ClientCredentials,
        }
    }
}

/// How the client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Clone, Copy, ValueEnum)]
pub enum AuthMethodArg {
    #[value(name = "client_secret_basic")]
    ClientSecretBasic,
    #[value(name = "client_secret_post")]
    ClientSecretPost,
    #[value(name = "client_secret_jwt")]
    ClientSecretJwt,
    #[value(name = "private_key_jwt")]
    PrivateKeyJwt,
    #[value(name = "none")]
    None,
}

impl From<AuthMethodArg> for AuthMethod {
    fn from(m: AuthMethodArg) -> Self {
        match m {
            AuthMethodArg::ClientSecretBasic => AuthMethod::ClientSecretBasic,
            AuthMethodArg::ClientSecretPost => AuthMethod::ClientSecretPost,
            AuthMethodArg::ClientSecretJwt => AuthMethod::ClientSecretJwt,
            AuthMethodArg::PrivateKeyJwt => AuthMethod::PrivateKeyJwt,
            AuthMethodArg::None => AuthMethod::None,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Jwt,
    Opaque,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for a confidential client, its secret (shown once)
    Create {
        /// Display name, shown on the consent page
        #[arg(long)]
        name: String,
        /// Redirect URI (repeatable); matched exactly, except for the port of loopback URIs
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Scopes the client may be granted, space separated (each must exist in the catalog)
        #[arg(long, default_value = "")]
        scope: String,
        /// Scopes the client cannot work without, space separated (a subset of --scope):
        /// if the person unticks one on the consent page, the request is denied
        #[arg(long, default_value = "")]
        required_scope: String,
        /// A public client (no secret; e.g. a native or browser app)
        #[arg(long)]
        public: bool,
        /// Grant type (repeatable) [default: authorization_code and refresh_token]
        #[arg(long = "grant-type", value_enum)]
        grant_types: Vec<GrantArg>,
        /// Access token format
        #[arg(long, value_enum, default_value = "jwt")]
        token_format: FormatArg,
        /// How the client authenticates [default: client_secret_basic, or none with --public]
        #[arg(long, value_enum)]
        auth_method: Option<AuthMethodArg>,
        /// Where the client publishes its public keys (private_key_jwt): https, or http on loopback
        #[arg(long, conflicts_with = "jwks_file")]
        jwks_uri: Option<String>,
        /// A JWK Set JSON file with the client's public keys (private_key_jwt)
        #[arg(long)]
        jwks_file: Option<std::path::PathBuf>,
        /// Print {"client_id": ..., "client_secret": ...} (client_secret is null without a secret)
        #[arg(long)]
        json: bool,
    },
    /// List clients
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and everything issued to it
    Delete { client_id: String },
    /// Replace a confidential client's secret; the old one stops working at once
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin a password is generated and printed once.
    Create {
        #[arg(long)]
        username: String,
        /// Read the password from standard input (first line)
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List users
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a user with their sessions, consents and tokens
    Delete { username: String },
    /// Set a user's password (ends their sessions). Without --password-stdin one is generated and printed.
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum ScopeCommand {
    /// Create a scope, or change its description
    Create {
        name: String,
        /// What the person reads on the consent page, e.g. "Read your transactions"
        #[arg(long)]
        description: String,
    },
    /// List the scope catalog
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a scope from the catalog
    Delete { name: String },
}

fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "public": c.is_public(),
        "redirect_uris": c.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "scope": c.scope.to_string(),
        "required_scope": c.required_scope.to_string(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "token_format": c.token_format.as_str(),
        "created_at": c.created_at,
    })
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    open_store(config).await
}

fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((tessera_server::crypto::random_string(15), true));
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the password")?;
    let line = input.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok((line, false))
}

pub async fn client(config: Config, cmd: ClientCommand) -> anyhow::Result<()> {
    let store = store(&config).await?;
    match cmd {
        ClientCommand::Create {
            name,
            redirect_uris,
            scope,
            required_scope,
            public,
            grant_types,
            token_format,
            auth_method,
            jwks_uri,
            jwks_file,
            json,
        } => {
            let jwks = match jwks_file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Some(
                        serde_json::from_str(&text)
                            .with_context(|| format!("{} is not JSON", path.display()))?,
                    )
                }
                None => None,
            };
            let created = admin::create_client_sealed(
                store.as_ref(),
                NewClient {
                    name,
                    redirect_uris,
                    scope,
                    required_scope,
                    public,
                    grant_types: grant_types.into_iter().map(Into::into).collect(),
                    token_format: match token_format {
                        FormatArg::Jwt => TokenFormat::Jwt,
                        FormatArg::Opaque => TokenFormat::Opaque,
                    },
                    auth_method: auth_method.map(Into::into),
                    metadata: ClientMetadata {
                        jwks,
                        jwks_uri,
                        ..ClientMetadata::default()
                    },
                    ..NewClient::named("")
                },
                &open_sealer(&config)?,
                SystemClock.now(),
            )
            .await?;
            if json {
                print_json(
                    &json!({ "client_id": created.client.id, "client_secret": created.secret }),
                )?;
            } else {
                println!("client_id:     {}", created.client.id);
                match created.secret {
                    Some(s) => {
                        println!("client_secret: {s}");
                        println!("Store the secret now: it is not shown again.");
                    }
                    None if created.client.is_public() => println!("(public client: no secret)"),
                    None => {
                        println!("(private_key_jwt: no secret; the client signs with its keys)")
                    }
                }
            }
        }
        ClientCommand::List { json } => {
            let clients = store.list_clients().await?;
            if json {
                print_json(&json!(clients.iter().map(client_json).collect::<Vec<_>>()))?;
            } else {
                for c in clients {
                    let kind = if c.is_public() {
                        "public"
                    } else {
                        "confidential"
                    };
                    println!("{}  {}  ({kind}, {})", c.id, c.name, c.scope);
                }
            }
        }
        ClientCommand::Show { client_id, json } => {
            let c = store
                .get_client(&client_id)
                .await?
                .with_context(|| format!("no client {client_id}"))?;
            if json {
                print_json(&client_json(&c))?;
            } else {
                println!("client_id:     {}", c.id);
                println!("name:          {}", c.name);
                println!(
                    "type:          {}",
                    if c.is_public() {
                        "public"
                    } else {
                        "confidential"
                    }
                );
                println!(
                    "redirect_uris: {}",
                    c.redirect_uris
                        .iter()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                println!("scope:         {}", c.scope);
                println!(
                    "grant_types:   {}",
                    c.grant_types
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                println!("token_format:  {}", c.token_format.as_str());
            }
        }
        ClientCommand::Delete { client_id } => {
            let state = AppState::open(config).await?;
            let grants = store.list_client_grants(&client_id).await?;
            revocation::revoke_all(&state, grants, "client deleted by an administrator").await?;
            if !store.delete_client(&client_id).await? {
                bail!("no client {client_id}");
            }
            println!("deleted client {client_id}");
        }
        ClientCommand::RotateSecret { client_id, json } => {
            let secret = admin::rotate_client_secret_sealed(
                store.as_ref(),
                &client_id,
                None,
                &open_sealer(&config)?,
                SystemClock.now(),
            )
            .await?;
            if json {
                print_json(&json!({ "client_id": client_id, "client_secret": secret }))?;
            } else {
                println!("client_secret: {secret}");
                println!(
                    "The old secret no longer works. Store this one now: it is not shown again."
                );
            }
        }
    }
    Ok(())
}

pub async fn user(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = store(&config).await?;
    match cmd {
        UserCommand::Create {
            username,
            password_stdin,
            json,
        } => {
            let (password, generated) = read_password(password_stdin)?;
            let user =
                admin::create_user(store.as_ref(), &username, &password, SystemClock.now()).await?;
            let shown = generated.then_some(password.as_str());
            if json {
                print_json(
                    &json!({ "id": user.id, "username": user.username, "password": shown }),
                )?;
            } else {
                println!("created user {} ({})", user.username, user.id);
                if let Some(p) = shown {
                    println!("{} / {p}", user.username);
                }
            }
        }
        UserCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                let list: Vec<_> = users
                    .iter()
                    .map(|u| json!({ "id": u.id, "username": u.username, "created_at": u.created_at }))
                    .collect();
                print_json(&json!(list))?;
            } else {
                for u in users {
                    println!("{}  {}", u.id, u.username);
                }
            }
        }
        UserCommand::Delete { username } => {
            let state = AppState::open(config).await?;
            if !revocation::delete_user(&state, &username, "user deleted by an administrator")
                .await?
            {
                bail!("no user {username}");
            }
            println!("deleted user {username}");
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            let (password, generated) = read_password(password_stdin)?;
            admin::set_password(store.as_ref(), &username, &password).await?;
            println!("password changed for {username}; their sessions have ended");
            if generated {
                println!("{username} / {password}");
            }
        }
    }
    Ok(())
}

pub async fn scope(config: Config, cmd: ScopeCommand) -> anyhow::Result<()> {
    let store = store(&config).await?;
    match cmd {
        ScopeCommand::Create { name, description } => {
            admin::create_scope(store.as_ref(), &name, &description).await?;
            println!("scope {name}: {description}");
        }
        ScopeCommand::List { json } => {
            let scopes = store.list_scopes().await?;
            if json {
                let list: Vec<_> = scopes
                    .iter()
                    .map(|s| json!({ "name": s.name, "description": s.description }))
                    .collect();
                print_json(&json!(list))?;
            } else {
                for s in scopes {
                    println!("{:<24} {}", s.name, s.description);
                }
            }
        }
        ScopeCommand::Delete { name } => {
            if !store.delete_scope(&name).await? {
                bail!("no scope {name}");
            }
            println!("deleted scope {name}");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// List a user's grants (the apps they connected) that are not revoked
    List {
        #[arg(long)]
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant: its refresh and access tokens stop working at once
    Revoke { grant_id: String },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first
    List {
        /// Only this user's events
        #[arg(long)]
        username: Option<String>,
        /// Only this client's events
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

pub async fn grant(config: Config, cmd: GrantCommand) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    let store = state.store.clone();
    match cmd {
        GrantCommand::List { username, json } => {
            let user = store
                .get_user_by_username(&username)
                .await?
                .with_context(|| format!("no user {username}"))?;
            let now = SystemClock.now();
            let grants = store.list_user_grants(&user.id).await?;
            if json {
                let list: Vec<_> = grants
                    .iter()
                    .map(|g| {
                        json!({
                            "grant_id": g.id, "client_id": g.client_id, "scope": g.scope.to_string(),
                            "created_at": g.created_at, "expires_at": g.expires_at,
                            "last_used_at": g.last_used_at, "expired": g.is_expired(now),
                        })
                    })
                    .collect();
                print_json(&json!(list))?;
            } else {
                for g in grants {
                    let status = if g.is_expired(now) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!("{}  client {}  {}  ({status})", g.id, g.client_id, g.scope);
                }
            }
        }
        GrantCommand::Revoke { grant_id } => {
            if store.get_grant(&grant_id).await?.is_none() {
                bail!("no grant {grant_id}");
            }
            let revoked = revocation::revoke_grant(
                &state,
                &grant_id,
                Actor::Admin,
                "revoked by an administrator",
            )
            .await?;
            if revoked {
                println!("revoked grant {grant_id}");
            } else {
                println!("grant {grant_id} was already revoked");
            }
        }
    }
    Ok(())
}

pub async fn audit(config: Config, cmd: AuditCommand) -> anyhow::Result<()> {
    let store = store(&config).await?;
    let AuditCommand::List {
        username,
        client_id,
        limit,
        json,
    } = cmd;
    let user_id = match username {
        Some(name) => Some(
            store
                .get_user_by_username(&name)
                .await?
                .with_context(|| format!("no user {name}"))?
                .id,
        ),
        None => None,
    };
    let events = store
        .list_audit(&AuditFilter {
            user_id,
            client_id,
            limit,
        })
        .await?;
    if json {
        let list: Vec<_> = events
            .iter()
            .map(|e| {
                json!({
                    "id": e.id, "at": e.at, "kind": e.kind, "actor": e.actor.as_str(),
                    "user_id": e.user_id, "username": e.username, "client_id": e.client_id,
                    "grant_id": e.grant_id, "detail": e.detail,
                })
            })
            .collect();
        print_json(&json!(list))?;
    } else {
        for e in events {
            println!(
                "{}  {:<12} by {:<6} user {:<12} client {:<24} {}",
                e.at,
                e.kind,
                e.actor.as_str(),
                e.username.as_deref().unwrap_or("-"),
                e.client_id.as_deref().unwrap_or("-"),
                e.detail
            );
        }
    }
    Ok(())
}
