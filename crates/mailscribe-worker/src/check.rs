//! Check setup (PRODUCT.md section 6): one line per check, each with a
//! hint that says what to fix. The CLI prints these lines; the web page
//! shows the same ones.

pub use mailscribe_core::check::{CheckLine, CheckStatus};
use mailscribe_core::{MailboxSetup, Security};
use mailscribe_mail::{ConnectionConfig, MailError, Session};
use mailscribe_store::Store;

const FOLDERS_DIFFER_HINT: &str = "the queue and storage folders (and any not-logged or quarantine folder) must be different folders";

/// The mailbox checks in order. `connection` is `None` when the stored
/// credentials cannot be read (the caller reports why); the checks that
/// need the server are then skipped.
pub async fn run_checks(
    store: &Store,
    setup: &MailboxSetup,
    connection: Option<&ConnectionConfig>,
) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    match connection {
        Some(connection) => server_checks(setup, connection, &mut lines).await,
        None => {
            for check in [
                "server_reachable",
                "tls",
                "login",
                "queue_folder",
                "storage_folder",
                "storage_writable",
            ] {
                lines.push(CheckLine::skip(
                    check,
                    "skipped: the credentials could not be read",
                ));
            }
        }
    }
    // Server checks compare the folders as the server resolved them; this
    // line only covers the case where the server could not be asked.
    if connection.is_none() {
        let named = [
            Some(&setup.queue_folder),
            Some(&setup.storage_folder),
            setup.not_logged_folder.as_ref(),
            setup.quarantine_folder.as_ref(),
        ];
        let folders: Vec<&String> = named.iter().flatten().copied().collect();
        let unique: std::collections::HashSet<&&String> = folders.iter().collect();
        lines.push(if unique.len() == folders.len() {
            CheckLine::pass(
                "folders_differ",
                "the folders are named differently (not verified on the server)",
            )
        } else {
            CheckLine::fail("folders_differ", FOLDERS_DIFFER_HINT)
        });
    }
    let code = match store.settings().await {
        Ok(settings) => settings.email_template,
        Err(_) => mailscribe_core::InteractionTemplate::EMAIL.to_owned(),
    };
    lines.push(match store.template(&code).await {
        Ok(Some(template)) => CheckLine::pass(
            "interaction_template",
            format!("{} exists (cost {}, {} minutes)", template.code, template.cost, template.duration_minutes),
        ),
        Ok(None) => CheckLine::fail(
            "interaction_template",
            format!("the {code} template (setting email_template) is missing: run `mailscribe template set {code} --cost 0 --minutes 0`"),
        ),
        Err(err) => CheckLine::fail("interaction_template", format!("cannot read templates: {err}")),
    });
    lines.push(match store.count_salespeople_with_address().await {
        Ok(0) => CheckLine::fail(
            "salesperson_address",
            "no salesperson has an email address: import them with `mailscribe salespeople import FILE.csv`",
        ),
        Ok(n) => CheckLine::pass("salesperson_address", format!("{n} salespeople have an address")),
        Err(err) => CheckLine::fail("salesperson_address", format!("cannot read salespeople: {err}")),
    });
    lines
}

async fn server_checks(
    setup: &MailboxSetup,
    connection: &ConnectionConfig,
    lines: &mut Vec<CheckLine>,
) {
    let target = format!("{}:{}", connection.host, connection.port);
    let reachable = tokio::time::timeout(
        connection.timeout,
        tokio::net::TcpStream::connect((
            connection.host.trim_matches(|c| c == '[' || c == ']'),
            connection.port,
        )),
    )
    .await;
    match reachable {
        Ok(Ok(_)) => lines.push(CheckLine::pass(
            "server_reachable",
            format!("{target} accepts connections"),
        )),
        Ok(Err(err)) => {
            lines.push(CheckLine::fail(
                "server_reachable",
                format!(
                    "cannot connect to {target}: {err}; check the host, the port and any firewall"
                ),
            ));
            skip_rest(
                lines,
                &[
                    "tls",
                    "login",
                    "queue_folder",
                    "storage_folder",
                    "storage_writable",
                ],
            );
            return;
        }
        Err(_) => {
            lines.push(CheckLine::fail(
                "server_reachable",
                format!("{target} did not answer in time"),
            ));
            skip_rest(
                lines,
                &[
                    "tls",
                    "login",
                    "queue_folder",
                    "storage_folder",
                    "storage_writable",
                ],
            );
            return;
        }
    }

    let session = Session::connect(connection).await;
    let tls_line = match (&session, connection.security) {
        (
            Err(err @ (MailError::Tls { .. } | MailError::CaFile { .. } | MailError::NoStartTls)),
            _,
        ) => CheckLine::fail("tls", err.to_string()),
        (Err(err @ MailError::PlaintextRefused { .. }), _) => {
            CheckLine::fail("tls", err.to_string())
        }
        (_, Security::None) => CheckLine::skip(
            "tls",
            "plain connection (allowed: loopback address or --allow-plaintext)",
        ),
        (Err(MailError::Connect { .. } | MailError::Timeout(_)), _) => {
            CheckLine::fail("tls", "the TLS handshake did not complete")
        }
        (Ok(session), security) => CheckLine::pass(
            "tls",
            tls_pass_hint(
                security,
                &connection.host,
                session.certificate(),
                chrono::Utc::now(),
            ),
        ),
        (Err(_), security) => CheckLine::pass(
            "tls",
            tls_pass_hint(security, &connection.host, None, chrono::Utc::now()),
        ),
    };
    let tls_failed = tls_line.status == CheckStatus::Fail;
    lines.push(tls_line);
    let mut session = match session {
        Ok(session) => {
            lines.push(CheckLine::pass(
                "login",
                match &setup.oauth {
                    Some(oauth) if setup.auth == mailscribe_core::AuthKind::OAuth2 => format!(
                        "token obtained from {} and accepted for {}",
                        oauth.token_url, setup.username
                    ),
                    _ => format!("logged in as {}", setup.username),
                },
            ));
            session
        }
        Err(err) => {
            if tls_failed {
                lines.push(CheckLine::skip("login", "skipped: no secure connection"));
            } else {
                let hint = match &err {
                    MailError::AuthFailed(text) => {
                        format!(
                            "the server refused the user name or password ({text}); set them again with `mailscribe mailbox configure`"
                        )
                    }
                    other => other.to_string(),
                };
                lines.push(CheckLine::fail("login", hint));
            }
            skip_rest(
                lines,
                &["queue_folder", "storage_folder", "storage_writable"],
            );
            return;
        }
    };

    let queue = session.resolve_folder(&setup.queue_folder).await;
    match &queue {
        Ok(folder) => match session.select(folder).await {
            Ok(selected) if selected.read_only => lines.push(CheckLine::fail(
                "queue_folder",
                format!("{} opens read-only: the mailbox user needs the right to delete messages there", setup.queue_folder),
            )),
            // Read-write is not enough where the server has ACLs (RFC 4314):
            // Dovecot opens a folder read-write with any one of i/e/w/s/t,
            // refuses UID MOVE without e, and ignores STORE \Deleted without
            // t (so a not-logged copy would silently stay in the queue).
            Ok(selected) => lines.push(match session.my_rights(folder).await {
                Ok(Some(rights)) if !can_remove_messages(&rights) => CheckLine::fail(
                    "queue_folder",
                    format!(
                        "the mailbox user may not remove messages from {} (rights: {rights}); grant the rights to mark messages deleted (t) and to expunge (e)",
                        setup.queue_folder
                    ),
                ),
                Ok(_) => CheckLine::pass(
                    "queue_folder",
                    format!("{} exists, {} messages waiting", setup.queue_folder, selected.exists),
                ),
                Err(err) => CheckLine::fail("queue_folder", err.to_string()),
            }),
            Err(err) => lines.push(CheckLine::fail("queue_folder", err.to_string())),
        },
        Err(err) => lines.push(CheckLine::fail("queue_folder", err.to_string())),
    }
    let storage = session.resolve_folder(&setup.storage_folder).await;
    match &storage {
        Ok(_) => lines.push(CheckLine::pass(
            "storage_folder",
            format!("{} exists", setup.storage_folder),
        )),
        Err(err) => lines.push(CheckLine::fail("storage_folder", err.to_string())),
    }
    let mut resolved: Vec<String> = [&queue, &storage]
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|f| f.raw_name.clone())
        .collect();
    for (check, path) in [
        ("not_logged_folder", &setup.not_logged_folder),
        ("quarantine_folder", &setup.quarantine_folder),
    ] {
        if let Some(path) = path {
            let line = match session.resolve_folder(path).await {
                // Copies are moved there: on a server with ACLs, the user
                // needs the insert right, or every run would fail on the move.
                Ok(folder) => match session.my_rights(&folder).await {
                    Ok(Some(rights)) if !rights.contains('i') => CheckLine::fail(
                        check,
                        format!(
                            "the mailbox user may not add messages to {path} (rights: {rights}); grant the insert right"
                        ),
                    ),
                    Ok(_) => {
                        resolved.push(folder.raw_name);
                        CheckLine::pass(check, format!("{path} exists"))
                    }
                    Err(err) => CheckLine::fail(check, err.to_string()),
                },
                Err(err) => CheckLine::fail(check, err.to_string()),
            };
            lines.push(line);
        }
    }
    let distinct: std::collections::HashSet<&String> = resolved.iter().collect();
    lines.push(if distinct.len() == resolved.len() {
        CheckLine::pass(
            "folders_differ",
            "the queue, storage and other folders are different folders on the server",
        )
    } else {
        CheckLine::fail("folders_differ", FOLDERS_DIFFER_HINT)
    });
    let Ok(storage) = storage else {
        lines.push(CheckLine::skip(
            "storage_writable",
            "skipped: no storage folder",
        ));
        session.logout().await;
        return;
    };
    let writable = match session.my_rights(&storage).await {
        Ok(Some(rights)) if rights.contains('i') => CheckLine::pass(
            "storage_writable",
            format!("MYRIGHTS {rights} includes insert"),
        ),
        Ok(Some(rights)) => CheckLine::fail(
            "storage_writable",
            format!(
                "the mailbox user may not add messages to {} (rights: {rights}); grant the insert right",
                setup.storage_folder
            ),
        ),
        Ok(None) => {
            let token = format!("mailscribe-check-{}", std::process::id());
            match session.probe_writable(&storage, &token).await {
                Ok(()) => CheckLine::pass(
                    "storage_writable",
                    "a probe message was written and removed",
                ),
                Err(err) => CheckLine::fail(
                    "storage_writable",
                    format!(
                        "cannot write to {}: {err}; give the mailbox user write access",
                        setup.storage_folder
                    ),
                ),
            }
        }
        Err(err) => CheckLine::fail("storage_writable", err.to_string()),
    };
    lines.push(writable);
    session.logout().await;
}

/// Whether MYRIGHTS allows marking messages deleted and expunging them.
/// RFC 4314 servers answer with `t` and `e` (and add the obsolete `d` when
/// either is there, so `d` proves nothing to them); a server of the older
/// RFC 2086, which knows none of t/e/k/x, grants both with `d`.
fn can_remove_messages(rights: &str) -> bool {
    if rights.contains(['t', 'e', 'k', 'x']) {
        rights.contains('t') && rights.contains('e')
    } else {
        rights.contains('d')
    }
}

/// A certificate this close to its end passes, with a warning to renew it.
const RENEW_WARNING_DAYS: i64 = 21;

fn tls_pass_hint(
    security: Security,
    host: &str,
    certificate: Option<&mailscribe_mail::ServerCertificate>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut hint = format!("{} certificate verified for {host}", security.as_str());
    if let Some(certificate) = certificate {
        hint.push_str(&format!(
            ", issued by {}, valid until {}",
            certificate.issuer,
            certificate.not_after.format("%Y-%m-%d")
        ));
        let days_left = (certificate.not_after - now).num_days();
        if days_left < RENEW_WARNING_DAYS {
            hint.push_str(&format!(
                "; it expires in {days_left} days: renew it before then"
            ));
        }
    }
    hint
}

fn skip_rest(lines: &mut Vec<CheckLine>, checks: &[&'static str]) {
    for check in checks {
        lines.push(CheckLine::skip(check, "skipped: an earlier check failed"));
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::{Security, can_remove_messages, tls_pass_hint};

    #[test]
    fn a_passing_tls_line_names_the_issuer_and_warns_before_expiry() {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
            .unwrap();
        let certificate = |days: i64| mailscribe_mail::ServerCertificate {
            issuer: "CN=Contoso Root CA".into(),
            not_after: now + chrono::Duration::days(days),
        };
        assert_eq!(
            tls_pass_hint(
                Security::Tls,
                "imap.contoso.com",
                Some(&certificate(200)),
                now
            ),
            "tls certificate verified for imap.contoso.com, issued by CN=Contoso Root CA, valid until 2027-06-15"
        );
        assert!(
            tls_pass_hint(Security::StartTls, "h", Some(&certificate(5)), now)
                .ends_with("; it expires in 5 days: renew it before then")
        );
        assert_eq!(
            tls_pass_hint(Security::Tls, "h", None, now),
            "tls certificate verified for h"
        );
    }

    #[test]
    fn removing_needs_t_and_e_or_the_old_d() {
        // RFC 4314 answers, as Dovecot gives them (it appends c and d for
        // RFC 2086 clients).
        assert!(can_remove_messages("lrwstipekxacd"));
        assert!(can_remove_messages("lrted"));
        assert!(!can_remove_messages("lrs"));
        assert!(
            !can_remove_messages("lrsed"),
            "no t: STORE \\Deleted is ignored"
        );
        assert!(!can_remove_messages("lrstd"), "no e: UID MOVE is refused");
        assert!(!can_remove_messages("lrsxcd"));
        // An RFC 2086 server.
        assert!(can_remove_messages("lrswipcda"));
        assert!(!can_remove_messages("lrswipca"));
    }
}
