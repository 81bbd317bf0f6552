//! The mailbox setups, settings and interaction templates.

use chrono::{DateTime, Utc};
use mailscribe_core::{
    Amount, AuthKind, Enablement, InteractionTemplate, MailboxName, MailboxSetup, OAuthSetup,
    SecretRef, Settings,
};
use sqlx::Row;

use crate::{Result, Store, StoreError, with_pool};

/// One mailbox as stored: its setup, whether logging is on, and what the
/// instance working it last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRow {
    pub name: MailboxName,
    pub setup: MailboxSetup,
    pub enablement: Enablement,
    pub status: MailboxStatus,
    /// The sweep interval of this mailbox, when it has its own.
    pub interval_seconds: Option<u32>,
}

/// The operational state of a mailbox, for `mailbox list` and the status
/// page. `status` is `new`, `ok`, `retrying` or `idle`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxStatus {
    pub status: String,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
}

const SETUP_COLUMNS: &str = "name, host, port, security, auth_kind, username, password_ref, queue_folder, \
    storage_folder, not_logged_folder, quarantine_folder, batch_size, allow_plaintext, ca_file, oauth_token_url, \
    oauth_tenant, oauth_client_id_ref, oauth_client_secret_ref, oauth_scope, tls_trust, enabled, accepted_by, \
    accepted_at, status, last_run_at, last_error, next_attempt_at, consecutive_failures, interval_seconds";

/// Turns the insert of `write_mailbox_setup` into an update of the
/// connection and folders of an existing mailbox.
const UPSERT_SETUP: &str = " ON CONFLICT (name) DO UPDATE SET host = excluded.host, port = excluded.port, \
    security = excluded.security, auth_kind = excluded.auth_kind, username = excluded.username, \
    password_ref = excluded.password_ref, queue_folder = excluded.queue_folder, \
    storage_folder = excluded.storage_folder, not_logged_folder = excluded.not_logged_folder, \
    quarantine_folder = excluded.quarantine_folder, batch_size = excluded.batch_size, \
    allow_plaintext = excluded.allow_plaintext, ca_file = excluded.ca_file, \
    oauth_token_url = excluded.oauth_token_url, oauth_tenant = excluded.oauth_tenant, \
    oauth_client_id_ref = excluded.oauth_client_id_ref, \
    oauth_client_secret_ref = excluded.oauth_client_secret_ref, oauth_scope = excluded.oauth_scope, \
    tls_trust = excluded.tls_trust";

fn exists(name: &MailboxName) -> StoreError {
    StoreError::Conflict(format!(
        "a mailbox named {name} exists already (names ignore case); choose another name"
    ))
}

macro_rules! mailbox_from_row {
    ($row:expr) => {{
        let row = $row;
        let name: String = row.try_get("name")?;
        let bad = |what: &str| StoreError::Corrupt(format!("mailbox {name}: {what}"));
        let security: String = row.try_get("security")?;
        let auth: String = row.try_get("auth_kind")?;
        let port: i64 = row.try_get("port")?;
        let batch_size: i64 = row.try_get("batch_size")?;
        let failures: i64 = row.try_get("consecutive_failures")?;
        let setup = MailboxSetup {
            host: row.try_get("host")?,
            port: u16::try_from(port).map_err(|_| bad("port"))?,
            security: security.parse().map_err(|_| bad("security"))?,
            auth: auth.parse::<AuthKind>().map_err(|_| bad("auth kind"))?,
            username: row.try_get("username")?,
            password: row
                .try_get::<Option<String>, _>("password_ref")?
                .as_deref()
                .map(SecretRef::from_storage),
            oauth: match (
                row.try_get::<Option<String>, _>("oauth_token_url")?,
                row.try_get::<Option<String>, _>("oauth_client_id_ref")?,
                row.try_get::<Option<String>, _>("oauth_client_secret_ref")?,
            ) {
                (Some(token_url), Some(client_id), Some(client_secret)) => Some(OAuthSetup {
                    token_url,
                    tenant: row.try_get("oauth_tenant")?,
                    client_id: SecretRef::from_storage(&client_id),
                    client_secret: SecretRef::from_storage(&client_secret),
                    scope: row
                        .try_get::<Option<String>, _>("oauth_scope")?
                        .unwrap_or_default(),
                }),
                _ => None,
            },
            queue_folder: row.try_get("queue_folder")?,
            storage_folder: row.try_get("storage_folder")?,
            not_logged_folder: row.try_get("not_logged_folder")?,
            quarantine_folder: row.try_get("quarantine_folder")?,
            batch_size: u32::try_from(batch_size).map_err(|_| bad("batch size"))?,
            allow_plaintext: row.try_get("allow_plaintext")?,
            ca_file: row.try_get("ca_file")?,
            tls_trust: row
                .try_get::<String, _>("tls_trust")?
                .parse()
                .map_err(|_| bad("tls trust"))?,
        };
        MailboxRow {
            name: MailboxName::parse(&name).map_err(|_| bad("name"))?,
            setup,
            enablement: Enablement {
                enabled: row.try_get("enabled")?,
                accepted_by: row.try_get("accepted_by")?,
                accepted_at: row.try_get::<Option<DateTime<Utc>>, _>("accepted_at")?,
            },
            status: MailboxStatus {
                status: row.try_get("status")?,
                last_run_at: row.try_get("last_run_at")?,
                last_error: row.try_get("last_error")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                consecutive_failures: u32::try_from(failures).unwrap_or(0),
            },
            interval_seconds: row
                .try_get::<Option<i64>, _>("interval_seconds")?
                .map(|seconds| u32::try_from(seconds).map_err(|_| bad("interval")))
                .transpose()?,
        }
    }};
}

const TEMPLATE_COLUMNS: &str =
    "code, description, cost_hundredths, duration_minutes, interaction_group, campaign_no";

macro_rules! template_from_row {
    ($row:expr) => {{
        let row = $row;
        let code: String = row.try_get("code")?;
        let minutes: i64 = row.try_get("duration_minutes")?;
        InteractionTemplate {
            description: row.try_get("description")?,
            cost: Amount::from_hundredths(row.try_get("cost_hundredths")?),
            duration_minutes: u32::try_from(minutes)
                .map_err(|_| StoreError::Corrupt(format!("template {code}: duration")))?,
            interaction_group: row.try_get("interaction_group")?,
            campaign_no: row.try_get("campaign_no")?,
            code,
        }
    }};
}

/// A campaign entries can count toward (Business Central's, in brief).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub no: String,
    pub description: String,
    pub starts_on: Option<chrono::NaiveDate>,
    pub ends_on: Option<chrono::NaiveDate>,
}

impl Store {
    /// One mailbox, by name (without regard to case).
    pub async fn mailbox(&self, name: &MailboxName) -> Result<Option<MailboxRow>> {
        with_pool!(self, |pool| {
            let row = sqlx::query(&format!(
                "SELECT {SETUP_COLUMNS} FROM mailboxes WHERE lower(name) = $1"
            ))
            .bind(name.folded())
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(mailbox_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Every mailbox, by name.
    pub async fn mailboxes(&self) -> Result<Vec<MailboxRow>> {
        with_pool!(self, |pool| {
            sqlx::query(&format!(
                "SELECT {SETUP_COLUMNS} FROM mailboxes ORDER BY lower(name)"
            ))
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| Ok(mailbox_from_row!(row)))
            .collect::<Result<Vec<_>>>()
        })
    }

    pub async fn mailbox_setup(&self, name: &MailboxName) -> Result<Option<MailboxSetup>> {
        Ok(self.mailbox(name).await?.map(|m| m.setup))
    }

    /// Saves the connection and folders of a mailbox, creating it when new.
    /// Enablement and status are kept as they were.
    pub async fn save_mailbox_setup(&self, name: &MailboxName, setup: &MailboxSetup) -> Result<()> {
        self.write_mailbox_setup(name, setup, true).await
    }

    /// Creates a mailbox; `Conflict` when one of that name (in any case)
    /// exists already, even one created a moment ago by another instance.
    pub async fn create_mailbox_setup(
        &self,
        name: &MailboxName,
        setup: &MailboxSetup,
    ) -> Result<()> {
        match self.write_mailbox_setup(name, setup, false).await {
            Err(StoreError::Refused(sqlx::Error::Database(db))) if db.is_unique_violation() => {
                Err(exists(name))
            }
            other => other,
        }
    }

    async fn write_mailbox_setup(
        &self,
        name: &MailboxName,
        setup: &MailboxSetup,
        replace: bool,
    ) -> Result<()> {
        let on_conflict = if replace { UPSERT_SETUP } else { "" };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The stored spelling of an existing name is kept.
            let existing: Option<String> =
                sqlx::query("SELECT name FROM mailboxes WHERE lower(name) = $1")
                    .bind(name.folded())
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| row.try_get("name"))
                    .transpose()?;
            if existing.is_some() && !replace {
                return Err(exists(name));
            }
            let stored_name = existing.unwrap_or_else(|| name.as_str().to_owned());
            sqlx::query(&format!(
                "INSERT INTO mailboxes (name, host, port, security, auth_kind, username, password_ref, \
                 queue_folder, storage_folder, not_logged_folder, quarantine_folder, batch_size, allow_plaintext, ca_file, \
                 oauth_token_url, oauth_tenant, oauth_client_id_ref, oauth_client_secret_ref, oauth_scope, tls_trust) \
                 VALUES ($20, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19){on_conflict}"
            ))
            .bind(&setup.host)
            .bind(i64::from(setup.port))
            .bind(setup.security.as_str())
            .bind(setup.auth.as_str())
            .bind(&setup.username)
            .bind(setup.password.as_ref().map(SecretRef::to_storage))
            .bind(&setup.queue_folder)
            .bind(&setup.storage_folder)
            .bind(&setup.not_logged_folder)
            .bind(&setup.quarantine_folder)
            .bind(i64::from(setup.batch_size))
            .bind(setup.allow_plaintext)
            .bind(&setup.ca_file)
            .bind(setup.oauth.as_ref().map(|o| o.token_url.as_str()))
            .bind(setup.oauth.as_ref().and_then(|o| o.tenant.as_deref()))
            .bind(setup.oauth.as_ref().map(|o| o.client_id.to_storage()))
            .bind(setup.oauth.as_ref().map(|o| o.client_secret.to_storage()))
            .bind(setup.oauth.as_ref().map(|o| o.scope.as_str()))
            .bind(setup.tls_trust.as_str())
            .bind(&stored_name)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// "Clear setup": removes the mailbox, its connection, folders and the
    /// stored secrets with them. Refused while logging is enabled, in the
    /// same statement, so an enable racing with it cannot lose.
    pub async fn clear_mailbox_setup(&self, name: &MailboxName) -> Result<bool> {
        let removed = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM mailboxes WHERE lower(name) = $1 AND enabled = FALSE")
                .bind(name.folded())
                .execute(pool)
                .await?
                .rows_affected()
        });
        if removed == 0 && self.enablement(name).await?.enabled {
            return Err(StoreError::Conflict(
                "logging is enabled: disable it before clearing the setup".into(),
            ));
        }
        Ok(removed > 0)
    }

    pub async fn enablement(&self, name: &MailboxName) -> Result<Enablement> {
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT enabled, accepted_by, accepted_at FROM mailboxes WHERE lower(name) = $1",
            )
            .bind(name.folded())
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                return Ok(Enablement::default());
            };
            Ok(Enablement {
                enabled: row.try_get("enabled")?,
                accepted_by: row.try_get("accepted_by")?,
                accepted_at: row.try_get::<Option<DateTime<Utc>>, _>("accepted_at")?,
            })
        })
    }

    /// Whether any mailbox has logging on: global settings the data
    /// statement covers (the storage mode) change only when none has.
    pub async fn any_mailbox_enabled(&self) -> Result<bool> {
        with_pool!(self, |pool| {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM mailboxes WHERE enabled = TRUE")
                .fetch_one(pool)
                .await?;
            Ok(row.try_get::<i64, _>("n")? > 0)
        })
    }

    /// Records enablement. Fails when there is no such mailbox.
    pub async fn set_enablement(&self, name: &MailboxName, enablement: &Enablement) -> Result<()> {
        let affected = with_pool!(self, |pool| {
            sqlx::query("UPDATE mailboxes SET enabled = $1, accepted_by = $2, accepted_at = $3 WHERE lower(name) = $4")
                .bind(enablement.enabled)
                .bind(&enablement.accepted_by)
                .bind(enablement.accepted_at)
                .bind(name.folded())
                .execute(pool)
                .await?
                .rows_affected()
        });
        if affected == 0 {
            return Err(StoreError::Conflict(if name.is_default() {
                "there is no mailbox setup yet: run `mailscribe mailbox configure` first".into()
            } else {
                format!(
                    "there is no mailbox named {name}: run `mailscribe mailbox configure --mailbox {name}` first"
                )
            }));
        }
        Ok(())
    }

    /// Gives a mailbox its own sweep interval, or (`None`) the global one.
    pub async fn set_mailbox_interval(
        &self,
        name: &MailboxName,
        seconds: Option<u32>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE mailboxes SET interval_seconds = $1 WHERE lower(name) = $2")
                .bind(seconds.map(i64::from))
                .bind(name.folded())
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records what the instance working a mailbox last saw.
    pub async fn record_mailbox_status(
        &self,
        name: &MailboxName,
        status: &MailboxStatus,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE mailboxes SET status = $1, last_run_at = COALESCE($2, last_run_at), last_error = $3, \
                 next_attempt_at = $4, consecutive_failures = $5 WHERE lower(name) = $6",
            )
            .bind(&status.status)
            .bind(status.last_run_at)
            .bind(&status.last_error)
            .bind(status.next_attempt_at)
            .bind(i64::from(status.consecutive_failures))
            .bind(name.folded())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The settings, defaults filled in for keys never set.
    pub async fn settings(&self) -> Result<Settings> {
        let pairs: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query("SELECT key, value FROM settings")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
                .collect::<Result<Vec<_>>>()?
        });
        let mut settings = Settings::default();
        for (key, value) in pairs {
            settings
                .set(&key, &value)
                .map_err(|err| StoreError::Corrupt(format!("setting {key}: {err}")))?;
        }
        Ok(settings)
    }

    /// Stores one setting. The caller has validated it with `Settings::set`.
    pub async fn save_setting(&self, key: &str, value: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn template(&self, code: &str) -> Result<Option<InteractionTemplate>> {
        with_pool!(self, |pool| {
            let row = sqlx::query(&format!(
                "SELECT {TEMPLATE_COLUMNS} FROM interaction_templates WHERE code = $1"
            ))
            .bind(code)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(template_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Every template, by code.
    pub async fn templates(&self) -> Result<Vec<InteractionTemplate>> {
        with_pool!(self, |pool| {
            sqlx::query(&format!(
                "SELECT {TEMPLATE_COLUMNS} FROM interaction_templates ORDER BY code"
            ))
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| Ok(template_from_row!(row)))
            .collect()
        })
    }

    /// Removes a template; refused while it is the one logged mail uses.
    pub async fn remove_template(&self, code: &str) -> Result<bool> {
        if self.settings().await?.email_template == code {
            return Err(StoreError::Conflict(format!(
                "{code} is the template logged mail uses (setting email_template): choose another first"
            )));
        }
        with_pool!(self, |pool| {
            Ok(
                sqlx::query("DELETE FROM interaction_templates WHERE code = $1")
                    .bind(code)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1,
            )
        })
    }

    /// Creates or changes a campaign.
    pub async fn save_campaign(&self, campaign: &Campaign) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO campaigns (no, description, starts_on, ends_on) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (no) DO UPDATE SET description = excluded.description, starts_on = excluded.starts_on, \
                 ends_on = excluded.ends_on",
            )
            .bind(&campaign.no)
            .bind(&campaign.description)
            .bind(campaign.starts_on.map(|d| d.to_string()))
            .bind(campaign.ends_on.map(|d| d.to_string()))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn campaigns(&self) -> Result<Vec<Campaign>> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT no, description, starts_on, ends_on FROM campaigns ORDER BY no")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    let day = |column: &str| -> Result<Option<chrono::NaiveDate>> {
                        row.try_get::<Option<String>, _>(column)?
                            .map(|text| {
                                text.parse().map_err(|_| {
                                    StoreError::Corrupt(format!("campaign {column} '{text}'"))
                                })
                            })
                            .transpose()
                    };
                    Ok(Campaign {
                        no: row.try_get("no")?,
                        description: row.try_get("description")?,
                        starts_on: day("starts_on")?,
                        ends_on: day("ends_on")?,
                    })
                })
                .collect()
        })
    }

    /// Creates or changes a template. For the group and the campaign,
    /// `None` keeps what is stored (callers that only set cost and
    /// duration), and `Some("")` clears it.
    pub async fn save_template(&self, template: &InteractionTemplate) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO interaction_templates (code, description, cost_hundredths, duration_minutes, \
                 interaction_group, campaign_no) VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, '')) \
                 ON CONFLICT (code) DO UPDATE SET description = excluded.description, \
                 cost_hundredths = excluded.cost_hundredths, duration_minutes = excluded.duration_minutes, \
                 interaction_group = CASE WHEN $5 IS NULL THEN interaction_templates.interaction_group ELSE NULLIF($5, '') END, \
                 campaign_no = CASE WHEN $6 IS NULL THEN interaction_templates.campaign_no ELSE NULLIF($6, '') END",
            )
            .bind(&template.code)
            .bind(&template.description)
            .bind(template.cost.hundredths())
            .bind(i64::from(template.duration_minutes))
            .bind(&template.interaction_group)
            .bind(&template.campaign_no)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
