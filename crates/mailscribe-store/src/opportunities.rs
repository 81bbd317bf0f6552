//! Opportunities: made from an entry (copying its description, contact,
//! company, salesperson and comments, and linking both ways) or by hand.

use chrono::{DateTime, Utc};
use mailscribe_core::Amount;
use sqlx::{QueryBuilder, Row};

use crate::{Result, Store, StoreError, with_pool};

pub const OPPORTUNITY_STATUSES: [&str; 4] = ["not_started", "in_progress", "won", "lost"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opportunity {
    pub no: String,
    pub description: String,
    pub contact_no: Option<String>,
    pub contact_company_no: Option<String>,
    pub salesperson_code: Option<String>,
    pub status: String,
    pub estimated_value: Option<Amount>,
    pub created_at: DateTime<Utc>,
}

/// A new opportunity made by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewOpportunity {
    pub description: String,
    pub contact_no: Option<String>,
    pub contact_company_no: Option<String>,
    pub salesperson_code: Option<String>,
    pub estimated_value: Option<Amount>,
}

fn opportunity_from<R: Row>(r: &R) -> Result<Opportunity>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Opportunity {
        no: r.try_get("no")?,
        description: r.try_get("description")?,
        contact_no: r.try_get("contact_no")?,
        contact_company_no: r.try_get("contact_company_no")?,
        salesperson_code: r.try_get("salesperson_code")?,
        status: r.try_get("status")?,
        estimated_value: r
            .try_get::<Option<i64>, _>("estimated_value_hundredths")?
            .map(Amount::from_hundredths),
        created_at: r.try_get("created_at")?,
    })
}

/// Why an opportunity is refused for a privacy-blocked contact.
const PRIVACY_BLOCKED: &str = "the contact is privacy-blocked: no opportunity can be made for it";

impl Store {
    /// Makes an opportunity from an entry, in one transaction. Refused when
    /// the entry is canceled or has an opportunity already.
    pub async fn create_opportunity_from_entry(
        &self,
        entry_no: i64,
        now: DateTime<Utc>,
    ) -> Result<String> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The write first (see `create_opportunity`).
            let next: i64 = sqlx::query("UPDATE sequences SET value = value + 1 WHERE name = 'opportunity_no' RETURNING value")
                .fetch_one(&mut *tx)
                .await?
                .try_get("value")?;
            let blocked = sqlx::query(
                "SELECT 1 AS one FROM interaction_entries e JOIN contacts c ON c.no = e.contact_no \
                 WHERE e.entry_no = $1 AND c.privacy_blocked = TRUE",
            )
            .bind(entry_no)
            .fetch_optional(&mut *tx)
            .await?;
            if blocked.is_some() {
                return Err(StoreError::Conflict(PRIVACY_BLOCKED.into()));
            }
            let no = format!("OP-{next}");
            // The condition and the link in one statement: two clicks at
            // once make one opportunity.
            let linked = sqlx::query(
                "UPDATE interaction_entries SET opportunity_no = $1 \
                 WHERE entry_no = $2 AND opportunity_no IS NULL AND canceled = FALSE",
            )
            .bind(&no)
            .bind(entry_no)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if linked != 1 {
                return Err(StoreError::Conflict(
                    "an opportunity can only be made from an entry that is not canceled and has none yet".into(),
                ));
            }
            sqlx::query(
                "INSERT INTO opportunities (no, description, contact_no, contact_company_no, salesperson_code, status, created_at) \
                 SELECT $1, description, contact_no, contact_company_no, salesperson_code, 'not_started', $2 \
                 FROM interaction_entries WHERE entry_no = $3",
            )
            .bind(&no)
            .bind(now)
            .bind(entry_no)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO opportunity_comments (opportunity_no, line_no, created_at, comment) \
                 SELECT $1, line_no, created_at, comment FROM entry_comments WHERE entry_no = $2",
            )
            .bind(&no)
            .bind(entry_no)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(no)
        })
    }

    pub async fn create_opportunity(
        &self,
        new: &NewOpportunity,
        now: DateTime<Utc>,
    ) -> Result<String> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The write first: on SQLite a transaction that reads and then
            // writes fails at once (SQLITE_BUSY_SNAPSHOT, no busy wait) when
            // another connection wrote in between, such as the scheduler's
            // heartbeat; one that starts with its write waits its turn.
            // Refusing below rolls the number back.
            let next: i64 = sqlx::query("UPDATE sequences SET value = value + 1 WHERE name = 'opportunity_no' RETURNING value")
                .fetch_one(&mut *tx)
                .await?
                .try_get("value")?;
            let blocked = sqlx::query(
                "SELECT 1 AS one FROM contacts WHERE no = $1 AND privacy_blocked = TRUE",
            )
            .bind(&new.contact_no)
            .fetch_optional(&mut *tx)
            .await?;
            if blocked.is_some() {
                return Err(StoreError::Conflict(PRIVACY_BLOCKED.into()));
            }
            let no = format!("OP-{next}");
            sqlx::query(
                "INSERT INTO opportunities (no, description, contact_no, contact_company_no, salesperson_code, status, \
                 estimated_value_hundredths, created_at) VALUES ($1, $2, $3, $4, $5, 'not_started', $6, $7)",
            )
            .bind(&no)
            .bind(&new.description)
            .bind(&new.contact_no)
            .bind(&new.contact_company_no)
            .bind(&new.salesperson_code)
            .bind(new.estimated_value.map(Amount::hundredths))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(no)
        })
    }

    /// Opportunities, newest first; `salesperson` restricts them.
    pub async fn opportunities(
        &self,
        salesperson: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Opportunity>> {
        with_pool!(self, |pool| {
            let mut query = QueryBuilder::new("SELECT * FROM opportunities WHERE 1 = 1");
            if let Some(code) = salesperson {
                query
                    .push(" AND salesperson_code = ")
                    .push_bind(code.to_owned());
            }
            query
                .push(" ORDER BY created_at DESC, no DESC LIMIT ")
                .push_bind(limit);
            query
                .build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(opportunity_from)
                .collect()
        })
    }

    pub async fn opportunity(&self, no: &str) -> Result<Option<Opportunity>> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT * FROM opportunities WHERE no = $1")
                .bind(no)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(opportunity_from)
                .transpose()
        })
    }

    /// The entries linked to an opportunity.
    pub async fn opportunity_entries(&self, no: &str) -> Result<Vec<i64>> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT entry_no FROM interaction_entries WHERE opportunity_no = $1 ORDER BY entry_no")
                .bind(no)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok(r.try_get("entry_no")?))
                .collect()
        })
    }

    pub async fn opportunity_comments(&self, no: &str) -> Result<Vec<String>> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT comment FROM opportunity_comments WHERE opportunity_no = $1 ORDER BY line_no")
                .bind(no)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok(r.try_get("comment")?))
                .collect()
        })
    }

    pub async fn update_opportunity(
        &self,
        no: &str,
        status: &str,
        estimated_value: Option<Amount>,
    ) -> Result<()> {
        if !OPPORTUNITY_STATUSES.contains(&status) {
            return Err(StoreError::Conflict(format!(
                "'{status}' is not a status: {}",
                OPPORTUNITY_STATUSES.join(", ")
            )));
        }
        with_pool!(self, |pool| {
            sqlx::query("UPDATE opportunities SET status = $1, estimated_value_hundredths = $2 WHERE no = $3")
                .bind(status)
                .bind(estimated_value.map(Amount::hundredths))
                .bind(no)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
