//! `tessera demo`: the bank walkthrough on one machine. Starts the authorization
//! server, the demo bank (resource server) and the demo reports app (client) on three
//! loopback ports, seeds users, scopes and clients, and prints what to do.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tessera_demo::{bank, reports};
use tessera_protocol::GrantType;
use tessera_server::admin::{self, NewClient};
use tessera_server::clock::{Clock, SystemClock};
use tessera_server::config::{Config, ScopeConfig};
use tessera_server::store::{Store, TokenFormat};
use tessera_server::AppState;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Args)]
pub struct DemoArgs {
    /// Use a temporary data dir, deleted when the demo stops (instead of --data-dir,
    /// which defaults to ./tessera-demo for the demo and is reused across runs)
    #[arg(long)]
    temp: bool,
    /// Address of the authorization server
    #[arg(long, default_value = "127.0.0.1:8080")]
    auth_listen: SocketAddr,
    /// Address of the demo bank
    #[arg(long, default_value = "127.0.0.1:8081")]
    bank_listen: SocketAddr,
    /// Address of the demo reports app
    #[arg(long, default_value = "127.0.0.1:8082")]
    reports_listen: SocketAddr,
}

/// The scopes of the walkthrough, with what the person reads on the consent page.
pub const SCOPES: [(&str, &str); 3] = [
    ("accounts:read", "See your bank accounts and their balances"),
    ("transactions:read", "Read your transactions"),
    ("transactions:write", "Create transactions in your accounts"),
];

const REPORTS_NAME: &str = "Reports (demo)";
const BANK_NAME: &str = "Bank (demo resource server)";

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

/// Register a confidential client for this run. A client of the same name from an
/// earlier run is replaced (its secret exists only as a hash).
async fn fresh_client(store: &dyn Store, new: NewClient) -> anyhow::Result<(String, String)> {
    for old in store.list_clients().await? {
        if old.name == new.name {
            store.delete_client(&old.id).await?;
        }
    }
    let created = admin::create_client(store, new, SystemClock.now()).await?;
    let secret = created
        .secret
        .context("a confidential client has a secret")?;
    Ok((created.client.id, secret))
}

/// Create the user or give them a new password; returns (user id, password).
async fn fresh_user(store: &dyn Store, username: &str) -> anyhow::Result<(String, String)> {
    let password = tessera_server::crypto::random_string(12);
    let user = match store.get_user_by_username(username).await? {
        Some(user) => {
            admin::set_password(store, username, &password).await?;
            user
        }
        None => admin::create_user(store, username, &password, SystemClock.now()).await?,
    };
    Ok((user.id, password))
}

pub async fn run(data_dir: Option<PathBuf>, args: DemoArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if args.temp && data_dir.is_some() {
        anyhow::bail!("--temp and --data-dir exclude each other");
    }
    let temp = if args.temp {
        Some(tempfile::tempdir().context("creating a temporary data dir")?)
    } else {
        None
    };
    let data_dir = match (&temp, data_dir) {
        (Some(t), _) => t.path().to_owned(),
        (None, Some(d)) => d,
        (None, None) => PathBuf::from("./tessera-demo"),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    let (auth_listener, issuer) = bind(args.auth_listen, "the authorization server").await?;
    let (bank_listener, bank_url) = bind(args.bank_listen, "the bank").await?;
    let (reports_listener, reports_url) = bind(args.reports_listen, "the reports app").await?;

    let mut config = Config {
        issuer: issuer.clone(),
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    config.listen = auth_listener.local_addr()?;
    // Access tokens are meant for the bank.
    config.tokens.audience = Some(bank_url.clone());
    config.scopes = SCOPES
        .iter()
        .map(|(name, description)| ScopeConfig {
            name: (*name).into(),
            description: (*description).into(),
        })
        .collect();
    let state = AppState::open(config).await?;
    let store = state.store.as_ref();

    let (alice_id, alice_password) = fresh_user(store, "alice").await?;
    let (bob_id, bob_password) = fresh_user(store, "bob").await?;
    let (reports_id, reports_secret) = fresh_client(
        store,
        NewClient {
            name: REPORTS_NAME.into(),
            redirect_uris: vec![format!("{reports_url}/callback")],
            scope: SCOPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" "),
            // The reports app cannot work without reading transactions.
            required_scope: "transactions:read".into(),
            public: false,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            token_format: TokenFormat::Jwt,
            ..NewClient::named("")
        },
    )
    .await?;
    let (bank_id, bank_secret) = fresh_client(
        store,
        NewClient {
            name: BANK_NAME.into(),
            redirect_uris: Vec::new(),
            scope: String::new(),
            required_scope: String::new(),
            public: false,
            grant_types: vec![GrantType::ClientCredentials],
            token_format: TokenFormat::Jwt,
            ..NewClient::named("")
        },
    )
    .await?;

    let bank = bank::Bank::open(bank::BankConfig {
        issuer: issuer.clone(),
        audience: bank_url.clone(),
        database: data_dir.join("bank.db"),
        introspection: Some((bank_id, bank_secret)),
    })
    .await?;
    bank.seed_demo_accounts(&alice_id, "alice").await?;
    bank.seed_demo_accounts(&bob_id, "bob").await?;
    let reports_config = reports::ReportsConfig {
        issuer: issuer.clone(),
        bank_url: bank_url.clone(),
        base_url: reports_url.clone(),
        client_id: reports_id,
        client_secret: reports_secret,
        scope: "accounts:read transactions:read".into(),
    };

    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let auth = tokio::spawn(tessera_server::run(
        auth_listener,
        state,
        until_stopped(stopped.clone()),
    ));
    let feed_watcher = bank.clone();
    let bank_task = tokio::spawn(bank::run(
        bank_listener,
        bank,
        until_stopped(stopped.clone()),
    ));
    let reports_task = tokio::spawn(reports::run(
        reports_listener,
        reports_config,
        until_stopped(stopped),
    ));

    println!(
        "Tessera demo: the bank walkthrough (data in {})",
        data_dir.display()
    );
    println!();
    println!("  authorization server  {issuer}");
    println!("  bank (API)            {bank_url}");
    println!("  reports app           {reports_url}");
    println!();
    println!("Users:");
    println!("  alice / {alice_password}");
    println!("  bob / {bob_password}");
    println!();
    println!("Steps:");
    println!("  1. Open {reports_url} and click \"Connect your bank\".");
    println!("  2. Sign in at the authorization server as alice (the reports app never sees the password).");
    println!("  3. Read the consent page: the app asks to see accounts and read transactions only. Click Allow.");
    println!("  4. The reports app shows alice's spending per category and month (none of bob's).");
    println!(
        "  5. Click \"Try to create a transaction\": the bank refuses with 403 insufficient_scope."
    );
    println!(
        "  6. Open {issuer}/account/apps: Reports (demo), what it may do, since when, last used."
    );
    println!("     Click Revoke: the bank refuses the app's token within a second (Tessera's revocation feed);");
    println!("     reload the reports app: \"Access revoked — reconnect\".");
    println!("  7. Or connect again and click \"Disconnect\" in the app: it revokes its own tokens (RFC 7009).");
    println!();
    if !feed_watcher
        .wait_for_feed(std::time::Duration::from_secs(5))
        .await
    {
        tracing::warn!("the bank is not yet subscribed to the revocation feed; it introspects tokens until it is");
    }
    println!("Press Ctrl-C to stop all three.");

    crate::serve::shutdown_signal().await;
    let _ = stop.send(true);
    let (a, b, r) = tokio::join!(auth, bank_task, reports_task);
    a??;
    b??;
    r??;
    println!("stopped");
    drop(temp);
    Ok(())
}
