//! Revocation pushed by the issuer: the state every request reads (the revoked set,
//! whether the feed is live) and the policy applied while it is not. The task that
//! fills it is in `subscriber.rs`.

mod revoked;
mod sse;
mod subscriber;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::Claims;
use revoked::RevokedSet;
pub(crate) use subscriber::Source;

/// What a verifier does with a JWT while its revocation feed is not live (not synced
/// yet, disconnected, or silent for more than 30 seconds). Revocations already
/// received are enforced in either case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFallback {
    /// Introspect every JWT (RFC 7662; the positive cache applies if configured), and
    /// fail closed: if introspection fails too, refuse with 503.
    Introspect,
    /// Accept valid JWTs until they expire, as [`crate::RevocationCheck::UntilExpiry`].
    AcceptUntilExpiry,
}

impl FeedFallback {
    fn describe(self) -> &'static str {
        match self {
            Self::Introspect => "introspecting every JWT",
            Self::AcceptUntilExpiry => "accepting valid JWTs until they expire",
        }
    }
}

/// The state of a verifier's revocation feed (see [`crate::Verifier::feed_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStatus {
    /// No feed: revocation is checked otherwise, or nothing has started the subscriber
    /// yet (no `verify` or `wait_for_feed` call).
    Off,
    /// The subscriber started and has not been synced yet: the fallback applies.
    Connecting,
    /// Connected, the backlog applied, heard from within 30 seconds: revoked JWTs are
    /// refused locally and no request costs a network call.
    Synced,
    /// Unreachable, disconnected, or silent for over 30 seconds; the subscriber
    /// reconnects with backoff and the fallback applies meanwhile.
    Down,
}

impl FeedStatus {
    fn from_u8(n: u8) -> Self {
        match n {
            1 => Self::Connecting,
            2 => Self::Synced,
            3 => Self::Down,
            _ => Self::Off,
        }
    }
}

/// Without an event or a ping for this long, the feed is deemed down.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(30);

/// A verifier's feed: shared with its subscriber, which it stops when dropped.
pub(crate) struct Feed {
    shared: Arc<Shared>,
    started: AtomicBool,
    /// Never sent on; dropped with the verifier, which tells the subscriber to stop.
    shutdown: watch::Sender<()>,
}

/// What the subscriber writes and requests read.
pub(crate) struct Shared {
    fallback: FeedFallback,
    revoked: RwLock<RevokedSet>,
    /// A [`FeedStatus`], read on every request.
    status: AtomicU8,
    /// The same status, for those who wait for a change.
    changes: watch::Sender<FeedStatus>,
    epoch: Instant,
    /// When the feed last sent anything, in milliseconds since `epoch`.
    last_heard: AtomicU64,
}

impl Feed {
    pub fn new(fallback: FeedFallback) -> Self {
        Self {
            shared: Arc::new(Shared {
                fallback,
                revoked: RwLock::default(),
                status: AtomicU8::new(FeedStatus::Off as u8),
                changes: watch::Sender::new(FeedStatus::Off),
                epoch: Instant::now(),
                last_heard: AtomicU64::new(0),
            }),
            started: AtomicBool::new(false),
            shutdown: watch::Sender::new(()),
        }
    }

    pub fn fallback(&self) -> FeedFallback {
        self.shared.fallback
    }

    /// Start the subscriber unless it already runs; `source` is called only then.
    pub fn start(&self, source: impl FnOnce() -> Source) {
        if self.started.load(Ordering::Acquire) || self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.set_status(FeedStatus::Connecting);
        subscriber::spawn(self.shared.clone(), source(), self.shutdown.subscribe());
    }

    /// Whether the feed revoked this token (its grant or its `jti`). A read lock, no
    /// allocation.
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let set = self
            .shared
            .revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        set.concerns(claims.grant_id.as_deref(), claims.jti.as_deref())
    }

    /// Whether the revoked set is authoritative right now: synced and not silent.
    pub fn is_live(&self) -> bool {
        self.status() == FeedStatus::Synced
    }

    pub fn status(&self) -> FeedStatus {
        let status = FeedStatus::from_u8(self.shared.status.load(Ordering::Acquire));
        if status == FeedStatus::Synced && self.shared.silent_for() > STALE_AFTER {
            return FeedStatus::Down;
        }
        status
    }

    /// Wait until the feed is synced, at most `timeout`.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut changes = self.shared.changes.subscribe();
        let synced = async { changes.wait_for(|s| *s == FeedStatus::Synced).await.is_ok() };
        tokio::time::timeout(timeout, synced).await.unwrap_or(false)
    }
}

impl Shared {
    fn write(&self) -> RwLockWriteGuard<'_, RevokedSet> {
        self.revoked.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Note that the feed sent something (an event or a ping).
    fn heard(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_heard.store(now, Ordering::Release);
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_heard.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Set the status; returns the previous one.
    fn set_status(&self, status: FeedStatus) -> FeedStatus {
        let previous = self.status.swap(status as u8, Ordering::AcqRel);
        self.changes.send_replace(status);
        FeedStatus::from_u8(previous)
    }

    /// The backlog is applied: from now on the revoked set is authoritative.
    fn synced(&self, entries: usize) {
        self.heard();
        match self.set_status(FeedStatus::Synced) {
            FeedStatus::Down => tracing::info!(
                entries,
                "the revocation feed is back: revoked JWTs are refused locally again"
            ),
            _ => tracing::info!(entries, "the revocation feed is synced"),
        }
    }

    /// The feed is unreachable or was lost: warn once, then stay quiet while it stays down.
    fn down(&self, reason: &str) {
        match self.set_status(FeedStatus::Down) {
            FeedStatus::Down => tracing::debug!(reason, "the revocation feed is still down"),
            _ => tracing::warn!(
                reason,
                "the revocation feed is down: {} until it is back",
                self.fallback.describe()
            ),
        }
    }
}
