//! `tessera initial-access-token create`: tokens that let a developer register a
//! client at the registration endpoint (RFC 7591 §3).

use std::time::Duration;

use clap::Subcommand;
use serde_json::json;
use tessera_protocol::Scope;
use tessera_server::clock::{Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::crypto::{hash_secret, random_id, random_token};
use tessera_server::state::open_store;
use tessera_server::store::InitialAccessToken;

#[derive(Subcommand)]
pub enum InitialAccessTokenCommand {
    /// Create a token; it is printed once (`--json`: {"token": ...})
    Create {
        /// Scopes a client registered with the token may get, space separated
        #[arg(long, default_value = "")]
        scope: String,
        /// How many registrations it allows [default: unlimited]
        #[arg(long)]
        uses: Option<u32>,
        /// How long it stays valid, e.g. 1h or 7days [default: forever]
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: Config, cmd: InitialAccessTokenCommand) -> anyhow::Result<()> {
    let InitialAccessTokenCommand::Create {
        scope,
        uses,
        expires_in,
        json,
    } = cmd;
    let scope = Scope::parse(&scope).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = open_store(&config).await?;
    tessera_server::admin::check_scopes_exist(store.as_ref(), &scope).await?;
    if uses == Some(0) {
        anyhow::bail!("--uses must be at least 1");
    }
    let now = SystemClock.now();
    let token = random_token();
    store
        .create_initial_access_token(&InitialAccessToken {
            id: random_id(),
            token_hash: hash_secret(&token),
            scope,
            uses_left: uses.map(i64::from),
            expires_at: expires_in.map(|d| now + d.as_secs() as i64),
            created_at: now,
        })
        .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "token": token }))?
        );
    } else {
        println!("initial access token: {token}");
        println!("Give it to the developer: POST /register with Authorization: Bearer <token>.");
    }
    Ok(())
}
