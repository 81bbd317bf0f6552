//! Reading an export of Business Central's Interaction Log Entries, so that
//! a customer moving over keeps their history in one place.
//!
//! As with the directory files, the whole file is checked before anything
//! is stored and every bad row is reported with its line number. Whether
//! the contacts and salespeople exist is the store's question, asked after
//! this.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::import::{
    RowError, UnknownColumns, error, parse_yes_no, read_table_with, sniff_business_central,
};
use crate::{Amount, ContactNo, Direction, InitiatedBy, SalespersonCode};

/// How to read the values of one export: Business Central writes dates and
/// amounts in the format of the user's region.
#[derive(Debug, Clone)]
pub struct BcReadOptions {
    /// A chrono format such as `%d.%m.%Y`; `None` reads `YYYY-MM-DD`.
    pub date_format: Option<String>,
    /// Amounts like `1,50` (and `1.234,50`).
    pub decimal_comma: bool,
    /// The configured time zone, which the dates and times are in.
    pub time_zone: Tz,
}

/// One Interaction Log Entry as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BcInteraction {
    /// Business Central's `Entry No.`, kept so that a second import of the
    /// same file adds nothing.
    pub bc_entry_no: i64,
    pub contact_no: ContactNo,
    pub contact_company_no: Option<ContactNo>,
    /// `Contact Name`, when the export has it: the name given to a contact
    /// that `--create-missing` creates.
    pub contact_name: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub salesperson_code: SalespersonCode,
    pub description: String,
    pub subject: String,
    pub direction: Direction,
    pub initiated_by: InitiatedBy,
    /// `email`, `hard_copy`, `fax`, or empty (Business Central's blank).
    pub correspondence_type: &'static str,
    /// The template code as exported; may be empty.
    pub template_code: String,
    pub cost: Amount,
    pub duration_minutes: i64,
    pub canceled: bool,
    pub email_logged: bool,
    pub opportunity_no: Option<String>,
}

/// An export as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BcInteractionFile {
    pub delimiter: u8,
    /// Columns of the export that are not imported.
    pub ignored_columns: Vec<String>,
    pub rows: Vec<(u64, BcInteraction)>,
}

const REQUIRED: &[&str] = &[
    "entry no.",
    "contact no.",
    "date",
    "salesperson code",
    "information flow",
    "initiated by",
];
const OPTIONAL: &[&str] = &[
    "contact company no.",
    "contact name",
    "time of interaction",
    "description",
    "subject",
    "interaction template code",
    "cost (lcy)",
    "duration (min.)",
    "canceled",
    "opportunity no.",
    "correspondence type",
    "e-mail logged",
];

/// Reads the export. Columns are found by their English captions, in any
/// order; columns not listed here are skipped and named in the result.
pub fn read_bc_interactions(
    bytes: &[u8],
    options: &BcReadOptions,
) -> Result<BcInteractionFile, Vec<RowError>> {
    let delimiter = sniff_business_central(bytes, &["entry no."]).unwrap_or(b',');
    let table = read_table_with(bytes, delimiter, REQUIRED, OPTIONAL, UnknownColumns::Ignore)?;
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let mut entry_lines: std::collections::HashMap<i64, u64> = std::collections::HashMap::new();
    for (line, row) in table.rows {
        let text = |column: &str| row.get(column).map(String::as_str).unwrap_or("");
        let before = problems.len();
        let mut problem = |message: String| problems.push(error(line, message));

        let bc_entry_no = match text("entry no.").parse::<i64>() {
            Ok(no) if no > 0 => Some(no),
            _ => {
                problem(format!(
                    "Entry No. '{}' must be a whole number above 0",
                    text("entry no.")
                ));
                None
            }
        };
        if let Some(no) = bc_entry_no
            && let Some(first) = entry_lines.insert(no, line)
        {
            problem(format!("Entry No. {no} is also on line {first}"));
        }
        let contact_no = ContactNo::parse(text("contact no."))
            .map_err(|err| problem(format!("Contact No.: {err}")))
            .ok();
        let contact_company_no = match text("contact company no.") {
            "" => None,
            value => ContactNo::parse(value)
                .map_err(|err| problem(format!("Contact Company No.: {err}")))
                .ok(),
        };
        let salesperson_code = match text("salesperson code") {
            "" => {
                problem(
                    "Salesperson Code is empty: every Mailscribe entry belongs to a salesperson; fill it in \
                     (or leave this entry out of the file)"
                        .to_owned(),
                );
                None
            }
            value => SalespersonCode::parse(value)
                .map_err(|err| problem(format!("Salesperson Code: {err}")))
                .ok(),
        };
        let occurred_at = occurred_at(text("date"), text("time of interaction"), options)
            .map_err(&mut problem)
            .ok();
        let direction = match text("information flow").to_ascii_lowercase().as_str() {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            other => {
                problem(format!(
                    "Information Flow '{other}' must be Inbound or Outbound (Mailscribe keeps no entry without a direction)"
                ));
                None
            }
        };
        let initiated_by = match text("initiated by").to_ascii_lowercase().as_str() {
            "us" => Some(InitiatedBy::Us),
            "them" => Some(InitiatedBy::Them),
            other => {
                problem(format!("Initiated By '{other}' must be Us or Them"));
                None
            }
        };
        let correspondence_type = match text("correspondence type").to_ascii_lowercase().as_str() {
            "" => Some(""),
            "email" | "e-mail" => Some("email"),
            "hard copy" => Some("hard_copy"),
            "fax" => Some("fax"),
            other => {
                problem(format!(
                    "Correspondence Type '{other}' must be empty, Hard Copy, Email or Fax"
                ));
                None
            }
        };
        let cost = match parse_amount(text("cost (lcy)"), options.decimal_comma) {
            Ok(cost) => Some(cost),
            Err(message) => {
                problem(format!("Cost (LCY): {message}"));
                None
            }
        };
        let duration_minutes = match parse_minutes(text("duration (min.)"), options.decimal_comma) {
            Ok(minutes) => Some(minutes),
            Err(message) => {
                problem(format!("Duration (Min.): {message}"));
                None
            }
        };
        let mut flag = |column: &str, caption: &str| match parse_yes_no(text(column)) {
            Ok(value) => value.unwrap_or(false),
            Err(()) => {
                problems.push(error(
                    line,
                    format!("{caption} '{}' must be Yes or No", text(column)),
                ));
                false
            }
        };
        let canceled = flag("canceled", "Canceled");
        let email_logged = flag("e-mail logged", "E-Mail Logged");
        if problems.len() > before {
            continue;
        }
        let (
            Some(bc_entry_no),
            Some(contact_no),
            Some(salesperson_code),
            Some(occurred_at),
            Some(direction),
            Some(initiated_by),
            Some(correspondence_type),
            Some(cost),
            Some(duration_minutes),
        ) = (
            bc_entry_no,
            contact_no,
            salesperson_code,
            occurred_at,
            direction,
            initiated_by,
            correspondence_type,
            cost,
            duration_minutes,
        )
        else {
            continue;
        };
        let optional_text =
            |column: &str| Some(text(column).to_owned()).filter(|value| !value.is_empty());
        rows.push((
            line,
            BcInteraction {
                bc_entry_no,
                contact_no,
                contact_company_no,
                contact_name: optional_text("contact name"),
                occurred_at,
                salesperson_code,
                description: text("description").to_owned(),
                subject: text("subject").to_owned(),
                direction,
                initiated_by,
                correspondence_type,
                template_code: text("interaction template code").to_owned(),
                cost,
                duration_minutes,
                canceled,
                email_logged,
                opportunity_no: optional_text("opportunity no."),
            },
        ));
    }
    if problems.is_empty() {
        Ok(BcInteractionFile {
            delimiter,
            ignored_columns: table.ignored_columns,
            rows,
        })
    } else {
        Err(problems)
    }
}

/// The instant of a local date and time in the configured zone. A time the
/// clocks skipped is refused; a time they passed twice is the first.
fn occurred_at(date: &str, time: &str, options: &BcReadOptions) -> Result<DateTime<Utc>, String> {
    let format = options.date_format.as_deref().unwrap_or("%Y-%m-%d");
    let date = NaiveDate::parse_from_str(date, format).map_err(|_| match &options.date_format {
        None => format!("Date '{date}' is not YYYY-MM-DD; give the export's format with --date-format (e.g. %d.%m.%Y)"),
        Some(given) => format!("Date '{date}' does not match --date-format {given}"),
    })?;
    let time = if time.is_empty() {
        NaiveTime::MIN
    } else {
        NaiveTime::parse_from_str(time, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
            .map_err(|_| format!("Time of Interaction '{time}' is not HH:MM or HH:MM:SS"))?
    };
    let local = NaiveDateTime::new(date, time);
    options
        .time_zone
        .from_local_datetime(&local)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
        .ok_or_else(|| {
            format!(
                "{local} does not exist in {} (the clocks went forward); correct the time",
                options.time_zone.name()
            )
        })
}

/// Normalises an amount to `1234.50` form: with a decimal comma, `.` and
/// spaces are thousands separators; without it, a comma is refused rather
/// than guessed at.
fn normalise_number(text: &str, decimal_comma: bool) -> Result<String, String> {
    if decimal_comma {
        Ok(text
            .chars()
            .filter(|c| !matches!(c, '.' | ' ' | '\u{a0}'))
            .map(|c| if c == ',' { '.' } else { c })
            .collect())
    } else if text.contains(',') {
        Err(format!(
            "'{text}' has a comma; for amounts like 1,50 give --decimal-comma"
        ))
    } else {
        Ok(text.to_owned())
    }
}

fn parse_amount(text: &str, decimal_comma: bool) -> Result<Amount, String> {
    if text.is_empty() {
        return Ok(Amount::default());
    }
    let normalised = normalise_number(text, decimal_comma)?;
    normalised
        .parse::<Amount>()
        .map_err(|_| format!("'{text}' is not an amount like 12 or 12.50 (not negative)"))
}

fn parse_minutes(text: &str, decimal_comma: bool) -> Result<i64, String> {
    if text.is_empty() {
        return Ok(0);
    }
    let normalised = normalise_number(text, decimal_comma)?;
    let (whole, fraction) = normalised.split_once('.').unwrap_or((&normalised, ""));
    match whole.parse::<i64>() {
        Ok(minutes) if minutes >= 0 && fraction.chars().all(|c| c == '0') => Ok(minutes),
        _ => Err(format!(
            "'{text}' must be a whole number of minutes, not negative"
        )),
    }
}

#[cfg(test)]
mod tests;
