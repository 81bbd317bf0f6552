//! Running the binary against a throwaway Dovecot and database.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mailscribe_testkit::{Dovecot, QUEUE, STORAGE, TestDatabase};

pub(crate) const SALESPEOPLE_CSV: &str = "code,name,email\n\
SP1,Sally Seller,sp1@ourco.example;sally@ourco.example\n\
SP2,Sam Closer,sp2@ourco.example\n";

pub(crate) const CONTACTS_CSV: &str = "no,name,email,company,type\n\
CUST,Customer Corp,info@customer.example,,company\n\
1,Carl Contact,c1@customer.example,Customer Corp,person\n\
2,Cora Contact,c2@customer.example,Customer Corp,person\n\
3,Shared One,shared@other.example,,person\n\
10,Shared Ten,shared@other.example,,person\n";

pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// One installation: a working directory, a database and a Dovecot.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) db: TestDatabase,
    pub(crate) dovecot: Dovecot,
}

impl Env {
    pub(crate) async fn new(backend: Backend) -> Env {
        Env::with_dovecot(backend, Dovecot::start()).await
    }

    pub(crate) async fn with_dovecot(backend: Backend, dovecot: Dovecot) -> Env {
        let db = match backend {
            Backend::Sqlite => TestDatabase::sqlite(),
            Backend::Postgres => TestDatabase::postgres().await,
        };
        Env::with_database(db, dovecot)
    }

    pub(crate) fn with_database(db: TestDatabase, dovecot: Dovecot) -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
            db,
            dovecot,
        }
    }

    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailscribe"));
        command
            .current_dir(self.dir.path())
            .env("MAILSCRIBE_DB", self.db.url())
            .env("MAILSCRIBE_KEY_FILE", self.dir.path().join("test.key"))
            .env("IMAP_PASSWORD", self.dovecot.password())
            .env_remove("MAILSCRIBE_SECRET_KEY")
            .env_remove("MAILSCRIBE_FAILPOINT")
            .env_remove("MAILSCRIBE_IGNORE_CAPABILITIES")
            .env_remove("RUST_LOG");
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run mailscribe")
    }

    /// Runs and asserts success, returning stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "mailscribe {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    pub(crate) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// Imports the standard salespeople and contacts.
    pub(crate) fn import_directory(&self) {
        self.write("salespeople.csv", SALESPEOPLE_CSV);
        self.write("contacts.csv", CONTACTS_CSV);
        self.ok(&["salespeople", "import", "salespeople.csv"]);
        self.ok(&["contacts", "import", "contacts.csv"]);
    }

    /// Imports the standard directory, configures the mailbox and enables
    /// logging.
    pub(crate) fn set_up(&self, batch_size: u32) {
        self.import_directory();
        self.configure(&["--batch-size", &batch_size.to_string()]);
        self.ok(&["enable", "--accept-data-statement"]);
    }

    /// `mailbox configure` against the fixture over TLS; `overrides` are
    /// flag/value pairs (or lone flags) that replace or add to the defaults.
    pub(crate) fn configure(&self, overrides: &[&str]) {
        let mut flags: Vec<(String, Option<String>)> = vec![
            ("--host".into(), Some("127.0.0.1".into())),
            ("--port".into(), Some(self.dovecot.imaps_port.to_string())),
            ("--security".into(), Some("tls".into())),
            ("--user".into(), Some(self.dovecot.user().into())),
            ("--password-env".into(), Some("IMAP_PASSWORD".into())),
            ("--queue".into(), Some(QUEUE.into())),
            ("--storage".into(), Some(STORAGE.into())),
            (
                "--ca-file".into(),
                Some(self.dovecot.ca_file().display().to_string()),
            ),
        ];
        let mut iter = overrides.iter().peekable();
        while let Some(flag) = iter.next() {
            let value = match iter.peek() {
                Some(next) if !next.starts_with("--") => iter.next().map(|v| (*v).to_owned()),
                _ => None,
            };
            match flags.iter_mut().find(|(f, _)| f == flag) {
                Some(existing) => existing.1 = value,
                None => flags.push(((*flag).to_owned(), value)),
            }
        }
        let mut args = vec!["mailbox".to_owned(), "configure".to_owned()];
        for (flag, value) in flags {
            args.push(flag);
            args.extend(value);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args);
    }

    pub(crate) fn deliver(&self, raw: &[u8]) {
        self.dovecot.deliver(QUEUE, raw, None, false);
    }
}

/// A message with the given headers (each "Name: value").
pub(crate) fn message(headers: &[&str], body: &str) -> Vec<u8> {
    let mut text = String::new();
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.push_str("\r\n");
    text.into_bytes()
}

/// An exchange numbered `n`: inbound from contact 1 to SP1 for even n,
/// outbound from SP1 to contact 2 for odd n, every fifth one unrelated.
pub(crate) fn numbered_message(n: u32) -> Vec<u8> {
    let (from, to) = match (n % 5, n % 2) {
        (0, _) => ("stranger@elsewhere.example", "nobody@elsewhere.example"),
        (_, 0) => ("c1@customer.example", "sp1@ourco.example"),
        _ => ("sp1@ourco.example", "c2@customer.example"),
    };
    message(
        &[
            &format!("From: {from}"),
            &format!("To: {to}"),
            &format!("Subject: message number {n}"),
            &format!("Message-ID: <n{n}@test.example>"),
            "Date: Tue, 3 Mar 2026 10:00:00 +0000",
        ],
        &format!("body {n}"),
    )
}

/// Checks that the storage folder holds the logged ones of
/// `numbered_message(1..=messages)` and nothing else, each once, or twice
/// where a crash cut a move between its copy and its expunge (Dovecot's
/// maildir MOVE is both inside; without MOVE the client does both): the
/// next run moves that copy again, and PRODUCT.md tolerates the second copy
/// in storage, never a second entry. Returns how many are there twice.
pub(crate) fn assert_stored_once_or_twice(env: &Env, messages: u32, context: &str) -> usize {
    let mut copies: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for id in env.dovecot.message_ids(STORAGE) {
        *copies.entry(id).or_default() += 1;
    }
    let expected: Vec<String> = (1..=messages)
        .filter(|n| n % 5 != 0)
        .map(|n| format!("<n{n}@test.example>"))
        .collect();
    assert_eq!(
        copies.keys().cloned().collect::<Vec<_>>(),
        {
            let mut sorted = expected.clone();
            sorted.sort();
            sorted
        },
        "{context}: storage holds every logged message and nothing else"
    );
    assert!(
        copies.values().all(|n| (1..=2).contains(n)),
        "{context}: each stored once, or twice after a cut copy and expunge: {copies:?}"
    );
    copies.values().filter(|n| **n == 2).count()
}

/// The entries as comparable rows: (message_id, salesperson, contact, direction).
pub(crate) fn entry_keys(env: &Env) -> Vec<(String, String, String, String)> {
    let json = env.ok(&["interactions", "export", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).expect("json export");
    let mut keys: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["message_id"].as_str().unwrap_or_default().to_owned(),
                r["salesperson_code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["contact_no"].as_str().unwrap_or_default().to_owned(),
                r["direction"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    keys.sort();
    keys
}

pub(crate) fn decisions(env: &Env) -> Vec<serde_json::Value> {
    let json = env.ok(&["decisions", "export", "--format", "json"]);
    serde_json::from_str(&json).expect("json export")
}

/// A `mailscribe serve` on a free loopback port, started by `serve`;
/// stopped (killed and reaped) when dropped.
pub(crate) struct Serving {
    pub(crate) port: u16,
    child: Child,
}

/// Starts `command` (a `mailscribe` command of an installation) as
/// `serve --listen 127.0.0.1:PORT` on a free port, its output discarded,
/// and waits until the port accepts connections.
pub(crate) fn serve(mut command: Command, timeout: Duration) -> Serving {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    mailscribe_testkit::wait_until("serve", timeout, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Serving { port, child }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
