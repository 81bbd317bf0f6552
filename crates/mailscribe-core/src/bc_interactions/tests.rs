//! Reading Business Central's Interaction Log Entries exports.

use chrono::{DateTime, Utc};

use crate::bc_interactions::{BcReadOptions, read_bc_interactions};
use crate::{Direction, InitiatedBy};

fn options(date_format: Option<&str>, decimal_comma: bool, zone: &str) -> BcReadOptions {
    BcReadOptions {
        date_format: date_format.map(str::to_owned),
        decimal_comma,
        time_zone: zone.parse().unwrap(),
    }
}

fn errors(bytes: &str, options: &BcReadOptions) -> Vec<String> {
    match read_bc_interactions(bytes.as_bytes(), options) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Hand-written as Business Central's "Open in Excel" and "Save as CSV"
/// write it in a Finnish region: `;` between fields, a BOM, dates as
/// `%d.%m.%Y`, a decimal comma, and columns Mailscribe does not read.
const FINNISH_EXPORT: &str = "\u{feff}Entry No.;Date;Time of Interaction;Contact No.;Contact Name;Contact Company No.;Salesperson Code;Description;Information Flow;Initiated By;Subject;Interaction Template Code;Correspondence Type;Cost (LCY);Duration (Min.);Canceled;E-Mail Logged;Opportunity No.;User ID;Attempt Failed\r\n\
1203;14.03.2025;09:15:00;CT000012;Robert Townes;CT000010;JO;Quote follow-up;Outbound;Us;RE: Quote 1045;EMAIL;Email;1,50;3;No;Yes;OP000007;CRONUS\\ADMIN;No\r\n\
1204;15.03.2025;16:02:10;CT000012;Robert Townes;CT000010;JO;Phone call;Inbound;Them;;PHONE;;12,00;15;Yes;No;;CRONUS\\ADMIN;No\r\n\
1205;30.03.2025;04:30;CT000020;Belinda Newman;;OF;Letter;Outbound;Us;Price list 2025;LETTER;Hard Copy;1.234,50;0;No;No;;CRONUS\\ADMIN;No\r\n";

#[test]
fn a_finnish_export_with_semicolons_and_a_bom() {
    let file = read_bc_interactions(
        FINNISH_EXPORT.as_bytes(),
        &options(Some("%d.%m.%Y"), true, "Europe/Helsinki"),
    )
    .unwrap();
    assert_eq!(file.delimiter, b';');
    assert_eq!(file.ignored_columns, ["User ID", "Attempt Failed"]);
    assert_eq!(file.rows.len(), 3);
    let (line, first) = &file.rows[0];
    assert_eq!(*line, 2);
    assert_eq!(first.bc_entry_no, 1203);
    assert_eq!(first.contact_no.as_str(), "CT000012");
    assert_eq!(
        first.contact_company_no.as_ref().map(|c| c.as_str()),
        Some("CT000010")
    );
    assert_eq!(first.contact_name.as_deref(), Some("Robert Townes"));
    // 09:15 in Helsinki in March (UTC+2).
    assert_eq!(
        first.occurred_at,
        "2025-03-14T07:15:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        (first.direction, first.initiated_by),
        (Direction::Outbound, InitiatedBy::Us)
    );
    assert_eq!(first.correspondence_type, "email");
    assert_eq!(first.cost.to_string(), "1.50");
    assert_eq!(first.duration_minutes, 3);
    assert!(!first.canceled && first.email_logged);
    assert_eq!(first.opportunity_no.as_deref(), Some("OP000007"));
    let second = &file.rows[1].1;
    assert_eq!(
        (second.direction, second.initiated_by),
        (Direction::Inbound, InitiatedBy::Them)
    );
    assert_eq!(second.correspondence_type, "");
    assert!(second.canceled);
    assert_eq!(second.subject, "");
    let third = &file.rows[2].1;
    assert_eq!(third.correspondence_type, "hard_copy");
    assert_eq!(third.cost.to_string(), "1234.50");
    assert_eq!(third.contact_company_no, None);
    // 04:30 on the last Sunday of March, just after the clocks went forward, is UTC+3.
    assert_eq!(
        third.occurred_at,
        "2025-03-30T01:30:00Z".parse::<DateTime<Utc>>().unwrap()
    );
}

#[test]
fn an_english_export_with_commas() {
    let export = "Entry No.,Contact No.,Contact Company No.,Date,Time of Interaction,Salesperson Code,Description,Information Flow,Initiated By,Subject,Interaction Template Code,Cost (LCY),Duration (Min.),Canceled,Opportunity No.\n\
                  7,CT100,CT099,2024-11-02,13:05,PS,\"Re: order, shipping\",Inbound,Them,\"Re: order, shipping\",EMAIL,0.25,1,No,\n";
    let file = read_bc_interactions(export.as_bytes(), &options(None, false, "UTC")).unwrap();
    assert_eq!(file.delimiter, b',');
    assert!(file.ignored_columns.is_empty());
    let entry = &file.rows[0].1;
    assert_eq!(entry.description, "Re: order, shipping");
    assert_eq!(
        entry.occurred_at,
        "2024-11-02T13:05:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(entry.cost.to_string(), "0.25");
}

#[test]
fn every_bad_row_is_reported_with_its_line() {
    let header = "Entry No.,Contact No.,Date,Time of Interaction,Salesperson Code,Information Flow,Initiated By,Cost (LCY),Duration (Min.),Canceled,Correspondence Type\n";
    let body = "1,C1,2025-01-02,10:00,SP,Outbound,Us,1.50,2,No,Email\n\
                1,C1,2025-01-02,10:00,SP,Outbound,Us,,,,\n\
                4,C1,2025-03-30,03:30,SP,Inbound,Them,\"1,50\",,,\n";
    assert_eq!(
        errors(
            &format!("{header}{body}"),
            &options(None, false, "Europe/Helsinki")
        ),
        [
            "line 3: Entry No. 1 is also on line 2",
            "line 4: 2025-03-30 03:30:00 does not exist in Europe/Helsinki (the clocks went forward); correct the time",
            "line 4: Cost (LCY): '1,50' has a comma; for amounts like 1,50 give --decimal-comma",
        ]
    );
    // A row with a field too many (an unquoted comma) stops the reading.
    let body = "1,C1,2025-01-02,10:00,SP,Outbound,Us,1,50,2,No,Email\n";
    assert_eq!(
        errors(&format!("{header}{body}"), &options(None, false, "UTC")),
        ["line 2: has 12 fields, the header has 11"]
    );
    let body = "x,,02.01.2025,25:00,,Sideways,Nobody,1.5.0,2.5,Maybe,Telex\n";
    assert_eq!(
        errors(&format!("{header}{body}"), &options(None, false, "UTC")),
        [
            "line 2: Entry No. 'x' must be a whole number above 0",
            "line 2: Contact No.: the value is empty",
            "line 2: Salesperson Code is empty: every Mailscribe entry belongs to a salesperson; fill it in (or leave this entry out of the file)",
            "line 2: Date '02.01.2025' is not YYYY-MM-DD; give the export's format with --date-format (e.g. %d.%m.%Y)",
            "line 2: Information Flow 'sideways' must be Inbound or Outbound (Mailscribe keeps no entry without a direction)",
            "line 2: Initiated By 'nobody' must be Us or Them",
            "line 2: Correspondence Type 'telex' must be empty, Hard Copy, Email or Fax",
            "line 2: Cost (LCY): '1.5.0' is not an amount like 12 or 12.50 (not negative)",
            "line 2: Duration (Min.): '2.5' must be a whole number of minutes, not negative",
            "line 2: Canceled 'Maybe' must be Yes or No",
        ]
    );
    assert_eq!(
        errors("Entry No.,Contact No.,Date\n", &options(None, false, "UTC")),
        [
            "line 1: the column 'salesperson code' is missing",
            "line 1: the column 'information flow' is missing",
            "line 1: the column 'initiated by' is missing",
        ]
    );
    assert_eq!(
        errors(
            "Entry No.,Contact No.,Date,Salesperson Code,Information Flow,Initiated By\n1,C1,2.1.2025,SP,Inbound,Us\n",
            &options(Some("%Y/%m/%d"), false, "UTC")
        ),
        ["line 2: Date '2.1.2025' does not match --date-format %Y/%m/%d"]
    );
}
