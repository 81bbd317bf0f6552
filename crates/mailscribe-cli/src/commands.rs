//! One function per command.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::Utc;
use mailscribe_core::{
    AuthKind, Enablement, MailboxName, MailboxSetup, OAuthSetup, SecretRef, Security, Settings,
    TlsTrust,
};
use mailscribe_mail::{ConnectionConfig, Credentials, OAuthClient, TokenProvider, entra_token_url};
use mailscribe_store::{DatabaseUrl, Store, StoreError};
use mailscribe_worker::{
    CheckLine, CheckStatus, HolderId, LeaseTimings, RunOptions, SummaryReport, WorkerError,
};
use secrecy::SecretString;
use tokio::sync::watch;

use crate::secrets::{KeyRing, SourceError, resolve};
use crate::{
    Cli, Command, ConfigureArgs, DirectoryCommand, EnableArgs, ExportCommand, Failure,
    InteractionsCommand, MailboxArg, MailboxCommand, RunArgs, SecretsCommand, ServeArgs,
    SettingsCommand, SummaryFormat, TokenCommand, exit, export,
};
use mailscribe_core::import;

/// The purposes bound into sealed secrets: one cannot stand in for another.
pub(crate) const PASSWORD_PURPOSE: &str = "imap-password";
pub(crate) const CLIENT_ID_PURPOSE: &str = "oauth-client-id";
pub(crate) const CLIENT_SECRET_PURPOSE: &str = "oauth-client-secret";

pub(crate) async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let url: DatabaseUrl = cli
        .db
        .parse()
        .map_err(|err| Failure::new(exit::USAGE, err))?;
    let store = Store::open(&url)
        .await
        .with_context(|| format!("cannot open the database {url}"))?;
    let result = match cli.command {
        Command::Salespeople { command } => salespeople(&store, command).await,
        Command::Contacts { command } => contacts(&store, command).await,
        Command::Mailbox {
            command: MailboxCommand::Configure(args),
        } => configure(&store, &url, args).await,
        Command::Mailbox {
            command: MailboxCommand::Show(arg),
        } => show_mailbox(&store, &mailbox_name(&arg)?).await,
        Command::Mailbox {
            command: MailboxCommand::Clear(arg),
        } => clear_mailbox(&store, &mailbox_name(&arg)?).await,
        Command::Mailbox {
            command: MailboxCommand::List,
        } => list_mailboxes(&store).await,
        Command::Check(arg) => check(&store, &url, &mailbox_name(&arg)?).await,
        Command::Setup(arg) => crate::wizard::setup(&store, &url, &mailbox_name(&arg)?).await,
        Command::Settings { command } => settings(&store, command).await,
        Command::Template { command } => crate::templates::template(&store, command).await,
        Command::Campaign { command } => crate::templates::campaign(&store, command).await,
        Command::Enable(args) => enable(&store, &url, args).await,
        Command::Disable(arg) => disable(&store, &mailbox_name(&arg)?).await,
        Command::Run(args) => run(&store, &url, args).await,
        Command::Serve(args) => serve(&store, &url, args).await,
        Command::Interactions {
            command: InteractionsCommand::Export { format, output },
        } => export::interactions(&store, format, output.as_deref())
            .await
            .map(|_| ())
            .map_err(Failure::from),
        Command::Interactions {
            command:
                InteractionsCommand::Delete {
                    canceled,
                    before,
                    entries,
                    dry_run,
                },
        } => delete_entries(&store, canceled, before.as_deref(), entries, dry_run).await,
        Command::Interactions {
            command:
                InteractionsCommand::ImportBc {
                    file,
                    date_format,
                    decimal_comma,
                    create_missing,
                    dry_run,
                },
        } => {
            let args = crate::bc_import::ImportBcArgs {
                file,
                date_format,
                decimal_comma,
                create_missing,
                dry_run,
            };
            crate::bc_import::import_interactions(&store, args).await
        }
        Command::Audit {
            command: ExportCommand::Export { format, output },
        } => export::audit(&store, format, output.as_deref())
            .await
            .map(|_| ())
            .map_err(Failure::from),
        Command::Decisions {
            command: ExportCommand::Export { format, output },
        } => export::decisions(&store, format, output.as_deref())
            .await
            .map(|_| ())
            .map_err(Failure::from),
        Command::Secrets {
            command: SecretsCommand::RotateKey,
        } => rotate_key(&store, &url).await,
        Command::User { command } => crate::accounts::user(&store, command).await,
        Command::Token {
            command: TokenCommand::Create { user, expires_in },
        } => create_token(&store, &user, &expires_in).await,
        Command::Token {
            command: TokenCommand::List { user },
        } => list_tokens(&store, user.as_deref()).await,
        Command::Token {
            command: TokenCommand::Revoke { id },
        } => revoke_token(&store, id).await,
        Command::Sso { command } => crate::sso::sso(&store, &url, command).await,
        Command::Backup { output } => backup(&store, &url, &output).await,
        // Answered in `main` without a database.
        Command::Completions { .. } | Command::Man => Ok(()),
    };
    store.close().await;
    result
}

/// The mailbox a command names, or a usage error saying what a name is.
pub(crate) fn mailbox_name(arg: &MailboxArg) -> Result<MailboxName, Failure> {
    parse_mailbox_name(&arg.mailbox)
}

fn parse_mailbox_name(text: &str) -> Result<MailboxName, Failure> {
    MailboxName::parse(text)
        .map_err(|err| Failure::new(exit::USAGE, anyhow!("--mailbox {text}: {err}")))
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|err| {
        Failure::new(
            exit::USAGE,
            anyhow!("cannot read {}: {err}", path.display()),
        )
    })
}

fn report_rows(file: &std::path::Path, errors: Vec<import::RowError>) -> Failure {
    let mut text = format!(
        "{} was not imported ({} problems; nothing was changed):",
        file.display(),
        errors.len()
    );
    for error in &errors {
        text.push_str(&format!("\n  {error}"));
    }
    Failure::new(exit::OTHER, anyhow!(text))
}

async fn salespeople(store: &Store, command: DirectoryCommand) -> Result<(), Failure> {
    match command {
        DirectoryCommand::Import { file, dry_run } => {
            let read = import::read_salespeople_file(&read_file(&file)?)
                .map_err(|errors| report_rows(&file, errors))?;
            if dry_run {
                crate::bc_import::preview_salespeople(&file, &read);
                return Ok(());
            }
            if let Some(note) = crate::bc_import::format_note(&read) {
                println!("{}: {note}", file.display());
            }
            let rows = read.rows;
            let people: Vec<_> = rows.iter().map(|(_, p)| p.clone()).collect();
            let summary = match store.import_salespeople(&people).await {
                Ok(summary) => summary,
                Err(StoreError::Conflict(message)) => {
                    // Point at the line that holds the conflicting address.
                    let line = rows
                        .iter()
                        .find(|(_, p)| p.addresses.iter().any(|a| message.contains(a.as_str())))
                        .map(|(line, _)| *line)
                        .unwrap_or(0);
                    return Err(report_rows(&file, vec![import::RowError { line, message }]));
                }
                Err(err) => return Err(err.into()),
            };
            let detail = format!(
                "{} salespeople ({} new, {} updated)",
                people.len(),
                summary.created,
                summary.updated
            );
            crate::accounts::audit(store, "salespeople_imported", None, Some(detail)).await?;
            println!(
                "imported {} salespeople ({} new, {} updated)",
                people.len(),
                summary.created,
                summary.updated
            );
        }
        DirectoryCommand::List => {
            for person in store.list_salespeople().await? {
                let addresses: Vec<String> =
                    person.addresses.iter().map(ToString::to_string).collect();
                println!("{}\t{}\t{}", person.code, person.name, addresses.join(";"));
            }
        }
    }
    Ok(())
}

async fn contacts(store: &Store, command: DirectoryCommand) -> Result<(), Failure> {
    match command {
        DirectoryCommand::Import { file, dry_run } => {
            let read = import::read_contacts_file(&read_file(&file)?)
                .map_err(|errors| report_rows(&file, errors))?;
            if dry_run {
                crate::bc_import::preview_contacts(&file, &read);
                return Ok(());
            }
            if let Some(note) = crate::bc_import::format_note(&read) {
                println!("{}: {note}", file.display());
            }
            let rows = read.rows;
            let contacts: Vec<_> = rows.into_iter().map(|(_, c)| c).collect();
            let summary = store.import_contacts(&contacts).await?;
            let detail = format!(
                "{} contacts ({} new, {} updated)",
                contacts.len(),
                summary.created,
                summary.updated
            );
            crate::accounts::audit(store, "contacts_imported", None, Some(detail)).await?;
            println!(
                "imported {} contacts ({} new, {} updated)",
                contacts.len(),
                summary.created,
                summary.updated
            );
            if !summary.companies_created.is_empty() {
                println!(
                    "created companies: {}",
                    summary.companies_created.join(", ")
                );
            }
        }
        DirectoryCommand::List => {
            for contact in store.list_contacts().await? {
                let addresses: Vec<String> =
                    contact.addresses.iter().map(ToString::to_string).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    contact.no,
                    contact.name,
                    contact.kind.as_str(),
                    contact
                        .company_no
                        .map(|c| c.to_string())
                        .unwrap_or_default(),
                    addresses.join(";")
                );
            }
        }
    }
    Ok(())
}

/// A secret given as `--X-env VAR` (read now, sealed) or `--X-from SOURCE`
/// (read at each run). `what` names the flags in errors.
fn secret_argument(
    keys: &mut Option<KeyRing>,
    url: &DatabaseUrl,
    env: Option<&str>,
    plain: Option<&str>,
    from: Option<&str>,
    purpose: &str,
    what: &str,
) -> Result<Option<SecretRef>, Failure> {
    let usage = |error: anyhow::Error| Failure::new(exit::USAGE, error);
    let given = [env.is_some(), plain.is_some(), from.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given > 1 {
        return Err(usage(anyhow!("give the {what} one way only")));
    }
    if let Some(source) = from {
        return SecretRef::parse_source(source)
            .map(Some)
            .map_err(|err| usage(err.into()));
    }
    let value = match (env, plain) {
        (Some(var), _) => std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                usage(anyhow!(
                    "the environment variable {var} (the {what}) is not set or empty"
                ))
            })?,
        (None, Some(value)) => value.to_owned(),
        (None, None) => return Ok(None),
    };
    if keys.is_none() {
        *keys = Some(KeyRing::load_or_create(url)?);
    }
    let ring = keys.as_ref().expect("loaded above");
    Ok(Some(SecretRef::Sealed(
        ring.seal(purpose, &SecretString::from(value)),
    )))
}

async fn configure(store: &Store, url: &DatabaseUrl, args: ConfigureArgs) -> Result<(), Failure> {
    let usage = |error: anyhow::Error| Failure::new(exit::USAGE, error);
    let name = mailbox_name(&args.mailbox)?;
    if store.enablement(&name).await?.enabled {
        return Err(Failure::new(
            exit::OTHER,
            anyhow!(
                "logging is enabled, so the connection is locked: run `mailscribe disable{}` first",
                mailbox_flag(&name)
            ),
        ));
    }
    let security: Security = args
        .security
        .parse()
        .map_err(|err| usage(anyhow!("--security: {err}")))?;
    let auth: AuthKind = args
        .auth
        .parse()
        .map_err(|err| usage(anyhow!("--auth: {err}")))?;
    let tls_trust: TlsTrust = args
        .trust
        .parse()
        .map_err(|err| usage(anyhow!("--trust: {err}")))?;
    if !(1..=10_000).contains(&args.batch_size) {
        return Err(usage(anyhow!("--batch-size is a number from 1 to 10000")));
    }
    // `None`: leave as it is; `Some(None)`: back to the global interval.
    let interval: Option<Option<u32>> = match args.interval.as_deref().map(str::trim) {
        None => None,
        Some("global") => Some(None),
        Some(text) => {
            let mut parsed = Settings::default();
            parsed
                .set("interval", text)
                .map_err(|err| usage(anyhow!("--interval: {err}")))?;
            Some(Some(parsed.interval_seconds))
        }
    };
    if let Some(ca_file) = &args.ca_file
        && !ca_file.is_file()
    {
        return Err(usage(anyhow!(
            "--ca-file {} does not exist",
            ca_file.display()
        )));
    }
    let mut keys: Option<KeyRing> = None;
    let (password, oauth) = match auth {
        AuthKind::Basic => {
            let password = secret_argument(
                &mut keys,
                url,
                args.password_env.as_deref(),
                None,
                args.password_from.as_deref(),
                PASSWORD_PURPOSE,
                "password (--password-env or --password-from)",
            )?
            .ok_or_else(|| {
                usage(anyhow!(
                    "basic authentication needs --password-env VAR or --password-from SOURCE"
                ))
            })?;
            (Some(password), None)
        }
        AuthKind::OAuth2 => {
            let (token_url, tenant) = match (&args.token_url, &args.tenant) {
                (Some(url), _) => (url.clone(), args.tenant.clone()),
                (None, Some(tenant)) => (
                    entra_token_url(tenant.trim()),
                    Some(tenant.trim().to_owned()),
                ),
                (None, None) => {
                    return Err(usage(anyhow!(
                        "OAuth2 needs --tenant TENANT (Entra ID) or --token-url URL"
                    )));
                }
            };
            mailscribe_core::check_token_url(&token_url)
                .map_err(|err| usage(anyhow!("--token-url: {err}")))?;
            let client_id = secret_argument(
                &mut keys,
                url,
                None,
                args.client_id.as_deref(),
                args.client_id_from.as_deref(),
                CLIENT_ID_PURPOSE,
                "client id (--client-id or --client-id-from)",
            )?
            .ok_or_else(|| {
                usage(anyhow!(
                    "OAuth2 needs --client-id ID or --client-id-from SOURCE"
                ))
            })?;
            let client_secret = secret_argument(
                &mut keys,
                url,
                args.client_secret_env.as_deref(),
                None,
                args.client_secret_from.as_deref(),
                CLIENT_SECRET_PURPOSE,
                "client secret (--client-secret-env or --client-secret-from)",
            )?
            .ok_or_else(|| {
                usage(anyhow!(
                    "OAuth2 needs --client-secret-env VAR or --client-secret-from SOURCE"
                ))
            })?;
            (
                None,
                Some(OAuthSetup {
                    token_url,
                    tenant,
                    client_id,
                    client_secret,
                    scope: args.scope.clone(),
                }),
            )
        }
    };
    let setup = MailboxSetup {
        host: args.host.trim().to_owned(),
        port: args
            .port
            .unwrap_or(if security == Security::Tls { 993 } else { 143 }),
        security,
        auth,
        username: args.user,
        password,
        oauth,
        queue_folder: args.queue,
        storage_folder: args.storage,
        not_logged_folder: args.not_logged_folder,
        quarantine_folder: args.quarantine_folder,
        batch_size: args.batch_size,
        allow_plaintext: args.allow_plaintext,
        ca_file: args
            .ca_file
            .map(|p| p.canonicalize().unwrap_or(p).display().to_string()),
        tls_trust,
    };
    let before = store.mailbox_setup(&name).await?;
    store.save_mailbox_setup(&name, &setup).await?;
    let changed = match before {
        None => "new mailbox".to_owned(),
        Some(before) => format!("fields: {}", setup.changed_fields(&before).join(", ")),
    };
    crate::accounts::audit(store, "setup_saved", Some(name.as_str()), Some(changed)).await?;
    if let Some(interval) = interval {
        store.set_mailbox_interval(&name, interval).await?;
    }
    println!(
        "mailbox saved: {}@{}:{} ({}, {}); run `mailscribe check{}` to test it",
        setup.username,
        setup.host,
        setup.port,
        setup.security.as_str(),
        setup.auth.as_str(),
        mailbox_flag(&name)
    );
    Ok(())
}

/// Seals every stored secret with a new key. The key file always holds a
/// key that opens what the database holds, whatever step is interrupted.
async fn rotate_key(store: &Store, url: &DatabaseUrl) -> Result<(), Failure> {
    let mailboxes = store.mailboxes().await?;
    if mailboxes.is_empty() && store.sso_config().await?.is_none() {
        return Err(Failure::new(
            exit::DISABLED_OR_INCOMPLETE,
            anyhow!("there is no setup, so no stored secret"),
        ));
    }
    let ring = KeyRing::load(url)?.begin_rotation(url)?;
    let reseal = |reference: &mut SecretRef, purpose: &str| -> Result<u32, Failure> {
        if let SecretRef::Sealed(sealed) = reference {
            let plain = ring.open(purpose, sealed)?;
            *reference = SecretRef::Sealed(ring.seal(purpose, &plain));
            return Ok(1);
        }
        Ok(0)
    };
    // Every mailbox is resealed before the old key is retired: until then
    // the key file holds both keys, so an interruption loses nothing.
    let mut resealed = 0;
    for mailbox in mailboxes {
        let mut setup = mailbox.setup;
        if let Some(password) = setup.password.as_mut() {
            resealed += reseal(password, PASSWORD_PURPOSE)?;
        }
        if let Some(oauth) = setup.oauth.as_mut() {
            resealed += reseal(&mut oauth.client_id, CLIENT_ID_PURPOSE)?;
            resealed += reseal(&mut oauth.client_secret, CLIENT_SECRET_PURPOSE)?;
        }
        store.save_mailbox_setup(&mailbox.name, &setup).await?;
    }
    resealed += crate::sso::reseal(store, &ring).await?;
    let ring = ring.finish_rotation(url)?;
    crate::accounts::audit(
        store,
        "secrets_rotated",
        None,
        Some(format!("{resealed} stored secrets resealed")),
    )
    .await?;
    println!(
        "{resealed} stored secrets sealed with the new key {}",
        ring.current.id()
    );
    Ok(())
}

/// ` --mailbox NAME` for hints, empty for `default`.
pub(crate) fn mailbox_flag(name: &MailboxName) -> String {
    if name.is_default() {
        String::new()
    } else {
        format!(" --mailbox {name}")
    }
}

async fn show_mailbox(store: &Store, name: &MailboxName) -> Result<(), Failure> {
    let setup = setup_or_incomplete(store, name).await?;
    let enablement = store.enablement(name).await?;
    let interval = store.mailbox(name).await?.and_then(|m| m.interval_seconds);
    let optional = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    println!("host = {}", setup.host);
    println!("port = {}", setup.port);
    println!("security = {}", setup.security.as_str());
    println!("user = {}", setup.username);
    println!("auth = {}", setup.auth.as_str());
    println!(
        "password = {}",
        setup
            .password
            .as_ref()
            .map(SecretRef::describe)
            .unwrap_or_else(|| "-".into())
    );
    if let Some(oauth) = &setup.oauth {
        println!("token_url = {}", oauth.token_url);
        println!("client_id = {}", oauth.client_id.describe());
        println!("client_secret = {}", oauth.client_secret.describe());
        println!("scope = {}", oauth.scope);
    }
    println!("queue = {}", setup.queue_folder);
    println!("storage = {}", setup.storage_folder);
    println!("not_logged_folder = {}", optional(&setup.not_logged_folder));
    println!("quarantine_folder = {}", optional(&setup.quarantine_folder));
    println!("batch_size = {}", setup.batch_size);
    println!("allow_plaintext = {}", setup.allow_plaintext);
    println!("ca_file = {}", optional(&setup.ca_file));
    println!("trust = {}", setup.tls_trust.as_str());
    println!(
        "interval = {}",
        interval.map_or_else(|| "global".to_owned(), |s| s.to_string())
    );
    println!("enabled = {}", enablement.enabled);
    if let (Some(by), Some(at)) = (&enablement.accepted_by, enablement.accepted_at) {
        println!("data statement accepted by {by} at {}", at.to_rfc3339());
    }
    Ok(())
}

/// One line per mailbox, read from the database; tabs and line breaks in
/// an error become spaces, so that the columns hold.
async fn list_mailboxes(store: &Store) -> Result<(), Failure> {
    let clean = |text: &str| text.replace(['\t', '\n', '\r'], " ");
    let time = |at: Option<chrono::DateTime<Utc>>| {
        at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    println!("name\tenabled\thost\tqueue\tlast_run_at\tstatus\tlast_error\tnext_attempt_at");
    for mailbox in store.mailboxes().await? {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            mailbox.name,
            mailbox.enablement.enabled,
            clean(&mailbox.setup.host),
            clean(&mailbox.setup.queue_folder),
            time(mailbox.status.last_run_at),
            mailbox.status.status,
            clean(mailbox.status.last_error.as_deref().unwrap_or("")),
            time(mailbox.status.next_attempt_at),
        );
    }
    Ok(())
}

async fn clear_mailbox(store: &Store, name: &MailboxName) -> Result<(), Failure> {
    match store.clear_mailbox_setup(name).await {
        Ok(true) => {
            crate::accounts::audit(
                store,
                "setup_cleared",
                Some(name.as_str()),
                Some("with its stored secrets".into()),
            )
            .await?;
            println!(
                "setup cleared: the connection, the folders and the stored secrets are removed"
            )
        }
        Ok(false) => println!("there was no setup to clear"),
        Err(StoreError::Conflict(_)) => {
            return Err(Failure::new(
                exit::OTHER,
                anyhow!(
                    "logging is enabled, so the setup cannot be cleared: run `mailscribe disable{}` first",
                    mailbox_flag(name)
                ),
            ));
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// The connection settings, with the secrets read from where they live,
/// off the async runtime (a secret file or command may take its time).
pub(crate) async fn connection_config(
    url: &DatabaseUrl,
    setup: &MailboxSetup,
) -> Result<ConnectionConfig, SourceError> {
    let (url, setup) = (url.clone(), setup.clone());
    tokio::task::spawn_blocking(move || read_connection_config(&url, &setup))
        .await
        .map_err(|err| SourceError::Exec {
            command: "reading the secrets".into(),
            detail: err.to_string(),
        })?
}

/// [`connection_config`], blocking.
fn read_connection_config(
    url: &DatabaseUrl,
    setup: &MailboxSetup,
) -> Result<ConnectionConfig, SourceError> {
    let mut ring: Option<KeyRing> = None;
    let mut read = |reference: &SecretRef, purpose: &str| -> Result<SecretString, SourceError> {
        resolve(reference, purpose, || match ring.take() {
            Some(keys) => Ok(keys),
            None => KeyRing::load(url),
        })
    };
    let credentials = match (&setup.auth, &setup.oauth) {
        (AuthKind::OAuth2, Some(oauth)) => {
            let client = OAuthClient {
                token_url: oauth.token_url.clone(),
                client_id: read(&oauth.client_id, CLIENT_ID_PURPOSE)?,
                client_secret: read(&oauth.client_secret, CLIENT_SECRET_PURPOSE)?,
                scope: oauth.scope.clone(),
            };
            let tokens = TokenProvider::new(client).map_err(|err| SourceError::Exec {
                command: "the HTTP client".into(),
                detail: err.to_string(),
            })?;
            Credentials::OAuth2 {
                username: setup.username.clone(),
                tokens: std::sync::Arc::new(tokens),
            }
        }
        _ => Credentials::Basic {
            username: setup.username.clone(),
            password: match &setup.password {
                Some(reference) => read(reference, PASSWORD_PURPOSE)?,
                None => SecretString::from(""),
            },
        },
    };
    Ok(ConnectionConfig {
        host: setup.host.clone(),
        port: setup.port,
        security: setup.security,
        allow_plaintext: setup.allow_plaintext,
        ca_file: setup.ca_file.as_ref().map(Into::into),
        trust: setup.tls_trust,
        credentials,
        timeout: ConnectionConfig::DEFAULT_TIMEOUT,
        // Pretend the server lacks these (comma-separated, e.g. MOVE,UIDPLUS):
        // a workaround for servers with a broken extension.
        ignore_capabilities: std::env::var("MAILSCRIBE_IGNORE_CAPABILITIES")
            .map(|list| {
                list.split(',')
                    .map(|c| c.trim().to_ascii_uppercase())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub(crate) async fn setup_or_incomplete(
    store: &Store,
    name: &MailboxName,
) -> Result<MailboxSetup, Failure> {
    store.mailbox_setup(name).await?.ok_or_else(|| {
        Failure::new(
            exit::DISABLED_OR_INCOMPLETE,
            if name.is_default() {
                anyhow!("no mailbox is configured: run `mailscribe mailbox configure --host ... --user ... --password-env VAR --queue ... --storage ...`")
            } else {
                anyhow!("there is no mailbox named {name}: run `mailscribe mailbox configure --mailbox {name} --host ... --user ... --password-env VAR --queue ... --storage ...`")
            },
        )
    })
}

async fn check_lines(store: &Store, url: &DatabaseUrl, setup: &MailboxSetup) -> Vec<CheckLine> {
    let connection = connection_config(url, setup).await;
    let mut lines = vec![match &connection {
        Ok(_) => CheckLine::pass("credentials", "the stored secrets can be read"),
        Err(err) => CheckLine::fail(
            "credentials",
            format!("the stored secrets cannot be read: {err}"),
        ),
    }];
    lines.extend(mailscribe_worker::run_checks(store, setup, connection.as_ref().ok()).await);
    lines
}

async fn check(store: &Store, url: &DatabaseUrl, name: &MailboxName) -> Result<(), Failure> {
    let setup = setup_or_incomplete(store, name).await?;
    let lines = check_lines(store, url, &setup).await;
    for line in &lines {
        println!("{line}");
    }
    let failed = lines
        .iter()
        .filter(|l| l.status == CheckStatus::Fail)
        .count();
    if failed > 0 {
        return Err(Failure::new(exit::OTHER, anyhow!("{failed} checks failed")));
    }
    Ok(())
}

async fn settings(store: &Store, command: SettingsCommand) -> Result<(), Failure> {
    match command {
        SettingsCommand::Show => {
            for (key, value) in store.settings().await?.pairs() {
                println!("{key} = {value}");
            }
        }
        SettingsCommand::Set { key, value } => {
            let mut settings = store.settings().await?;
            let mode_before = settings.storage_mode;
            settings
                .set(&key, &value)
                .map_err(|err| Failure::new(exit::USAGE, err))?;
            if key == "email_template" && store.template(&settings.email_template).await?.is_none()
            {
                return Err(Failure::new(
                    exit::USAGE,
                    anyhow!(
                        "there is no template {}: `mailscribe template set {} --cost 0 --minutes 0` first",
                        settings.email_template,
                        settings.email_template
                    ),
                ));
            }
            // The storage mode is part of every mailbox's accepted data
            // statement: it changes only while no mailbox logs.
            if settings.storage_mode != mode_before && store.any_mailbox_enabled().await? {
                return Err(Failure::new(
                    exit::OTHER,
                    anyhow!(
                        "logging is enabled on a mailbox, and the storage mode is part of its data statement: disable every mailbox first (`mailscribe mailbox list`)"
                    ),
                ));
            }
            let normalised = settings
                .pairs()
                .into_iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .unwrap_or(value);
            store.save_setting(&key, &normalised).await?;
            println!("{key} = {normalised}");
        }
    }
    Ok(())
}

pub(crate) fn who_am_i() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

async fn enable(store: &Store, url: &DatabaseUrl, args: EnableArgs) -> Result<(), Failure> {
    let name = mailbox_name(&args.mailbox)?;
    let setup = setup_or_incomplete(store, &name).await?;
    let lines = check_lines(store, url, &setup).await;
    let failed: Vec<&CheckLine> = lines
        .iter()
        .filter(|l| l.status == CheckStatus::Fail)
        .collect();
    if !failed.is_empty() {
        for line in &lines {
            eprintln!("{line}");
        }
        return Err(Failure::new(
            exit::DISABLED_OR_INCOMPLETE,
            anyhow!(
                "logging stays disabled because {} checks failed; fix them and run `mailscribe enable{}` again",
                failed.len(),
                mailbox_flag(&name)
            ),
        ));
    }
    let statement = mailscribe_core::data_statement(store.settings().await?.storage_mode);
    if !args.accept_data_statement {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::new(
                exit::USAGE,
                anyhow!(
                    "enabling needs the data statement accepted: run in a terminal, or pass --accept-data-statement"
                ),
            ));
        }
        println!("{statement}\n");
        print!("Type yes to accept and enable logging: ");
        std::io::stdout().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !answer.trim().eq_ignore_ascii_case("yes") {
            return Err(Failure::new(
                exit::OTHER,
                anyhow!("not accepted; logging stays disabled"),
            ));
        }
    } else {
        println!("{statement}\n");
    }
    let accepted = Enablement {
        enabled: true,
        accepted_by: Some(who_am_i()),
        accepted_at: Some(Utc::now()),
    };
    store.set_enablement(&name, &accepted).await?;
    let mode = store.settings().await?.storage_mode;
    crate::accounts::audit(
        store,
        "logging_enabled",
        Some(name.as_str()),
        Some(format!(
            "data statement accepted (storage mode {})",
            mode.as_str()
        )),
    )
    .await?;
    println!(
        "logging enabled; data statement accepted by {}",
        accepted.accepted_by.unwrap_or_default()
    );
    Ok(())
}

async fn disable(store: &Store, name: &MailboxName) -> Result<(), Failure> {
    let mut enablement = store.enablement(name).await?;
    enablement.enabled = false;
    store
        .set_enablement(name, &enablement)
        .await
        .map_err(|err| Failure::new(exit::DISABLED_OR_INCOMPLETE, err))?;
    crate::accounts::audit(store, "logging_disabled", Some(name.as_str()), None).await?;
    println!("logging disabled");
    Ok(())
}

/// Everything a run needs, or exit code 3 saying what is missing.
pub(crate) async fn run_options(
    store: &Store,
    url: &DatabaseUrl,
    name: &MailboxName,
    max_per_run: Option<usize>,
) -> Result<RunOptions, Failure> {
    let setup = setup_or_incomplete(store, name).await?;
    if !store.enablement(name).await?.enabled {
        return Err(Failure::new(
            exit::DISABLED_OR_INCOMPLETE,
            anyhow!(
                "logging is disabled: run `mailscribe enable{}` first",
                mailbox_flag(name)
            ),
        ));
    }
    let connection = connection_config(url, &setup)
        .await
        .map_err(|err| Failure::new(exit::DISABLED_OR_INCOMPLETE, err))?;
    let mut settings: Settings = store.settings().await?;
    if let Some(seconds) = store.mailbox(name).await?.and_then(|m| m.interval_seconds) {
        settings.interval_seconds = seconds;
    }
    let template = store.template(&settings.email_template).await?.ok_or_else(|| {
        Failure::new(
            exit::DISABLED_OR_INCOMPLETE,
            anyhow!("the interaction template {} (setting email_template) is missing: `mailscribe template set {} --cost 0 --minutes 0`", settings.email_template, settings.email_template),
        )
    })?;
    Ok(RunOptions {
        mailbox_name: name.clone(),
        connection,
        setup,
        settings,
        template,
        max_per_run,
        holder: HolderId::current(),
        lease_timings: LeaseTimings::from_env(),
        max_batch_bytes: RunOptions::DEFAULT_MAX_BATCH_BYTES,
    })
}

fn worker_failure(err: WorkerError) -> Failure {
    let code = match &err {
        WorkerError::LeaseHeld { .. } => exit::LEASE_HELD,
        WorkerError::Mail(mail) if mail.is_connection() => exit::CONNECTION,
        _ => exit::OTHER,
    };
    Failure::new(code, err)
}

fn print_report(
    report: &SummaryReport,
    max_attempts: u32,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        SummaryFormat::Text => print!("{}", report.to_text(max_attempts)),
    }
    Ok(())
}

/// A watch that turns true on Ctrl-C or SIGTERM.
fn stop_signal() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("stop requested: finishing the current batch");
        let _ = sender.send(true);
    });
    receiver
}

async fn run(store: &Store, url: &DatabaseUrl, args: RunArgs) -> Result<(), Failure> {
    if !args.once {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("use `mailscribe run --once`, or `mailscribe serve` for scheduled runs"),
        ));
    }
    let stop = stop_signal();
    let wait = Duration::from_secs(args.wait);
    if args.all {
        return run_all(store, url, &args, wait, &stop).await;
    }
    let name = parse_mailbox_name(args.mailbox.as_deref().unwrap_or(MailboxName::DEFAULT))?;
    let (report, max_attempts) = run_one(store, url, &name, args.max_per_run, wait, &stop).await?;
    print_report(&report, max_attempts, args.format)?;
    Ok(())
}

/// Runs one mailbox. When a live `serve` holds it, asks that instance to
/// run now and waits for its summary.
async fn run_one(
    store: &Store,
    url: &DatabaseUrl,
    name: &MailboxName,
    max_per_run: Option<usize>,
    wait: Duration,
    stop: &watch::Receiver<bool>,
) -> Result<(SummaryReport, u32), Failure> {
    let options = run_options(store, url, name, max_per_run).await?;
    let max_attempts = options.settings.max_attempts;
    match mailscribe_worker::run_once(store, &options, stop).await {
        Ok(summary) => Ok((SummaryReport::new(&summary), max_attempts)),
        Err(held @ WorkerError::LeaseHeld { .. }) => {
            let serving = store.live_instances(options.lease_timings.ttl_ms()).await?;
            let lease_name = mailscribe_worker::mailbox_lease_name(&options.setup.mailbox_key());
            let Some(holder) = store
                .leases(&lease_name)
                .await?
                .into_iter()
                .find(|lease| lease.name == lease_name)
            else {
                return Err(worker_failure(held));
            };
            if !serving.iter().any(|instance| instance.id == holder.holder) {
                // Another `run --once`: nobody would answer a request.
                return Err(worker_failure(held));
            }
            ask_holder_to_run(store, name, wait, held)
                .await
                .map(|report| (report, max_attempts))
        }
        Err(err) => Err(worker_failure(err)),
    }
}

/// "Run now" through the database: the instance holding the mailbox claims
/// the request at its next heartbeat, runs, and writes its summary back.
async fn ask_holder_to_run(
    store: &Store,
    name: &MailboxName,
    wait: Duration,
    held: WorkerError,
) -> Result<SummaryReport, Failure> {
    let id = store
        .request_run(name.as_str(), &who_am_i(), Utc::now())
        .await?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let request = store.run_request(id).await?;
        if request.finished_at.is_some() {
            if let Some(error) = request.error {
                return Err(Failure::new(
                    exit::OTHER,
                    anyhow!("the instance holding the mailbox could not run it: {error}"),
                ));
            }
            let summary = request
                .summary
                .ok_or_else(|| anyhow!("the instance holding the mailbox sent no summary"))?;
            return Ok(serde_json::from_str(&summary)
                .context("the run summary sent back is not readable")?);
        }
        if tokio::time::Instant::now() >= deadline {
            store.withdraw_run_request(id).await?;
            if request.claimed_by.is_some() {
                return Err(Failure::new(
                    exit::LEASE_HELD,
                    anyhow!(
                        "{held}; it took the request but did not finish within {} s",
                        wait.as_secs()
                    ),
                ));
            }
            return Err(Failure::new(
                exit::LEASE_HELD,
                anyhow!("{held}; it did not answer within {} s", wait.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How serious an exit code is, for `run --once --all`: 5, then 4, 3, 1.
fn severity(code: u8) -> u8 {
    match code {
        exit::CONNECTION => 4,
        exit::LEASE_HELD => 3,
        exit::DISABLED_OR_INCOMPLETE => 2,
        0 => 0,
        _ => 1,
    }
}

async fn run_all(
    store: &Store,
    url: &DatabaseUrl,
    args: &RunArgs,
    wait: Duration,
    stop: &watch::Receiver<bool>,
) -> Result<(), Failure> {
    let enabled: Vec<MailboxName> = store
        .mailboxes()
        .await?
        .into_iter()
        .filter(|m| m.enablement.enabled)
        .map(|m| m.name)
        .collect();
    if enabled.is_empty() {
        return Err(Failure::new(
            exit::DISABLED_OR_INCOMPLETE,
            anyhow!("no mailbox has logging enabled"),
        ));
    }
    let mut worst: Option<Failure> = None;
    let mut reports = Vec::new();
    for name in enabled {
        if *stop.borrow() {
            break;
        }
        match run_one(store, url, &name, args.max_per_run, wait, stop).await {
            Ok((mut report, max_attempts)) => {
                report.mailbox = Some(name.to_string());
                if args.format == SummaryFormat::Text {
                    println!("mailbox {name}:");
                    print!("{}", report.to_text(max_attempts));
                }
                reports.push(report);
            }
            Err(failure) => {
                eprintln!("mailbox {name}: error: {:#}", failure.error);
                if worst
                    .as_ref()
                    .is_none_or(|w| severity(failure.code) > severity(w.code))
                {
                    worst = Some(Failure::new(
                        failure.code,
                        anyhow!("mailbox {name}: {:#}", failure.error),
                    ));
                }
            }
        }
    }
    if args.format == SummaryFormat::Json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    match worst {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// `interactions delete`: canceled entries before a day, or entries by number.
async fn delete_entries(
    store: &Store,
    canceled: bool,
    before: Option<&str>,
    entries: Vec<i64>,
    dry_run: bool,
) -> Result<(), Failure> {
    let usage = |error: anyhow::Error| Failure::new(exit::USAGE, error);
    let selection = match (canceled, before) {
        (true, Some(day)) => {
            let tz = store.settings().await?.time_zone;
            let day = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
                .map_err(|_| usage(anyhow!("--before is a day like 2026-03-31")))?;
            let midnight = day
                .and_hms_opt(0, 0, 0)
                .ok_or_else(|| usage(anyhow!("--before: no such day")))?;
            let instant = chrono::TimeZone::from_local_datetime(&tz, &midnight)
                .earliest()
                .ok_or_else(|| usage(anyhow!("--before: that midnight does not exist in {tz}")))?;
            mailscribe_store::EntrySelection::CanceledBefore(instant.with_timezone(&Utc))
        }
        _ if !entries.is_empty() => mailscribe_store::EntrySelection::Entries(entries),
        _ => {
            return Err(usage(anyhow!(
                "say what to delete: --canceled --before DATE, or --entry NO"
            )));
        }
    };
    let summary = store.delete_entries(&selection, dry_run).await?;
    if !dry_run {
        let target = match &selection {
            mailscribe_store::EntrySelection::CanceledBefore(at) => format!(
                "canceled before {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            mailscribe_store::EntrySelection::Entries(numbers) => format!("entries {numbers:?}"),
        };
        crate::accounts::audit(
            store,
            "entries_deleted",
            Some(&target),
            Some(format!(
                "{} entries, {} message records",
                summary.entries, summary.messages
            )),
        )
        .await?;
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb} {} entries and {} message records no other entry uses",
        summary.entries, summary.messages
    );
    Ok(())
}

/// `backup`: a consistent copy of a SQLite database, and a reminder of the
/// key, which is never in the database.
async fn backup(store: &Store, url: &DatabaseUrl, output: &std::path::Path) -> Result<(), Failure> {
    if url.sqlite_path().is_none() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!(
                "backup copies SQLite databases; for PostgreSQL use pg_dump (e.g. pg_dump --format=custom --file mailscribe.dump DBNAME), and back up the key with it"
            ),
        ));
    }
    if output.exists() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("{} exists already: name a new file", output.display()),
        ));
    }
    store
        .backup_sqlite_into(output)
        .await
        .with_context(|| format!("cannot write the backup {}", output.display()))?;
    println!("backup written to {}", output.display());
    let key = if std::env::var("MAILSCRIBE_SECRET_KEY").is_ok() {
        "the key in MAILSCRIBE_SECRET_KEY".to_owned()
    } else {
        format!(
            "the key file {}",
            crate::secrets::SecretKey::key_file_for(url).display()
        )
    };
    println!(
        "back up {key} too: it is not in the database, and without it the stored passwords cannot be read"
    );
    Ok(())
}

pub(crate) async fn add_user(
    store: &Store,
    name: &str,
    role: &str,
    salesperson: Option<&str>,
    password_env: &str,
) -> Result<(), Failure> {
    let usage = |error: anyhow::Error| Failure::new(exit::USAGE, error);
    let (role, code) = crate::accounts::role_and_code(role, salesperson)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(usage(anyhow!("the user name is empty")));
    }
    let password = crate::accounts::new_password(password_env, name)?;
    let hash = mailscribe_web::hash_password(password)
        .await
        .map_err(|err| anyhow!(err))?;
    store
        .create_user(name, &hash, role, code.as_ref(), Utc::now())
        .await?;
    crate::accounts::audit(
        store,
        "user_added",
        Some(name),
        Some(format!("role {}", role.as_str())),
    )
    .await?;
    println!("user {name} added ({})", role.as_str());
    Ok(())
}

async fn create_token(store: &Store, name: &str, expires_in: &str) -> Result<(), Failure> {
    let expires_at = match expires_in.trim() {
        "never" => None,
        days => {
            let days: i64 = days
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    Failure::new(
                        exit::USAGE,
                        anyhow!("--expires-in is a number of days from 1 to 3650, or never"),
                    )
                })?;
            Some(Utc::now() + chrono::Duration::days(days))
        }
    };
    let Some((user, _)) = store.user_by_name(name).await? else {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("there is no active user named {name}"),
        ));
    };
    let token = mailscribe_web::generate_token();
    let id = store
        .create_api_token(
            &mailscribe_web::hash_token(&token),
            user.id,
            Utc::now(),
            expires_at,
        )
        .await?;
    let expiry = expires_at.map_or_else(
        || "never expires".to_owned(),
        |at| {
            format!(
                "expires {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        },
    );
    crate::accounts::audit(
        store,
        "token_created",
        Some(name),
        Some(format!("token {id}, {expiry}")),
    )
    .await?;
    // The token itself is shown this once; only its hash is kept.
    println!("{token}");
    Ok(())
}

async fn list_tokens(store: &Store, user: Option<&str>) -> Result<(), Failure> {
    let time = |at: Option<chrono::DateTime<Utc>>| {
        at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    println!("id\tuser\tcreated_at\tlast_used_at\texpires_at");
    for token in store.list_tokens(user).await? {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            token.id,
            token.user,
            time(Some(token.created_at)),
            time(token.last_used_at),
            token
                .expires_at
                .map_or_else(|| "never".to_owned(), |t| time(Some(t)))
        );
    }
    Ok(())
}

async fn revoke_token(store: &Store, id: i64) -> Result<(), Failure> {
    if !store.revoke_token(id).await? {
        return Err(Failure::new(
            exit::OTHER,
            anyhow!("there is no token with id {id}: see `mailscribe token list`"),
        ));
    }
    crate::accounts::audit(store, "token_revoked", Some(&format!("token {id}")), None).await?;
    println!("token {id} revoked");
    Ok(())
}

/// On a database without users, a one-time link that creates the first
/// admin: only someone who can read this output can take the instance.
async fn announce_first_admin_link(
    store: &Store,
    listen: std::net::SocketAddr,
) -> Result<(), Failure> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let token = mailscribe_web::generate_token();
    store
        .put_setup_token(
            &mailscribe_web::hash_token(&token),
            Utc::now() + chrono::Duration::hours(24),
        )
        .await?;
    println!(
        "No users yet. Create the first administrator within 24 hours at:\n  http://{listen}/setup?token={token}"
    );
    Ok(())
}

async fn serve(store: &Store, url: &DatabaseUrl, args: ServeArgs) -> Result<(), Failure> {
    let config = mailscribe_worker::supervisor::SupervisorConfig::from_env();
    if url.sqlite_path().is_some() {
        // SQLite is for one machine and one instance: a second `serve` on
        // the same file would only fight the first over the write lock.
        let me = HolderId::current();
        if let Some(other) =
            mailscribe_worker::supervisor::other_live_instance(store, &me, &config.timings)
                .await
                .map_err(anyhow::Error::from)?
        {
            return Err(Failure::new(
                exit::OTHER,
                anyhow!(
                    "another mailscribe serve already works this SQLite database ({other}); stop it first, or use PostgreSQL to run several instances"
                ),
            ));
        }
    }
    let stop = stop_signal();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    announce_first_admin_link(store, args.listen).await?;
    tracing::info!(listen = %args.listen, "serving the web app and the API");
    let source = std::sync::Arc::new(StorageReader {
        store: store.clone(),
        url: url.clone(),
    });
    let setup = std::sync::Arc::new(SetupService {
        store: store.clone(),
        url: url.clone(),
    });
    let pulse = mailscribe_web::SchedulerPulse {
        last_tick_ms: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(
            Utc::now().timestamp_millis(),
        )),
        // Three scans without a tick: the scheduler is stuck or gone.
        max_silence: (config.timings.scan.min(config.timings.heartbeat) * 3)
            .max(Duration::from_secs(15)),
    };
    let state = mailscribe_web::AppState::new(store.clone(), !args.insecure_cookies)
        .with_trusted_proxies(args.trusted_proxies.clone())
        .with_message_source(source)
        .with_setup_backend(setup)
        .with_sso_backend(std::sync::Arc::new(crate::sso::SsoSecrets {
            url: url.clone(),
        }))
        .with_metrics(crate::telemetry::install()?)
        .with_scheduler_pulse(pulse.clone());
    let operations = match args.metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (--metrics-listen)"))?;
            tracing::info!(listen = %address, "serving /metrics, /healthz and /readyz");
            Some((listener, mailscribe_web::operations_router(state.clone())))
        }
        None => None,
    };
    let app = mailscribe_web::router(state);
    let mut web_stop = stop.clone();
    let web = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = web_stop.wait_for(|stopped| *stopped).await;
    });
    let mut operations_stop = stop.clone();
    let operations = async move {
        match operations {
            Some((listener, router)) => {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = operations_stop.wait_for(|stopped| *stopped).await;
                    })
                    .await
            }
            None => Ok(()),
        }
    };
    let planner = std::sync::Arc::new(ServePlanner {
        store: store.clone(),
        url: url.clone(),
        max_per_run: args.max_per_run,
    });
    let scheduler = mailscribe_worker::supervisor::supervise(
        store.clone(),
        planner,
        config,
        pulse.last_tick_ms,
        stop,
    );
    let (web, operations, scheduler) = tokio::join!(web, operations, scheduler);
    web.context("the web server failed")?;
    operations.context("the metrics listener failed")?;
    scheduler.map_err(|err| Failure::new(exit::OTHER, err))
}

/// Reads a mailbox's setup, settings and secrets afresh before each run.
struct ServePlanner {
    store: Store,
    url: DatabaseUrl,
    max_per_run: Option<usize>,
}

impl mailscribe_worker::supervisor::Planner for ServePlanner {
    fn plan<'a>(
        &'a self,
        name: &'a MailboxName,
    ) -> mailscribe_worker::supervisor::BoxFuture<
        'a,
        Result<RunOptions, mailscribe_worker::supervisor::PlanError>,
    > {
        use mailscribe_worker::supervisor::PlanError;
        Box::pin(async move {
            run_options(&self.store, &self.url, name, self.max_per_run)
                .await
                .map_err(|failure| {
                    let reason = format!("{:#}", failure.error);
                    if failure.code == exit::DISABLED_OR_INCOMPLETE {
                        PlanError::Idle(reason)
                    } else {
                        PlanError::Failed(reason)
                    }
                })
        })
    }
}

/// Reads `reference`-mode messages from the storage folder, with the
/// current setup and secrets at each request.
struct StorageReader {
    store: Store,
    url: DatabaseUrl,
}

impl mailscribe_web::MessageSource for StorageReader {
    fn fetch<'a>(
        &'a self,
        record: &'a mailscribe_store::MessageRecord,
    ) -> mailscribe_web::FetchedRaw<'a> {
        Box::pin(async move {
            // The mailbox the message was stored through holds it.
            let name = MailboxName::parse(&record.mailbox_name).map_err(|e| e.to_string())?;
            let setup = self
                .store
                .mailbox_setup(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "the mailbox {name} this message was logged through is no longer set up"
                    )
                })?;
            let connection = connection_config(&self.url, &setup)
                .await
                .map_err(|e| e.to_string())?;
            mailscribe_worker::fetch_stored_message(&connection, &setup.storage_folder, record)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// What the web setup pages do on the server: seal secrets with the key
/// file, list folders and run the checks, exactly as the CLI does.
struct SetupService {
    store: Store,
    url: DatabaseUrl,
}

impl mailscribe_web::SetupBackend for SetupService {
    fn seal(
        &self,
        field: mailscribe_web::SecretField,
        plain: &SecretString,
    ) -> Result<mailscribe_core::SealedSecret, String> {
        let purpose = match field {
            mailscribe_web::SecretField::Password => PASSWORD_PURPOSE,
            mailscribe_web::SecretField::ClientId => CLIENT_ID_PURPOSE,
            mailscribe_web::SecretField::ClientSecret => CLIENT_SECRET_PURPOSE,
        };
        let keys = KeyRing::load_or_create(&self.url).map_err(|err| err.to_string())?;
        Ok(keys.seal(purpose, plain))
    }

    fn list_folders<'a>(
        &'a self,
        setup: &'a MailboxSetup,
    ) -> mailscribe_web::BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let connection = connection_config(&self.url, setup)
                .await
                .map_err(|err| err.to_string())?;
            let mut session = mailscribe_mail::Session::connect(&connection)
                .await
                .map_err(|err| err.to_string())?;
            let listed = session.list_folders().await;
            session.logout().await;
            let folders = listed.map_err(|err| err.to_string())?;
            Ok(folders
                .into_iter()
                .filter(|f| f.selectable)
                .map(|f| f.display_name)
                .collect())
        })
    }

    fn check<'a>(
        &'a self,
        setup: &'a MailboxSetup,
    ) -> mailscribe_web::BoxFuture<'a, Vec<CheckLine>> {
        Box::pin(check_lines(&self.store, &self.url, setup))
    }

    fn refuse_source(&self, source: &SecretRef) -> Option<String> {
        crate::secrets::refuse_source_from_web(&self.url, source, "password")
    }
}
