//! Postfix as the mail flow rule (issue 4): mail sent through Postfix
//! between an outside and an inside address is BCC'd over LMTP into the
//! public Queue, and `mailscribe run --once` logs it from there.
//! Mail that does not touch the inside domain is never copied.

use std::time::Duration;

use mailscribe_testkit::{Dovecot, DovecotOptions, INSIDE_DOMAIN, PostfixDirs, QUEUE, STORAGE};

use crate::harness::{Backend, Env, entry_keys, message};

fn mail(from: &str, to: &str, subject: &str, message_id: &str) -> Vec<u8> {
    message(
        &[
            &format!("From: {from}"),
            &format!("To: {to}"),
            &format!("Subject: {subject}"),
            &format!("Message-ID: {message_id}"),
            "Date: Tue, 3 Mar 2026 10:00:00 +0000",
        ],
        // A line starting with a dot checks the SMTP client's dot-stuffing.
        "Hello,\r\n.signature follows\r\n-- \r\nsent through Postfix",
    )
}

#[tokio::test]
async fn mail_bccd_by_postfix_into_the_queue_is_logged() {
    assert_eq!(
        INSIDE_DOMAIN, "ourco.example",
        "the addresses below are the guide's"
    );
    let postfix_dirs = PostfixDirs::new();
    let dovecot = Dovecot::start_with(DovecotOptions {
        lmtp_for_postfix: Some(postfix_dirs.queue_directory()),
        ..Default::default()
    });
    let postfix = postfix_dirs.start(&dovecot);
    let env = Env::with_dovecot(Backend::Sqlite, dovecot).await;
    env.write(
        "salespeople.csv",
        "code,name,email\nREP,Rita Rep,rep@ourco.example\nREP2,Ron Rep,ron@ourco.example\n",
    );
    env.write(
        "contacts.csv",
        "no,name,email,company,type\nC1,Carl Customer,customer@client.example,,person\n",
    );
    env.ok(&["salespeople", "import", "salespeople.csv"]);
    env.ok(&["contacts", "import", "contacts.csv"]);
    env.configure(&[]);
    env.ok(&["enable", "--accept-data-statement"]);

    let sent = [
        (
            "customer@client.example",
            "rep@ourco.example",
            "question",
            "<in@client.example>",
        ),
        (
            "rep@ourco.example",
            "customer@client.example",
            "answer",
            "<out@ourco.example>",
        ),
        // Internal only: copied as well (Postfix's BCC maps cannot tell),
        // and decided `no_counterpart`.
        (
            "rep@ourco.example",
            "ron@ourco.example",
            "internal",
            "<internal@ourco.example>",
        ),
        // Neither side inside: the rule does not apply.
        (
            "stranger@elsewhere.example",
            "customer@client.example",
            "unrelated",
            "<unrelated@elsewhere.example>",
        ),
    ];
    let queue_ids: Vec<String> = sent
        .iter()
        .map(|(from, to, subject, message_id)| {
            postfix.send(from, to, &mail(from, to, subject, message_id))
        })
        .collect();
    // Every message is through Postfix (copied or discarded), so the queue
    // holds all the copies there will ever be.
    postfix.wait_until_done(&queue_ids, Duration::from_secs(60));
    let mut queued = env.dovecot.message_ids(QUEUE);
    queued.sort();
    assert_eq!(
        queued,
        [
            "<in@client.example>",
            "<internal@ourco.example>",
            "<out@ourco.example>"
        ],
        "one copy of each message that touches the inside domain, none of the unrelated one; maillog:\n{}",
        postfix.maillog()
    );

    let summary: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"]))
            .expect("json summary");
    assert_eq!(
        (summary["seen"].as_u64(), summary["logged"].as_u64()),
        (Some(3), Some(2)),
        "{summary}"
    );
    assert_eq!(
        (summary["entries"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(0)),
        "{summary}"
    );

    let expected = [
        ("<in@client.example>", "REP", "C1", "inbound"),
        ("<out@ourco.example>", "REP", "C1", "outbound"),
    ]
    .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()));
    assert_eq!(entry_keys(&env), expected);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["interactions", "export", "--format", "json"]))
            .expect("json export");
    let by_message: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|row| {
            let field = |name: &str| row[name].as_str().unwrap_or_default();
            (field("message_id"), field("initiated_by"), field("subject"))
        })
        .collect();
    assert!(
        by_message.contains(&("<in@client.example>", "them", "question")),
        "{rows:?}"
    );
    assert!(
        by_message.contains(&("<out@ourco.example>", "us", "answer")),
        "{rows:?}"
    );
    assert_eq!(
        env.dovecot.count(QUEUE),
        0,
        "the queue is empty after the run"
    );
    assert_eq!(env.dovecot.count(STORAGE), 2);
    let decisions: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["decisions", "export", "--format", "json"]))
            .expect("json decisions");
    let internal = decisions
        .iter()
        .find(|row| row["message_id"] == "<internal@ourco.example>")
        .expect("internal decided");
    assert_eq!(internal["reason"], "no_counterpart", "{internal}");
}

/// The guide shows the shipped configuration files verbatim, so that what
/// an administrator copies from it is what the test above runs.
#[test]
fn the_mail_server_guide_shows_the_tested_postfix_and_dovecot_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guide = std::fs::read_to_string(root.join("docs/mail-server-setup.md")).expect("the guide");
    for name in ["main.cf", "90-email-logging.conf", "email-logging.sieve"] {
        let file = std::fs::read_to_string(root.join("packaging/postfix-dovecot").join(name))
            .expect("shipped file");
        assert!(
            guide.contains(&format!("\n{file}```\n")),
            "docs/mail-server-setup.md must show packaging/postfix-dovecot/{name} verbatim in a code block"
        );
    }
}
