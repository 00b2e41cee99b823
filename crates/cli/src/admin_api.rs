//! `tessera admin-token create|list|revoke`: the tokens that open the admin REST API
//! (`/admin/`). A token is shown once; only its SHA-256 hash is stored.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use tessera_server::clock::{Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::endpoints::admin::auth::create_token;
use tessera_server::state::open_store;

#[derive(Subcommand)]
pub enum AdminTokenCommand {
    /// Create a token for the admin API; it is printed once (`--json`: {"id", "token"})
    Create {
        /// What the token is for, e.g. "deploy pipeline"
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List the tokens (never the tokens themselves): id, name, created, revoked
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id; requests with it are refused at once
    Revoke { id: String },
}

pub async fn run(config: Config, cmd: AdminTokenCommand) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let now = SystemClock.now();
    match cmd {
        AdminTokenCommand::Create { name, json } => {
            let (record, token) = create_token(store.as_ref(), &name, now).await?;
            if json {
                let out = json!({ "id": record.id, "name": record.name, "token": token });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("id:    {}", record.id);
                println!("token: {token}");
                println!("Store the token now: it is not shown again.");
                println!(
                    "Send it as `Authorization: Bearer <token>` to {}/...",
                    tessera_server::endpoints::admin::PREFIX
                );
            }
        }
        AdminTokenCommand::List { json } => {
            let tokens = store.list_admin_tokens().await?;
            if json {
                let list: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id, "name": t.name,
                            "created_at": t.created_at, "revoked_at": t.revoked_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for t in tokens {
                    let status = match t.revoked_at {
                        Some(at) => format!("revoked at {at}"),
                        None => "active".to_owned(),
                    };
                    println!(
                        "{}  {}  (created at {}, {status})",
                        t.id, t.name, t.created_at
                    );
                }
            }
        }
        AdminTokenCommand::Revoke { id } => {
            if !store.revoke_admin_token(&id, now).await? {
                bail!("no active admin token {id}");
            }
            println!("revoked admin token {id}");
        }
    }
    Ok(())
}
