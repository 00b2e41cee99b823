//! `tessera gc`: delete expired rows, and audit events older than
//! `audit.retention`, once, as the server does every `housekeeping.interval`.

use clap::Args;
use tessera_server::clock::{Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::state::open_store;

#[derive(Args)]
pub struct GcArgs {
    /// Print the counts as JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(config: Config, args: GcArgs) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let now = SystemClock.now();
    let report = store
        .purge_expired(
            now,
            config.audit.purge_before(now),
            config.housekeeping.batch,
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let rows = [
            ("auth codes", report.auth_codes),
            ("sessions", report.sessions),
            ("refresh tokens", report.refresh_tokens),
            ("access tokens", report.access_tokens),
            ("revoked JWT ids", report.revoked_jtis),
            ("client assertion ids", report.client_assertion_jtis),
            ("revocation feed entries", report.revocations),
            ("grants", report.grants),
            ("audit events", report.audit_events),
        ];
        for (what, count) in rows {
            println!("{what:<24} {count}");
        }
        println!("{:<24} {}", "total", report.total());
    }
    Ok(())
}
