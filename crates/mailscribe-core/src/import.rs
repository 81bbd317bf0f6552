//! Reading the salespeople and contacts CSV files, for the CLI and the
//! web app alike.
//!
//! The whole file is read and checked before anything is stored, and every
//! bad row is reported with its line number, so that a file is imported
//! completely or not at all.

use std::collections::HashMap;
use std::fmt;

use crate::{Contact, ContactKind, ContactNo, EmailAddress, Salesperson, SalespersonCode};

/// One problem in a file, at a line (1 is the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

pub(crate) fn error(line: u64, message: impl Into<String>) -> RowError {
    RowError {
        line,
        message: message.into(),
    }
}

/// The line a record starts on. The csv crate's own line count lags behind
/// on CRLF files, so count the newlines before the record's first byte.
fn line_at(bytes: &[u8], position: Option<&csv::Position>) -> u64 {
    let Some(position) = position else { return 0 };
    let mut start = usize::try_from(position.byte())
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    while start < bytes.len() && (bytes[start] == b'\r' || bytes[start] == b'\n') {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|b| **b == b'\n').count() as u64
}

/// Rows of a CSV file as column name → value, with line numbers.
pub(crate) struct Table {
    pub(crate) rows: Vec<(u64, HashMap<String, String>)>,
    /// Columns of a Business Central export that Mailscribe does not read.
    pub(crate) ignored_columns: Vec<String>,
}

/// Which kind of file a directory import read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// Mailscribe's own columns (`code,name,email`, `no,name,email,company`).
    Mailscribe,
    /// A list exported from Business Central with its English captions.
    BusinessCentral,
}

impl ListFormat {
    pub fn describe(self) -> &'static str {
        match self {
            ListFormat::Mailscribe => "Mailscribe columns",
            ListFormat::BusinessCentral => "a Business Central list export",
        }
    }
}

/// A directory file as read, for a preview (`--dry-run`) and the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFile<T> {
    pub format: ListFormat,
    /// `b','`, or `b';'` for a Business Central export saved that way.
    pub delimiter: u8,
    /// Columns of a Business Central export that are not imported.
    pub ignored_columns: Vec<String>,
    pub rows: Vec<(u64, T)>,
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn header_columns(bytes: &[u8], delimiter: u8) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes);
    match reader.records().next() {
        Some(Ok(header)) => header
            .iter()
            .map(|c| c.trim().to_ascii_lowercase())
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the header is a Business Central export's (one of `markers`
/// among its captions), and with which delimiter. Business Central's own
/// exports are also accepted with `;`, which our own format uses between
/// addresses, so `;` is tried only when the header is one of theirs.
pub(crate) fn sniff_business_central(bytes: &[u8], markers: &[&str]) -> Option<u8> {
    let bytes = strip_bom(bytes);
    let is_bc = |columns: &[String]| columns.iter().any(|c| markers.contains(&c.as_str()));
    if is_bc(&header_columns(bytes, b',')) {
        return Some(b',');
    }
    if is_bc(&header_columns(bytes, b';')) {
        return Some(b';');
    }
    None
}

/// How unknown columns are treated: our own files refuse them (a typo
/// would silently drop data), Business Central exports carry many columns
/// we do not need and skip them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownColumns {
    Refuse,
    Ignore,
}

fn read_table(bytes: &[u8], required: &[&str], optional: &[&str]) -> Result<Table, Vec<RowError>> {
    read_table_with(bytes, b',', required, optional, UnknownColumns::Refuse)
}

pub(crate) fn read_table_with(
    bytes: &[u8],
    delimiter: u8,
    required: &[&str],
    optional: &[&str],
    unknown: UnknownColumns,
) -> Result<Table, Vec<RowError>> {
    let bytes = strip_bom(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        None => {
            return Err(vec![error(
                1,
                format!(
                    "the file is empty; the first line must be the header {}",
                    required.join(",")
                ),
            )]);
        }
        Some(Err(err)) => return Err(vec![error(1, format!("the header cannot be read: {err}"))]),
        Some(Ok(header)) => header,
    };
    let columns: Vec<String> = header
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if delimiter == b',' && columns.len() == 1 && columns[0].contains(';') {
        return Err(vec![error(
            1,
            "the file seems to be separated by ';' but Mailscribe reads ',' (save it as CSV with commas)",
        )]);
    }
    let mut problems = Vec::new();
    let mut ignored_columns = Vec::new();
    for (column, caption) in columns.iter().zip(header.iter()) {
        if !required.contains(&column.as_str()) && !optional.contains(&column.as_str()) {
            if unknown == UnknownColumns::Ignore {
                ignored_columns.push(caption.trim().to_owned());
                continue;
            }
            let known: Vec<&str> = required.iter().chain(optional).copied().collect();
            problems.push(error(
                1,
                format!(
                    "unknown column '{column}'; the columns are {}",
                    known.join(", ")
                ),
            ));
        }
    }
    for wanted in required {
        if !columns.iter().any(|c| c == wanted) {
            problems.push(error(1, format!("the column '{wanted}' is missing")));
        }
    }
    let mut seen_columns = std::collections::HashSet::new();
    for column in &columns {
        if !seen_columns.insert(column)
            && !ignored_columns
                .iter()
                .any(|c| c.eq_ignore_ascii_case(column))
        {
            problems.push(error(1, format!("the column '{column}' appears twice")));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut rows = Vec::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = line_at(bytes, err.position());
                problems.push(error(line, format!("cannot be read: {err}")));
                continue;
            }
        };
        let line = line_at(bytes, record.position());
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        if record.len() != columns.len() {
            problems.push(error(
                line,
                format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    columns.len()
                ),
            ));
            continue;
        }
        let values = columns
            .iter()
            .cloned()
            .zip(record.iter().map(|v| v.trim().to_owned()))
            .collect();
        rows.push((line, values));
    }
    if problems.is_empty() {
        Ok(Table {
            rows,
            ignored_columns,
        })
    } else {
        Err(problems)
    }
}

/// Business Central writes booleans as `Yes` and `No`; `true`, `false`,
/// `1`, `0` are accepted too, and an empty cell is `None`.
pub(crate) fn parse_yes_no(text: &str) -> Result<Option<bool>, ()> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "yes" | "true" | "1" => Ok(Some(true)),
        "no" | "false" | "0" => Ok(Some(false)),
        _ => Err(()),
    }
}

fn parse_addresses(line: u64, field: &str, problems: &mut Vec<RowError>) -> Vec<EmailAddress> {
    let mut addresses: Vec<EmailAddress> = Vec::new();
    for part in field.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match EmailAddress::parse_matchable(part) {
            Ok(address) if !addresses.contains(&address) => addresses.push(address),
            Ok(_) => {}
            Err(err) => problems.push(error(
                line,
                format!("'{part}' is not a usable email address: {err}"),
            )),
        }
    }
    addresses
}

/// Captions only a Business Central salesperson export has.
const BC_SALESPEOPLE_MARKERS: &[&str] = &["e-mail", "e-mail 2"];
/// Captions only a Business Central contact export has.
const BC_CONTACT_MARKERS: &[&str] = &[
    "no.",
    "e-mail",
    "e-mail 2",
    "company no.",
    "company name",
    "privacy blocked",
];

/// `code,name,email`; `email` may hold several addresses separated by `;`.
/// A Business Central export (`Code`, `Name`, `E-Mail`, `E-Mail 2`) is read
/// as well.
pub fn read_salespeople(bytes: &[u8]) -> Result<Vec<(u64, Salesperson)>, Vec<RowError>> {
    read_salespeople_file(bytes).map(|file| file.rows)
}

/// Like [`read_salespeople`], saying which format the file was in.
pub fn read_salespeople_file(bytes: &[u8]) -> Result<ListFile<Salesperson>, Vec<RowError>> {
    let (format, delimiter, table) = match sniff_business_central(bytes, BC_SALESPEOPLE_MARKERS) {
        Some(delimiter) => (
            ListFormat::BusinessCentral,
            delimiter,
            read_table_with(
                bytes,
                delimiter,
                &["code", "name", "e-mail"],
                &["e-mail 2"],
                UnknownColumns::Ignore,
            )?,
        ),
        None => (
            ListFormat::Mailscribe,
            b',',
            read_table(bytes, &["code", "name", "email"], &[])?,
        ),
    };
    let mut problems = Vec::new();
    let mut people = Vec::new();
    let mut code_lines: HashMap<String, u64> = HashMap::new();
    let mut address_owner: HashMap<EmailAddress, (String, u64)> = HashMap::new();
    for (line, row) in table.rows {
        let code = match SalespersonCode::parse(&row["code"]) {
            Ok(code) => code,
            Err(err) => {
                problems.push(error(line, format!("code: {err}")));
                continue;
            }
        };
        if let Some(first) = code_lines.insert(code.to_string(), line) {
            problems.push(error(
                line,
                format!("the code {code} is also on line {first}"),
            ));
        }
        let mut name = row["name"].clone();
        // Business Central lets a salesperson have no name; the code stands in.
        if name.is_empty() && format == ListFormat::BusinessCentral {
            name = code.to_string();
        }
        if name.is_empty() {
            problems.push(error(line, "the name is empty"));
        }
        let email_field = match format {
            ListFormat::Mailscribe => row["email"].clone(),
            ListFormat::BusinessCentral => {
                format!(
                    "{};{}",
                    row["e-mail"],
                    row.get("e-mail 2").map(String::as_str).unwrap_or("")
                )
            }
        };
        let addresses = parse_addresses(line, &email_field, &mut problems);
        for address in &addresses {
            if let Some((other, other_line)) = address_owner.get(address) {
                if *other != code.as_str() {
                    problems.push(error(
                        line,
                        format!("the address {address} is also given to salesperson {other} on line {other_line}"),
                    ));
                }
            } else {
                address_owner.insert(address.clone(), (code.to_string(), line));
            }
        }
        people.push((
            line,
            Salesperson {
                code,
                name,
                addresses,
            },
        ));
    }
    if problems.is_empty() {
        Ok(ListFile {
            format,
            delimiter,
            ignored_columns: table.ignored_columns,
            rows: people,
        })
    } else {
        Err(problems)
    }
}

/// `no,name,email,company`, and optionally `type` (`person` or `company`)
/// and `privacy_blocked`. A Business Central export (`No.`, `Name`, `Type`,
/// `Company No.`, `Company Name`, `E-Mail`, `Privacy Blocked`) is read as
/// well.
pub fn read_contacts(bytes: &[u8]) -> Result<Vec<(u64, Contact)>, Vec<RowError>> {
    read_contacts_file(bytes).map(|file| file.rows)
}

/// Like [`read_contacts`], saying which format the file was in.
pub fn read_contacts_file(bytes: &[u8]) -> Result<ListFile<Contact>, Vec<RowError>> {
    let (format, delimiter, table) = match sniff_business_central(bytes, BC_CONTACT_MARKERS) {
        Some(delimiter) => (
            ListFormat::BusinessCentral,
            delimiter,
            read_table_with(
                bytes,
                delimiter,
                &["no.", "name", "e-mail"],
                &[
                    "type",
                    "company no.",
                    "company name",
                    "privacy blocked",
                    "e-mail 2",
                ],
                UnknownColumns::Ignore,
            )?,
        ),
        None => (
            ListFormat::Mailscribe,
            b',',
            read_table(
                bytes,
                &["no", "name", "email", "company"],
                &["type", "privacy_blocked"],
            )?,
        ),
    };
    let bc = format == ListFormat::BusinessCentral;
    let (no_column, email_column) = if bc {
        ("no.", "e-mail")
    } else {
        ("no", "email")
    };
    // Business Central links a person to its company by number; the
    // company's row is normally in the same export.
    let mut company_names: HashMap<String, String> = HashMap::new();
    if bc {
        for (_, row) in &table.rows {
            if ContactKind::parse(row.get("type").map(String::as_str).unwrap_or(""))
                == Some(ContactKind::Company)
            {
                company_names.insert(row["no."].clone(), row["name"].clone());
            }
        }
    }
    let mut problems = Vec::new();
    let mut contacts = Vec::new();
    let mut no_lines: HashMap<String, u64> = HashMap::new();
    for (line, row) in table.rows {
        let no = match ContactNo::parse(&row[no_column]) {
            Ok(no) => no,
            Err(err) => {
                problems.push(error(line, format!("{no_column}: {err}")));
                continue;
            }
        };
        if let Some(first) = no_lines.insert(no.to_string(), line) {
            problems.push(error(
                line,
                format!("the number {no} is also on line {first}"),
            ));
        }
        let mut name = row["name"].clone();
        if name.is_empty() && bc {
            name = no.to_string();
        }
        if name.is_empty() {
            problems.push(error(line, "the name is empty"));
        }
        let kind = match row.get("type").map(String::as_str) {
            None | Some("") => ContactKind::Person,
            Some(text) => match ContactKind::parse(text) {
                Some(kind) => kind,
                None => {
                    problems.push(error(
                        line,
                        format!("type '{text}' must be person or company"),
                    ));
                    continue;
                }
            },
        };
        let company = if bc {
            let company_no = row.get("company no.").cloned().unwrap_or_default();
            let company_name = row.get("company name").cloned().unwrap_or_default();
            if kind == ContactKind::Company {
                // Business Central gives a company itself as its company.
                if !company_no.is_empty() && company_no != no.as_str() {
                    problems.push(error(
                        line,
                        format!("a company cannot belong to another company ({company_no}); leave 'Company No.' empty"),
                    ));
                }
                String::new()
            } else if company_no.is_empty() {
                company_name
            } else if let Some(found) = company_names.get(&company_no) {
                found.clone()
            } else if !company_name.is_empty() {
                company_name
            } else {
                problems.push(error(
                    line,
                    format!(
                        "the company {company_no} is not in this file and 'Company Name' is empty: \
                         export the companies with the people, or add the company's name"
                    ),
                ));
                String::new()
            }
        } else {
            row["company"].clone()
        };
        if !bc && kind == ContactKind::Company && !company.is_empty() && company != name {
            problems.push(error(
                line,
                "a company cannot belong to another company; leave 'company' empty",
            ));
        }
        let email_field = if bc {
            format!(
                "{};{}",
                row[email_column],
                row.get("e-mail 2").map(String::as_str).unwrap_or("")
            )
        } else {
            row[email_column].clone()
        };
        let addresses = parse_addresses(line, &email_field, &mut problems);
        let company_name = (kind == ContactKind::Person && !company.is_empty()).then_some(company);
        let flag_column = if bc {
            "privacy blocked"
        } else {
            "privacy_blocked"
        };
        let privacy_blocked = match row.get(flag_column) {
            None => None,
            Some(flag) if bc => match parse_yes_no(flag) {
                Ok(flag) => flag,
                Err(()) => {
                    problems.push(error(
                        line,
                        format!("Privacy Blocked '{flag}' must be Yes or No"),
                    ));
                    None
                }
            },
            Some(flag) => match flag.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                // An empty cell in a file with the column leaves the flag alone.
                "" => None,
                other => {
                    problems.push(error(
                        line,
                        format!("privacy_blocked '{other}' must be true or false"),
                    ));
                    None
                }
            },
        };
        contacts.push((
            line,
            Contact {
                no,
                name,
                kind,
                company_name,
                addresses,
                privacy_blocked,
            },
        ));
    }
    if problems.is_empty() {
        Ok(ListFile {
            format,
            delimiter,
            ignored_columns: table.ignored_columns,
            rows: contacts,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors<T>(result: Result<T, Vec<RowError>>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn salespeople_files() {
        let good = "\u{feff}Name,CODE,email\r\nAlice,SP1,alice@ourco.example; Alice.B@ourco.example\r\n\r\n\"Bob, Jr.\",SP2,\r\n";
        let people = read_salespeople(good.as_bytes()).unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].0, 2);
        assert_eq!(people[0].1.addresses.len(), 2);
        assert_eq!(people[1].1.name, "Bob, Jr.");
        assert_eq!(people[1].0, 4);

        let cases: &[(&str, &[&str])] = &[
            (
                "",
                &["line 1: the file is empty; the first line must be the header code,name,email"],
            ),
            (
                "code;name;email\nSP1;A;a@x.y\n",
                &[
                    "line 1: the file seems to be separated by ';' but Mailscribe reads ',' (save it as CSV with commas)",
                ],
            ),
            (
                "code,name,email,phone\n",
                &["line 1: unknown column 'phone'; the columns are code, name, email"],
            ),
            ("code,name\n", &["line 1: the column 'email' is missing"]),
            (
                "code,name,email\nSP1,A,a@x.example\nSP1,B,b@x.example\nSP3,C,A@X.example\nSP4,D,not-an-address\nSP5,E\n",
                &["line 6: has 2 fields, the header has 3"],
            ),
            (
                "code,name,email\nSP1,A,a@x.example\nSP1,B,b@x.example\nSP3,C,A@X.example\nSP4,D,not-an-address\n,F,f@x.example\nSP6,,g@x.example\n",
                &[
                    "line 3: the code SP1 is also on line 2",
                    "line 4: the address a@x.example is also given to salesperson SP1 on line 2",
                    "line 5: 'not-an-address' is not a usable email address: 'not-an-address' is not of the form local@domain",
                    "line 6: code: the value is empty",
                    "line 7: the name is empty",
                ],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                errors(read_salespeople(input.as_bytes())),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn contacts_files() {
        let good = "no,name,email,company,type\n10,Ann,ann@acme.example,Acme,\nACME,Acme,info@acme.example,,company\n007,Bond,,,person\n";
        let contacts = read_contacts(good.as_bytes()).unwrap();
        assert_eq!(contacts.len(), 3);
        assert_eq!(contacts[0].1.company_name.as_deref(), Some("Acme"));
        assert_eq!(contacts[1].1.kind, ContactKind::Company);
        assert_eq!(
            contacts[2].1.no.as_str(),
            "007",
            "numbers are kept exactly as written"
        );

        let cases: &[(&str, &[&str])] = &[
            (
                "no,name,email\n",
                &["line 1: the column 'company' is missing"],
            ),
            (
                "no,name,email,company,type\n1,A,,,robot\n1,B,,,\n2,C,,Other,company\n",
                &[
                    "line 2: type 'robot' must be person or company",
                    "line 3: the number 1 is also on line 2",
                    "line 4: a company cannot belong to another company; leave 'company' empty",
                ],
            ),
            (
                "no,name,email,company\n1,A,,\n1,B,,\n",
                &["line 3: the number 1 is also on line 2"],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                errors(read_contacts(input.as_bytes())),
                *expected,
                "input {input:?}"
            );
        }
    }

    /// Business Central's own list exports, hand-written as its "Open in
    /// Excel" and "Save as CSV" produce them.
    #[test]
    fn business_central_salespeople_exports() {
        // Semicolons, a BOM, CRLF, and columns Mailscribe does not read.
        let export = "\u{feff}Code;Name;Commission %;Phone No.;E-Mail;E-Mail 2\r\nJO;Jim Olive;2,5;;jo@ourco.example;Jim.Olive@ourco.example\r\nPS;;0;;;\r\n";
        let file = read_salespeople_file(export.as_bytes()).unwrap();
        assert_eq!(
            (file.format, file.delimiter),
            (ListFormat::BusinessCentral, b';')
        );
        assert_eq!(file.ignored_columns, ["Commission %", "Phone No."]);
        let addresses: Vec<String> = file.rows[0]
            .1
            .addresses
            .iter()
            .map(|a| a.to_string().to_lowercase())
            .collect();
        assert_eq!(addresses, ["jo@ourco.example", "jim.olive@ourco.example"]);
        assert_eq!(file.rows[1].1.name, "PS", "no name: the code stands in");
        assert!(file.rows[1].1.addresses.is_empty());

        let cases: &[(&str, &[&str])] = &[
            (
                "Code,Name,Phone No.,E-Mail 2\n",
                &["line 1: the column 'e-mail' is missing"],
            ),
            (
                "Code,Name,E-Mail\nJO,Jim,jo@x.example\nJO,Jo,not-an-address\n",
                &[
                    "line 3: the code JO is also on line 2",
                    "line 3: 'not-an-address' is not a usable email address: 'not-an-address' is not of the form local@domain",
                ],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                errors(read_salespeople(input.as_bytes())),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn business_central_contact_exports() {
        let export = "No.,Name,Type,Company No.,Company Name,E-Mail,Privacy Blocked,Salesperson Code\n\
                      CT10,Customer Corp,Company,CT10,Customer Corp,info@customer.example,No,JO\n\
                      CT11,Carl,Person,CT10,Customer Corp,c1@customer.example,Yes,JO\n\
                      CT12,Cora,Person,CT10,Old name,c2@customer.example,,JO\n\
                      CT20,Belinda,Person,CT99,Other Ltd,,No,\n\
                      CT30,Solo,Person,,,solo@x.example,No,\n";
        let file = read_contacts_file(export.as_bytes()).unwrap();
        assert_eq!(
            (file.format, file.delimiter),
            (ListFormat::BusinessCentral, b',')
        );
        assert_eq!(file.ignored_columns, ["Salesperson Code"]);
        let contacts: Vec<&Contact> = file.rows.iter().map(|(_, c)| c).collect();
        assert_eq!(contacts[0].kind, ContactKind::Company);
        assert_eq!(contacts[0].company_name, None);
        assert_eq!(contacts[1].company_name.as_deref(), Some("Customer Corp"));
        assert_eq!(contacts[1].privacy_blocked, Some(true));
        assert_eq!(
            contacts[2].company_name.as_deref(),
            Some("Customer Corp"),
            "the company row of the file wins"
        );
        assert_eq!(
            contacts[2].privacy_blocked, None,
            "an empty cell leaves the flag"
        );
        assert_eq!(
            contacts[3].company_name.as_deref(),
            Some("Other Ltd"),
            "a company not in the file: by its name"
        );
        assert_eq!(contacts[4].company_name, None);

        let cases: &[(&str, &[&str])] = &[
            (
                "No.;Name;E-Mail;Privacy Blocked\nC1;Ann;ann@x.example;Perhaps\nC2;Bob;bob@x.example;Yes\n",
                &["line 2: Privacy Blocked 'Perhaps' must be Yes or No"],
            ),
            (
                "No.,Name,Type,Company No.,E-Mail\nC1,Ann,Person,C9,\nC2,Acme,Company,C3,\n",
                &[
                    "line 2: the company C9 is not in this file and 'Company Name' is empty: export the companies with the people, or add the company's name",
                    "line 3: a company cannot belong to another company (C3); leave 'Company No.' empty",
                ],
            ),
            (
                "No.,Name,Type\n",
                &["line 1: the column 'e-mail' is missing"],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                errors(read_contacts(input.as_bytes())),
                *expected,
                "input {input:?}"
            );
        }
    }
}
