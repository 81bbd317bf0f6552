//! Postfix as the mail flow rule (issue 4): mail sent through Postfix
//! between an outside and an inside address is BCC'd over LMTP into the
//! public Queue, and `mailscribe run --once` logs it from there.
//! Mail that does not touch the inside domain is never copied.

use std::time::Duration;

use mailscribe_testkit::{Dovecot, DovecotOptions, Postfix, QUEUE, STORAGE};

use crate::harness::{Backend, Env, entry_keys, message};

const INSIDE_DOMAIN: &str = "ourco.example";

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
    let dovecot = Dovecot::start_with(DovecotOptions {
        lmtp: true,
        ..Default::default()
    });
    let postfix = Postfix::start(&dovecot, INSIDE_DOMAIN);
    let env = Env::with_dovecot(Backend::Sqlite, dovecot).await;
    env.write(
        "salespeople.csv",
        "code,name,email\nREP,Rita Rep,rep@ourco.example\n",
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
        ["<in@client.example>", "<out@ourco.example>"],
        "one copy of each message that touches the inside domain, none of the unrelated one; maillog:\n{}",
        postfix.maillog()
    );

    let summary: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--once", "--format", "json"]))
            .expect("json summary");
    assert_eq!(
        (summary["seen"].as_u64(), summary["logged"].as_u64()),
        (Some(2), Some(2)),
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
}
