//! `tessera migrate`: apply the database migrations explicitly (serve also applies them
//! at start), refusing a database migrated by a newer Tessera.

use tessera_server::config::Config;
use tessera_server::state::open_store;

pub async fn run(config: Config) -> anyhow::Result<()> {
    open_store(&config).await?;
    let url = config.database_url();
    // Never print a password that the URL may carry.
    let shown = match url::Url::parse(&url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url,
    };
    println!("database {shown} is migrated to this version of Tessera");
    Ok(())
}
