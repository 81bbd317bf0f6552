//! Salespeople, contacts and their addresses.

use std::collections::{BTreeMap, BTreeSet};

use mailscribe_core::{
    Contact, ContactKind, ContactNo, ContactRef, DirectoryView, EmailAddress, Salesperson,
    SalespersonCode,
};
use sqlx::{QueryBuilder, Row};

use crate::{Result, Store, StoreError, push_padded_list, with_pool};

/// Rows per multi-row INSERT: well under SQLite's variable limit.
const INSERT_CHUNK: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    /// Companies created because a `company` column named one that did not
    /// exist yet.
    pub companies_created: Vec<String>,
}

/// A contact as stored, with its resolved company number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    pub no: ContactNo,
    pub name: String,
    pub kind: ContactKind,
    pub company_no: Option<ContactNo>,
    pub addresses: Vec<EmailAddress>,
    pub privacy_blocked: bool,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// One row of a contact joined with one of its addresses: number, name,
/// kind, company number, address (none for a contact without one),
/// privacy-blocked.
type ContactAddressRow = (String, String, String, Option<String>, Option<String>, bool);

impl Store {
    /// Upserts salespeople by code and replaces their address lists, all in
    /// one transaction: on any error nothing is imported.
    pub async fn import_salespeople(&self, people: &[Salesperson]) -> Result<ImportSummary> {
        let summary = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut summary = ImportSummary::default();
            for person in people {
                let existed = sqlx::query("SELECT 1 FROM salespeople WHERE code = $1")
                    .bind(person.code.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                sqlx::query(
                    "INSERT INTO salespeople (code, name) VALUES ($1, $2) \
                     ON CONFLICT (code) DO UPDATE SET name = excluded.name",
                )
                .bind(person.code.as_str())
                .bind(&person.name)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM salesperson_addresses WHERE salesperson_code = $1")
                    .bind(person.code.as_str())
                    .execute(&mut *tx)
                    .await?;
                if existed {
                    summary.updated += 1
                } else {
                    summary.created += 1
                }
            }
            // Addresses go in after every imported person's old list is gone,
            // so an address moving between two people of this file is fine;
            // one still held by someone outside the file is a conflict.
            let rows: Vec<(&str, &str, i64)> = people
                .iter()
                .flat_map(|p| {
                    p.addresses
                        .iter()
                        .enumerate()
                        .map(|(i, a)| (a.as_str(), p.code.as_str(), i as i64))
                })
                .collect();
            for chunk in rows.chunks(INSERT_CHUNK) {
                let addresses: Vec<&str> = chunk.iter().map(|r| r.0).collect();
                let mut check = QueryBuilder::new(
                    "SELECT address, salesperson_code FROM salesperson_addresses WHERE address IN (",
                );
                let mut separated = check.separated(", ");
                for address in &addresses {
                    separated.push_bind(*address);
                }
                check.push(") LIMIT 1");
                if let Some(row) = check.build().fetch_optional(&mut *tx).await? {
                    let address: String = row.try_get("address")?;
                    let holder: String = row.try_get("salesperson_code")?;
                    return Err(StoreError::Conflict(format!(
                        "the address {address} already belongs to salesperson {holder}"
                    )));
                }
                let mut insert = QueryBuilder::new(
                    "INSERT INTO salesperson_addresses (address, salesperson_code, position) ",
                );
                insert.push_values(chunk, |mut b, (address, code, position)| {
                    b.push_bind(*address).push_bind(*code).push_bind(*position);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(summary)
        })?;
        self.analyze_after_import(people.len()).await?;
        Ok(summary)
    }

    /// Upserts contacts by number, links each person to its company by
    /// name (creating `CO-<n>` companies that are missing), and replaces
    /// address lists. One transaction, a few statements per 500 rows, so
    /// that a directory of a million contacts imports in seconds.
    pub async fn import_contacts(&self, contacts: &[Contact]) -> Result<ImportSummary> {
        let mut numbers = BTreeSet::new();
        for contact in contacts {
            if !numbers.insert(contact.no.as_str()) {
                return Err(StoreError::Conflict(format!(
                    "the contact number {} is given twice",
                    contact.no
                )));
            }
        }
        // Companies first, so that people in the same file can name them.
        let (companies, people): (Vec<&Contact>, Vec<&Contact>) = contacts
            .iter()
            .partition(|c| c.kind == ContactKind::Company);
        let summary = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut summary = ImportSummary::default();

            let mut existing: BTreeSet<String> = BTreeSet::new();
            for chunk in contacts.chunks(INSERT_CHUNK) {
                let mut query = QueryBuilder::new("SELECT no FROM contacts WHERE no IN (");
                let mut separated = query.separated(", ");
                for contact in chunk {
                    separated.push_bind(contact.no.as_str());
                }
                query.push(")");
                for row in query.build().fetch_all(&mut *tx).await? {
                    existing.insert(row.try_get("no")?);
                }
            }
            summary.updated = existing.len();
            summary.created = contacts.len() - existing.len();

            // A company is its own company, as in BC.
            let company_rows: Vec<(&Contact, Option<String>)> = companies
                .iter()
                .map(|c| (*c, Some(c.no.as_str().to_owned())))
                .collect();
            for chunk in company_rows.chunks(INSERT_CHUNK) {
                let mut upsert = QueryBuilder::new(
                    "INSERT INTO contacts (no, name, kind, company_no, privacy_blocked) ",
                );
                upsert.push_values(chunk, |mut b, (contact, company_no)| {
                    b.push_bind(contact.no.as_str())
                        .push_bind(contact.name.as_str())
                        .push_bind(contact.kind.as_str())
                        .push_bind(company_no.clone())
                        .push_bind(contact.privacy_blocked.unwrap_or(false));
                });
                upsert.push(
                    " ON CONFLICT (no) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                     company_no = excluded.company_no",
                );
                upsert.build().execute(&mut *tx).await?;
            }

            let names: BTreeSet<&str> = people
                .iter()
                .filter_map(|p| p.company_name.as_deref())
                .collect();
            let mut company_numbers: BTreeMap<&str, String> = BTreeMap::new();
            for name in names {
                let found = sqlx::query(
                    "SELECT no FROM contacts WHERE kind = 'company' AND name = $1 ORDER BY no LIMIT 1",
                )
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
                let no = match found {
                    Some(row) => row.try_get::<String, _>("no")?,
                    None => {
                        let no = loop {
                            let next: i64 = sqlx::query(
                                "UPDATE sequences SET value = value + 1 WHERE name = 'company_no' RETURNING value",
                            )
                            .fetch_one(&mut *tx)
                            .await?
                            .try_get("value")?;
                            let candidate = format!("CO-{next}");
                            let taken = numbers.contains(candidate.as_str())
                                || sqlx::query("SELECT 1 FROM contacts WHERE no = $1")
                                    .bind(&candidate)
                                    .fetch_optional(&mut *tx)
                                    .await?
                                    .is_some();
                            if !taken {
                                break candidate;
                            }
                        };
                        sqlx::query(
                            "INSERT INTO contacts (no, name, kind, company_no) VALUES ($1, $2, 'company', $1)",
                        )
                        .bind(&no)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                        summary.companies_created.push(no.clone());
                        no
                    }
                };
                company_numbers.insert(name, no);
            }

            let person_rows: Vec<(&Contact, Option<String>)> = people
                .iter()
                .map(|p| {
                    (
                        *p,
                        p.company_name
                            .as_deref()
                            .and_then(|n| company_numbers.get(n).cloned()),
                    )
                })
                .collect();
            for chunk in person_rows.chunks(INSERT_CHUNK) {
                let mut upsert = QueryBuilder::new(
                    "INSERT INTO contacts (no, name, kind, company_no, privacy_blocked) ",
                );
                upsert.push_values(chunk, |mut b, (contact, company_no)| {
                    b.push_bind(contact.no.as_str())
                        .push_bind(contact.name.as_str())
                        .push_bind(contact.kind.as_str())
                        .push_bind(company_no.clone())
                        .push_bind(contact.privacy_blocked.unwrap_or(false));
                });
                upsert.push(
                    " ON CONFLICT (no) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                     company_no = excluded.company_no",
                );
                upsert.build().execute(&mut *tx).await?;
            }

            // The privacy flag where the file gives it; a file without the
            // column (or an empty cell) leaves the stored flag as it is.
            for flag in [true, false] {
                let given: Vec<&str> = contacts
                    .iter()
                    .filter(|c| c.privacy_blocked == Some(flag))
                    .map(|c| c.no.as_str())
                    .collect();
                for chunk in given.chunks(INSERT_CHUNK) {
                    let mut update = QueryBuilder::new("UPDATE contacts SET privacy_blocked = ");
                    update.push_bind(flag).push(" WHERE no IN (");
                    let mut separated = update.separated(", ");
                    for no in chunk {
                        separated.push_bind(*no);
                    }
                    update.push(")");
                    update.build().execute(&mut *tx).await?;
                }
            }

            for chunk in contacts.chunks(INSERT_CHUNK) {
                let mut delete =
                    QueryBuilder::new("DELETE FROM contact_addresses WHERE contact_no IN (");
                let mut separated = delete.separated(", ");
                for contact in chunk {
                    separated.push_bind(contact.no.as_str());
                }
                delete.push(")");
                delete.build().execute(&mut *tx).await?;
            }
            let rows: Vec<(&str, &str, i64)> = contacts
                .iter()
                .flat_map(|c| {
                    c.addresses
                        .iter()
                        .enumerate()
                        .map(|(i, a)| (a.as_str(), c.no.as_str(), i as i64))
                })
                .collect();
            for chunk in rows.chunks(INSERT_CHUNK) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO contact_addresses (address, contact_no, position) ",
                );
                insert.push_values(chunk, |mut b, (address, no, position)| {
                    b.push_bind(*address).push_bind(*no).push_bind(*position);
                });
                insert.push(" ON CONFLICT (address, contact_no) DO NOTHING");
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(summary)
        })?;
        self.analyze_after_import(contacts.len()).await?;
        Ok(summary)
    }

    /// PostgreSQL plans lookups from table statistics; after a large import,
    /// before autovacuum gets to it, a stale plan scans every contact for
    /// each address. SQLite uses the indexes without statistics.
    async fn analyze_after_import(&self, rows: usize) -> Result<()> {
        const LARGE_IMPORT: usize = 1000;
        if rows < LARGE_IMPORT {
            return Ok(());
        }
        if let crate::Backend::Postgres(pool) = &self.backend {
            sqlx::query("ANALYZE contacts, contact_addresses, salespeople, salesperson_addresses")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Who holds each of `addresses`: two indexed lookups, whatever the
    /// size of the directory.
    pub async fn lookup_addresses(&self, addresses: &[EmailAddress]) -> Result<DirectoryView> {
        let mut view = DirectoryView::default();
        let unique: BTreeSet<&EmailAddress> = addresses.iter().filter(|a| a.can_match()).collect();
        let unique: Vec<&EmailAddress> = unique.into_iter().collect();
        for chunk in unique.chunks(INSERT_CHUNK) {
            let (salespeople, contacts) = with_pool!(self, |pool| {
                let mut conn = pool.acquire().await?;
                let mut query = QueryBuilder::new(
                    "SELECT address, salesperson_code FROM salesperson_addresses WHERE address IN (",
                );
                push_padded_list!(query, chunk, |address| address.as_str());
                query.push(")");
                let salespeople = query
                    .build()
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok((
                            row.try_get::<String, _>("address")?,
                            row.try_get::<String, _>("salesperson_code")?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut query = QueryBuilder::new(
                    "SELECT a.address, a.contact_no, c.company_no, c.privacy_blocked FROM contact_addresses a \
                     JOIN contacts c ON c.no = a.contact_no WHERE a.address IN (",
                );
                push_padded_list!(query, chunk, |address| address.as_str());
                query.push(")");
                let contacts = query
                    .build()
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok((
                            row.try_get::<String, _>("address")?,
                            row.try_get::<String, _>("contact_no")?,
                            row.try_get::<Option<String>, _>("company_no")?,
                            row.try_get::<bool, _>("privacy_blocked")?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                (salespeople, contacts)
            });
            for (address, code) in salespeople {
                let address = EmailAddress::parse(&address).map_err(corrupt)?;
                view.add_salesperson(address, SalespersonCode::parse(&code).map_err(corrupt)?);
            }
            for (address, no, company_no, blocked) in contacts {
                let address = EmailAddress::parse(&address).map_err(corrupt)?;
                let contact = ContactRef {
                    no: ContactNo::parse(&no).map_err(corrupt)?,
                    company_no: company_no
                        .as_deref()
                        .map(ContactNo::parse)
                        .transpose()
                        .map_err(corrupt)?,
                };
                if blocked {
                    view.block(contact.no.clone());
                }
                view.add_contact(address, contact);
            }
        }
        Ok(view)
    }

    /// How many salespeople have at least one address (a setup check).
    pub async fn count_salespeople_with_address(&self) -> Result<i64> {
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT COUNT(DISTINCT salesperson_code) AS n FROM salesperson_addresses",
            )
            .fetch_one(pool)
            .await?;
            Ok(row.try_get::<i64, _>("n")?)
        })
    }

    /// Whether any contact with an address exists (the first-run checklist).
    pub async fn has_contact_addresses(&self) -> Result<bool> {
        with_pool!(self, |pool| {
            Ok(
                sqlx::query("SELECT 1 AS one FROM contact_addresses LIMIT 1")
                    .fetch_optional(pool)
                    .await?
                    .is_some(),
            )
        })
    }

    pub async fn list_salespeople(&self) -> Result<Vec<Salesperson>> {
        let rows: Vec<(String, String, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT s.code, s.name, a.address FROM salespeople s \
                 LEFT JOIN salesperson_addresses a ON a.salesperson_code = s.code ORDER BY s.code, a.position",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("code")?, r.try_get("name")?, r.try_get("address")?)))
            .collect::<Result<Vec<_>>>()?
        });
        let mut people: BTreeMap<String, Salesperson> = BTreeMap::new();
        for (code, name, address) in rows {
            let person = match people.get_mut(&code) {
                Some(person) => person,
                None => people.entry(code.clone()).or_insert(Salesperson {
                    code: SalespersonCode::parse(&code).map_err(corrupt)?,
                    name,
                    addresses: Vec::new(),
                }),
            };
            if let Some(address) = address {
                person
                    .addresses
                    .push(EmailAddress::parse(&address).map_err(corrupt)?);
            }
        }
        Ok(people.into_values().collect())
    }

    pub async fn list_contacts(&self) -> Result<Vec<ContactRow>> {
        let rows: Vec<ContactAddressRow> = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT c.no, c.name, c.kind, c.company_no, a.address, c.privacy_blocked FROM contacts c \
                 LEFT JOIN contact_addresses a ON a.contact_no = c.no ORDER BY c.no, a.position",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("no")?,
                    r.try_get("name")?,
                    r.try_get("kind")?,
                    r.try_get("company_no")?,
                    r.try_get("address")?,
                    r.try_get("privacy_blocked")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?
        });
        let mut contacts: Vec<ContactRow> = Vec::new();
        for (no, name, kind, company_no, address, privacy_blocked) in rows {
            if contacts.last().is_none_or(|c| c.no.as_str() != no) {
                contacts.push(ContactRow {
                    no: ContactNo::parse(&no).map_err(corrupt)?,
                    name,
                    kind: ContactKind::parse(&kind)
                        .ok_or_else(|| corrupt(format!("contact kind '{kind}'")))?,
                    company_no: company_no
                        .as_deref()
                        .map(ContactNo::parse)
                        .transpose()
                        .map_err(corrupt)?,
                    addresses: Vec::new(),
                    privacy_blocked,
                });
            }
            if let (Some(address), Some(contact)) = (address, contacts.last_mut()) {
                contact
                    .addresses
                    .push(EmailAddress::parse(&address).map_err(corrupt)?);
            }
        }
        Ok(contacts)
    }
}

impl Store {
    /// Contacts whose number or name contains `text` (any case), by number.
    pub async fn contacts_page(&self, text: Option<&str>, limit: i64) -> Result<Vec<ContactRow>> {
        let numbers: Vec<String> = with_pool!(self, |pool| {
            let mut query = QueryBuilder::new("SELECT no FROM contacts WHERE 1 = 1");
            if let Some(text) = text {
                let pattern = format!(
                    "%{}%",
                    text.to_lowercase()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                query
                    .push(" AND (LOWER(no) LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR LOWER(name) LIKE ")
                    .push_bind(pattern)
                    .push(" ESCAPE '\\')");
            }
            query.push(" ORDER BY no LIMIT ").push_bind(limit);
            query
                .build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok(r.try_get("no")?))
                .collect::<Result<Vec<String>>>()?
        });
        let mut rows = Vec::with_capacity(numbers.len());
        for no in numbers {
            rows.extend(self.contact(&no).await?);
        }
        Ok(rows)
    }

    pub async fn contact(&self, no: &str) -> Result<Option<ContactRow>> {
        let rows: Vec<ContactAddressRow> = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT c.no, c.name, c.kind, c.company_no, a.address, c.privacy_blocked FROM contacts c \
                 LEFT JOIN contact_addresses a ON a.contact_no = c.no WHERE c.no = $1 ORDER BY a.position",
            )
            .bind(no)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("no")?,
                    r.try_get("name")?,
                    r.try_get("kind")?,
                    r.try_get("company_no")?,
                    r.try_get("address")?,
                    r.try_get("privacy_blocked")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?
        });
        let Some((no, name, kind, company_no, _, privacy_blocked)) = rows.first().cloned() else {
            return Ok(None);
        };
        Ok(Some(ContactRow {
            no: ContactNo::parse(&no).map_err(corrupt)?,
            name,
            kind: ContactKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("contact kind '{kind}'")))?,
            company_no: company_no
                .as_deref()
                .map(ContactNo::parse)
                .transpose()
                .map_err(corrupt)?,
            addresses: rows
                .iter()
                .filter_map(|r| r.4.as_deref())
                .map(|a| EmailAddress::parse(a).map_err(corrupt))
                .collect::<Result<Vec<_>>>()?,
            privacy_blocked,
        }))
    }
}

impl Store {
    /// Deletes a contact and its addresses. Its entries stay in the log.
    /// Refused while people belong to it as their company.
    pub async fn delete_contact(&self, no: &str) -> Result<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let members: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM contacts WHERE company_no = $1 AND no <> $1",
            )
            .bind(no)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if members > 0 {
                return Err(StoreError::Conflict(format!(
                    "{members} contacts belong to company {no}: move or delete them first"
                )));
            }
            // A company is its own company: unlink before deleting.
            sqlx::query("UPDATE contacts SET company_no = NULL WHERE no = $1")
                .bind(no)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM contacts WHERE no = $1")
                .bind(no)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(deleted == 1)
        })
    }

    /// Deletes a salesperson and their addresses. Their entries stay.
    /// Deletes a salesperson. The accounts tied to the code are disabled
    /// and lose their sessions and tokens in the same transaction, so that a
    /// later salesperson given the same code never inherits them.
    pub async fn delete_salesperson(&self, code: &str) -> Result<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM salespeople WHERE code = $1")
                .bind(code)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if deleted {
                for table in ["sessions", "api_tokens"] {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE user_id IN (SELECT id FROM users WHERE salesperson_code = $1)"
                    ))
                    .bind(code)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("UPDATE users SET disabled = TRUE WHERE salesperson_code = $1")
                    .bind(code)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(deleted)
        })
    }
}
