//! `mailscribe sso configure|show|disable`, and what `serve` gives the web
//! app to open the single sign-on client secret.

use anyhow::anyhow;
use chrono::Utc;
use clap::{Args, Subcommand};
use mailscribe_core::sso::{DEFAULT_NAME_CLAIM, SSO_CLIENT_SECRET_PURPOSE};
use mailscribe_core::{RoleMapping, SealedSecret, SecretRef, SsoConfig};
use mailscribe_store::{DatabaseUrl, Store};
use secrecy::SecretString;

use crate::secrets::{KeyRing, resolve};
use crate::{Failure, exit};

#[derive(Subcommand)]
pub(crate) enum SsoCommand {
    /// Sign-in with an OpenID Connect provider (Microsoft Entra ID or any other).
    Configure(Box<ConfigureArgs>),
    /// The provider as configured; the client secret as a mask or its source.
    Show,
    /// Turn single sign-on off (accounts keep their links).
    Disable,
}

#[derive(Args)]
pub(crate) struct ConfigureArgs {
    /// The issuer, as the provider's discovery document names it; Entra ID:
    /// https://login.microsoftonline.com/TENANT-ID/v2.0
    #[arg(long)]
    issuer: String,
    /// The application (client) id: the only audience accepted.
    #[arg(long)]
    client_id: String,
    /// An environment variable holding the client secret (stored encrypted).
    #[arg(long, value_name = "VAR")]
    client_secret_env: Option<String>,
    /// Or read the client secret at each sign-in: env:NAME, file:PATH or exec:COMMAND.
    #[arg(long, value_name = "SOURCE")]
    client_secret_from: Option<String>,
    /// Where the provider sends the browser back (default: the server's
    /// own /sso/callback, as the browser reached it).
    #[arg(long, value_name = "URL")]
    redirect_url: Option<String>,
    /// The claim matched against user names on a first sign-in.
    #[arg(long, value_name = "CLAIM", default_value = DEFAULT_NAME_CLAIM)]
    name_claim: String,
    /// A claim holding the user's roles (Entra ID: roles); without it, only
    /// existing users are linked and nobody new gets an account.
    #[arg(long, value_name = "CLAIM", requires_all = ["admin_value", "user_value"])]
    role_claim: Option<String>,
    /// The role claim's value that makes an admin.
    #[arg(long, value_name = "V", requires = "role_claim")]
    admin_value: Option<String>,
    /// The role claim's value that makes a user (all data, no setup).
    #[arg(long, value_name = "V", requires = "role_claim")]
    user_value: Option<String>,
    /// A claim holding a salesperson code: a new account with it (and
    /// neither role value) is that salesperson.
    #[arg(long, value_name = "CLAIM", requires = "role_claim")]
    salesperson_claim: Option<String>,
}

pub(crate) async fn sso(
    store: &Store,
    url: &DatabaseUrl,
    command: SsoCommand,
) -> Result<(), Failure> {
    match command {
        SsoCommand::Configure(args) => configure(store, url, *args).await,
        SsoCommand::Show => show(store).await,
        SsoCommand::Disable => {
            if store.remove_sso_config().await? {
                crate::accounts::audit(store, "sso_disabled", None, None).await?;
                println!("single sign-on is off");
            } else {
                println!("single sign-on was not configured");
            }
            Ok(())
        }
    }
}

async fn configure(store: &Store, url: &DatabaseUrl, args: ConfigureArgs) -> Result<(), Failure> {
    let usage = |error: anyhow::Error| Failure::new(exit::USAGE, error);
    let client_secret = match (&args.client_secret_env, &args.client_secret_from) {
        (Some(_), Some(_)) => return Err(usage(anyhow!("give the client secret one way only"))),
        (None, None) => {
            return Err(usage(anyhow!(
                "give the client secret: --client-secret-env VAR or --client-secret-from SOURCE"
            )));
        }
        (None, Some(source)) => SecretRef::parse_source(source).map_err(|err| usage(err.into()))?,
        (Some(var), None) => {
            let value = std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    usage(anyhow!(
                        "the environment variable {var} (the client secret) is not set or empty"
                    ))
                })?;
            let keys = KeyRing::load_or_create(url)?;
            SecretRef::Sealed(keys.seal(SSO_CLIENT_SECRET_PURPOSE, &SecretString::from(value)))
        }
    };
    let roles = args.role_claim.map(|claim| RoleMapping {
        claim: claim.trim().to_owned(),
        admin_value: args.admin_value.unwrap_or_default().trim().to_owned(),
        user_value: args.user_value.unwrap_or_default().trim().to_owned(),
        salesperson_claim: args.salesperson_claim.map(|c| c.trim().to_owned()),
    });
    let config = SsoConfig {
        issuer: args.issuer.trim().trim_end_matches('/').to_owned(),
        client_id: args.client_id.trim().to_owned(),
        client_secret,
        redirect_url: args
            .redirect_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty()),
        name_claim: args.name_claim.trim().to_owned(),
        roles,
    };
    config.validate().map_err(|err| usage(err.into()))?;
    store.save_sso_config(&config, Utc::now()).await?;
    crate::accounts::audit(
        store,
        "sso_configured",
        None,
        Some(format!(
            "issuer {}, client id {}",
            config.issuer, config.client_id
        )),
    )
    .await?;
    println!("single sign-on configured: {}", config.issuer);
    println!(
        "register the redirect URI {} at the provider",
        config
            .redirect_url
            .as_deref()
            .unwrap_or("https://<this server>/sso/callback")
    );
    Ok(())
}

async fn show(store: &Store) -> Result<(), Failure> {
    let Some(config) = store.sso_config().await? else {
        return Err(Failure::new(
            exit::DISABLED_OR_INCOMPLETE,
            anyhow!("single sign-on is not configured: `mailscribe sso configure`"),
        ));
    };
    let optional = |value: Option<&str>| value.unwrap_or("-").to_owned();
    println!("issuer = {}", config.issuer);
    println!("client_id = {}", config.client_id);
    println!("client_secret = {}", config.client_secret.describe());
    println!(
        "redirect_url = {}",
        optional(config.redirect_url.as_deref())
    );
    println!("name_claim = {}", config.name_claim);
    let roles = config.roles.as_ref();
    println!("role_claim = {}", optional(roles.map(|r| r.claim.as_str())));
    println!(
        "admin_value = {}",
        optional(roles.map(|r| r.admin_value.as_str()))
    );
    println!(
        "user_value = {}",
        optional(roles.map(|r| r.user_value.as_str()))
    );
    println!(
        "salesperson_claim = {}",
        optional(roles.and_then(|r| r.salesperson_claim.as_deref()))
    );
    println!(
        "local_passwords = {}",
        if store.settings().await?.local_passwords {
            "on"
        } else {
            "off"
        }
    );
    Ok(())
}

/// Reseals the SSO client secret during `secrets rotate-key`; 1 when there
/// was a sealed secret.
pub(crate) async fn reseal(store: &Store, ring: &KeyRing) -> Result<u32, Failure> {
    let Some(mut config) = store.sso_config().await? else {
        return Ok(0);
    };
    let SecretRef::Sealed(sealed) = &config.client_secret else {
        return Ok(0);
    };
    let plain = ring.open(SSO_CLIENT_SECRET_PURPOSE, sealed)?;
    config.client_secret = SecretRef::Sealed(ring.seal(SSO_CLIENT_SECRET_PURPOSE, &plain));
    store.save_sso_config(&config, Utc::now()).await?;
    Ok(1)
}

/// What `serve` gives the web app: sealing and opening the client secret
/// with the key ring, and reading sources (off the async executor).
pub(crate) struct SsoSecrets {
    pub(crate) url: DatabaseUrl,
}

impl mailscribe_web::SsoBackend for SsoSecrets {
    fn seal_client_secret(&self, plain: &SecretString) -> Result<SealedSecret, String> {
        let keys = KeyRing::load_or_create(&self.url).map_err(|err| err.to_string())?;
        Ok(keys.seal(SSO_CLIENT_SECRET_PURPOSE, plain))
    }

    fn client_secret<'a>(
        &'a self,
        secret: &'a SecretRef,
    ) -> mailscribe_web::BoxFuture<'a, Result<SecretString, String>> {
        let secret = secret.clone();
        let url = self.url.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                resolve(&secret, SSO_CLIENT_SECRET_PURPOSE, || KeyRing::load(&url))
                    .map_err(|err| err.to_string())
            })
            .await
            .map_err(|err| err.to_string())?
        })
    }

    fn refuse_source(&self, source: &SecretRef) -> Option<String> {
        crate::secrets::refuse_source_from_web(&self.url, source, "client secret")
    }
}
