//! `tessera serve`: start the server, stop gracefully on SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use tessera_server::config::Overrides;
use tessera_server::AppState;
use tracing_subscriber::EnvFilter;

use crate::GlobalArgs;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Issuer URL, as clients reach the server [default: http://127.0.0.1:8080]
    #[arg(long)]
    issuer: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let config = global.load(Overrides {
        listen: args.listen,
        issuer: args.issuer,
        ..Overrides::default()
    })?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let listen = config.listen;
    let issuer = config.issuer.clone();
    let data_dir = config.data_dir.clone();
    let state = AppState::open(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, %issuer, data_dir = %data_dir.display(), "Tessera is listening");
    println!(
        "Tessera listening on http://{local} (issuer {issuer}, data dir {})",
        data_dir.display()
    );
    tessera_server::run(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
