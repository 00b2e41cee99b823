//! The `tessera` command: serve the authorization server and administer it.

mod admin;
mod admin_api;
mod demo;
mod gc;
mod key;
mod migrate;
mod registration;

mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tessera_server::config::{Config, Overrides};

/// mimalloc instead of glibc's allocator: a token request allocates and frees many
/// small buffers, some of them freed on another thread (the SQLite writer's); see
/// `bench/RESULTS.md` for what it changed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: an OAuth 2.1 authorization server",
    long_about = "Tessera: an OAuth 2.1 authorization server.\n\n\
        `tessera serve` starts it with an embedded SQLite database and signing keys under \
        ./tessera-data. The other commands administer the same data dir.\n\n\
        Configuration comes in layers: defaults, the --config TOML file, TESSERA_* \
        environment variables (`__` nests: TESSERA_TOKENS__ACCESS_TOKEN_TTL=5m), then flags."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Args, Clone)]
struct GlobalArgs {
    /// TOML configuration file (also TESSERA_CONFIG)
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and signing keys [default: ./tessera-data]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://<data-dir>/tessera.db]
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the authorization server
    Serve(serve::ServeArgs),
    /// Register and manage clients
    #[command(subcommand)]
    Client(admin::ClientCommand),
    /// Manage users (resource owners)
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage the scope catalog shown on consent pages
    #[command(subcommand)]
    Scope(admin::ScopeCommand),
    /// List and revoke grants (the access people gave apps)
    #[command(subcommand)]
    Grant(admin::GrantCommand),
    /// The audit trail: grants, refreshes, revocations, failed logins
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Initial access tokens for dynamic client registration (RFC 7591)
    #[command(subcommand)]
    InitialAccessToken(registration::InitialAccessTokenCommand),
    /// Tokens for the admin REST API (/admin/)
    #[command(subcommand)]
    AdminToken(admin_api::AdminTokenCommand),
    /// Signing keys (rotation) and the master key
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Delete expired codes, sessions, tokens and grants, and audit events past
    /// `audit.retention`, now (the server does it periodically)
    Gc(gc::GcArgs),
    /// Apply the database migrations (serve applies them at start too)
    Migrate,
    /// Run the bank walkthrough: authorization server, demo bank and demo reports app
    Demo(demo::DemoArgs),
}

impl GlobalArgs {
    fn load(&self, mut overrides: Overrides) -> anyhow::Result<Config> {
        overrides.data_dir = self.data_dir.clone();
        overrides.database_url = self.database_url.clone();
        Config::load(self.config.as_deref(), &overrides)
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(&cli.global, args).await,
            Command::Client(cmd) => {
                admin::client(cli.global.load(Overrides::default())?, cmd).await
            }
            Command::User(cmd) => admin::user(cli.global.load(Overrides::default())?, cmd).await,
            Command::Scope(cmd) => admin::scope(cli.global.load(Overrides::default())?, cmd).await,
            Command::Grant(cmd) => admin::grant(cli.global.load(Overrides::default())?, cmd).await,
            Command::Audit(cmd) => admin::audit(cli.global.load(Overrides::default())?, cmd).await,
            Command::InitialAccessToken(cmd) => {
                registration::run(cli.global.load(Overrides::default())?, cmd).await
            }
            Command::AdminToken(cmd) => {
                admin_api::run(cli.global.load(Overrides::default())?, cmd).await
            }
            Command::Key(cmd) => key::run(cli.global.load(Overrides::default())?, cmd).await,
            Command::Gc(args) => gc::run(cli.global.load(Overrides::default())?, args).await,
            Command::Migrate => migrate::run(cli.global.load(Overrides::default())?).await,
            Command::Demo(args) => demo::run(cli.global.data_dir.clone(), args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
