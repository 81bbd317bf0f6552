//! The setup record, settings and interaction templates.

use chrono::{DateTime, Utc};
use mailscribe_core::{
    Amount, AuthKind, Enablement, InteractionTemplate, MailboxSetup, OAuthSetup, SecretRef, Settings,
};
use sqlx::Row;

use crate::{Result, Store, StoreError, with_pool};

impl Store {
    pub async fn mailbox_setup(&self) -> Result<Option<MailboxSetup>> {
        with_pool!(self, |pool| {
            let Some(row) = sqlx::query("SELECT * FROM mailbox_setup WHERE id = 1").fetch_optional(pool).await?
            else {
                return Ok(None);
            };
            let security: String = row.try_get("security")?;
            let auth: String = row.try_get("auth_kind")?;
            let port: i64 = row.try_get("port")?;
            let batch_size: i64 = row.try_get("batch_size")?;
            let bad = |what: &str| StoreError::Corrupt(format!("mailbox setup: {what}"));
            Ok(Some(MailboxSetup {
                host: row.try_get("host")?,
                port: u16::try_from(port).map_err(|_| bad("port"))?,
                security: security.parse().map_err(|_| bad("security"))?,
                auth: auth.parse::<AuthKind>().map_err(|_| bad("auth kind"))?,
                username: row.try_get("username")?,
                password: row.try_get::<Option<String>, _>("password_ref")?.as_deref().map(SecretRef::from_storage),
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
                        scope: row.try_get::<Option<String>, _>("oauth_scope")?.unwrap_or_default(),
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
                tls_trust: row.try_get::<String, _>("tls_trust")?.parse().map_err(|_| bad("tls trust"))?,
            }))
        })
    }

    /// Saves the connection and folders. Enablement is kept as it was.
    pub async fn save_mailbox_setup(&self, setup: &MailboxSetup) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO mailbox_setup (id, host, port, security, auth_kind, username, password_ref, \
                 queue_folder, storage_folder, not_logged_folder, quarantine_folder, batch_size, allow_plaintext, ca_file, \
                 oauth_token_url, oauth_tenant, oauth_client_id_ref, oauth_client_secret_ref, oauth_scope, tls_trust) \
                 VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
                 ON CONFLICT (id) DO UPDATE SET host = excluded.host, port = excluded.port, \
                 security = excluded.security, auth_kind = excluded.auth_kind, username = excluded.username, \
                 password_ref = excluded.password_ref, queue_folder = excluded.queue_folder, \
                 storage_folder = excluded.storage_folder, not_logged_folder = excluded.not_logged_folder, \
                 quarantine_folder = excluded.quarantine_folder, batch_size = excluded.batch_size, \
                 allow_plaintext = excluded.allow_plaintext, ca_file = excluded.ca_file, \
                 oauth_token_url = excluded.oauth_token_url, oauth_tenant = excluded.oauth_tenant, \
                 oauth_client_id_ref = excluded.oauth_client_id_ref, \
                 oauth_client_secret_ref = excluded.oauth_client_secret_ref, oauth_scope = excluded.oauth_scope, \
                 tls_trust = excluded.tls_trust",
            )
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
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// "Clear setup": removes the connection, the folders and the stored
    /// secrets with them. Refused while logging is enabled, in the same
    /// statement, so an enable racing with it cannot lose.
    pub async fn clear_mailbox_setup(&self) -> Result<bool> {
        let removed = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM mailbox_setup WHERE id = 1 AND enabled = FALSE").execute(pool).await?.rows_affected()
        });
        if removed == 0 && self.enablement().await?.enabled {
            return Err(StoreError::Conflict("logging is enabled: disable it before clearing the setup".into()));
        }
        Ok(removed > 0)
    }

    pub async fn enablement(&self) -> Result<Enablement> {
        with_pool!(self, |pool| {
            let row = sqlx::query("SELECT enabled, accepted_by, accepted_at FROM mailbox_setup WHERE id = 1")
                .fetch_optional(pool)
                .await?;
            let Some(row) = row else { return Ok(Enablement::default()) };
            Ok(Enablement {
                enabled: row.try_get("enabled")?,
                accepted_by: row.try_get("accepted_by")?,
                accepted_at: row.try_get::<Option<DateTime<Utc>>, _>("accepted_at")?,
            })
        })
    }

    /// Records enablement. Fails when there is no setup to enable.
    pub async fn set_enablement(&self, enablement: &Enablement) -> Result<()> {
        let affected = with_pool!(self, |pool| {
            sqlx::query("UPDATE mailbox_setup SET enabled = $1, accepted_by = $2, accepted_at = $3 WHERE id = 1")
                .bind(enablement.enabled)
                .bind(&enablement.accepted_by)
                .bind(enablement.accepted_at)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if affected == 0 {
            return Err(StoreError::Conflict(
                "there is no mailbox setup yet: run `mailscribe mailbox configure` first".into(),
            ));
        }
        Ok(())
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
            let row = sqlx::query(
                "SELECT code, description, cost_hundredths, duration_minutes FROM interaction_templates WHERE code = $1",
            )
            .bind(code)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let minutes: i64 = row.try_get("duration_minutes")?;
            Ok(Some(InteractionTemplate {
                code: row.try_get("code")?,
                description: row.try_get("description")?,
                cost: Amount::from_hundredths(row.try_get("cost_hundredths")?),
                duration_minutes: u32::try_from(minutes)
                    .map_err(|_| StoreError::Corrupt(format!("template {code}: duration")))?,
            }))
        })
    }

    pub async fn save_template(&self, template: &InteractionTemplate) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO interaction_templates (code, description, cost_hundredths, duration_minutes) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO UPDATE SET description = excluded.description, \
                 cost_hundredths = excluded.cost_hundredths, duration_minutes = excluded.duration_minutes",
            )
            .bind(&template.code)
            .bind(&template.description)
            .bind(template.cost.hundredths())
            .bind(i64::from(template.duration_minutes))
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
