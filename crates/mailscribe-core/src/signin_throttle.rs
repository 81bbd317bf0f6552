//! How much password guessing sign-in allows, decided before any password
//! is hashed (OWASP ASVS 4.0, V2.2.1):
//!
//! - a client address (IPv6 counted per /64) may fail at most 10 times a
//!   minute;
//! - the pair (address, user name) is locked after 5 failures, for a minute
//!   that doubles with each further failure up to 15 minutes: a lock holds
//!   for that address only, so nobody can lock a known user out from
//!   somewhere else;
//! - at most 20 password hashes a second in total, of which a few are kept
//!   for pairs that signed in successfully before, so that a flood from many
//!   addresses cannot crowd out the people who use Mailscribe every day.
//!
//! An attempt counts as a failure from the moment it is let through, so a
//! burst of parallel guesses is limited too; a success takes it back.
//!
//! The state is a plain value without a clock: the caller passes `now`,
//! which keeps the rules testable without waiting.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// User names longer than this are refused before they touch any map.
pub const MAX_NAME_BYTES: usize = 256;

/// The limits; `Default` is the rule above.
#[derive(Debug, Clone)]
pub struct ThrottleLimits {
    /// Failed attempts a client address may make in `address_window`.
    pub failures_per_address: usize,
    pub address_window: Duration,
    /// Failures of one (address, name) pair before it is locked.
    pub free_failures_per_pair: u32,
    pub first_lock: Duration,
    pub longest_lock: Duration,
    /// Password hashes a second, in total.
    pub hashes_per_second: u32,
    /// Of those, how many only pairs that signed in before may use.
    pub hashes_kept_for_known: u32,
    /// How long a successful pair stays known.
    pub known_for: Duration,
}

impl Default for ThrottleLimits {
    fn default() -> ThrottleLimits {
        ThrottleLimits {
            failures_per_address: 10,
            address_window: Duration::from_secs(60),
            free_failures_per_pair: 5,
            first_lock: Duration::from_secs(60),
            longest_lock: Duration::from_secs(15 * 60),
            hashes_per_second: 20,
            hashes_kept_for_known: 4,
            known_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Why an attempt is refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user name is longer than [`MAX_NAME_BYTES`].
    NameTooLong,
    /// This address failed too often in the last minute.
    Address { retry_after: Duration },
    /// This address and name are locked.
    Locked { retry_after: Duration },
    /// The server hashes as many passwords as it will this second.
    Busy { retry_after: Duration },
}

impl Refusal {
    /// Whole seconds for `Retry-After`, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        let wait = match self {
            Refusal::NameTooLong => Duration::ZERO,
            Refusal::Address { retry_after }
            | Refusal::Locked { retry_after }
            | Refusal::Busy { retry_after } => *retry_after,
        };
        (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
    }
}

/// An attempt that was let through; hand it back on success.
#[derive(Debug)]
pub struct Attempt {
    pair: (IpAddr, String),
    at: Instant,
}

#[derive(Debug)]
struct PairState {
    failures: u32,
    locked_until: Option<Instant>,
    last_failure: Instant,
}

/// The counters of one process.
#[derive(Debug)]
pub struct SignInThrottle {
    limits: ThrottleLimits,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
    pairs: HashMap<(IpAddr, String), PairState>,
    known: HashMap<(IpAddr, String), Instant>,
    tokens: f64,
    refilled_at: Option<Instant>,
}

/// Beyond this many entries in a map, expired ones are dropped first.
const TIDY_AT: usize = 10_000;

impl SignInThrottle {
    pub fn new(limits: ThrottleLimits) -> SignInThrottle {
        let tokens = f64::from(limits.hashes_per_second);
        SignInThrottle {
            limits,
            addresses: HashMap::new(),
            pairs: HashMap::new(),
            known: HashMap::new(),
            tokens,
            refilled_at: None,
        }
    }

    /// Lets an attempt through to the password check, counting it as a
    /// failure until [`SignInThrottle::succeeded`], or refuses it.
    pub fn begin(&mut self, address: IpAddr, name: &str, now: Instant) -> Result<Attempt, Refusal> {
        if name.len() > MAX_NAME_BYTES {
            return Err(Refusal::NameTooLong);
        }
        let address = client_key(address);
        let pair = (address, name.trim().to_lowercase());
        if let Some(state) = self.pairs.get(&pair)
            && let Some(until) = state.locked_until
            && now < until
        {
            return Err(Refusal::Locked {
                retry_after: until - now,
            });
        }
        let window_start = now.checked_sub(self.limits.address_window);
        if let Some(failures) = self.addresses.get_mut(&address) {
            while failures
                .front()
                .is_some_and(|at| window_start.is_some_and(|start| *at <= start))
            {
                failures.pop_front();
            }
            if failures.len() >= self.limits.failures_per_address
                && let Some(oldest) = failures.front()
            {
                return Err(Refusal::Address {
                    retry_after: (*oldest + self.limits.address_window)
                        .saturating_duration_since(now),
                });
            }
        }
        self.refill(now);
        let known = self
            .known
            .get(&pair)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.limits.known_for);
        let floor = if known {
            1.0
        } else {
            1.0 + f64::from(self.limits.hashes_kept_for_known)
        };
        if self.tokens < floor {
            let per_token = 1.0 / f64::from(self.limits.hashes_per_second.max(1));
            let wait = ((floor - self.tokens) * per_token).max(0.0);
            return Err(Refusal::Busy {
                retry_after: Duration::from_secs_f64(wait),
            });
        }
        self.tokens -= 1.0;

        self.tidy(now);
        self.addresses.entry(address).or_default().push_back(now);
        let state = self.pairs.entry(pair.clone()).or_insert(PairState {
            failures: 0,
            locked_until: None,
            last_failure: now,
        });
        state.failures += 1;
        state.last_failure = now;
        if state.failures >= self.limits.free_failures_per_pair {
            let doublings = (state.failures - self.limits.free_failures_per_pair).min(16);
            let lock = self
                .limits
                .first_lock
                .saturating_mul(1 << doublings)
                .min(self.limits.longest_lock);
            state.locked_until = Some(now + lock);
        }
        Ok(Attempt { pair, at: now })
    }

    /// The password was right: the attempt was no failure after all, the
    /// pair starts afresh and is known from now on.
    pub fn succeeded(&mut self, attempt: Attempt, now: Instant) {
        let (address, _) = &attempt.pair;
        if let Some(failures) = self.addresses.get_mut(address) {
            if let Some(index) = failures.iter().position(|at| *at == attempt.at) {
                failures.remove(index);
            }
            if failures.is_empty() {
                self.addresses.remove(address);
            }
        }
        self.pairs.remove(&attempt.pair);
        if self.known.len() >= TIDY_AT {
            let known_for = self.limits.known_for;
            self.known
                .retain(|_, at| now.saturating_duration_since(*at) < known_for);
        }
        if self.known.len() < TIDY_AT * 10 {
            self.known.insert(attempt.pair, now);
        }
    }

    fn refill(&mut self, now: Instant) {
        let rate = f64::from(self.limits.hashes_per_second);
        if let Some(before) = self.refilled_at {
            self.tokens = (self.tokens
                + now.saturating_duration_since(before).as_secs_f64() * rate)
                .min(rate);
        }
        self.refilled_at = Some(now);
    }

    /// Drops what no longer counts, when the maps grow. The hash budget
    /// bounds how fast they can grow: entries are only made for attempts
    /// that were let through.
    fn tidy(&mut self, now: Instant) {
        if self.addresses.len() >= TIDY_AT {
            let window = self.limits.address_window;
            self.addresses.retain(|_, failures| {
                failures
                    .back()
                    .is_some_and(|at| now.saturating_duration_since(*at) < window)
            });
        }
        if self.pairs.len() >= TIDY_AT {
            let longest = self.limits.longest_lock;
            self.pairs.retain(|_, state| {
                let since = state
                    .locked_until
                    .unwrap_or(state.last_failure)
                    .max(state.last_failure);
                now.saturating_duration_since(since) < longest
            });
        }
    }
}

impl Default for SignInThrottle {
    fn default() -> SignInThrottle {
        SignInThrottle::new(ThrottleLimits::default())
    }
}

/// What counts as one client: an IPv4 address, or an IPv6 /64 (one
/// subscriber usually has a whole /64). IPv4-mapped IPv6 is IPv4.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            )),
        },
    }
}

#[cfg(test)]
mod tests;
