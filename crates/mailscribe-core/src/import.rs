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

fn error(line: u64, message: impl Into<String>) -> RowError {
    RowError {
        line,
        message: message.into(),
    }
}

/// The most rows a file may have: beyond this, split the file.
pub const MAX_ROWS: usize = 100_000;

/// The line a record starts on. The csv crate's own line count lags behind
/// on CRLF files, so count the newlines before the record's first byte:
/// incrementally, from where the last record was counted, since records
/// come in order (counting from the start each time made an import
/// quadratic in the file's size).
struct LineCounter<'a> {
    bytes: &'a [u8],
    counted_to: usize,
    newlines: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> LineCounter<'a> {
        LineCounter {
            bytes,
            counted_to: 0,
            newlines: 0,
        }
    }

    fn line_at(&mut self, position: Option<&csv::Position>) -> u64 {
        let bytes = self.bytes;
        let Some(position) = position else { return 0 };
        let mut start = usize::try_from(position.byte())
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        while start < bytes.len() && (bytes[start] == b'\r' || bytes[start] == b'\n') {
            start += 1;
        }
        if start < self.counted_to {
            // Never happens with records in order; count afresh if it does.
            self.counted_to = 0;
            self.newlines = 0;
        }
        self.newlines += bytes[self.counted_to..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.counted_to = start;
        1 + self.newlines
    }
}

/// Rows of a CSV file as column name → value, with line numbers.
struct Table {
    rows: Vec<(u64, HashMap<String, String>)>,
}

fn read_table(bytes: &[u8], required: &[&str], optional: &[&str]) -> Result<Table, Vec<RowError>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
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
    if columns.len() == 1 && columns[0].contains(';') {
        return Err(vec![error(
            1,
            "the file seems to be separated by ';' but Mailscribe reads ',' (save it as CSV with commas)",
        )]);
    }
    let mut problems = Vec::new();
    for column in &columns {
        if !required.contains(&column.as_str()) && !optional.contains(&column.as_str()) {
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
        if !seen_columns.insert(column) {
            problems.push(error(1, format!("the column '{column}' appears twice")));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(bytes);
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = lines.line_at(err.position());
                problems.push(error(line, format!("cannot be read: {err}")));
                continue;
            }
        };
        let line = lines.line_at(record.position());
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        if rows.len() >= MAX_ROWS {
            return Err(vec![error(
                line,
                format!("the file has more than {MAX_ROWS} rows; split it into smaller files"),
            )]);
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
        Ok(Table { rows })
    } else {
        Err(problems)
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

/// `code,name,email`; `email` may hold several addresses separated by `;`.
pub fn read_salespeople(bytes: &[u8]) -> Result<Vec<(u64, Salesperson)>, Vec<RowError>> {
    let table = read_table(bytes, &["code", "name", "email"], &[])?;
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
        let name = row["name"].clone();
        if name.is_empty() {
            problems.push(error(line, "the name is empty"));
        }
        let addresses = parse_addresses(line, &row["email"], &mut problems);
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
        Ok(people)
    } else {
        Err(problems)
    }
}

/// `no,name,email,company`, and optionally `type` (`person` or `company`).
pub fn read_contacts(bytes: &[u8]) -> Result<Vec<(u64, Contact)>, Vec<RowError>> {
    let table = read_table(
        bytes,
        &["no", "name", "email", "company"],
        &["type", "privacy_blocked"],
    )?;
    let mut problems = Vec::new();
    let mut contacts = Vec::new();
    let mut no_lines: HashMap<String, u64> = HashMap::new();
    for (line, row) in table.rows {
        let no = match ContactNo::parse(&row["no"]) {
            Ok(no) => no,
            Err(err) => {
                problems.push(error(line, format!("no: {err}")));
                continue;
            }
        };
        if let Some(first) = no_lines.insert(no.to_string(), line) {
            problems.push(error(
                line,
                format!("the number {no} is also on line {first}"),
            ));
        }
        let name = row["name"].clone();
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
        let company = row["company"].clone();
        if kind == ContactKind::Company && !company.is_empty() && company != name {
            problems.push(error(
                line,
                "a company cannot belong to another company; leave 'company' empty",
            ));
        }
        let addresses = parse_addresses(line, &row["email"], &mut problems);
        let company_name = (kind == ContactKind::Person && !company.is_empty()).then_some(company);
        let privacy_blocked = match row
            .get("privacy_blocked")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => None,
            Some(flag) if flag == "true" => Some(true),
            Some(flag) if flag == "false" => Some(false),
            // An empty cell in a file with the column leaves the flag alone.
            Some(flag) if flag.is_empty() => None,
            Some(flag) => {
                problems.push(error(
                    line,
                    format!("privacy_blocked '{flag}' must be true or false"),
                ));
                None
            }
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
        Ok(contacts)
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
    fn big_files_are_counted_in_linear_time_and_capped() {
        let mut csv = String::from("code,name,email\n");
        for n in 0..MAX_ROWS {
            csv.push_str(&format!("S{n},Name {n},s{n}@x.example\r\n"));
        }
        let people = read_salespeople(csv.as_bytes()).unwrap();
        assert_eq!(people.len(), MAX_ROWS);
        assert_eq!(
            people.last().unwrap().0,
            MAX_ROWS as u64 + 1,
            "line numbers stay right"
        );
        csv.push_str("S-extra,Extra,extra@x.example\n");
        assert_eq!(
            errors(read_salespeople(csv.as_bytes())),
            [format!(
                "line {}: the file has more than 100000 rows; split it into smaller files",
                MAX_ROWS + 2
            )]
        );
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
}
