//! A configured installation for the benchmarks: the directory, one or
//! more mailboxes on a Dovecot, settings, and `mailscribe` commands run
//! against it.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use mailscribe_testkit::{Dovecot, QUEUE, STORAGE};

use crate::measure::sibling_binary;
use crate::messages;

/// UIDs per FETCH and MOVE, as in the queue benchmark.
pub(crate) const BATCH_SIZE: u32 = 100;

/// The batch size of this benchmark run: `BENCH_BATCH_SIZE` (1 to 1000),
/// else `BATCH_SIZE`.
pub(crate) fn batch_size() -> anyhow::Result<u32> {
    match std::env::var("BENCH_BATCH_SIZE") {
        Err(_) => Ok(BATCH_SIZE),
        Ok(text) => match text.parse::<u32>() {
            Ok(size @ 1..=1000) => Ok(size),
            _ => anyhow::bail!("BENCH_BATCH_SIZE={text:?}: give a whole number from 1 to 1000"),
        },
    }
}

/// One mailbox to set up: its name and its folders (written with `/`).
pub(crate) struct MailboxFolders {
    pub(crate) name: String,
    pub(crate) queue: String,
    pub(crate) storage: String,
}

impl MailboxFolders {
    /// The mailbox `default` on the fixture's Queue and Storage.
    pub(crate) fn default_mailbox() -> MailboxFolders {
        MailboxFolders {
            name: "default".into(),
            queue: QUEUE.into(),
            storage: STORAGE.into(),
        }
    }
}

/// The environment every `mailscribe` command of an installation gets.
pub(crate) type Env = Vec<(&'static str, String)>;

/// The URL of a SQLite store inside `dir`.
pub(crate) fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("mailscribe.db").display())
}

/// Runs `mailscribe ARGS` in `dir` and returns its standard output.
pub(crate) fn mailscribe(env: &Env, dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(sibling_binary("mailscribe")?)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()?;
    if !output.status.success() {
        bail!(
            "mailscribe {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// How the installation reaches Dovecot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Implicit TLS on the IMAPS port (what production uses).
    Tls,
    /// No TLS, on the plain IMAP port over loopback.
    Plain,
}

/// A configured, enabled installation in `dir` on `database_url`: the
/// benchmark directory (50 salespeople, 1,000 contacts), each of
/// `mailboxes` on `dovecot` over TLS, then `settings`.
pub(crate) fn install(
    dir: &Path,
    database_url: &str,
    dovecot: &Dovecot,
    mailboxes: &[MailboxFolders],
    settings: &[(&str, &str)],
) -> anyhow::Result<Env> {
    install_with(
        dir,
        database_url,
        dovecot,
        Transport::Tls,
        mailboxes,
        settings,
    )
}

/// `install`, reaching Dovecot over `transport`.
pub(crate) fn install_with(
    dir: &Path,
    database_url: &str,
    dovecot: &Dovecot,
    transport: Transport,
    mailboxes: &[MailboxFolders],
    settings: &[(&str, &str)],
) -> anyhow::Result<Env> {
    let env = vec![
        ("MAILSCRIBE_DB", database_url.to_owned()),
        (
            "MAILSCRIBE_KEY_FILE",
            dir.join("mailscribe.key").display().to_string(),
        ),
        ("IMAP_PASSWORD", dovecot.password().to_owned()),
    ];
    std::fs::write(dir.join("salespeople.csv"), messages::salespeople_csv())?;
    std::fs::write(dir.join("contacts.csv"), messages::contacts_csv())?;
    mailscribe(&env, dir, &["salespeople", "import", "salespeople.csv"])?;
    mailscribe(&env, dir, &["contacts", "import", "contacts.csv"])?;
    let (port, security) = match transport {
        Transport::Tls => (dovecot.imaps_port.to_string(), "tls"),
        Transport::Plain => (dovecot.imap_port.to_string(), "none"),
    };
    let ca = dovecot.ca_file().display().to_string();
    let batch = batch_size()?.to_string();
    for mailbox in mailboxes {
        let configure = [
            "mailbox",
            "configure",
            "--mailbox",
            &mailbox.name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--security",
            security,
            "--user",
            dovecot.user(),
            "--password-env",
            "IMAP_PASSWORD",
            "--queue",
            &mailbox.queue,
            "--storage",
            &mailbox.storage,
            "--ca-file",
            &ca,
            "--batch-size",
            &batch,
        ];
        mailscribe(&env, dir, &configure)
            .with_context(|| format!("configuring mailbox {}", mailbox.name))?;
    }
    for (key, value) in settings {
        mailscribe(&env, dir, &["settings", "set", key, value])?;
    }
    for mailbox in mailboxes {
        mailscribe(
            &env,
            dir,
            &[
                "enable",
                "--mailbox",
                &mailbox.name,
                "--accept-data-statement",
            ],
        )?;
    }
    Ok(env)
}

/// Adds an admin and returns a new API token of theirs.
pub(crate) fn api_token(env: &Env, dir: &Path) -> anyhow::Result<String> {
    let mut env = env.clone();
    env.push(("BENCH_ADMIN_PASSWORD", "bench-password".to_owned()));
    mailscribe(
        &env,
        dir,
        &[
            "user",
            "add",
            "bench",
            "--role",
            "admin",
            "--password-env",
            "BENCH_ADMIN_PASSWORD",
        ],
    )?;
    let token = mailscribe(&env, dir, &["token", "create", "--user", "bench"])?;
    Ok(token.trim().to_owned())
}
