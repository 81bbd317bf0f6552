//! Faults `serve` must survive with the log exact: the mail server going
//! away and coming back in the middle of a run, and connections cut at
//! random moments. Real Dovecot, a real `serve` process, real SQLite.

use std::process::{Child, Stdio};
use std::time::Duration;

use mailscribe_testkit::{QUEUE, STORAGE, TcpProxy, reached, wait_until};

use crate::harness::{
    Backend, Env, assert_stored_once_or_twice, decisions, entry_keys, numbered_message,
};

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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

/// Like `wait_until`, but a timeout shows the end of `serve`'s log: the
/// faults here are timing-dependent, and a failure in CI must say why.
fn wait_showing_log(env: &Env, what: &str, timeout: Duration, ready: impl FnMut() -> bool) {
    if reached(timeout, ready) {
        return;
    }
    let log = std::fs::read_to_string(env.dir.path().join("serve.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    panic!(
        "timed out after {timeout:?} waiting for {what}; {} left in the queue; the end of serve's log:\n{tail}",
        env.dovecot.count(QUEUE)
    );
}

/// The log holds every expected entry exactly once, and the ledger one row
/// per copy.
fn assert_exact(env: &Env, messages: u32) {
    let keys = entry_keys(env);
    let mut unique = keys.clone();
    unique.dedup();
    let expected = (1..=messages).filter(|n| n % 5 != 0).count();
    assert_eq!(
        (keys.len(), unique.len()),
        (expected, expected),
        "every entry once"
    );
    assert_eq!(
        decisions(env).len(),
        messages as usize,
        "one ledger row per copy"
    );
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
    wait_until("the run to be under way", Duration::from_secs(60), || {
        !entry_keys(&env).is_empty()
    });
    env.dovecot.crash();
    let logged = entry_keys(&env).len();
    assert!(
        logged < (1..=MESSAGES).filter(|n| n % 5 != 0).count(),
        "the server went away in the middle of the work"
    );
    // Down for a while: serve fails, backs off, and keeps running.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(serve.0.try_wait().unwrap().is_none(), "serve keeps running");
    env.dovecot.restart();
    // A crash inside a MOVE can leave the queue's `dovecot-uidlist.lock`
    // behind, empty, so Dovecot cannot tell whose it is: it waits two
    // minutes (its fixed stale timeout for maildir) before taking it over,
    // answering nothing meanwhile. serve keeps its connection and goes on
    // then, so the wait allows for those two minutes.
    wait_showing_log(
        &env,
        "the queue done after the restart",
        Duration::from_secs(300),
        || env.dovecot.count(QUEUE) == 0,
    );
    wait_until("the last entries", Duration::from_secs(30), || {
        entry_keys(&env).len() == (1..=MESSAGES).filter(|n| n % 5 != 0).count()
    });
    assert_exact(&env, MESSAGES);
    // Every logged message is stored. Dovecot's maildir MOVE is a copy and
    // an expunge: a crash between them leaves a copy in both folders, which
    // the next run moves again; the product tolerates that second copy in
    // storage (never a second entry).
    assert_stored_once_or_twice(&env, MESSAGES, "after the crash");
    let log = std::fs::read_to_string(env.dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("run failed; retrying after a pause"),
        "the outage was seen: {log}"
    );
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
    wait_until("the run to be under way", Duration::from_secs(60), || {
        !entry_keys(&env).is_empty()
    });
    // Cut every connection at 20 moments spread over the work (the delays
    // vary, so the cuts land in fetches, commits, moves and logins alike).
    let mut cuts = 0;
    let delays_ms = [
        40u64, 130, 70, 210, 90, 160, 55, 240, 120, 75, 190, 60, 145, 100, 230, 85, 170, 65, 115,
        200,
    ];
    for delay in delays_ms {
        std::thread::sleep(Duration::from_millis(delay));
        proxy.cut();
        cuts += 1;
        std::thread::sleep(Duration::from_millis(30));
        proxy.restore();
    }
    assert_eq!(cuts, 20);
    assert!(
        env.dovecot.count(QUEUE) > 0,
        "all twenty cuts landed while work remained"
    );
    let log = std::fs::read_to_string(env.dir.path().join("serve.log")).unwrap();
    assert!(
        log.matches("run failed; retrying after a pause").count() >= 5,
        "the cuts broke runs: {log}"
    );
    wait_showing_log(&env, "the queue done", Duration::from_secs(180), || {
        env.dovecot.count(QUEUE) == 0
    });
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
    wait_until("the run to be under way", Duration::from_secs(60), || {
        !entry_keys(&env).is_empty()
    });
    postgres.stop();
    assert!(
        env.dovecot.count(QUEUE) > 0,
        "the database went away in the middle of the work"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(serve.0.try_wait().unwrap().is_none(), "serve keeps running");
    postgres.start_again();
    wait_showing_log(
        &env,
        "the queue done after the restart",
        Duration::from_secs(120),
        || env.dovecot.count(QUEUE) == 0,
    );
    wait_until("the last entries", Duration::from_secs(30), || {
        entry_keys(&env).len() == (1..=MESSAGES).filter(|n| n % 5 != 0).count()
    });
    assert_exact(&env, MESSAGES);
    assert!(serve.0.try_wait().unwrap().is_none());
}

/// A small tmpfs, mounted for the test (tests run as root here) and
/// unmounted when dropped.
struct SmallDisk {
    mount: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let mount = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(mount.path())
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root: run the README's test command as root"
        );
        SmallDisk { mount }
    }

    fn grow(&self, megabytes: u32) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(self.mount.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount the tmpfs larger");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.mount.path())
            .status();
    }
}

/// A message from a contact to a salesperson whose body does not compress:
/// in `full` storage mode each adds its size to the database.
fn bulky_message(n: u32) -> Vec<u8> {
    let mut body = String::new();
    let mut state = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while body.len() < 120_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        body.push_str(&format!("{state:016x}"));
    }
    crate::harness::message(
        &[
            "From: c1@customer.example",
            "To: sp1@ourco.example",
            &format!("Subject: bulky {n}"),
            &format!("Message-ID: <bulky{n}@test.example>"),
            "Date: Tue, 3 Mar 2026 10:00:00 +0000",
        ],
        &body,
    )
}

#[tokio::test]
async fn a_full_disk_stops_the_run_cleanly_and_the_next_run_finishes() {
    const MESSAGES: u32 = 40;
    let disk = SmallDisk::mount(3);
    let dir = tempfile::tempdir_in(disk.mount.path()).unwrap();
    let url = format!("sqlite://{}", dir.path().join("mailscribe.db").display());
    let db = mailscribe_testkit::TestDatabase::Sqlite { dir, url };
    let env = Env::with_database(db, mailscribe_testkit::Dovecot::start());
    env.ok(&["settings", "set", "storage_mode", "full"]);
    env.set_up(5);
    for n in 1..=MESSAGES {
        env.deliver(&bulky_message(n));
    }
    // 40 messages of 120 KB that do not compress need more than 3 MB.
    let output = env.run(&["run", "--once"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the disk holding the database is full"),
        "the error names the disk: {stderr}"
    );
    // Nothing half-written: every logged decision has its entry and its
    // stored message, and what was not committed is still in the queue.
    let rows = decisions(&env);
    let logged = rows.iter().filter(|d| d["outcome"] == "logged").count();
    assert!(logged < MESSAGES as usize, "the disk filled before the end");
    assert_eq!(entry_keys(&env).len(), logged);
    assert!(
        rows.iter().all(|d| d["outcome"] == "logged"),
        "no failed or half rows: {rows:?}"
    );
    assert_eq!(
        env.dovecot.count(QUEUE) + env.dovecot.count(STORAGE),
        MESSAGES as usize
    );
    // Space freed: the next run finishes the job.
    disk.grow(64);
    env.ok(&["run", "--once"]);
    assert_eq!(entry_keys(&env).len(), MESSAGES as usize);
    assert_eq!(decisions(&env).len(), MESSAGES as usize);
    assert_eq!(env.dovecot.count(QUEUE), 0);
    drop(env);
}

/// Runs the binary as `nobody` (tests run as root here, and root reads
/// every file).
fn as_nobody(command: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    command.uid(65534).gid(65534)
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &std::path::Path) {
    std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
}

#[tokio::test]
async fn an_unreadable_key_file_or_a_read_only_database_stop_the_run_and_lose_nothing() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    for n in 1..=4 {
        env.deliver(&numbered_message(n));
    }
    // Everything the run needs is open to nobody, except the key file.
    let db_dir = env.db.sqlite_dir().unwrap().to_path_buf();
    for path in [env.dir.path(), db_dir.as_path()] {
        chmod(path, 0o777);
    }
    for entry in std::fs::read_dir(&db_dir).unwrap() {
        let path = entry.unwrap().path();
        chown_nobody(&path);
    }
    let key_file = env.dir.path().join("test.key");
    chmod(&key_file, 0o600);
    let output = as_nobody(&mut env.command())
        .args(["run", "--once"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("test.key") && stderr.contains("ermission denied"),
        "the error names the key file: {stderr}"
    );
    assert_eq!(env.dovecot.count(QUEUE), 4, "nothing was touched");
    assert!(entry_keys(&env).is_empty() && decisions(&env).is_empty());

    // The key readable, the database read-only: the run stops at its first
    // write, before touching the mailbox.
    chown_nobody(&key_file);
    for entry in std::fs::read_dir(&db_dir).unwrap() {
        let path = entry.unwrap().path();
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        chmod(&path, 0o644);
    }
    chmod(&db_dir, 0o755);
    let output = as_nobody(&mut env.command())
        .args(["run", "--once"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("readonly") || stderr.to_lowercase().contains("read-only"),
        "{stderr}"
    );
    assert_eq!(env.dovecot.count(QUEUE), 4, "nothing was touched");
    // As the owner again, the run does the job.
    env.ok(&["run", "--once"]);
    assert_eq!(entry_keys(&env).len(), 4);
}

#[tokio::test]
async fn the_clock_jumping_backwards_loses_nothing() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    for n in 1..=5 {
        env.deliver(&numbered_message(n));
    }
    env.ok(&["run", "--once"]);
    for n in 6..=10 {
        env.deliver(&numbered_message(n));
    }
    // A day in the past, for this process and the database clock it reads.
    let in_the_past = || {
        let mut command = env.command();
        command
            .env("FAKETIME", "-1d")
            .env("LD_PRELOAD", faketime_library())
            .args(["run", "--once", "--format", "json"]);
        command
    };
    // The server's certificate was made today: a day ago it was not yet
    // valid, which is said plainly, and nothing is touched.
    let output = in_the_past().output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("not yet valid"), "{stderr}");
    assert_eq!(env.dovecot.count(QUEUE), 5);
    // Over plain IMAP on loopback the run goes through, on the past clock.
    env.ok(&["disable"]);
    env.configure(&[
        "--security",
        "none",
        "--port",
        &env.dovecot.imap_port.to_string(),
    ]);
    env.ok(&["enable", "--accept-data-statement"]);
    let output = in_the_past().output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["seen"], 5);
    // Back to the present: nothing is decided twice, nothing is missing.
    for n in 11..=12 {
        env.deliver(&numbered_message(n));
    }
    env.ok(&["run", "--once"]);
    assert_eq!(
        entry_keys(&env).len(),
        (1..=12).filter(|n| n % 5 != 0).count()
    );
    assert_eq!(decisions(&env).len(), 12);
    assert_eq!(env.dovecot.count(QUEUE), 0);
}

/// libfaketime (Debian package faketime), which the test command installs.
fn faketime_library() -> String {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|path| std::path::Path::new(path).exists())
    .expect("libfaketime (apt-get install faketime; the README's test command does)")
    .to_owned()
}
