//! `tessera key`: the signing keys kept in the database, and the master key that
//! encrypts them.

use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;
use tessera_server::clock::{Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::master::MasterKey;
use tessera_server::state::open_store;
use tessera_server::tokens::ring::KeyInfo;
use tessera_server::tokens::KeyRing;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Start a new signing key: published in the JWKS at once, signing after
    /// --publish-ahead (every instance switches then); the current key stays published
    /// until every token it signed has expired
    Rotate {
        /// How long the new key is published before it signs
        /// [default: tokens.key_rotation.publish_ahead, 1h]; `0s` signs at once, which
        /// may refuse tokens at resource servers that cached the JWKS
        #[arg(long, value_parser = humantime::parse_duration)]
        publish_ahead: Option<Duration>,
        /// Print the new key as JSON
        #[arg(long)]
        json: bool,
    },
    /// List the signing keys: next, signing, retired (published until removed_at) and
    /// unused (another algorithm than tokens.signing_alg)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a fresh master key (32 random bytes, base64) for TESSERA_MASTER_KEY
    NewMasterKey,
}

pub async fn run(config: Config, cmd: KeyCommand) -> anyhow::Result<()> {
    if let KeyCommand::NewMasterKey = cmd {
        println!("{}", MasterKey::generate()?.to_base64());
        return Ok(());
    }
    let master = MasterKey::resolve(&config)?;
    let store = open_store(&config).await?;
    let now = SystemClock.now();
    let ring = KeyRing::open(store, &master, &config, now).await?;
    match cmd {
        KeyCommand::Rotate {
            publish_ahead,
            json,
        } => {
            let ahead = publish_ahead.unwrap_or(config.tokens.key_rotation.publish_ahead);
            let key = ring.rotate(now, ahead).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&key)?);
            } else {
                println!(
                    "new {} key {} published; it signs from {}",
                    key.alg,
                    key.kid,
                    time(key.activates_at)
                );
            }
        }
        KeyCommand::List { json } => {
            let keys = ring.list(now).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                print_table(&keys);
            }
        }
        KeyCommand::NewMasterKey => unreachable!("handled above"),
    }
    Ok(())
}

fn print_table(keys: &[KeyInfo]) {
    println!(
        "{:<44} {:<6} {:<8} {:<20} {:<20} REMOVED",
        "KID", "ALG", "STATE", "CREATED", "SIGNS FROM"
    );
    for k in keys {
        println!(
            "{:<44} {:<6} {:<8} {:<20} {:<20} {}",
            k.kid,
            k.alg,
            k.state,
            time(k.created_at),
            time(k.activates_at),
            k.removed_at.map_or_else(|| "-".to_owned(), time)
        );
    }
}

fn time(t: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}
