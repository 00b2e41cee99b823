//! Housekeeping: deleting expired rows, and audit events older than `audit.retention`,
//! every `housekeeping.interval`, in the background of [`crate::run`], until the
//! server stops.

use crate::AppState;

/// Purge expired rows every `housekeeping.interval` (the first after one interval),
/// by the state's clock, until `state.stopping` turns true.
pub async fn run_periodically(state: AppState) {
    let interval = state.config.housekeeping.interval;
    let batch = state.config.housekeeping.batch;
    let mut stopping = state.stopping.subscribe();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            // Stopping, or the state (and its sender) is gone.
            _ = stopping.wait_for(|s| *s) => return,
        }
        let now = state.clock.now();
        let audit_before = state.config.audit.purge_before(now);
        match state.store.purge_expired(now, audit_before, batch).await {
            Ok(report) => tracing::info!(
                total = report.total(),
                auth_codes = report.auth_codes,
                sessions = report.sessions,
                refresh_tokens = report.refresh_tokens,
                access_tokens = report.access_tokens,
                revoked_jtis = report.revoked_jtis,
                client_assertion_jtis = report.client_assertion_jtis,
                revocations = report.revocations,
                grants = report.grants,
                audit_events = report.audit_events,
                "housekeeping: purged expired rows"
            ),
            Err(e) => tracing::error!(error = format!("{e:#}"), "housekeeping failed"),
        }
    }
}
