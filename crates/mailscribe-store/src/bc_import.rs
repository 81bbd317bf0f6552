//! Importing Business Central's Interaction Log Entries: entries without a
//! message record, logged under the reserved mailbox name `import`, each
//! keeping Business Central's entry number so that importing a file again
//! adds nothing.

use std::collections::{BTreeMap, BTreeSet};

use mailscribe_core::BcInteraction;
use sqlx::{QueryBuilder, Row};

use crate::{Result, Store, StoreError, with_pool};

/// The mailbox name imported entries carry: reserved for intake that is
/// not an IMAP queue, so no mailbox setup can have it.
pub const IMPORT_MAILBOX_NAME: &str = "import";

const CHUNK: usize = 200;

/// What an import did, or with `dry_run` would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BcImportSummary {
    pub added: usize,
    /// Rows whose Business Central entry number is already in the log.
    pub already_imported: usize,
    pub contacts_created: Vec<String>,
    pub salespeople_created: Vec<String>,
}

impl Store {
    /// Imports the rows in one transaction. A contact or salesperson not in
    /// the directory refuses the whole file, naming the first line of each,
    /// unless `create_missing`, which creates them (named after the export's
    /// `Contact Name`, or the number or code). With `dry_run` nothing stays.
    pub async fn import_bc_interactions(
        &self,
        rows: &[(u64, BcInteraction)],
        create_missing: bool,
        dry_run: bool,
    ) -> Result<BcImportSummary> {
        let mut first_contact_line: BTreeMap<&str, (u64, Option<&str>, Option<&str>)> =
            BTreeMap::new();
        let mut first_salesperson_line: BTreeMap<&str, u64> = BTreeMap::new();
        for (line, row) in rows {
            first_contact_line
                .entry(row.contact_no.as_str())
                .or_insert((
                    *line,
                    row.contact_name.as_deref(),
                    row.contact_company_no.as_ref().map(|c| c.as_str()),
                ));
            first_salesperson_line
                .entry(row.salesperson_code.as_str())
                .or_insert(*line);
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut summary = BcImportSummary::default();

            let mut known_contacts: BTreeSet<String> = BTreeSet::new();
            let wanted: Vec<&str> = first_contact_line
                .values()
                .filter_map(|(_, _, company)| *company)
                .chain(first_contact_line.keys().copied())
                .collect();
            for chunk in wanted.chunks(CHUNK) {
                let mut query = QueryBuilder::new("SELECT no FROM contacts WHERE no IN (");
                let mut separated = query.separated(", ");
                for no in chunk {
                    separated.push_bind(*no);
                }
                query.push(")");
                for row in query.build().fetch_all(&mut *tx).await? {
                    known_contacts.insert(row.try_get("no")?);
                }
            }
            let mut known_salespeople: BTreeSet<String> = BTreeSet::new();
            let codes: Vec<&str> = first_salesperson_line.keys().copied().collect();
            for chunk in codes.chunks(CHUNK) {
                let mut query = QueryBuilder::new("SELECT code FROM salespeople WHERE code IN (");
                let mut separated = query.separated(", ");
                for code in chunk {
                    separated.push_bind(*code);
                }
                query.push(")");
                for row in query.build().fetch_all(&mut *tx).await? {
                    known_salespeople.insert(row.try_get("code")?);
                }
            }

            let missing_contacts: Vec<(&str, u64, Option<&str>, Option<&str>)> = first_contact_line
                .iter()
                .filter(|(no, _)| !known_contacts.contains(**no))
                .map(|(no, (line, name, company))| (*no, *line, *name, *company))
                .collect();
            let missing_salespeople: Vec<(&str, u64)> = first_salesperson_line
                .iter()
                .filter(|(code, _)| !known_salespeople.contains(**code))
                .map(|(code, line)| (*code, *line))
                .collect();
            if !create_missing && (!missing_contacts.is_empty() || !missing_salespeople.is_empty())
            {
                let mut problems: Vec<(u64, String)> = missing_contacts
                    .iter()
                    .map(|(no, line, _, _)| {
                        (
                            *line,
                            format!("line {line}: the contact {no} is not in the directory"),
                        )
                    })
                    .chain(missing_salespeople.iter().map(|(code, line)| {
                        (
                            *line,
                            format!("line {line}: the salesperson {code} is not in the directory"),
                        )
                    }))
                    .collect();
                problems.sort();
                let mut message: Vec<String> = problems.into_iter().map(|(_, text)| text).collect();
                message.push(
                    "nothing was imported: import the contacts and salespeople first, or give --create-missing \
                     to create them from this file"
                        .to_owned(),
                );
                return Err(StoreError::Conflict(message.join("\n")));
            }

            for (code, _) in &missing_salespeople {
                sqlx::query("INSERT INTO salespeople (code, name) VALUES ($1, $1)")
                    .bind(*code)
                    .execute(&mut *tx)
                    .await?;
                summary.salespeople_created.push((*code).to_owned());
            }
            // Companies first, so that the people can point at them.
            let missing_companies: BTreeSet<&str> = missing_contacts
                .iter()
                .filter_map(|(_, _, _, company)| *company)
                .filter(|company| !known_contacts.contains(*company))
                .collect();
            for company in &missing_companies {
                if missing_contacts.iter().any(|(no, ..)| no == company) {
                    // A company that is also one of the entries' contacts.
                    continue;
                }
                sqlx::query("INSERT INTO contacts (no, name, kind, company_no) VALUES ($1, $1, 'company', $1)")
                    .bind(*company)
                    .execute(&mut *tx)
                    .await?;
                summary.contacts_created.push((*company).to_owned());
            }
            for (no, _, name, company) in &missing_contacts {
                let is_company = missing_companies.contains(no) || company == &Some(*no);
                let (kind, company_no) = if is_company {
                    ("company", Some(*no))
                } else {
                    ("person", *company)
                };
                sqlx::query(
                    "INSERT INTO contacts (no, name, kind, company_no) VALUES ($1, $2, $3, $4)",
                )
                .bind(*no)
                .bind(name.unwrap_or(*no))
                .bind(kind)
                .bind(company_no)
                .execute(&mut *tx)
                .await?;
                summary.contacts_created.push((*no).to_owned());
            }
            summary.contacts_created.sort();

            for chunk in rows.chunks(CHUNK) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO interaction_entries (message_record_id, contact_no, contact_company_no, \
                     salesperson_code, occurred_at, description, subject, direction, initiated_by, \
                     correspondence_type, template_code, cost_hundredths, duration_minutes, email_logged, \
                     attempt_failed, canceled, opportunity_no, date_fallback, mailbox_name, bc_entry_no) ",
                );
                insert.push_values(chunk, |mut b, (_, row)| {
                    b.push_bind(None::<i64>)
                        .push_bind(row.contact_no.as_str())
                        .push_bind(row.contact_company_no.as_ref().map(|c| c.as_str()))
                        .push_bind(row.salesperson_code.as_str())
                        .push_bind(row.occurred_at)
                        .push_bind(row.description.as_str())
                        .push_bind(row.subject.as_str())
                        .push_bind(row.direction.as_str())
                        .push_bind(row.initiated_by.as_str())
                        .push_bind(row.correspondence_type)
                        .push_bind(row.template_code.as_str())
                        .push_bind(row.cost.hundredths())
                        .push_bind(row.duration_minutes)
                        .push_bind(row.email_logged)
                        .push_bind(false)
                        .push_bind(row.canceled)
                        .push_bind(row.opportunity_no.as_deref())
                        .push_bind(false)
                        .push_bind(IMPORT_MAILBOX_NAME)
                        .push_bind(row.bc_entry_no);
                });
                insert.push(" ON CONFLICT (bc_entry_no) WHERE bc_entry_no IS NOT NULL DO NOTHING");
                let added = insert.build().execute(&mut *tx).await?.rows_affected();
                summary.added += usize::try_from(added).unwrap_or(usize::MAX);
            }
            summary.already_imported = rows.len().saturating_sub(summary.added);
            if dry_run {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            Ok::<_, StoreError>(summary)
        })
    }
}
