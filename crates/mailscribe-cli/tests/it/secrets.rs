//! OAuth2 against Dovecot's oauth2 passdb (with the testkit's local token
//! and introspection server standing in for Entra ID), secret sources, key
//! rotation, and no secret in plain text anywhere Mailscribe writes.

use mailscribe_testkit::{Dovecot, DovecotOptions, OAuthServer, QUEUE};

use crate::harness::{Backend, Env, entry_keys, numbered_message};

const CLIENT_SECRET: &str = "s3cret-Client-Value-42";

async fn oauth_env() -> (OAuthServer, Env) {
    let server = OAuthServer::start(&[("fixture-client", CLIENT_SECRET, "queue")]);
    let dovecot = Dovecot::start_with(DovecotOptions {
        oauth2_introspection_url: Some(server.introspection_url()),
        ..Default::default()
    });
    (server, Env::with_dovecot(Backend::Sqlite, dovecot).await)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn oauth2_from_configure_to_logged_mail_without_leaking_the_secret() {
    let (server, env) = oauth_env().await;
    env.import_directory();
    let token_url = server.token_url();
    let oauth = [
        "--auth",
        "oauth2",
        "--token-url",
        &token_url,
        "--client-id",
        "fixture-client",
    ];

    // A wrong secret: the check says what to fix.
    let output = env
        .command()
        .env("CLIENT_SECRET", "wrong")
        .args(["mailbox", "configure"])
        .args(configure_base(&env))
        .args(oauth)
        .args(["--client-secret-env", "CLIENT_SECRET"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string();
    assert!(
        text.contains("FAIL login no OAuth2 token: the client secret is wrong or has expired"),
        "{text}"
    );

    let output = env
        .command()
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .args(["mailbox", "configure"])
        .args(configure_base(&env))
        .args(oauth)
        .args(["--client-secret-env", "CLIENT_SECRET"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = env.ok(&["check"]);
    assert!(text.contains("PASS login token obtained from"), "{text}");
    env.ok(&["enable", "--accept-data-statement"]);
    env.deliver(&numbered_message(2));
    let output = env
        .command()
        .env("RUST_LOG", "trace")
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(entry_keys(&env).len(), 1);

    // The secret is nowhere: not in the database, its WAL, the output, the
    // trace log, or `mailbox show`.
    for stream in [&output.stdout, &output.stderr] {
        assert!(
            !contains(stream, CLIENT_SECRET),
            "the secret leaked into the output"
        );
    }
    assert!(!contains(
        env.ok(&["mailbox", "show"]).as_bytes(),
        CLIENT_SECRET
    ));
    let db_dir = env.db.sqlite_dir().unwrap();
    for entry in std::fs::read_dir(db_dir).unwrap().filter_map(Result::ok) {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !contains(&bytes, CLIENT_SECRET),
            "{:?} holds the secret in plain text",
            entry.path()
        );
    }
}

fn configure_base(env: &Env) -> Vec<String> {
    vec![
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        env.dovecot.imaps_port.to_string(),
        "--user".into(),
        env.dovecot.user().into(),
        "--queue".into(),
        QUEUE.into(),
        "--storage".into(),
        mailscribe_testkit::STORAGE.into(),
        "--ca-file".into(),
        env.dovecot.ca_file().display().to_string(),
    ]
}

#[tokio::test]
async fn secrets_can_come_from_a_command_or_a_file_each_run() {
    let (server, env) = oauth_env().await;
    let token_url = server.token_url();
    let exec = format!("exec:printf %s {CLIENT_SECRET}");
    env.ok(&[
        &["mailbox", "configure"][..],
        &configure_base(&env)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[
            "--auth",
            "oauth2",
            "--token-url",
            &token_url,
            "--client-id-from",
            "env:CLIENT_ID",
            "--client-secret-from",
            &exec,
        ],
    ]
    .concat());
    let shown = env.ok(&["mailbox", "show"]);
    assert!(
        shown.contains("client_id = env:CLIENT_ID")
            && shown.contains("client_secret = exec:printf"),
        "{shown}"
    );
    // The client id comes from the environment of each run.
    let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string();
    assert!(text.contains("FAIL credentials the stored secrets cannot be read: the environment variable CLIENT_ID is not set"), "{text}");
    let output = env
        .command()
        .env("CLIENT_ID", "fixture-client")
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("PASS login token obtained"), "{text}");

    // Basic authentication with the password in a file.
    let password_file = env.write("imap-password", &format!("{}\n", env.dovecot.password()));
    let source = format!("file:{}", password_file.display());
    env.ok(&[
        &["mailbox", "configure"][..],
        &configure_base(&env)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &["--password-from", &source],
    ]
    .concat());
    let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string();
    assert!(text.contains("PASS login logged in as queue"), "{text}");
    assert_eq!(
        env.run(&[
            "mailbox",
            "configure",
            "--host",
            "h",
            "--user",
            "u",
            "--queue",
            "q",
            "--storage",
            "s",
            "--password-from",
            "ftp:x"
        ])
        .status
        .code(),
        Some(2)
    );
}

#[tokio::test]
async fn rotating_the_key_reseals_every_secret() {
    let env = Env::new(Backend::Sqlite).await;
    env.write("salespeople.csv", crate::harness::SALESPEOPLE_CSV);
    env.ok(&["salespeople", "import", "salespeople.csv"]);
    env.configure(&[]);
    let key_file = env.dir.path().join("test.key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let rotated = env.ok(&["secrets", "rotate-key"]);
    assert!(
        rotated.starts_with("1 stored secrets sealed with the new key"),
        "{rotated}"
    );
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after);
    assert_eq!(after.lines().count(), 1, "the old key is retired");
    assert!(!env.ok(&["check"]).contains("FAIL"));
    // The old key alone no longer opens anything.
    std::fs::write(&key_file, before).unwrap();
    let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string();
    assert!(text.contains("FAIL credentials the stored secrets cannot be read: the stored secret was sealed with key"), "{text}");
}

#[tokio::test]
async fn the_database_is_private_and_an_exposed_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    let dir = env.db.sqlite_dir().unwrap();
    for name in ["mailscribe.db", "mailscribe.db-wal", "mailscribe.db-shm"] {
        let path = dir.join(name);
        if let Ok(metadata) = std::fs::metadata(&path) {
            assert_eq!(
                metadata.permissions().mode() & 0o077,
                0,
                "{name} is readable by its owner only"
            );
        }
    }
    let key = env.dir.path().join("test.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = env.run(&["run", "--once"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("can be read by others (mode 644)") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.ok(&["run", "--once"]);
}
