//! Functional scenarios of the CLI contract, on SQLite and PostgreSQL.

use mailscribe_testkit::{QUEUE, STORAGE};

use crate::harness::{Backend, Env, decisions, entry_keys, message};

fn bc_scenario_messages() -> Vec<(Vec<u8>, bool)> {
    let m = |headers: &[&str]| message(headers, "hello");
    vec![
        // BC TestMessageLogged: contact 1 to SP1 with SP2 in Cc...
        (
            m(&[
                "From: Carl <c1@customer.example>",
                "To: sp1@ourco.example",
                "Cc: sp2@ourco.example",
                "Subject: inbound",
                "Message-ID: <msg1@customer.example>",
                "Date: Tue, 3 Mar 2026 10:00:00 +0000",
            ]),
            false,
        ),
        // ...and SP1 to contact 1 with contact 2 in Cc.
        (
            m(&[
                "From: sally@ourco.example",
                "To: c1@customer.example",
                "Cc: c2@customer.example",
                "Subject: outbound",
                "Message-ID: <msg2@ourco.example>",
                "Date: Tue, 3 Mar 2026 11:30:00 +0200",
            ]),
            false,
        ),
        // BC TestMessageNotLogged: unknown sender, unknown recipients, internal only.
        (
            m(&[
                "From: stranger@elsewhere.example",
                "To: sp1@ourco.example",
                "Subject: spam",
                "Message-ID: <spam@elsewhere.example>",
            ]),
            false,
        ),
        (
            m(&[
                "From: sp1@ourco.example",
                "To: stranger@elsewhere.example",
                "Subject: to a stranger",
                "Message-ID: <stranger@ourco.example>",
            ]),
            false,
        ),
        (
            m(&[
                "From: sp1@ourco.example",
                "To: sp2@ourco.example",
                "Subject: internal",
                "Message-ID: <internal@ourco.example>",
            ]),
            false,
        ),
        // BC TestDraftMessageNotLogged.
        (
            m(&[
                "From: sp1@ourco.example",
                "To: c1@customer.example",
                "Subject: draft",
                "Message-ID: <draft@ourco.example>",
            ]),
            true,
        ),
        // BC TestDuplicatedMessageNotLogged: a second copy of message 1.
        (
            m(&[
                "From: Carl <c1@customer.example>",
                "To: sp1@ourco.example",
                "Cc: sp2@ourco.example",
                "Subject: inbound",
                "Message-ID: <msg1@customer.example>",
                "Date: Tue, 3 Mar 2026 10:00:00 +0000",
            ]),
            false,
        ),
        // An address shared by contacts 3 and 10 goes to 3.
        (
            m(&[
                "From: shared@other.example",
                "To: sp2@ourco.example",
                "Subject: shared",
                "Message-ID: <shared@other.example>",
            ]),
            false,
        ),
        // Sensitive mail is skipped.
        (
            m(&[
                "From: c1@customer.example",
                "To: sp1@ourco.example",
                "Subject: private",
                "Sensitivity: Private",
                "Message-ID: <private@customer.example>",
            ]),
            false,
        ),
        // Outbound without a Date: falls back to INTERNALDATE, flagged.
        (
            m(&[
                "From: sp2@ourco.example",
                "To: info@customer.example",
                "Subject: no date",
                "Message-ID: <nodate@ourco.example>",
            ]),
            false,
        ),
    ]
}

async fn the_original_scenarios_log_exactly_what_the_table_says(backend: Backend) {
    let env = Env::new(backend).await;
    env.set_up(3);
    for (raw, draft) in bc_scenario_messages() {
        env.dovecot.deliver(QUEUE, &raw, None, draft);
    }
    let summary: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"]))
            .expect("json summary");
    assert_eq!(summary["seen"], 10, "{summary}");
    assert_eq!(summary["logged"], 4, "{summary}");
    assert_eq!(summary["duplicate"], 1, "{summary}");
    assert_eq!(summary["entries"], 6, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["not_logged"], 5, "{summary}");
    let by_reason = &summary["not_logged_by_reason"];
    assert_eq!(
        (
            by_reason["unknown_sender"].as_u64(),
            by_reason["no_counterpart"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(
        (by_reason["draft"].as_u64(), by_reason["sensitive"].as_u64()),
        (Some(1), Some(1))
    );

    let entries = entry_keys(&env);
    let expected: Vec<(String, String, String, String)> = [
        ("<msg1@customer.example>", "SP1", "1", "inbound"),
        ("<msg1@customer.example>", "SP2", "1", "inbound"),
        ("<msg2@ourco.example>", "SP1", "1", "outbound"),
        ("<msg2@ourco.example>", "SP1", "2", "outbound"),
        ("<nodate@ourco.example>", "SP2", "CUST", "outbound"),
        ("<shared@other.example>", "SP2", "3", "inbound"),
    ]
    .iter()
    .map(|(a, b, c, d)| {
        (
            (*a).to_owned(),
            (*b).to_owned(),
            (*c).to_owned(),
            (*d).to_owned(),
        )
    })
    .collect();
    assert_eq!(entries, expected);

    // The mailbox: logged and duplicate copies in storage, the rest gone.
    assert_eq!(env.dovecot.count(QUEUE), 0);
    assert_eq!(env.dovecot.count(STORAGE), 5);

    // The CSV contract: header, RFC 4180, date and time in the configured zone.
    env.ok(&["settings", "set", "time_zone", "Europe/Helsinki"]);
    let csv = env.ok(&["interactions", "export", "--format", "csv"]);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with(
        "entry_no,date,time,direction,initiated_by,salesperson_code,contact_no,contact_company_no,subject,message_id"
    ));
    let msg2 = csv
        .lines()
        .find(|l| l.contains("msg2@") && l.contains(",1,"))
        .expect("msg2 row");
    // Sent 11:30 +02:00 = 09:30 UTC = 11:30 in Helsinki (EET, winter).
    assert!(
        msg2.contains(",2026-03-03,11:30:00,outbound,us,SP1,1,CUST,outbound,<msg2@ourco.example>"),
        "{msg2}"
    );

    let ledger = decisions(&env);
    assert_eq!(ledger.len(), 10, "one ledger row per copy");
    let reasons: Vec<&str> = ledger
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "logged",
            "logged",
            "unknown_sender",
            "no_counterpart",
            "no_counterpart",
            "draft",
            "duplicate",
            "logged",
            "sensitive",
            "logged"
        ]
    );
    let shared = ledger
        .iter()
        .find(|d| d["message_id"] == "<shared@other.example>")
        .unwrap();
    assert_eq!(shared["ambiguous"], true);
    let nodate = ledger
        .iter()
        .find(|d| d["message_id"] == "<nodate@ourco.example>")
        .unwrap();
    assert_eq!(nodate["date_fallback"], true);
    let spam = ledger
        .iter()
        .find(|d| d["reason"] == "unknown_sender")
        .unwrap();
    assert_eq!(
        spam["subject"],
        serde_json::Value::Null,
        "subjects of not-logged mail are not kept"
    );
    let decisions_csv = env.ok(&["decisions", "export"]);
    assert!(decisions_csv.starts_with("message_id,sha256,outcome,reason,entries,error"));

    // A second run finds nothing and adds nothing.
    let again: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"])).unwrap();
    assert_eq!(again["seen"], 0);
    assert_eq!(entry_keys(&env).len(), 6);
}

#[tokio::test]
async fn the_original_scenarios_on_sqlite() {
    the_original_scenarios_log_exactly_what_the_table_says(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_original_scenarios_on_postgres() {
    the_original_scenarios_log_exactly_what_the_table_says(Backend::Postgres).await;
}

#[tokio::test]
async fn disabled_missing_setup_and_consent_have_their_exit_codes() {
    let env = Env::new(Backend::Sqlite).await;
    let code = |args: &[&str]| env.run(args).status.code();
    assert_eq!(code(&["run", "--once"]), Some(3), "no setup yet");
    assert_eq!(code(&["check"]), Some(3));
    env.write("salespeople.csv", crate::harness::SALESPEOPLE_CSV);
    env.ok(&["salespeople", "import", "salespeople.csv"]);
    env.configure(&[]);
    assert_eq!(code(&["run", "--once"]), Some(3), "configured but disabled");
    // Without a terminal and without the flag, enable names the flag.
    let output = env.run(&["enable"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--accept-data-statement"));
    env.ok(&["enable", "--accept-data-statement"]);
    let shown = env.ok(&["mailbox", "show"]);
    assert!(
        shown.contains("enabled = true") && shown.contains("data statement accepted by"),
        "{shown}"
    );
    assert_eq!(code(&["run", "--once"]), Some(0));
    // The connection is locked while enabled.
    assert_eq!(
        env.run(&[
            "mailbox",
            "configure",
            "--host",
            "x",
            "--user",
            "u",
            "--password-env",
            "IMAP_PASSWORD",
            "--queue",
            "a",
            "--storage",
            "b"
        ])
        .status
        .code(),
        Some(1)
    );
    env.ok(&["disable"]);
    assert_eq!(code(&["run", "--once"]), Some(3));
    assert_eq!(code(&["run", "--bogus"]), Some(2), "usage");
}

#[tokio::test]
async fn check_says_what_to_fix() {
    let env = Env::new(Backend::Sqlite).await;
    env.configure(&[]);
    // No salesperson yet: that line fails, the rest passes.
    let output = env.run(&["check"]);
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(1), "{text}");
    for line in [
        "PASS credentials",
        "PASS server_reachable",
        "PASS tls",
        "PASS login",
        "PASS queue_folder",
        "PASS storage_folder",
        "PASS storage_writable",
        "PASS folders_differ",
        "PASS interaction_template",
        "FAIL salesperson_address",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert_eq!(env.dovecot.count(STORAGE), 0, "the probe is removed");

    env.write("salespeople.csv", crate::harness::SALESPEOPLE_CSV);
    env.ok(&["salespeople", "import", "salespeople.csv"]);
    assert!(!env.ok(&["check"]).contains("FAIL"));

    // A wrong password and a missing folder each get their line.
    let text = {
        let output = env
            .command()
            .env("IMAP_PASSWORD", "wrong")
            .args([
                "mailbox",
                "configure",
                "--host",
                "127.0.0.1",
                "--port",
                &env.dovecot.imaps_port.to_string(),
                "--user",
                env.dovecot.user(),
                "--password-env",
                "IMAP_PASSWORD",
                "--queue",
                "Public Folders/Email Logging/Nope",
                "--storage",
                STORAGE,
                "--ca-file",
                &env.dovecot.ca_file().display().to_string(),
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string()
    };
    assert!(
        text.contains("FAIL login the server refused the user name or password"),
        "{text}"
    );
    env.configure(&["--queue", "Public Folders/Email Logging/Nope"]);
    let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string();
    assert!(
        text.contains(
            "FAIL queue_folder the folder 'Public Folders/Email Logging/Nope' does not exist"
        ),
        "{text}"
    );

    // Plain loopback: TLS does not apply.
    env.configure(&[
        "--security",
        "none",
        "--port",
        &env.dovecot.imap_port.to_string(),
    ]);
    let text = env.ok(&["check"]);
    assert!(text.contains("SKIP tls"), "{text}");

    // Without the key, the stored password cannot be read.
    std::fs::remove_file(env.dir.path().join("test.key")).unwrap();
    let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string();
    assert!(
        text.contains(
            "FAIL credentials the stored secrets cannot be read: the secret key is missing"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn the_password_never_appears_in_plain_text() {
    let env = Env::new(Backend::Sqlite).await;
    env.configure(&[]);
    let password = env.dovecot.password();
    let db_path = env.db.sqlite_dir().unwrap().join("mailscribe.db");
    for file in [db_path.clone(), db_path.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "{file:?}"
            );
        }
    }
    let shown = env.ok(&["mailbox", "show"]);
    assert!(!shown.contains(password) && shown.contains("********"));
    let key = std::fs::metadata(env.dir.path().join("test.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn bad_csv_files_are_refused_whole_with_line_numbers() {
    let env = Env::new(Backend::Sqlite).await;
    env.write(
        "bad.csv",
        "code,name,email\nSP1,A,a@x.example\nSP2,B,a@x.example\n",
    );
    let output = env.run(&["salespeople", "import", "bad.csv"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("line 3: the address a@x.example is also given to salesperson SP1 on line 2"),
        "{stderr}"
    );
    assert!(
        env.ok(&["salespeople", "list"]).is_empty(),
        "nothing is half-imported"
    );
    // An address held in the database by someone outside the file.
    env.write("one.csv", "code,name,email\nSP1,A,a@x.example\n");
    env.ok(&["salespeople", "import", "one.csv"]);
    env.write(
        "two.csv",
        "code,name,email\nSP7,Z,z@x.example\nSP9,B,a@x.example\n",
    );
    let stderr =
        String::from_utf8_lossy(&env.run(&["salespeople", "import", "two.csv"]).stderr).to_string();
    assert!(
        stderr.contains("line 3: the address a@x.example already belongs to salesperson SP1"),
        "{stderr}"
    );
    assert_eq!(env.ok(&["salespeople", "list"]).lines().count(), 1);
    assert_eq!(
        env.run(&["contacts", "import", "missing.csv"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test]
async fn an_unreachable_server_exits_5_and_a_held_lease_exits_4() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    env.deliver(&crate::harness::numbered_message(1));
    // Someone alive holds the lease: this very test process.
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    let me = mailscribe_worker::HolderId::current();
    let mailbox = format!(
        "{}@127.0.0.1:{}/{QUEUE}",
        env.dovecot.user(),
        env.dovecot.imaps_port
    );
    let lease = mailscribe_worker::mailbox_lease_name(&mailbox);
    let acquired = |attempt| match attempt {
        mailscribe_store::LeaseAttempt::Acquired(fence) => fence,
        held => panic!("the lease was not free: {held:?}"),
    };
    let fence = acquired(
        store
            .try_acquire_lease(&lease, &me.to_text(), 300_000)
            .await
            .unwrap(),
    );
    let output = env.run(&["run", "--once"]);
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    store.release_lease(&fence).await.unwrap();
    // A holder that died on this host is taken over at once.
    let dead = mailscribe_worker::HolderId {
        pid: u32::MAX - 7,
        ..me.clone()
    };
    acquired(
        store
            .try_acquire_lease(&lease, &dead.to_text(), 300_000)
            .await
            .unwrap(),
    );
    env.ok(&["run", "--once"]);
    store.close().await;

    // The server goes away: exit 5, and nothing is lost.
    env.ok(&["disable"]);
    let proxy = mailscribe_testkit::TcpProxy::start(env.dovecot.imaps_port);
    env.configure(&["--port", &proxy.port.to_string()]);
    env.ok(&["enable", "--accept-data-statement"]);
    env.deliver(&crate::harness::numbered_message(2));
    proxy.cut();
    let output = env.run(&["run", "--once"]);
    assert_eq!(
        output.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    proxy.restore();
    env.ok(&["run", "--once"]);
    assert_eq!(entry_keys(&env).len(), 2);
}

#[tokio::test]
async fn a_broken_message_is_retried_then_quarantined_and_never_blocks_the_others() {
    let env = Env::new(Backend::Sqlite).await;
    env.dovecot
        .create_folder("Public Folders/Email Logging/Quarantine");
    env.set_up(100);
    env.ok(&["disable"]);
    env.configure(&[
        "--quarantine-folder",
        "Public Folders/Email Logging/Quarantine",
    ]);
    env.ok(&["enable", "--accept-data-statement"]);
    env.ok(&["settings", "set", "max_attempts", "2"]);
    env.deliver(b"");
    env.deliver(&crate::harness::numbered_message(1));

    let first: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"])).unwrap();
    assert_eq!(
        (first["logged"].as_u64(), first["failed"].as_u64()),
        (Some(1), Some(1)),
        "{first}"
    );
    assert_eq!(first["failures"][0]["reason"], "error:parse");
    assert_eq!(first["failures"][0]["quarantined"], false);
    assert_eq!(
        env.dovecot.count(QUEUE),
        1,
        "the failed message stays in the queue"
    );

    let second: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"])).unwrap();
    assert_eq!(second["failures"][0]["attempts"], 2, "{second}");
    assert_eq!(second["failures"][0]["quarantined"], true, "{second}");
    assert_eq!(env.dovecot.count(QUEUE), 0);
    assert_eq!(
        env.dovecot.count("Public Folders/Email Logging/Quarantine"),
        1
    );
    let ledger = decisions(&env);
    assert_eq!(
        ledger.len(),
        2,
        "the failed copy's row was updated in place"
    );
    let failed = ledger.iter().find(|d| d["outcome"] == "failed").unwrap();
    assert_eq!(
        (failed["attempts"].as_i64(), failed["disposition"].as_str()),
        (Some(2), Some("quarantined"))
    );
    let text = env.ok(&["run", "--once"]);
    assert!(text.starts_with("run 3: seen 0"), "{text}");
}

/// Copies of one message in consecutive batches: the next batch is looked
/// up while the previous one commits, and must still see its logged key.
#[tokio::test]
async fn copies_in_consecutive_batches_are_duplicates() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(1);
    for n in [1, 1, 2, 1, 2, 3] {
        env.deliver(&crate::harness::numbered_message(n));
    }
    let summary: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"])).unwrap();
    assert_eq!(
        (
            summary["seen"].as_u64(),
            summary["logged"].as_u64(),
            summary["duplicate"].as_u64(),
            summary["failed"].as_u64(),
            summary["entries"].as_u64()
        ),
        (Some(6), Some(3), Some(3), Some(0), Some(3)),
        "{summary}"
    );
    assert_eq!(entry_keys(&env).len(), 3);
    assert_eq!(env.dovecot.count(QUEUE), 0);
}

/// While the database is slow, batches are grouped into one commit; the
/// group decides as the batches would one by one: copies of one message in
/// different batches of a group are duplicates, every entry once.
#[tokio::test]
async fn batches_grouped_while_the_database_is_busy_decide_as_one_by_one() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(2);
    // 20 messages, then a second copy of each of the first ten.
    let numbers: Vec<u32> = (1..=20).chain(1..=10).collect();
    for n in &numbers {
        env.deliver(&crate::harness::numbered_message(*n));
    }
    let output = env
        .command()
        .env("MAILSCRIBE_FAILPOINT_SLOW_COMMIT_MS", "500")
        .args(["run", "--once", "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let expected_logged = (1..=20).filter(|n| n % 5 != 0).count() as u64;
    let expected_duplicates = (1..=10).filter(|n| n % 5 != 0).count() as u64;
    assert_eq!(
        (
            summary["seen"].as_u64(),
            summary["logged"].as_u64(),
            summary["duplicate"].as_u64(),
            summary["failed"].as_u64(),
            summary["batches"].as_u64(),
        ),
        (
            Some(30),
            Some(expected_logged),
            Some(expected_duplicates),
            Some(0),
            Some(15)
        ),
        "{summary}"
    );
    let commits = summary["commits"].as_u64().unwrap();
    assert!(
        commits <= 7,
        "with each commit taking 500 ms, batches are grouped (two or more a commit): {summary}"
    );
    let keys = entry_keys(&env);
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!((keys.len(), unique.len()), (16, 16));
    assert_eq!(env.dovecot.count(QUEUE), 0);
    assert_eq!(
        env.dovecot.count(STORAGE),
        (expected_logged + expected_duplicates) as usize
    );
}

#[tokio::test]
async fn max_per_run_leaves_the_rest_for_the_next_run() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(2);
    for n in 1..=7 {
        env.deliver(&crate::harness::numbered_message(n));
    }
    let first: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--max-per-run", "5", "--format", "json"]))
            .unwrap();
    assert_eq!(first["seen"], 5);
    assert_eq!(env.dovecot.count(QUEUE), 2);
    let second: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"])).unwrap();
    assert_eq!(second["seen"], 2);
}

#[tokio::test]
async fn a_new_uidvalidity_adds_no_entries_for_mail_already_logged() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    env.dovecot
        .create_folder("Public Folders/Email Logging/Queue2");
    env.deliver(&crate::harness::numbered_message(1));
    env.ok(&["run", "--once"]);
    // The same message arrives again in a queue with another UIDVALIDITY
    // (as after a folder is recreated on the server).
    env.ok(&["disable"]);
    env.configure(&["--queue", "Public Folders/Email Logging/Queue2"]);
    env.ok(&["enable", "--accept-data-statement"]);
    env.dovecot.deliver(
        "Public Folders/Email Logging/Queue2",
        &crate::harness::numbered_message(1),
        None,
        false,
    );
    let summary: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"])).unwrap();
    assert_eq!(
        (summary["duplicate"].as_u64(), summary["entries"].as_u64()),
        (Some(1), Some(0)),
        "{summary}"
    );
    assert_eq!(entry_keys(&env).len(), 1);
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to serve");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test]
async fn serve_runs_the_queue_and_the_web_app_and_stops_cleanly_on_sigterm() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    env.ok(&["settings", "set", "interval", "5"]);
    env.deliver(&crate::harness::numbered_message(1));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = env
        .command()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut link = String::new();
    while !link.contains("/setup?token=") {
        link.clear();
        assert!(
            std::io::BufRead::read_line(&mut stdout, &mut link).unwrap() > 0,
            "serve printed no setup link"
        );
    }
    let path = &link[link.find("/setup?token=").unwrap()..]
        .trim()
        .to_owned();
    mailscribe_testkit::wait_until(
        "serve to log the queue",
        std::time::Duration::from_secs(30),
        || env.dovecot.count(QUEUE) == 0,
    );
    assert!(http_get(port, "/healthz").ends_with("ok"));
    assert!(
        http_get(port, path).starts_with("HTTP/1.1 200"),
        "the setup link opens the first-admin form"
    );
    assert!(http_get(port, "/setup?token=guess").starts_with("HTTP/1.1 404"));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut status = None;
    mailscribe_testkit::wait_until("serve to exit", std::time::Duration::from_secs(20), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert_eq!(entry_keys(&env).len(), 1);
}

#[tokio::test]
async fn users_and_api_tokens_from_the_command_line() {
    let env = Env::new(Backend::Sqlite).await;
    let add = |args: &[&str]| {
        env.command()
            .env("NEW_PASSWORD", "correct horse battery")
            .args(args)
            .output()
            .unwrap()
    };
    assert!(
        add(&[
            "user",
            "add",
            "ann",
            "--role",
            "admin",
            "--password-env",
            "NEW_PASSWORD"
        ])
        .status
        .success()
    );
    assert!(
        add(&[
            "user",
            "add",
            "sam",
            "--role",
            "salesperson",
            "--salesperson",
            "SP1",
            "--password-env",
            "NEW_PASSWORD"
        ])
        .status
        .success()
    );
    assert_eq!(
        add(&[
            "user",
            "add",
            "ann",
            "--role",
            "user",
            "--password-env",
            "NEW_PASSWORD"
        ])
        .status
        .code(),
        Some(1),
        "taken"
    );
    assert_eq!(
        add(&[
            "user",
            "add",
            "x",
            "--role",
            "salesperson",
            "--password-env",
            "NEW_PASSWORD"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        add(&[
            "user",
            "add",
            "x",
            "--role",
            "root",
            "--password-env",
            "NEW_PASSWORD"
        ])
        .status
        .code(),
        Some(2)
    );
    let token = env.ok(&["token", "create", "--user", "sam"]);
    assert!(token.trim().len() >= 40, "{token}");
    assert_eq!(
        env.run(&["token", "create", "--user", "nobody"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test]
async fn inbound_dates_come_from_the_server_and_templates_price_the_entries() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    env.ok(&[
        "template",
        "set",
        "EMAIL",
        "--cost",
        "2.5",
        "--minutes",
        "7",
    ]);
    env.ok(&["settings", "set", "time_zone", "America/New_York"]);
    // Sent (Date:) on the 3rd, received (INTERNALDATE) on the 4th.
    let received = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_772_611_200); // 2026-03-04T08:00:00Z
    let inbound = message(
        &[
            "From: c1@customer.example",
            "To: sp1@ourco.example",
            "Subject: inbound",
            "Message-ID: <in@x>",
            "Date: Tue, 3 Mar 2026 23:59:00 +0000",
        ],
        "hi",
    );
    env.dovecot.deliver(QUEUE, &inbound, Some(received), false);
    env.ok(&["run", "--once"]);
    let path = env.dir.path().join("out.json");
    assert_eq!(
        env.ok(&[
            "interactions",
            "export",
            "--format",
            "json",
            "--output",
            path.to_str().unwrap()
        ]),
        ""
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(rows.len(), 1);
    // 08:00 UTC is 03:00 in New York (EST).
    assert_eq!(
        (rows[0]["date"].as_str(), rows[0]["time"].as_str()),
        (Some("2026-03-04"), Some("03:00:00"))
    );
    assert_eq!(
        (
            rows[0]["cost"].as_str(),
            rows[0]["duration_minutes"].as_i64()
        ),
        (Some("2.50"), Some(7))
    );
    assert_eq!(rows[0]["opportunity_no"], serde_json::Value::Null);
    let csv = env.ok(&["interactions", "export"]);
    assert!(csv.contains("\r\n"), "RFC 4180 line ends");
    assert_eq!(
        env.run(&["settings", "set", "time_zone", "Mars/Olympus"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        env.run(&[
            "template",
            "set",
            "EMAIL",
            "--cost",
            "abc",
            "--minutes",
            "1"
        ])
        .status
        .code(),
        Some(2)
    );
}

#[tokio::test]
async fn the_terminal_setup_goes_from_nothing_to_logged_mail() {
    let env = Env::new(Backend::Sqlite).await;
    env.import_directory();

    // Without a terminal it stops politely and says what to use instead.
    let output = env.run(&["setup"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("mailscribe mailbox configure"));

    // In a terminal (script(1) gives it one), answering every step. The
    // password is typed only once its question is on the screen, as a
    // person would.
    let before_password = format!(
        "\n127.0.0.1\ntls\n{}\n{}\n\nbasic\n{}\n",
        env.dovecot.imaps_port,
        env.dovecot.ca_file().display(),
        env.dovecot.user(),
    );
    let after_password = format!(
        "{}\n{QUEUE}\n{STORAGE}\n2.50\n5\nreference\nyes\n",
        env.dovecot.password()
    );
    let command = format!("{} setup", env!("CARGO_BIN_EXE_mailscribe"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .envs(
            env.command()
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1)");
    let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buffer) {
                screen
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        })
    };
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(before_password.as_bytes()).unwrap();
    mailscribe_testkit::wait_until(
        "the password question",
        std::time::Duration::from_secs(30),
        || screen.lock().unwrap().contains("(not shown)"),
    );
    stdin.write_all(after_password.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    reader.join().unwrap();
    let text = screen.lock().unwrap().clone();
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("Step 4 of 6") && text.contains("PASS storage_writable"),
        "{text}"
    );
    assert!(text.contains("Setup saved; logging is enabled."), "{text}");
    assert!(
        !text.contains(env.dovecot.password()),
        "the password is not echoed"
    );

    env.deliver(&crate::harness::numbered_message(2));
    env.ok(&["run", "--once"]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["interactions", "export", "--format", "json"])).unwrap();
    assert_eq!((rows.len(), rows[0]["cost"].as_str()), (1, Some("2.50")));
}

#[tokio::test]
async fn a_bad_certificate_gets_a_check_line_that_says_why() {
    for (certificate, expected) in [
        (
            mailscribe_testkit::ServerCertificate::Expired,
            "FAIL tls TLS with 127.0.0.1 failed: the server's certificate has expired",
        ),
        (
            mailscribe_testkit::ServerCertificate::WrongName,
            "FAIL tls TLS with 127.0.0.1 failed: the certificate is not valid for this host name",
        ),
    ] {
        let dovecot = mailscribe_testkit::Dovecot::start_with(mailscribe_testkit::DovecotOptions {
            certificate,
            ..Default::default()
        });
        let env = Env::with_dovecot(Backend::Sqlite, dovecot).await;
        env.configure(&[]);
        let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string();
        assert!(text.contains(expected), "{text}");
        assert!(
            text.contains("SKIP login skipped: no secure connection"),
            "{text}"
        );
    }
    // Without the private CA: an unknown issuer.
    let env = Env::new(Backend::Sqlite).await;
    let output = env.run(&[
        "mailbox",
        "configure",
        "--host",
        "127.0.0.1",
        "--port",
        &env.dovecot.imaps_port.to_string(),
        "--user",
        "queue",
        "--password-env",
        "IMAP_PASSWORD",
        "--queue",
        QUEUE,
        "--storage",
        STORAGE,
    ]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).to_string();
    assert!(
        text.contains(
            "FAIL tls TLS with 127.0.0.1 failed: the certificate is signed by an unknown authority"
        ),
        "{text}"
    );
    // The same CA installed in the system's store (here: SSL_CERT_FILE,
    // which the system store honours) is trusted with --trust system.
    let output = env.run(&[
        "mailbox",
        "configure",
        "--host",
        "127.0.0.1",
        "--port",
        &env.dovecot.imaps_port.to_string(),
        "--user",
        "queue",
        "--password-env",
        "IMAP_PASSWORD",
        "--queue",
        QUEUE,
        "--storage",
        STORAGE,
        "--trust",
        "system",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let check = env
        .command()
        .env("SSL_CERT_FILE", env.dovecot.ca_file())
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(text.contains("PASS tls tls certificate verified for 127.0.0.1, issued by CN=Mailscribe Fixture CA, valid until "), "{text}");
    let unset = env
        .command()
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem")
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&unset.stdout).to_string();
    assert!(
        text.contains("FAIL tls"),
        "a system store without our CA does not trust the server: {text}"
    );
}

#[tokio::test]
async fn check_reads_myrights_where_the_server_has_acls() {
    use mailscribe_testkit::{Dovecot, DovecotOptions};

    /// A Dovecot enforcing ACLs: all rights, except `rules` for the
    /// fixture's user; salespeople imported and the mailbox configured,
    /// logging not enabled.
    async fn env_with_acl(rules: &[(&str, &str)]) -> Env {
        let dovecot = Dovecot::start_with(DovecotOptions {
            acl: Some(
                rules
                    .iter()
                    .map(|(folder, rights)| ((*folder).to_owned(), (*rights).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        });
        let env = Env::with_dovecot(Backend::Sqlite, dovecot).await;
        env.import_directory();
        env.configure(&[]);
        env
    }
    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    // All rights: the server advertises ACL, so storage_writable comes
    // from MYRIGHTS (only that branch prints "MYRIGHTS"), not from the
    // APPEND probe; enabling and a run work as without ACLs.
    let env = env_with_acl(&[]).await;
    let output = env.ok(&["check"]);
    assert!(
        output.contains("PASS storage_writable MYRIGHTS lrwstipekxacd includes insert"),
        "{output}"
    );
    assert!(
        output.contains(
            "PASS queue_folder Public Folders/Email Logging/Queue exists, 0 messages waiting"
        ),
        "{output}"
    );
    env.ok(&["enable", "--accept-data-statement"]);
    env.deliver(&crate::harness::numbered_message(2));
    let summary: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"]))
            .expect("json summary");
    assert_eq!(
        (summary["logged"].as_u64(), summary["failed"].as_u64()),
        (Some(1), Some(0)),
        "{summary}"
    );
    assert_eq!(
        (env.dovecot.count(QUEUE), env.dovecot.count(STORAGE)),
        (0, 1)
    );
    drop(env);

    // Storage without insert: check fails with the rights it was given,
    // and logging cannot be enabled.
    let env = env_with_acl(&[(STORAGE, "lr")]).await;
    let output = env.run(&["check"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL storage_writable the mailbox user may not add messages to Public Folders/Email Logging/Storage (rights: lr); grant the insert right"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("PASS queue_folder"),
        "only the storage folder is restricted: {stdout}"
    );
    assert_eq!(
        env.run(&["enable", "--accept-data-statement"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(env.dovecot.count(STORAGE), 0, "no probe message was tried");
    drop(env);

    // A queue the user may only read: SELECT answers [READ-ONLY] (Dovecot
    // does so only without any of i/e/w/s/t). Check fails, enable is
    // refused with exit 3, and nothing is taken from the queue.
    let env = env_with_acl(&[(QUEUE, "lr")]).await;
    let output = env.run(&["check"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL queue_folder Public Folders/Email Logging/Queue opens read-only: the mailbox user needs the right to delete messages there"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("PASS storage_writable MYRIGHTS lrwstipekxacd includes insert"),
        "{stdout}"
    );
    let enable = env.run(&["enable", "--accept-data-statement"]);
    let stderr = text(&enable.stderr);
    assert_eq!(enable.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("FAIL queue_folder") && stderr.contains("logging stays disabled"),
        "{stderr}"
    );
    assert!(env.ok(&["mailbox", "show"]).contains("enabled = false"));
    env.deliver(&crate::harness::numbered_message(2));
    assert_eq!(
        env.run(&["run", "--once"]).status.code(),
        Some(3),
        "still disabled"
    );
    assert_eq!(
        (env.dovecot.count(QUEUE), env.dovecot.count(STORAGE)),
        (1, 0)
    );
    drop(env);

    // A queue that opens read-write but whose messages the user may not
    // remove: with "lrs" Dovecot refuses UID MOVE ([NOPERM]); with "lrse"
    // MOVE works but STORE \Deleted is silently ignored, so a not-logged
    // copy would stay in the queue. Check reads MYRIGHTS on the queue too.
    for (rights, answered) in [("lrs", "lrs"), ("lrse", "lrsed"), ("lrst", "lrstd")] {
        let env = env_with_acl(&[(QUEUE, rights)]).await;
        let output = env.run(&["check"]);
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{rights}: {stdout}");
        assert!(
            stdout.contains(&format!(
                "FAIL queue_folder the mailbox user may not remove messages from Public Folders/Email Logging/Queue (rights: {answered}); grant the rights to mark messages deleted (t) and to expunge (e)"
            )),
            "{rights}: {stdout}"
        );
        assert_eq!(
            env.run(&["enable", "--accept-data-statement"])
                .status
                .code(),
            Some(3),
            "{rights}"
        );
    }
}

#[tokio::test]
async fn a_server_that_ignores_deletion_fails_the_run_instead_of_claiming_it() {
    use mailscribe_testkit::{Dovecot, DovecotOptions};
    // The queue lets the user move messages out but not mark them deleted
    // (no ACL right t): Dovecot answers OK to STORE \Deleted and keeps them.
    // Check refuses such a queue, so the rights are taken away after logging
    // was enabled, which is what the store records here.
    let dovecot = Dovecot::start_with(DovecotOptions {
        acl: Some(vec![(QUEUE.to_owned(), "lrsiwe".to_owned())]),
        ..Default::default()
    });
    let env = Env::with_dovecot(Backend::Sqlite, dovecot).await;
    env.import_directory();
    env.configure(&[]);
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    store
        .set_enablement(
            &mailscribe_core::MailboxName::default_name(),
            &mailscribe_core::Enablement {
                enabled: true,
                accepted_by: Some("test".into()),
                accepted_at: Some(chrono::Utc::now()),
            },
        )
        .await
        .unwrap();
    store.close().await;

    env.deliver(&crate::harness::numbered_message(5)); // unrelated: not logged, so deleted
    let output = env.run(&["run", "--once"]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the server kept 1 messages Mailscribe deleted from the queue"),
        "{stderr}"
    );
    assert_eq!(
        env.dovecot.count(QUEUE),
        1,
        "the message is still there, and the run says so"
    );
    let rows = crate::harness::decisions(&env);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["reason"].as_str(), rows[0]["disposition"].as_str()),
        (Some("unknown_sender"), None),
        "{rows:?}"
    );
}

#[tokio::test]
async fn check_needs_the_insert_right_on_the_quarantine_folder() {
    use mailscribe_testkit::{Dovecot, DovecotOptions};
    const QUARANTINE: &str = "Public Folders/Email Logging/Quarantine";
    let dovecot = Dovecot::start_with(DovecotOptions {
        acl: Some(vec![(QUARANTINE.to_owned(), "lr".to_owned())]),
        ..Default::default()
    });
    dovecot.create_folder(QUARANTINE);
    let env = Env::with_dovecot(Backend::Sqlite, dovecot).await;
    env.import_directory();
    env.configure(&["--quarantine-folder", QUARANTINE]);
    let output = env.run(&["check"]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FAIL quarantine_folder the mailbox user may not add messages to {QUARANTINE} (rights: lr); grant the insert right")),
        "{stdout}"
    );
    assert!(stdout.contains("PASS storage_writable"), "{stdout}");
}

#[tokio::test]
async fn backup_copies_a_sqlite_database_and_points_postgresql_to_pg_dump() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    env.deliver(&crate::harness::numbered_message(1));
    env.ok(&["run", "--once"]);
    let copy = env.dir.path().join("copy.db");
    let text = env.ok(&["backup", "--output", copy.to_str().unwrap()]);
    assert!(
        text.contains("key file") && text.contains("test.key"),
        "{text}"
    );
    // The copy is a working database with the same log.
    let copied = env
        .command()
        .env("MAILSCRIBE_DB", format!("sqlite://{}", copy.display()))
        .args(["interactions", "export", "--format", "json"])
        .output()
        .unwrap();
    assert!(copied.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&copied.stdout).unwrap();
    assert_eq!(rows.len(), entry_keys(&env).len());
    // An existing file is never overwritten.
    assert_eq!(
        env.run(&["backup", "--output", copy.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    let postgres = Env::new(Backend::Postgres).await;
    let output = postgres.run(&["backup", "--output", "x.db"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
}

#[tokio::test]
async fn canceled_entries_are_deleted_from_the_command_line() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    for n in 1..=4 {
        env.deliver(&crate::harness::numbered_message(n));
    }
    env.ok(&["run", "--once"]);
    let store = mailscribe_store::Store::open(&env.db.url().parse().unwrap())
        .await
        .unwrap();
    let entries = store.entries_after(0, 100).await.unwrap();
    store
        .set_entry_canceled(entries[0].entry_no, true)
        .await
        .unwrap();
    store.close().await;
    assert_eq!(
        env.run(&["interactions", "delete"]).status.code(),
        Some(2),
        "nothing said to delete"
    );
    assert_eq!(
        env.run(&["interactions", "delete", "--canceled", "--before", "soon"])
            .status
            .code(),
        Some(2)
    );
    let text = env.ok(&[
        "interactions",
        "delete",
        "--canceled",
        "--before",
        "2099-01-01",
        "--dry-run",
    ]);
    assert_eq!(
        text.trim(),
        "would delete 1 entries and 1 message records no other entry uses"
    );
    assert_eq!(entry_keys(&env).len(), 4);
    env.ok(&[
        "interactions",
        "delete",
        "--canceled",
        "--before",
        "2099-01-01",
    ]);
    assert_eq!(entry_keys(&env).len(), 3);
    assert_eq!(decisions(&env).len(), 4, "the ledger keeps every decision");
    let by_number = env.ok(&[
        "interactions",
        "delete",
        "--entry",
        &entries[1].entry_no.to_string(),
    ]);
    assert!(by_number.contains("deleted 1 entries"));
    assert_eq!(entry_keys(&env).len(), 2);
}

#[tokio::test]
async fn a_privacy_blocked_contact_is_never_logged() {
    let env = Env::new(Backend::Sqlite).await;
    env.import_directory();
    // Contact 1 asked to be left out; contact 2 did not.
    env.write("blocked.csv", "no,name,email,company,privacy_blocked\n1,Carl Contact,c1@customer.example,Customer Corp,true\n2,Cora Contact,c2@customer.example,Customer Corp,false\n");
    env.ok(&["contacts", "import", "blocked.csv"]);
    env.write("bad.csv", "no,name,email,company,privacy_blocked\n1,Carl Contact,c1@customer.example,Customer Corp,maybe\n");
    let refused = env.run(&["contacts", "import", "bad.csv"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("line 2: privacy_blocked 'maybe' must be true or false")
    );
    env.configure(&[]);
    env.ok(&["enable", "--accept-data-statement"]);
    let both = message(
        &[
            "From: sp1@ourco.example",
            "To: c1@customer.example",
            "Cc: c2@customer.example",
            "Subject: both",
            "Message-ID: <both@test.example>",
        ],
        "hello",
    );
    let only_blocked = message(
        &[
            "From: sp1@ourco.example",
            "To: c1@customer.example",
            "Subject: one",
            "Message-ID: <one@test.example>",
        ],
        "hi",
    );
    let from_blocked = message(
        &[
            "From: c1@customer.example",
            "To: sp1@ourco.example",
            "Subject: in",
            "Message-ID: <in@test.example>",
        ],
        "yo",
    );
    for raw in [&both, &only_blocked, &from_blocked] {
        env.deliver(raw);
    }
    env.ok(&["run", "--once"]);
    let keys = entry_keys(&env);
    assert_eq!(
        keys,
        [(
            "<both@test.example>".to_owned(),
            "SP1".to_owned(),
            "2".to_owned(),
            "outbound".to_owned()
        )],
        "one entry, for contact 2"
    );
    let reasons: Vec<String> = decisions(&env)
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["logged", "privacy_blocked", "privacy_blocked"]);
}

#[tokio::test]
async fn templates_with_groups_and_campaigns_as_in_business_central() {
    let env = Env::new(Backend::Sqlite).await;
    env.set_up(100);
    // A campaign, and a template that counts toward it.
    env.ok(&[
        "campaign",
        "set",
        "cp-2026",
        "--description",
        "Spring offers",
        "--starts",
        "2026-03-01",
        "--ends",
        "2026-05-31",
    ]);
    assert_eq!(
        env.run(&[
            "campaign",
            "set",
            "X",
            "--description",
            "d",
            "--starts",
            "2026-05-01",
            "--ends",
            "2026-04-01"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        env.run(&[
            "template",
            "set",
            "SALES",
            "--cost",
            "1",
            "--minutes",
            "2",
            "--campaign",
            "NOPE"
        ])
        .status
        .code(),
        Some(2)
    );
    env.ok(&[
        "template",
        "set",
        "sales",
        "--cost",
        "4.50",
        "--minutes",
        "15",
        "--description",
        "Sales mail",
        "--group",
        "EMAIL-OUT",
        "--campaign",
        "CP-2026",
    ]);
    let campaigns = env.ok(&["campaign", "list"]);
    assert_eq!(
        campaigns.lines().nth(1),
        Some("CP-2026\tSpring offers\t2026-03-01\t2026-05-31")
    );
    // Logged mail uses the template the setting names, once it exists.
    assert_eq!(
        env.run(&["settings", "set", "email_template", "MISSING"])
            .status
            .code(),
        Some(2)
    );
    env.ok(&["settings", "set", "email_template", "sales"]);
    let list = env.ok(&["template", "list"]);
    assert!(
        list.lines()
            .any(|l| l == "SALES\tSales mail\t4.50\t15\tEMAIL-OUT\tCP-2026\ttrue"),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("EMAIL\t") && l.ends_with("\tfalse")),
        "{list}"
    );
    let refused = env.run(&["template", "remove", "SALES"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("email_template"));
    // Setting cost and minutes again keeps the group and the campaign.
    env.ok(&[
        "template",
        "set",
        "SALES",
        "--cost",
        "4.50",
        "--minutes",
        "15",
    ]);
    env.deliver(&crate::harness::numbered_message(1));
    env.ok(&["run", "--once"]);
    let csv = env.ok(&["interactions", "export", "--format", "csv"]);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",mailbox_name,run_id,interaction_group,campaign_no,bc_entry_no"),
        "{csv}"
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["interactions", "export", "--format", "json"])).unwrap();
    assert_eq!(
        (
            rows[0]["template_code"].as_str(),
            rows[0]["cost"].as_str(),
            rows[0]["interaction_group"].as_str(),
            rows[0]["campaign_no"].as_str()
        ),
        (
            Some("SALES"),
            Some("4.50"),
            Some("EMAIL-OUT"),
            Some("CP-2026")
        )
    );
    // Back to EMAIL; SALES can go, its entries keep their values.
    env.ok(&["settings", "set", "email_template", "EMAIL"]);
    env.ok(&["template", "remove", "SALES"]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["interactions", "export", "--format", "json"])).unwrap();
    assert_eq!(rows[0]["campaign_no"], "CP-2026");
}
