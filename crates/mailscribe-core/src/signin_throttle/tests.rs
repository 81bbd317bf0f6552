//! The throttle's rules, with a clock that is just an `Instant` moved by hand.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::signin_throttle::{MAX_NAME_BYTES, Refusal, SignInThrottle, ThrottleLimits, client_key};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_pair_is_locked_after_five_failures_and_the_lock_doubles() {
    let mut throttle = SignInThrottle::default();
    let start = Instant::now();
    for _ in 0..5 {
        throttle.begin(ip("192.0.2.1"), "uma", start).unwrap();
    }
    assert_eq!(
        throttle.begin(ip("192.0.2.1"), "UMA ", start).unwrap_err(),
        Refusal::Locked {
            retry_after: secs(60)
        }
    );
    // Another address is not locked out, nor another name from this one.
    assert!(throttle.begin(ip("192.0.2.2"), "uma", start).is_ok());
    assert!(throttle.begin(ip("192.0.2.1"), "sally", start).is_ok());
    // After the minute one more failure locks for two, then four...
    let mut now = start + secs(60);
    for expected in [120, 240, 480, 900, 900] {
        throttle.begin(ip("192.0.2.1"), "uma", now).unwrap();
        let refusal = throttle.begin(ip("192.0.2.1"), "uma", now).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Locked {
                retry_after: secs(expected)
            }
        );
        assert_eq!(refusal.retry_after_seconds(), expected);
        now += secs(expected);
    }
}

#[test]
fn success_starts_the_pair_afresh() {
    let mut throttle = SignInThrottle::default();
    let now = Instant::now();
    for _ in 0..4 {
        throttle.begin(ip("192.0.2.1"), "uma", now).unwrap();
    }
    let attempt = throttle.begin(ip("192.0.2.1"), "uma", now).unwrap();
    throttle.succeeded(attempt, now);
    assert!(throttle.begin(ip("192.0.2.1"), "uma", now).is_ok());
}

#[test]
fn an_address_may_fail_ten_times_a_minute() {
    let mut throttle = SignInThrottle::default();
    let start = Instant::now();
    for n in 0..10 {
        throttle
            .begin(ip("192.0.2.1"), &format!("user{n}"), start + secs(n))
            .unwrap();
    }
    let refusal = throttle
        .begin(ip("192.0.2.1"), "other", start + secs(10))
        .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Address {
            retry_after: secs(50)
        }
    );
    assert!(
        throttle
            .begin(ip("192.0.2.9"), "other", start + secs(10))
            .is_ok(),
        "other addresses go on"
    );
    // A minute after the first failure, one more is allowed.
    assert!(
        throttle
            .begin(ip("192.0.2.1"), "other", start + secs(60))
            .is_ok()
    );
    assert!(
        throttle
            .begin(ip("192.0.2.1"), "other2", start + secs(60))
            .is_err()
    );
}

#[test]
fn ipv6_counts_per_64() {
    let mut throttle = SignInThrottle::default();
    let now = Instant::now();
    for n in 0..10 {
        throttle
            .begin(
                ip(&format!("2001:db8:1:2::{n:x}")),
                &format!("user{n}"),
                now,
            )
            .unwrap();
    }
    let refusal = throttle.begin(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), "x", now);
    assert!(
        matches!(refusal, Err(Refusal::Address { .. })),
        "{refusal:?}"
    );
    assert!(
        throttle.begin(ip("2001:db8:1:3::1"), "x", now).is_ok(),
        "the next /64 is someone else"
    );
    assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
}

#[test]
fn long_names_are_refused_before_anything_counts() {
    let mut throttle = SignInThrottle::default();
    let now = Instant::now();
    let long = "x".repeat(MAX_NAME_BYTES + 1);
    for _ in 0..20 {
        assert_eq!(
            throttle.begin(ip("192.0.2.1"), &long, now).unwrap_err(),
            Refusal::NameTooLong
        );
    }
    assert!(throttle.addresses.is_empty() && throttle.pairs.is_empty());
    assert!(
        throttle
            .begin(ip("192.0.2.1"), &"x".repeat(MAX_NAME_BYTES), now)
            .is_ok()
    );
}

#[test]
fn hashes_per_second_with_a_share_kept_for_known_pairs() {
    let mut throttle = SignInThrottle::new(ThrottleLimits {
        hashes_per_second: 20,
        hashes_kept_for_known: 4,
        ..ThrottleLimits::default()
    });
    let now = Instant::now();
    let known = throttle.begin(ip("127.0.0.1"), "real", now).unwrap();
    throttle.succeeded(known, now);
    // 19 tokens are left; strangers may use all but the 4 kept ones.
    for n in 0..15 {
        throttle
            .begin(ip(&format!("127.0.1.{n}")), &format!("guess{n}"), now)
            .unwrap();
    }
    let refusal = throttle.begin(ip("127.0.2.1"), "guess", now).unwrap_err();
    assert!(matches!(refusal, Refusal::Busy { .. }), "{refusal:?}");
    assert_eq!(refusal.retry_after_seconds(), 1);
    for _ in 0..4 {
        let attempt = throttle.begin(ip("127.0.0.1"), "real", now).unwrap();
        throttle.succeeded(attempt, now);
    }
    assert!(matches!(
        throttle.begin(ip("127.0.0.1"), "real", now),
        Err(Refusal::Busy { .. })
    ));
    // Tokens come back at 20 a second.
    assert!(
        throttle
            .begin(ip("127.0.2.1"), "guess", now + Duration::from_millis(300))
            .is_ok()
    );
}
