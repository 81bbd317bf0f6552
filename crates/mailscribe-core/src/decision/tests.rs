//! Table-driven tests of the decision table, one row per case.

use super::*;
use crate::address::EmailAddress;
use crate::directory::ContactNo;
use crate::parse::parse_message;

/// The directory every case runs against.
///
/// SP1 has two addresses; C1 and C2 are people at company CO1, which has an
/// address of its own; `shared@` is held by contacts 10, 9 and CT-1.
fn directory() -> DirectoryView {
    let mut dir = DirectoryView::default();
    let addr = |s: &str| EmailAddress::parse(s).unwrap();
    let sp = |s: &str| SalespersonCode::parse(s).unwrap();
    let contact = |no: &str, company: Option<&str>| ContactRef {
        no: ContactNo::parse(no).unwrap(),
        company_no: company.map(|c| ContactNo::parse(c).unwrap()),
    };
    dir.add_salesperson(addr("sp1@ourco.example"), sp("SP1"));
    dir.add_salesperson(addr("sp1.alt@ourco.example"), sp("SP1"));
    dir.add_salesperson(addr("sp2@ourco.example"), sp("SP2"));
    dir.add_salesperson(addr("both@ourco.example"), sp("SP3"));
    dir.add_contact(addr("both@ourco.example"), contact("77", None));
    dir.add_contact(addr("c1@customer.example"), contact("C1", Some("CO1")));
    dir.add_contact(addr("c1.home@customer.example"), contact("C1", Some("CO1")));
    dir.add_contact(addr("c2@customer.example"), contact("C2", Some("CO1")));
    dir.add_contact(addr("info@customer.example"), contact("CO1", None));
    dir.add_contact(addr("shared@x.example"), contact("10", None));
    dir.add_contact(addr("shared@x.example"), contact("9", None));
    dir.add_contact(addr("shared@x.example"), contact("CT-1", None));
    // B1 asked that nothing about them be kept: privacy-blocked.
    dir.add_contact(addr("blocked@customer.example"), contact("B1", Some("CO1")));
    dir.block(ContactNo::parse("B1").unwrap());
    dir
}

struct Case {
    name: &'static str,
    headers: &'static str,
    draft: bool,
    already_logged: bool,
    reason: Reason,
    /// "out SP1 C1" or "in SP2 C1", in order.
    entries: &'static [&'static str],
    ambiguous: bool,
}

const fn case(
    name: &'static str,
    headers: &'static str,
    reason: Reason,
    entries: &'static [&'static str],
) -> Case {
    Case {
        name,
        headers,
        draft: false,
        already_logged: false,
        reason,
        entries,
        ambiguous: false,
    }
}

fn check(case: &Case, skip_sensitive: bool) {
    let raw = format!("{}\r\n\r\nbody\r\n", case.headers.replace('\n', "\r\n"));
    let message = parse_message(raw.as_bytes());
    let dir = directory();
    let decision = decide(&DecisionInput {
        message: &message,
        is_draft: case.draft,
        skip_sensitive,
        already_logged: case.already_logged,
        directory: &dir,
    });
    let entries: Vec<String> = decision
        .entries
        .iter()
        .map(|e| {
            let dir = match e.direction {
                Direction::Outbound => "out",
                Direction::Inbound => "in",
            };
            format!("{dir} {} {}", e.salesperson, e.contact.no)
        })
        .collect();
    assert_eq!(decision.reason, case.reason, "case {}", case.name);
    assert_eq!(entries, case.entries, "case {}", case.name);
    assert_eq!(
        decision.ambiguous, case.ambiguous,
        "case {} ambiguity",
        case.name
    );
}

#[test]
fn decision_table() {
    let cases = [
        // Privacy-blocked contacts (PRODUCT.md section 8): never logged, and
        // `privacy_blocked` when they were the only counterparts.
        case(
            "salesperson to a blocked contact only",
            "From: sp1@ourco.example\nTo: blocked@customer.example",
            Reason::PrivacyBlocked,
            &[],
        ),
        case(
            "a blocked contact and another: one entry, for the other",
            "From: sp1@ourco.example\nTo: blocked@customer.example\nCc: c2@customer.example",
            Reason::Logged,
            &["out SP1 C2"],
        ),
        case(
            "a blocked contact writes to a salesperson",
            "From: blocked@customer.example\nTo: sp1@ourco.example",
            Reason::PrivacyBlocked,
            &[],
        ),
        case(
            "a blocked contact writes to nobody we know",
            "From: blocked@customer.example\nTo: stranger@elsewhere.example",
            Reason::NoCounterpart,
            &[],
        ),
        // Row 6: outbound.
        case(
            "salesperson to contact",
            "From: sp1@ourco.example\nTo: c1@customer.example",
            Reason::Logged,
            &["out SP1 C1"],
        ),
        case(
            "BC TestMessageLogged, message 2: SP1 to C1, C2 in Cc",
            "From: sp1@ourco.example\nTo: c1@customer.example\nCc: c2@customer.example",
            Reason::Logged,
            &["out SP1 C1", "out SP1 C2"],
        ),
        case(
            "two addresses of one contact give one entry",
            "From: sp1@ourco.example\nTo: c1@customer.example, C1.Home@Customer.Example",
            Reason::Logged,
            &["out SP1 C1"],
        ),
        case(
            "a person and its company give two entries",
            "From: sp1@ourco.example\nTo: c1@customer.example\nCc: info@customer.example",
            Reason::Logged,
            &["out SP1 C1", "out SP1 CO1"],
        ),
        case(
            "salespeople among outbound recipients are ignored",
            "From: sp1@ourco.example\nTo: sp2@ourco.example, c2@customer.example",
            Reason::Logged,
            &["out SP1 C2"],
        ),
        case(
            "sender's second address matches",
            "From: SP1.ALT@ourco.example\nTo: c1@customer.example",
            Reason::Logged,
            &["out SP1 C1"],
        ),
        // Row 7: inbound.
        case(
            "BC TestMessageLogged, message 1: C1 to SP1, SP2 in Cc",
            "From: c1@customer.example\nTo: sp1@ourco.example\nCc: sp2@ourco.example",
            Reason::Logged,
            &["in SP1 C1", "in SP2 C1"],
        ),
        case(
            "two addresses of one salesperson give one entry",
            "From: c1@customer.example\nTo: sp1@ourco.example, sp1.alt@ourco.example",
            Reason::Logged,
            &["in SP1 C1"],
        ),
        case(
            "other contacts among inbound recipients are ignored",
            "From: c1@customer.example\nTo: c2@customer.example, sp2@ourco.example",
            Reason::Logged,
            &["in SP2 C1"],
        ),
        case(
            "Sender header is used when From has no usable address",
            "From: undisclosed\nSender: c2@customer.example\nTo: sp1@ourco.example",
            Reason::Logged,
            &["in SP1 C2"],
        ),
        Case {
            ambiguous: true,
            ..case(
                "an address shared by contacts goes to the lowest number",
                "From: shared@x.example\nTo: sp1@ourco.example",
                Reason::Logged,
                &["in SP1 9"],
            )
        },
        Case {
            ambiguous: true,
            ..case(
                "outbound to a shared address goes to the lowest number",
                "From: sp2@ourco.example\nTo: shared@x.example",
                Reason::Logged,
                &["out SP2 9"],
            )
        },
        case(
            "an address on a salesperson and a contact is a salesperson",
            "From: both@ourco.example\nTo: c1@customer.example",
            Reason::Logged,
            &["out SP3 C1"],
        ),
        // Row 8.
        case(
            "internal only",
            "From: sp1@ourco.example\nTo: sp2@ourco.example",
            Reason::NoCounterpart,
            &[],
        ),
        case(
            "contact writes to contacts",
            "From: c1@customer.example\nTo: c2@customer.example",
            Reason::NoCounterpart,
            &[],
        ),
        case(
            "salesperson to unknown recipients",
            "From: sp1@ourco.example\nTo: stranger@elsewhere.example",
            Reason::NoCounterpart,
            &[],
        ),
        case(
            "Bcc is never used",
            "From: sp1@ourco.example\nTo: sp2@ourco.example\nBcc: c1@customer.example",
            Reason::NoCounterpart,
            &[],
        ),
        // Row 9.
        case(
            "unknown sender",
            "From: stranger@elsewhere.example\nTo: sp1@ourco.example",
            Reason::UnknownSender,
            &[],
        ),
        // Rows 1 to 5.
        Case {
            draft: true,
            ..case(
                "draft",
                "From: sp1@ourco.example\nTo: c1@customer.example",
                Reason::Draft,
                &[],
            )
        },
        case(
            "no sender",
            "To: c1@customer.example\nSubject: x",
            Reason::NoSender,
            &[],
        ),
        case(
            "unusable sender",
            "From: <>\nTo: c1@customer.example",
            Reason::NoSender,
            &[],
        ),
        case(
            "no recipients",
            "From: sp1@ourco.example\nSubject: hi",
            Reason::NoRecipients,
            &[],
        ),
        case(
            "only unusable recipients",
            "From: sp1@ourco.example\nTo: undisclosed-recipients:;",
            Reason::NoRecipients,
            &[],
        ),
        case(
            "sensitive",
            "From: sp1@ourco.example\nTo: c1@customer.example\nSensitivity: Private",
            Reason::Sensitive,
            &[],
        ),
        Case {
            already_logged: true,
            ..case(
                "duplicate",
                "From: sp1@ourco.example\nTo: c1@customer.example",
                Reason::Duplicate,
                &[],
            )
        },
        Case {
            already_logged: true,
            ..case(
                "a not-logged message is never a duplicate",
                "From: stranger@elsewhere.example\nTo: c1@customer.example",
                Reason::Duplicate,
                &[],
            )
        },
        case(
            "a 255-character address never matches",
            "From: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@ourco.example\nTo: c1@customer.example",
            Reason::UnknownSender,
            &[],
        ),
    ];
    for case in &cases {
        check(case, true);
    }
}

#[test]
fn rows_apply_in_order() {
    // A draft that is also sensitive and a duplicate is a draft.
    check(
        &Case {
            draft: true,
            already_logged: true,
            ..case(
                "draft first",
                "From: sp1@ourco.example\nTo: c1@customer.example\nSensitivity: private",
                Reason::Draft,
                &[],
            )
        },
        true,
    );
    // Sensitive comes before duplicate.
    check(
        &Case {
            already_logged: true,
            ..case(
                "sensitive first",
                "From: sp1@ourco.example\nTo: c1@customer.example\nSensitivity: private",
                Reason::Sensitive,
                &[],
            )
        },
        true,
    );
    // No recipients comes before sensitive.
    check(
        &case(
            "recipients first",
            "From: sp1@ourco.example\nSensitivity: private",
            Reason::NoRecipients,
            &[],
        ),
        true,
    );
}

#[test]
fn sensitivity_rule_can_be_turned_off() {
    check(
        &case(
            "sensitive but the rule is off",
            "From: sp1@ourco.example\nTo: c1@customer.example\nSensitivity: Private",
            Reason::Logged,
            &["out SP1 C1"],
        ),
        false,
    );
}

#[test]
fn a_message_without_headers_fails_to_parse() {
    let message = parse_message(b"");
    let dir = directory();
    let decision = decide(&DecisionInput {
        message: &message,
        is_draft: false,
        skip_sensitive: true,
        already_logged: false,
        directory: &dir,
    });
    assert_eq!(decision.reason, Reason::Error(ErrorClass::Parse));
    assert_eq!(decision.outcome(), Outcome::Failed);
}

#[test]
fn reason_codes_round_trip() {
    for reason in Reason::ALL {
        assert_eq!(reason.as_str().parse::<Reason>(), Ok(reason));
    }
    assert!("nonsense".parse::<Reason>().is_err());
}
