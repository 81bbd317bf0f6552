//! Faults `serve` must survive with the log exact: the mail server going
//! away and coming back in the middle of a run, and connections cut at
//! random moments. Real Dovecot, a real `serve` process, real SQLite.

use std::process::{Child, Stdio};
use std::time::Duration;

use mailscribe_testkit::{QUEUE, STORAGE, TcpProxy, wait_until};

use crate::harness::{Backend, Env, decisions, entry_keys, numbered_message};

/// Short lease and backoff timings (test-only variables).
const FAST: &[(&str, &str)] = &[
    ("MAILSCRIBE_LEASE_TTL_MS", "1500"),
    ("MAILSCRIBE_LEASE_HEARTBEAT_MS", "200"),
    ("MAILSCRIBE_LEASE_SCAN_MS", "200"),
    ("MAILSCRIBE_BACKOFF_BASE_MS", "100"),
    ("MAILSCRIBE_BACKOFF_CAP_MS", "500"),
];

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(env: &Env) -> Serve {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(env.dir.path().join("serve.log")).unwrap();
    Serve(
        env.command()
            .env("RUST_LOG", "info")
            .envs(FAST.iter().copied())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start serve"),
    )
}

/// The log holds every expected entry exactly once, and the ledger one row
/// per copy.
fn assert_exact(env: &Env, messages: u32) {
    let keys = entry_keys(env);
    let mut unique = keys.clone();
    unique.dedup();
    let expected = (1..=messages).filter(|n| n % 5 != 0).count();
    assert_eq!((keys.len(), unique.len()), (expected, expected), "every entry once");
    assert_eq!(decisions(env).len(), messages as usize, "one ledger row per copy");
}

#[tokio::test]
async fn serve_survives_the_mail_server_crashing_and_restarting_mid_run() {
    const MESSAGES: u32 = 1500;
    let mut env = Env::new(Backend::Sqlite).await;
    env.set_up(20);
    for n in 1..=MESSAGES {
        env.deliver(&numbered_message(n));
    }
    let mut serve = serve(&env);
    wait_until("the run to be under way", Duration::from_secs(60), || !entry_keys(&env).is_empty());
    env.dovecot.crash();
    let logged = entry_keys(&env).len();
    assert!(logged < (1..=MESSAGES).filter(|n| n % 5 != 0).count(), "the server went away in the middle of the work");
    // Down for a while: serve fails, backs off, and keeps running.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(serve.0.try_wait().unwrap().is_none(), "serve keeps running");
    env.dovecot.restart();
    wait_until("the queue done after the restart", Duration::from_secs(120), || env.dovecot.count(QUEUE) == 0);
    wait_until("the last entries", Duration::from_secs(30), || {
        entry_keys(&env).len() == (1..=MESSAGES).filter(|n| n % 5 != 0).count()
    });
    assert_exact(&env, MESSAGES);
    assert_eq!(env.dovecot.count(STORAGE), (1..=MESSAGES).filter(|n| n % 5 != 0).count());
    let log = std::fs::read_to_string(env.dir.path().join("serve.log")).unwrap();
    assert!(log.contains("run failed; retrying after a pause"), "the outage was seen: {log}");
    assert!(serve.0.try_wait().unwrap().is_none());
}

#[tokio::test]
async fn twenty_cut_connections_leave_the_log_exact() {
    const MESSAGES: u32 = 3000;
    let env = Env::new(Backend::Sqlite).await;
    let proxy = TcpProxy::start(env.dovecot.imaps_port);
    env.import_directory();
    env.configure(&["--port", &proxy.port.to_string(), "--batch-size", "25"]);
    env.ok(&["enable", "--accept-data-statement"]);
    for n in 1..=MESSAGES {
        env.deliver(&numbered_message(n));
    }
    let _serve = serve(&env);
    wait_until("the run to be under way", Duration::from_secs(60), || !entry_keys(&env).is_empty());
    // Cut every connection at 20 moments spread over the work (the delays
    // vary, so the cuts land in fetches, commits, moves and logins alike).
    let mut cuts = 0;
    let delays_ms = [40u64, 130, 70, 210, 90, 160, 55, 240, 120, 75, 190, 60, 145, 100, 230, 85, 170, 65, 115, 200];
    for delay in delays_ms {
        std::thread::sleep(Duration::from_millis(delay));
        proxy.cut();
        cuts += 1;
        std::thread::sleep(Duration::from_millis(30));
        proxy.restore();
    }
    assert_eq!(cuts, 20);
    assert!(env.dovecot.count(QUEUE) > 0, "all twenty cuts landed while work remained");
    let log = std::fs::read_to_string(env.dir.path().join("serve.log")).unwrap();
    assert!(log.matches("run failed; retrying after a pause").count() >= 5, "the cuts broke runs: {log}");
    wait_until("the queue done", Duration::from_secs(180), || env.dovecot.count(QUEUE) == 0);
    wait_until("the last entries", Duration::from_secs(30), || {
        entry_keys(&env).len() == (1..=MESSAGES).filter(|n| n % 5 != 0).count()
    });
    assert_exact(&env, MESSAGES);
}

#[tokio::test]
async fn serve_survives_postgresql_restarting_mid_run() {
    const MESSAGES: u32 = 1500;
    // A server of the test's own, so that the shared one is never stopped.
    let postgres = mailscribe_testkit::PgServer::start();
    let db = mailscribe_testkit::TestDatabase::postgres_on(&postgres.url()).await;
    let env = Env::with_database(db, mailscribe_testkit::Dovecot::start());
    env.set_up(20);
    for n in 1..=MESSAGES {
        env.deliver(&numbered_message(n));
    }
    let mut serve = serve(&env);
    wait_until("the run to be under way", Duration::from_secs(60), || !entry_keys(&env).is_empty());
    postgres.stop();
    assert!(env.dovecot.count(QUEUE) > 0, "the database went away in the middle of the work");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(serve.0.try_wait().unwrap().is_none(), "serve keeps running");
    postgres.start_again();
    wait_until("the queue done after the restart", Duration::from_secs(120), || env.dovecot.count(QUEUE) == 0);
    wait_until("the last entries", Duration::from_secs(30), || {
        entry_keys(&env).len() == (1..=MESSAGES).filter(|n| n % 5 != 0).count()
    });
    assert_exact(&env, MESSAGES);
    assert!(serve.0.try_wait().unwrap().is_none());
}
