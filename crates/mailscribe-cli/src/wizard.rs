//! `mailscribe setup`: the assisted setup in a terminal. It asks for the
//! server, the login, the folders (listed from the server), tests the
//! connection with the same checks as `mailscribe check`, sets the template
//! and options, and enables logging. Nothing is saved until the last step
//! is confirmed; leaving earlier changes nothing.

use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command as Process, Stdio};

use anyhow::anyhow;
use mailscribe_core::{
    AuthKind, Enablement, InteractionTemplate, MailboxSetup, OAuthSetup, SecretRef, Security,
    StorageMode, TlsTrust,
};
use mailscribe_mail::{Session, entra_token_url};
use mailscribe_store::{DatabaseUrl, Store};
use mailscribe_worker::CheckStatus;
use secrecy::SecretString;

use crate::secrets::KeyRing;
use crate::{Failure, exit};

/// Reads answers from the terminal. End of input (Ctrl-D) abandons the
/// setup.
struct Prompter {
    input: std::io::StdinLock<'static>,
}

struct Abandoned;

impl Prompter {
    fn line(&mut self) -> Result<String, Abandoned> {
        let mut answer = String::new();
        match self.input.read_line(&mut answer) {
            Ok(0) | Err(_) => Err(Abandoned),
            Ok(_) => Ok(answer.trim().to_owned()),
        }
    }

    fn ask(&mut self, question: &str, default: Option<&str>) -> Result<String, Abandoned> {
        loop {
            match default {
                Some(default) if !default.is_empty() => print!("{question} [{default}]: "),
                _ => print!("{question}: "),
            }
            std::io::stdout().flush().ok();
            let answer = self.line()?;
            match (answer.is_empty(), default) {
                (false, _) => return Ok(answer),
                (true, Some(default)) => return Ok(default.to_owned()),
                (true, None) => println!("  (an answer is needed)"),
            }
        }
    }

    /// Asks without echoing what is typed (over SSH too: the terminal's
    /// echo is switched off with stty).
    fn ask_secret(&mut self, question: &str) -> Result<SecretString, Abandoned> {
        // Echo goes off before the question appears, so that nothing typed
        // after it is ever shown.
        let echo = |flag: &str| {
            Process::new("stty")
                .arg(flag)
                .stdin(Stdio::inherit())
                .status()
        };
        let _ = echo("-echo");
        print!("{question} (not shown): ");
        std::io::stdout().flush().ok();
        let answer = self.line();
        let _ = echo("echo");
        println!();
        answer.map(SecretString::from)
    }

    fn confirm(&mut self, question: &str) -> Result<bool, Abandoned> {
        let answer = self.ask(&format!("{question} (yes/no)"), Some("no"))?;
        Ok(answer.eq_ignore_ascii_case("yes") || answer.eq_ignore_ascii_case("y"))
    }
}

fn step(number: u32, title: &str) {
    println!("\n== Step {number} of 6: {title} ==");
}

pub(crate) async fn setup(
    store: &Store,
    url: &DatabaseUrl,
    name: &mailscribe_core::MailboxName,
) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!(
                "`mailscribe setup` asks questions and needs a terminal. From a script, use \
                 `mailscribe mailbox configure ...`, `mailscribe check` and `mailscribe enable --accept-data-statement`"
            ),
        ));
    }
    if store.enablement(name).await?.enabled {
        return Err(Failure::new(
            exit::OTHER,
            anyhow!(
                "logging is enabled: run `mailscribe disable{}` before changing the setup",
                crate::commands::mailbox_flag(name)
            ),
        ));
    }
    let mut prompter = Prompter {
        input: std::io::stdin().lock(),
    };
    match run_steps(store, url, name, &mut prompter).await {
        Ok(result) => result,
        Err(Abandoned) => {
            println!("\nSetup left unfinished: nothing was changed.");
            Err(Failure::new(exit::OTHER, anyhow!("setup abandoned")))
        }
    }
}

async fn run_steps(
    store: &Store,
    url: &DatabaseUrl,
    name: &mailscribe_core::MailboxName,
    p: &mut Prompter,
) -> Result<Result<(), Failure>, Abandoned> {
    let previous = store.mailbox_setup(name).await.ok().flatten();
    step(1, "before you start");
    println!(
        "Mailscribe reads one queue folder over IMAP. Your mail server must copy every message between your\n\
         organisation and the outside world into it, and you need a storage folder beside it.\n\
         docs/mail-server-setup.md shows how for Exchange Online, Exchange Server, Postfix with Dovecot and\n\
         Google Workspace. Press Ctrl-D at any question to leave without changing anything."
    );
    p.ask("Press Enter to continue", Some(" "))?;

    step(2, "server and security");
    let host = p.ask(
        "IMAP server host",
        previous.as_ref().map(|s| s.host.as_str()),
    )?;
    let security = loop {
        let answer = p.ask(
            "Security: tls, starttls or none",
            Some(previous.as_ref().map_or("tls", |s| s.security.as_str())),
        )?;
        match answer.parse::<Security>() {
            Ok(security) => break security,
            Err(err) => println!("  {err}"),
        }
    };
    let default_port = if security == Security::Tls {
        "993"
    } else {
        "143"
    };
    let port = loop {
        match p.ask("Port", Some(default_port))?.parse::<u16>() {
            Ok(port) => break port,
            Err(_) => println!("  a port is a number from 1 to 65535"),
        }
    };
    let ca_file = p.ask(
        "CA certificate file for a private CA (Enter for none)",
        Some(" "),
    )?;
    let ca_file = (!ca_file.trim().is_empty()).then(|| ca_file.trim().to_owned());
    let tls_trust = loop {
        let default = previous
            .as_ref()
            .map_or("bundled", |s| s.tls_trust.as_str());
        match p
            .ask(
                "Trust which roots: bundled (built in) or system (this machine's store)",
                Some(default),
            )?
            .parse::<TlsTrust>()
        {
            Ok(trust) => break trust,
            Err(err) => println!("  {err}"),
        }
    };
    let allow_plaintext = security == Security::None
        && p.confirm("Send the login unencrypted if the host is not on this machine?")?;

    step(3, "authentication");
    let auth = loop {
        match p
            .ask(
                "Authentication: basic (user and password) or oauth2 (Exchange Online)",
                Some("basic"),
            )?
            .parse::<AuthKind>()
        {
            Ok(auth) => break auth,
            Err(err) => println!("  {err}"),
        }
    };
    let username = p.ask(
        "Mailbox user",
        previous.as_ref().map(|s| s.username.as_str()),
    )?;
    let (password, oauth_plain) = match auth {
        AuthKind::Basic => (Some(p.ask_secret("Password")?), None),
        AuthKind::OAuth2 => {
            let tenant_or_url = p.ask(
                "Entra ID tenant (id or domain), or the token URL of another OAuth2 server",
                None,
            )?;
            let (token_url, tenant) = if tenant_or_url.contains("://") {
                (tenant_or_url, None)
            } else {
                (entra_token_url(&tenant_or_url), Some(tenant_or_url))
            };
            if let Err(err) = mailscribe_core::check_token_url(&token_url) {
                return Ok(Err(Failure::new(exit::USAGE, err)));
            }
            let client_id = p.ask("Application (client) id", None)?;
            let client_secret = p.ask_secret("Client secret")?;
            let scope = p.ask("Scope", Some(mailscribe_mail::EXCHANGE_ONLINE_SCOPE))?;
            (
                None,
                Some((
                    token_url,
                    tenant,
                    SecretString::from(client_id),
                    client_secret,
                    scope,
                )),
            )
        }
    };

    // The setup in memory; secrets are sealed only when it is saved.
    let keys = match KeyRing::load_or_create(url) {
        Ok(keys) => keys,
        Err(err) => return Ok(Err(err.into())),
    };
    let mut setup = MailboxSetup {
        host,
        port,
        security,
        auth,
        username,
        password: password
            .as_ref()
            .map(|pw| SecretRef::Sealed(keys.seal(crate::commands::PASSWORD_PURPOSE, pw))),
        oauth: oauth_plain
            .as_ref()
            .map(|(token_url, tenant, id, secret, scope)| OAuthSetup {
                token_url: token_url.clone(),
                tenant: tenant.clone(),
                client_id: SecretRef::Sealed(keys.seal(crate::commands::CLIENT_ID_PURPOSE, id)),
                client_secret: SecretRef::Sealed(
                    keys.seal(crate::commands::CLIENT_SECRET_PURPOSE, secret),
                ),
                scope: scope.clone(),
            }),
        queue_folder: String::new(),
        storage_folder: String::new(),
        not_logged_folder: None,
        quarantine_folder: None,
        batch_size: MailboxSetup::DEFAULT_BATCH_SIZE,
        allow_plaintext,
        ca_file,
        tls_trust,
    };
    let connection = match crate::commands::connection_config(url, &setup).await {
        Ok(connection) => connection,
        Err(err) => return Ok(Err(Failure::new(exit::OTHER, err))),
    };

    step(4, "folders");
    println!(
        "Connecting to {}:{} to list the folders...",
        setup.host, setup.port
    );
    let folders = match Session::connect(&connection).await {
        Ok(mut session) => {
            let listed = session.list_folders().await;
            session.logout().await;
            match listed {
                Ok(folders) => folders
                    .into_iter()
                    .filter(|f| f.selectable)
                    .map(|f| f.display_name)
                    .collect::<Vec<_>>(),
                Err(err) => {
                    return Ok(Err(Failure::new(
                        exit::CONNECTION,
                        anyhow!("cannot list the folders: {err}"),
                    )));
                }
            }
        }
        Err(err) => {
            println!(
                "The connection failed: {err}\nNothing was changed; run `mailscribe setup` again with other answers."
            );
            return Ok(Err(Failure::new(exit::CONNECTION, err)));
        }
    };
    for (number, folder) in folders.iter().enumerate() {
        println!("  {:>3}. {folder}", number + 1);
    }
    let pick = |p: &mut Prompter, what: &str, default: Option<&str>| -> Result<String, Abandoned> {
        loop {
            let answer = p.ask(&format!("{what} folder (number or path)"), default)?;
            match answer
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| folders.get(i))
            {
                Some(folder) => return Ok(folder.clone()),
                None if folders.iter().any(|f| f == &answer) => return Ok(answer),
                None => println!("  '{answer}' is not one of the folders above"),
            }
        }
    };
    setup.queue_folder = pick(
        p,
        "Queue",
        previous.as_ref().map(|s| s.queue_folder.as_str()),
    )?;
    setup.storage_folder = loop {
        let storage = pick(
            p,
            "Storage",
            previous.as_ref().map(|s| s.storage_folder.as_str()),
        )?;
        if storage != setup.queue_folder {
            break storage;
        }
        println!("  the storage folder must differ from the queue");
    };

    step(5, "connection test");
    let lines = mailscribe_worker::run_checks(store, &setup, Some(&connection)).await;
    for line in &lines {
        println!("  {line}");
    }
    let failed = lines
        .iter()
        .filter(|l| l.status == CheckStatus::Fail)
        .count();
    if failed > 0 {
        println!(
            "{failed} checks failed. You can still save the setup and fix them, but logging stays disabled."
        );
    }

    step(6, "template and options");
    let template = store
        .template(InteractionTemplate::EMAIL)
        .await
        .ok()
        .flatten();
    let cost = loop {
        let default = template
            .as_ref()
            .map(|t| t.cost.to_string())
            .unwrap_or_else(|| "0.00".into());
        match p.ask("Cost per logged email", Some(&default))?.parse() {
            Ok(cost) => break cost,
            Err(err) => println!("  {err}"),
        }
    };
    let minutes = loop {
        let default = template
            .as_ref()
            .map_or(0, |t| t.duration_minutes)
            .to_string();
        match p
            .ask("Minutes per logged email", Some(&default))?
            .parse::<u32>()
        {
            Ok(minutes) => break minutes,
            Err(_) => println!("  a whole number of minutes"),
        }
    };
    let mode = loop {
        match p.ask("Storage mode: reference (ids, dates, subject only) or full (also a compressed copy)", Some("reference"))?.as_str() {
            "reference" => break StorageMode::Reference,
            "full" => break StorageMode::Full,
            other => println!("  '{other}' is neither reference nor full"),
        }
    };

    println!("\n{}\n", mailscribe_core::data_statement(mode));
    let enable =
        failed == 0 && p.confirm("Accept this statement, save the setup and enable logging?")?;
    if !enable && !p.confirm("Save the setup without enabling logging?")? {
        println!("Nothing was changed.");
        return Ok(Ok(()));
    }
    let save = async {
        // The storage mode is global and part of every accepted data
        // statement: it changes only while no mailbox logs.
        let current_mode = store.settings().await?.storage_mode;
        if current_mode != mode && store.any_mailbox_enabled().await? {
            return Err(mailscribe_store::StoreError::Conflict(format!(
                "the storage mode is {} for every mailbox, and another mailbox has logging enabled: disable them all to change it",
                current_mode.as_str()
            )));
        }
        store.save_mailbox_setup(name, &setup).await?;
        let audit = mailscribe_store::AuditEvent {
            actor: format!("cli:{}", crate::commands::who_am_i()),
            client_address: None,
            event: "setup_saved".into(),
            target: Some(name.to_string()),
            detail: Some(format!(
                "assisted setup in a terminal{}",
                if enable {
                    "; logging enabled, data statement accepted"
                } else {
                    ""
                }
            )),
        };
        store.record_audit(&audit, chrono::Utc::now()).await?;
        store
            .save_template(&InteractionTemplate {
                code: InteractionTemplate::EMAIL.into(),
                description: template
                    .map(|t| t.description)
                    .unwrap_or_else(|| "Email".into()),
                cost,
                duration_minutes: minutes,
                interaction_group: None,
                campaign_no: None,
            })
            .await?;
        store.save_setting("storage_mode", mode.as_str()).await?;
        if enable {
            store
                .set_enablement(
                    name,
                    &Enablement {
                        enabled: true,
                        accepted_by: Some(crate::commands::who_am_i()),
                        accepted_at: Some(chrono::Utc::now()),
                    },
                )
                .await?;
        }
        Ok::<_, mailscribe_store::StoreError>(())
    };
    if let Err(err) = save.await {
        return Ok(Err(err.into()));
    }
    println!(
        "{}",
        if enable {
            "Setup saved; logging is enabled."
        } else {
            "Setup saved; logging is disabled until `mailscribe enable`."
        }
    );
    Ok(Ok(()))
}
