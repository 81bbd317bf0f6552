//! Tests of header parsing on hand-written hard cases.

use super::*;

fn parse(text: &str) -> ParsedMessage {
    parse_message(text.as_bytes())
}

#[test]
fn reads_the_headers_the_decision_needs() {
    let msg = parse(
        "From: \"Alice A.\" <Alice@Example.com>\r\n\
         To: bob@ourco.example, Carol <carol@ourco.example>\r\n\
         Cc: undisclosed-recipients:;\r\n\
         Cc: team: dave@ourco.example, erin@ourco.example;\r\n\
         Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and a very long subject that BC would have cut at one hundred characters, which we do not do, not even for this one\r\n\
         Message-ID: <m1@example.com>\r\n\
         Date: Tue, 3 Mar 2026 10:15:00 +0200\r\n\
         Sensitivity: Company-Confidential\r\n\
         \r\n\
         body\r\n",
    );
    assert_eq!(
        msg.sender().map(EmailAddress::as_str),
        Some("alice@example.com")
    );
    let to: Vec<_> = msg.to.iter().map(EmailAddress::as_str).collect();
    assert_eq!(to, ["bob@ourco.example", "carol@ourco.example"]);
    let cc: Vec<_> = msg.cc.iter().map(EmailAddress::as_str).collect();
    assert_eq!(cc, ["dave@ourco.example", "erin@ourco.example"]);
    assert!(msg.subject.starts_with("Grüße and a very long"));
    assert!(msg.subject.len() > 100);
    assert_eq!(
        msg.message_id.as_ref().map(MessageId::as_written),
        Some("<m1@example.com>")
    );
    assert_eq!(
        msg.date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2026-03-03T08:15:00+00:00")
    );
    assert!(msg.is_sensitive());
    assert_eq!(msg.key(), MessageKey::MessageId("m1@example.com".into()));
    assert!(msg.problems.is_empty(), "{:?}", msg.problems);
}

#[test]
fn first_from_header_and_first_valid_mailbox_win() {
    let msg = parse(
        "From: not-an-address, second@example.com\n\
         From: third@example.com\n\
         Sender: sender@example.com\n\
         To: x@y.z\n\n",
    );
    assert_eq!(
        msg.from.as_ref().map(EmailAddress::as_str),
        Some("second@example.com")
    );
    assert_eq!(
        msg.sender().map(EmailAddress::as_str),
        Some("second@example.com")
    );
}

#[test]
fn sender_header_is_the_fallback() {
    let msg = parse("From: nobody\nSender: Sales <s@ourco.example>\nTo: x@y.z\n\n");
    assert_eq!(msg.from, None);
    assert_eq!(
        msg.sender().map(EmailAddress::as_str),
        Some("s@ourco.example")
    );
}

#[test]
fn dates_that_do_not_parse_are_problems_not_failures() {
    let missing = parse("From: a@b.c\nTo: x@y.z\n\n");
    assert_eq!(missing.date, None);
    assert!(missing.problems.contains(&ParseProblem::MissingDate));

    let garbage = parse("From: a@b.c\nTo: x@y.z\nDate: the day after tomorrow\n\n");
    assert_eq!(garbage.date, None);
    assert!(garbage.problems.contains(&ParseProblem::UnparseableDate));
}

#[test]
fn no_message_id_keys_on_the_hash() {
    let msg = parse("From: a@b.c\nTo: x@y.z\n\nhello");
    assert_eq!(msg.message_id, None);
    assert_eq!(
        msg.key(),
        MessageKey::Sha256(sha256_hex(b"From: a@b.c\nTo: x@y.z\n\nhello"))
    );
    assert_eq!(msg.sha256.len(), 64);
}

#[test]
fn empty_and_binary_input_do_not_panic() {
    for raw in [
        &b""[..],
        b"\0\0\0\xff\xfe",
        b"\r\n\r\n",
        b"just text without colon",
    ] {
        let msg = parse_message(raw);
        assert_eq!(msg.sender(), None);
    }
    assert!(!parse_message(b"").has_headers());
}

#[test]
fn sensitivity_values() {
    let cases = [
        ("Private", true),
        ("personal", true),
        ("Company-Confidential", true),
        ("Normal", false),
        ("", false),
    ];
    for (value, expected) in cases {
        let msg = parse(&format!("From: a@b.c\nTo: x@y.z\nSensitivity: {value}\n\n"));
        assert_eq!(msg.is_sensitive(), expected, "{value:?}");
    }
}

#[test]
fn the_first_of_repeated_headers_wins_and_control_characters_go() {
    let msg = parse(
        "From: a@b.c\nTo: x@y.z\nMessage-ID: <first@x>\nMessage-ID: <second@x>\n\
         Subject: =?utf-8?q?one=00two?=\nSubject: later\nDate: Tue, 3 Mar 2026 10:00:00 +0000\n\
         Date: Wed, 4 Mar 2026 10:00:00 +0000\n\n",
    );
    assert_eq!(
        msg.message_id.as_ref().map(MessageId::normalised),
        Some("first@x")
    );
    assert_eq!(msg.subject, "one two");
    assert_eq!(
        msg.date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2026-03-03T10:00:00+00:00")
    );
}

#[test]
fn an_over_long_sender_is_kept_but_never_matches() {
    let local = "a".repeat(300);
    let msg = parse(&format!("From: {local}@example.com\nTo: x@y.z\n\n"));
    let sender = msg.sender().expect("still a sender");
    assert!(!sender.can_match());
}

#[test]
fn junk_before_the_first_header_is_skipped() {
    let headers = "From: Carl <c1@customer.example>\r\nTo: sp1@ourco.example\r\nSubject: hello\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n";
    let cases: &[(&str, &str)] = &[
        ("leading spaces on the first header line", "   "),
        ("a tab", "\t"),
        ("blank lines (CR/LF) first", "\r\n\r\n"),
        ("a line of spaces, then the headers", "    \r\n"),
        (
            "an mbox separator",
            "From c1@customer.example Tue Mar  3 10:00:00 2026\n",
        ),
        (
            "whitespace, then an mbox separator",
            " \nFrom MAILER-DAEMON Tue Mar  3 10:00:00 2026\r\n",
        ),
    ];
    for (what, junk) in cases {
        let raw = format!("{junk}{headers}");
        let skipped = &junk.len();
        let msg = parse_message(raw.as_bytes());
        assert_eq!(
            msg.sender().map(|a| a.as_str()),
            Some("c1@customer.example"),
            "{what}"
        );
        assert_eq!(msg.to.len(), 1, "{what}");
        assert_eq!(msg.subject, "hello", "{what}");
        assert_eq!(
            msg.message_id.as_ref().map(|m| m.normalised()),
            Some("m@x"),
            "{what}"
        );
        assert!(
            msg.problems
                .contains(&ParseProblem::SkippedBeforeHeaders(*skipped)),
            "{what}: {:?}",
            msg.problems
        );
        // The key of a message without Message-ID stays the hash of the
        // bytes as the server returns them, junk included.
        assert_eq!(msg.sha256, sha256_hex(raw.as_bytes()), "{what}");
        // The message view reads it too.
        let view = crate::message_view::read_message(raw.as_bytes()).expect("readable");
        assert!(
            view.headers
                .iter()
                .any(|(name, value)| name == "Subject" && value == "hello"),
            "{what}: {:?}",
            view.headers
        );
        assert_eq!(view.text.as_deref().map(str::trim), Some("body"), "{what}");
    }
    // Without junk nothing is noted.
    assert!(
        !parse_message(headers.as_bytes())
            .problems
            .iter()
            .any(|p| matches!(p, ParseProblem::SkippedBeforeHeaders(_)))
    );
    // A message with no header at all still has none.
    for raw in [
        &b"   \r\n\r\n"[..],
        b"From nobody Tue Mar  3 10:00:00 2026\n",
        b"\r\n\r\nonly a body, no header\r\n",
    ] {
        assert!(
            !parse_message(raw).has_headers(),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}
