//! Who holds a mailbox, and taking it over from a holder that died.
//!
//! A holder is named by host, boot id, pid and the process's start time, so
//! that a reused pid, a rebooted host or a container sharing a host name is
//! never mistaken for the holder. On the same host a holder whose process
//! is gone, or is a zombie, is dead at once; elsewhere the lease's expiry on
//! the database's clock decides.

use std::time::Duration;

use mailscribe_store::{Fence, LeaseAttempt, Store};
use tokio::sync::watch;

use crate::WorkerError;

/// Lease timings. The defaults hold in production; tests shorten them with
/// the test-only variables `MAILSCRIBE_LEASE_TTL_MS`,
/// `MAILSCRIBE_LEASE_HEARTBEAT_MS` and `MAILSCRIBE_LEASE_SCAN_MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// A lease not renewed for this long is free for another instance.
    pub ttl: Duration,
    /// How often a holder renews its leases.
    pub heartbeat: Duration,
    /// How often an instance looks for mailboxes nobody works.
    pub scan: Duration,
}

impl Default for LeaseTimings {
    fn default() -> LeaseTimings {
        LeaseTimings {
            ttl: Duration::from_secs(20),
            heartbeat: Duration::from_secs(5),
            scan: Duration::from_secs(5),
        }
    }
}

fn env_millis(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

impl LeaseTimings {
    pub fn from_env() -> LeaseTimings {
        let default = LeaseTimings::default();
        LeaseTimings {
            ttl: env_millis("MAILSCRIBE_LEASE_TTL_MS").unwrap_or(default.ttl),
            heartbeat: env_millis("MAILSCRIBE_LEASE_HEARTBEAT_MS").unwrap_or(default.heartbeat),
            scan: env_millis("MAILSCRIBE_LEASE_SCAN_MS").unwrap_or(default.scan),
        }
    }

    pub fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// The lease name of a mailbox: its key, so that two names set up on one
/// queue still never run at once.
pub fn mailbox_lease_name(mailbox_key: &str) -> String {
    format!("mailbox:{mailbox_key}")
}

/// This process as a lease holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderId {
    /// The host name, or `MAILSCRIBE_INSTANCE_ID` (test-only: stands for
    /// another host).
    pub host: String,
    pub boot_id: String,
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat`: clock ticks after boot.
    pub start_ticks: u64,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|b| b.trim().to_owned())
        .unwrap_or_default()
}

/// State and start time of a process, from `/proc/PID/stat`.
struct ProcessStat {
    state: char,
    start_ticks: u64,
}

fn parse_stat(stat: &str) -> Option<ProcessStat> {
    // The command name is in parentheses and may itself hold spaces and
    // parentheses: the fields after it start after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state); starttime is field 22.
    Some(ProcessStat {
        state: fields.first()?.chars().next()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

fn process_stat(pid: u32) -> Option<ProcessStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

impl HolderId {
    pub fn current() -> HolderId {
        let pid = std::process::id();
        HolderId {
            host: std::env::var("MAILSCRIBE_INSTANCE_ID")
                .ok()
                .filter(|h| !h.trim().is_empty())
                .unwrap_or_else(hostname),
            boot_id: boot_id(),
            pid,
            start_ticks: process_stat(pid).map_or(0, |s| s.start_ticks),
        }
    }

    /// `host|boot id|pid|start ticks`, as stored in the lease.
    pub fn to_text(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.host, self.boot_id, self.pid, self.start_ticks
        )
    }

    pub fn parse(text: &str) -> Option<HolderId> {
        let mut parts = text.rsplitn(4, '|');
        let start_ticks = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let boot_id = parts.next()?.to_owned();
        let host = parts.next()?.to_owned();
        Some(HolderId {
            host,
            boot_id,
            pid,
            start_ticks,
        })
    }

    /// What people read: host and pid.
    pub fn describe(text: &str) -> String {
        match HolderId::parse(text) {
            Some(id) => format!("{} pid {}", id.host, id.pid),
            None => text.to_owned(),
        }
    }

    /// Whether `other` is known to be dead from here: on this host (and
    /// boot), its process is gone, a zombie, or another process with its
    /// pid. A holder on another host is never judged from here.
    pub fn knows_dead(&self, other: &HolderId) -> bool {
        if other.host != self.host {
            return false;
        }
        if other.boot_id != self.boot_id {
            // The host rebooted since: nothing of that boot still runs.
            return true;
        }
        if other.pid == self.pid {
            return other.start_ticks != self.start_ticks;
        }
        match process_stat(other.pid) {
            None => true,
            Some(stat) => {
                stat.state == 'Z' || stat.state == 'X' || stat.start_ticks != other.start_ticks
            }
        }
    }
}

/// Takes the lease `name`: free, expired, ours, or held by a holder this
/// host knows is dead. `LeaseHeld` otherwise.
pub async fn acquire(
    store: &Store,
    name: &str,
    me: &HolderId,
    timings: &LeaseTimings,
) -> Result<Fence, WorkerError> {
    let holder = me.to_text();
    match store
        .try_acquire_lease(name, &holder, timings.ttl_ms())
        .await?
    {
        LeaseAttempt::Acquired(fence) => Ok(fence),
        LeaseAttempt::Held { current, now_ms } => {
            let dead = HolderId::parse(&current.holder).is_some_and(|other| me.knows_dead(&other));
            if dead
                && let Some(fence) = store
                    .take_over_lease(&current, &holder, timings.ttl_ms())
                    .await?
            {
                tracing::info!(previous = %HolderId::describe(&current.holder), "took over the lease of a holder that died");
                return Ok(fence);
            }
            let remaining_ms = (current.expires_at_ms - now_ms).max(0);
            Err(WorkerError::LeaseHeld {
                holder: HolderId::describe(&current.holder),
                expires_at: chrono::Utc::now() + chrono::Duration::milliseconds(remaining_ms),
            })
        }
    }
}

/// Renews `fence` every heartbeat until aborted. When the lease turns out
/// to be lost, `lost` becomes true and the task ends: the holder's commits
/// would be refused by the fence anyway, this only stops it sooner.
pub fn heartbeat(
    store: Store,
    fence: Fence,
    timings: LeaseTimings,
    lost: watch::Sender<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(timings.heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match store.renew_lease(&fence, timings.ttl_ms()).await {
                Ok(true) => {}
                Ok(false) => {
                    // Not the lease's name: it holds the mailbox user's address.
                    tracing::warn!(
                        generation = fence.generation,
                        "the mailbox lease was taken over by another instance"
                    );
                    let _ = lost.send(true);
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "could not renew the lease; trying again"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let line = "1234 (my (odd) name) Z 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, 'Z');
        assert_eq!(stat.start_ticks, 98765);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn holder_text_round_trips() {
        let id = HolderId {
            host: "a|b".into(),
            boot_id: "boot".into(),
            pid: 42,
            start_ticks: 7,
        };
        assert_eq!(HolderId::parse(&id.to_text()), Some(id));
        assert_eq!(HolderId::parse("host:1:2"), None);
    }

    #[test]
    fn who_is_dead() {
        let me = HolderId::current();
        assert!(!me.knows_dead(&me), "this process is alive");
        let elsewhere = HolderId {
            host: format!("{}-other", me.host),
            ..me.clone()
        };
        assert!(
            !me.knows_dead(&elsewhere),
            "another host is never judged from here"
        );
        let rebooted = HolderId {
            boot_id: "another boot".into(),
            ..me.clone()
        };
        assert!(me.knows_dead(&rebooted));
        let reused_pid = HolderId {
            pid: 1,
            start_ticks: u64::MAX,
            ..me.clone()
        };
        assert!(me.knows_dead(&reused_pid), "pid 1 started at another time");
        let gone = HolderId {
            pid: u32::MAX - 1,
            ..me.clone()
        };
        assert!(me.knows_dead(&gone));
    }
}
