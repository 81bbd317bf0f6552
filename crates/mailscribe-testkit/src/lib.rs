//! Fixtures at the boundaries we do not own: a throwaway Dovecot, a
//! private Postfix, a local OAuth2 server and OpenID Connect provider,
//! throwaway databases, and servers that capture what a client sends them.
//! Only tests and benchmarks use this crate.
//!
//! Everything here waits for readiness by polling with a deadline, and
//! cleans up in `Drop`.

mod browser;
mod capture;
mod database;
mod dovecot;
mod oauth;
mod oidc;
mod pg_server;
mod postfix;
mod proxy;

pub use browser::Browser;
pub use capture::Capture;
pub use database::{TestDatabase, postgres_admin_url};
pub use dovecot::{
    DELEGATE_ACCESS_USER, Dovecot, DovecotOptions, QUEUE, STORAGE, ServerCertificate,
};
pub use oauth::OAuthServer;
pub use oidc::{Fault, OidcProvider, OidcUser};
pub use pg_server::PgServer;
pub use postfix::{INSIDE_DOMAIN, Postfix, PostfixDirs, QUEUE_RECIPIENT};
pub use proxy::TcpProxy;

use std::time::{Duration, Instant};

/// Polls `ready` until it returns true, or panics with `what` after
/// `timeout`.
pub fn wait_until(what: &str, timeout: Duration, ready: impl FnMut() -> bool) {
    assert!(
        reached(timeout, ready),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Polls `ready` until it returns true (then true) or `timeout` passes
/// (then false), for a test that shows more than the timeout when it fails.
pub fn reached(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The shared real-world corpus, when present (it lives outside the
/// repository and is never copied into it).
pub fn corpus_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

/// A TCP port nothing listens on now, on loopback.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
