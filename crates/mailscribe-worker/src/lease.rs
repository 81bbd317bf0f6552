//! Taking the mailbox lease, and taking it over from a run that died.

use chrono::{Duration, Utc};
use mailscribe_store::Store;

use crate::WorkerError;

/// How long a lease lasts without renewal. Runs renew it every batch.
pub(crate) const LEASE_TTL: Duration = Duration::minutes(5);

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `host:pid:nonce`, so that a dead holder on this host can be recognised.
pub fn lease_holder_id() -> String {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_007)
        .unwrap_or(0);
    format!("{}:{}:{nonce}", hostname(), std::process::id())
}

/// A holder on this host whose process is gone cannot finish its run.
fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else { return false };
    host == hostname()
        && pid.parse::<u32>().is_ok_and(|pid| pid != std::process::id())
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

pub(crate) async fn acquire(store: &Store, mailbox: &str, holder: &str) -> Result<(), WorkerError> {
    let now = Utc::now();
    let Some(current) = store.try_acquire_lease(mailbox, holder, now, now + LEASE_TTL).await? else {
        return Ok(());
    };
    if holder_is_dead(&current.holder)
        && store.take_over_lease(mailbox, &current.holder, holder, now + LEASE_TTL).await?
    {
        tracing::info!(previous = %current.holder, "took over the lease of a run that died");
        return Ok(());
    }
    Err(WorkerError::LeaseHeld { holder: current.holder, expires_at: current.expires_at })
}

pub(crate) async fn renew(store: &Store, mailbox: &str, holder: &str) -> Result<(), WorkerError> {
    store.renew_lease(mailbox, holder, Utc::now() + LEASE_TTL).await?;
    Ok(())
}

/// Renews the lease every minute until aborted. The caller owns the handle.
pub(crate) fn heartbeat(store: Store, mailbox: String, holder: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(err) = renew(&store, &mailbox, &holder).await {
                tracing::warn!(error = %err, "could not renew the mailbox lease");
            }
        }
    })
}
