//! The connector against a real Dovecot (started per test by the testkit).

use std::time::Duration;

use std::sync::Arc;

use mailscribe_mail::{
    ConnectionConfig, Credentials, MailError, OAuthClient, Security, Session, TlsProblem,
    TokenProvider,
};
use mailscribe_testkit::{
    DELEGATE_ACCESS_USER, Dovecot, DovecotOptions, OAuthServer, QUEUE, STORAGE, ServerCertificate,
    TcpProxy,
};
use secrecy::SecretString;

mod watch;

fn config(dovecot: &Dovecot, security: Security) -> ConnectionConfig {
    ConnectionConfig {
        host: "127.0.0.1".into(),
        port: if security == Security::Tls {
            dovecot.imaps_port
        } else {
            dovecot.imap_port
        },
        security,
        allow_plaintext: false,
        ca_file: Some(dovecot.ca_file()),
        trust: mailscribe_mail::TlsTrust::Bundled,
        credentials: Credentials::Basic {
            username: dovecot.user().into(),
            password: SecretString::from(dovecot.password()),
        },
        timeout: Duration::from_secs(20),
        ignore_capabilities: Vec::new(),
    }
}

fn message(n: u32) -> Vec<u8> {
    format!(
        "From: c{n}@customer.example\r\nTo: sp@ourco.example\r\nSubject: message {n}\r\n\
         Message-ID: <m{n}@customer.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn every_security_mode_logs_in() {
    let dovecot = Dovecot::start();
    for security in [Security::Tls, Security::StartTls, Security::None] {
        let session = Session::connect(&config(&dovecot, security)).await;
        let session = session.unwrap_or_else(|err| panic!("{security:?}: {err}"));
        assert!(session.has_capability("UIDPLUS"), "{security:?}");
        session.logout().await;
    }
}

#[tokio::test]
async fn login_is_used_where_authenticate_plain_is_not_offered() {
    let dovecot = Dovecot::start();
    let mut config = config(&dovecot, Security::None);
    config.ignore_capabilities = vec!["AUTH=PLAIN".into()];
    Session::connect(&config)
        .await
        .expect("LOGIN works")
        .logout()
        .await;
    config.credentials = Credentials::Basic {
        username: dovecot.user().into(),
        password: SecretString::from("wrong"),
    };
    let err = Session::connect(&config).await.unwrap_err();
    assert!(matches!(err, MailError::AuthFailed(_)), "{err}");
}

/// What a client sends, recorded by a forwarding proxy in front of the
/// server (plaintext on loopback, so the commands can be read).
async fn client_commands_of_one_login(dovecot: &Dovecot, username: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let server_port = dovecot.imap_port;
    let recorder = tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.expect("accept");
        let mut server = tokio::net::TcpStream::connect(("127.0.0.1", server_port))
            .await
            .expect("connect to Dovecot");
        let (mut from_server, mut to_client) = (vec![0; 65536], Vec::new());
        let (mut from_client, mut recorded) = (vec![0; 65536], Vec::new());
        loop {
            tokio::select! {
                read = client.read(&mut from_client) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        recorded.extend_from_slice(&from_client[..n]);
                        if server.write_all(&from_client[..n]).await.is_err() { break }
                    }
                },
                read = server.read(&mut from_server) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        to_client.clear();
                        to_client.extend_from_slice(&from_server[..n]);
                        if client.write_all(&to_client).await.is_err() { break }
                    }
                },
            }
        }
        String::from_utf8_lossy(&recorded).into_owned()
    });
    let mut config = config(dovecot, Security::None);
    config.port = port;
    config.credentials = Credentials::Basic {
        username: username.into(),
        password: SecretString::from(dovecot.password()),
    };
    let session = Session::connect(&config).await;
    let session =
        session.unwrap_or_else(|err| panic!("log in as {username}: {err}; {}", dovecot.log()));
    session.logout().await;
    recorder.await.expect("recorder")
}

/// Exchange specifies its "domain/account/mailbox" user names for LOGIN
/// only, and refuses them in PLAIN: such a name never goes through
/// AUTHENTICATE PLAIN, even where the server offers it (Dovecot does).
#[tokio::test]
async fn exchange_delegate_access_names_log_in_with_login_not_plain() {
    let dovecot = Dovecot::start();
    let usual = client_commands_of_one_login(&dovecot, dovecot.user()).await;
    assert!(
        usual.contains("AUTHENTICATE PLAIN") && !usual.contains(" LOGIN "),
        "{usual}"
    );
    let delegate = client_commands_of_one_login(&dovecot, DELEGATE_ACCESS_USER).await;
    assert!(!delegate.contains("AUTHENTICATE"), "{delegate}");
    assert!(
        delegate.contains(&format!(" LOGIN \"{DELEGATE_ACCESS_USER}\"")),
        "{delegate}"
    );
}

#[tokio::test]
async fn bad_credentials_certificates_and_plaintext_are_refused_clearly() {
    let dovecot = Dovecot::start();
    let mut wrong_password = config(&dovecot, Security::Tls);
    wrong_password.credentials = Credentials::Basic {
        username: dovecot.user().into(),
        password: SecretString::from("wrong"),
    };
    let err = Session::connect(&wrong_password).await.unwrap_err();
    assert!(matches!(err, MailError::AuthFailed(_)), "{err}");
    assert!(err.is_connection());

    let mut unknown_ca = config(&dovecot, Security::Tls);
    unknown_ca.ca_file = None;
    let err = Session::connect(&unknown_ca).await.unwrap_err();
    assert!(
        matches!(
            &err,
            MailError::Tls {
                problem: TlsProblem::UnknownIssuer,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--ca-file"), "{err}");

    let mut remote_plain = config(&dovecot, Security::None);
    remote_plain.host = "imap.example.com".into();
    let err = Session::connect(&remote_plain).await.unwrap_err();
    assert!(matches!(err, MailError::PlaintextRefused { .. }), "{err}");

    let mut nobody_listens = config(&dovecot, Security::Tls);
    nobody_listens.port = 1;
    let err = Session::connect(&nobody_listens).await.unwrap_err();
    assert!(matches!(err, MailError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn folders_resolve_by_path_whatever_the_separator() {
    for separator in ['/', '.'] {
        let dovecot = Dovecot::start_with(DovecotOptions {
            separator,
            ..Default::default()
        });
        dovecot.create_folder("Public Folders/Öffentliche Ordner");
        let mut session = Session::connect(&config(&dovecot, Security::Tls))
            .await
            .unwrap();
        let queue = session.resolve_folder(QUEUE).await.unwrap();
        assert_eq!(queue.raw_name, dovecot.server_name(QUEUE));
        let german = session
            .resolve_folder("Public Folders/Öffentliche Ordner")
            .await
            .unwrap();
        assert_eq!(
            german.raw_name,
            dovecot.server_name("Public Folders/&ANY-ffentliche Ordner")
        );
        session.select(&german).await.unwrap();
        let err = session
            .resolve_folder("Public Folders/Email Logging/Nope")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("does not exist") && text.contains("Email Logging/Storage"),
            "{text}"
        );
        // A \Noselect parent is not a folder one can use.
        assert!(
            session
                .resolve_folder("Public Folders/Email Logging")
                .await
                .is_err()
        );
    }
}

async fn fetch_and_move(ignore_capabilities: &[&str]) {
    let dovecot = Dovecot::start();
    let mut config = config(&dovecot, Security::Tls);
    config.ignore_capabilities = ignore_capabilities
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    let mut session = Session::connect(&config).await.unwrap();
    let queue = session.resolve_folder(QUEUE).await.unwrap();
    let storage = session.resolve_folder(STORAGE).await.unwrap();
    for n in 1..=5 {
        session
            .append(
                &queue,
                &message(n),
                if n == 5 { Some("(\\Draft)") } else { None },
            )
            .await
            .unwrap();
    }
    let selected = session.select(&queue).await.unwrap();
    let listed = session.list_messages(selected).await.unwrap();
    let uids: Vec<u32> = listed.iter().map(|m| m.uid).collect();
    assert_eq!(uids.len(), 5);
    assert!(listed.iter().all(|m| m.size > 0));

    let fetched = session.fetch(&uids).await.unwrap();
    assert_eq!(fetched.len(), 5);
    assert_eq!(
        fetched[0].raw.as_deref(),
        Some(message(1).as_slice()),
        "bytes as appended"
    );
    assert!(fetched[0].internal_date.is_some());
    assert_eq!(
        fetched.iter().map(|m| m.draft).collect::<Vec<_>>(),
        [false, false, false, false, true]
    );

    let moved = session.move_messages(&uids[..3], &storage).await.unwrap();
    assert_eq!(moved.mapping.len(), 3, "COPYUID maps every moved UID");
    assert_eq!(
        moved.mapping.iter().map(|m| m.0).collect::<Vec<_>>(),
        uids[..3]
    );
    session.delete_messages(&uids[3..4]).await.unwrap();
    let selected = session.select(&queue).await.unwrap();
    assert_eq!(
        session
            .list_messages(selected)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect::<Vec<_>>(),
        [uids[4]]
    );
    assert_eq!(dovecot.count(STORAGE), 3);
    // A vanished UID is simply not returned.
    assert!(session.fetch(&[uids[0]]).await.unwrap().is_empty());
    session.logout().await;
}

#[tokio::test]
async fn fetch_then_move_and_delete_in_batches() {
    fetch_and_move(&[]).await;
}

#[tokio::test]
async fn copy_expunge_fallback_where_move_is_missing() {
    fetch_and_move(&["MOVE"]).await;
}

#[tokio::test]
async fn without_uidplus_only_our_messages_are_expunged() {
    fetch_and_move(&["MOVE", "UIDPLUS"]).await;
    let dovecot = Dovecot::start();
    let mut config = config(&dovecot, Security::Tls);
    config.ignore_capabilities = vec!["UIDPLUS".into()];
    let mut session = Session::connect(&config).await.unwrap();
    let queue = session.resolve_folder(QUEUE).await.unwrap();
    session.append(&queue, &message(1), None).await.unwrap();
    // Someone else has marked this one deleted; it is not ours to expunge.
    session
        .append(&queue, &message(2), Some("(\\Deleted)"))
        .await
        .unwrap();
    let selected = session.select(&queue).await.unwrap();
    let uids: Vec<u32> = session
        .list_messages(selected)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    session.delete_messages(&uids[..1]).await.unwrap();
    let selected = session.select(&queue).await.unwrap();
    let left: Vec<u32> = session
        .list_messages(selected)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, [uids[1]]);
}

#[tokio::test]
async fn writability_probe_leaves_nothing_behind() {
    let dovecot = Dovecot::start();
    let mut session = Session::connect(&config(&dovecot, Security::Tls))
        .await
        .unwrap();
    let storage = session.resolve_folder(STORAGE).await.unwrap();
    session
        .probe_writable(&storage, "probe-token-1")
        .await
        .unwrap();
    assert_eq!(dovecot.count(STORAGE), 0);
    assert_eq!(dovecot.count(QUEUE), 0);
    // Dovecot here has no ACL plugin, so rights are unknown, not empty.
    assert_eq!(session.my_rights(&storage).await.unwrap(), None);
}

#[tokio::test]
async fn a_connection_that_drops_is_a_lost_connection() {
    let dovecot = Dovecot::start();
    let proxy = TcpProxy::start(dovecot.imaps_port);
    let mut config = config(&dovecot, Security::Tls);
    config.port = proxy.port;
    let mut session = Session::connect(&config).await.unwrap();
    let queue = session.resolve_folder(QUEUE).await.unwrap();
    proxy.cut();
    let err = session.select(&queue).await.unwrap_err();
    assert!(matches!(err, MailError::ConnectionLost(_)), "{err}");
    assert!(err.is_connection());
    let err = Session::connect(&config).await.unwrap_err();
    assert!(err.is_connection(), "{err}");
}

fn oauth_config(
    dovecot: &Dovecot,
    server: &OAuthServer,
    client_id: &str,
    secret: &str,
) -> ConnectionConfig {
    let tokens = TokenProvider::new(OAuthClient {
        token_url: server.token_url(),
        client_id: SecretString::from(client_id),
        client_secret: SecretString::from(secret),
        scope: mailscribe_mail::EXCHANGE_ONLINE_SCOPE.into(),
    })
    .unwrap();
    ConnectionConfig {
        credentials: Credentials::OAuth2 {
            username: dovecot.user().into(),
            tokens: Arc::new(tokens),
        },
        ..config(dovecot, Security::Tls)
    }
}

fn oauth_dovecot() -> (OAuthServer, Dovecot) {
    let server = OAuthServer::start(&[
        ("fixture-client", "fixture-secret", "queue"),
        ("other-client", "other-secret", "test"),
    ]);
    let dovecot = Dovecot::start_with(DovecotOptions {
        oauth2_introspection_url: Some(server.introspection_url()),
        ..Default::default()
    });
    (server, dovecot)
}

#[tokio::test]
async fn oauth2_client_credentials_then_xoauth2_or_oauthbearer() {
    let (server, dovecot) = oauth_dovecot();
    let config = oauth_config(&dovecot, &server, "fixture-client", "fixture-secret");
    let mut session = Session::connect(&config).await.expect("XOAUTH2 login");
    session.resolve_folder(QUEUE).await.unwrap();
    session.logout().await;
    // The token is cached: a second session asks the endpoint nothing.
    Session::connect(&config)
        .await
        .expect("second login")
        .logout()
        .await;
    assert_eq!(server.token_requests(), 1);
    // OAUTHBEARER where XOAUTH2 is not offered.
    let mut bearer = config.clone();
    bearer.ignore_capabilities = vec!["AUTH=XOAUTH2".into()];
    Session::connect(&bearer)
        .await
        .expect("OAUTHBEARER login")
        .logout()
        .await;
}

#[tokio::test]
async fn oauth2_failures_say_what_to_fix() {
    let (server, dovecot) = oauth_dovecot();
    let err = Session::connect(&oauth_config(&dovecot, &server, "fixture-client", "wrong"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MailError::Token { hint, .. } if hint.contains("client secret is wrong")),
        "{err}"
    );
    assert!(err.is_connection());
    let err = Session::connect(&oauth_config(&dovecot, &server, "nobody", "x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("client id is wrong"), "{err}");
    // A valid token for another mailbox user is refused by the server.
    let err = Session::connect(&oauth_config(
        &dovecot,
        &server,
        "other-client",
        "other-secret",
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, MailError::AuthFailed(text) if text.contains("not accepted")),
        "{err}"
    );
    let mut unreachable = oauth_config(&dovecot, &server, "fixture-client", "fixture-secret");
    let Credentials::OAuth2 { username, .. } = &unreachable.credentials else {
        unreachable!()
    };
    let tokens = TokenProvider::new(OAuthClient {
        token_url: "http://127.0.0.1:1/token".into(),
        client_id: SecretString::from("x"),
        client_secret: SecretString::from("y"),
        scope: "s".into(),
    })
    .unwrap();
    unreachable.credentials = Credentials::OAuth2 {
        username: username.clone(),
        tokens: Arc::new(tokens),
    };
    let err = Session::connect(&unreachable).await.unwrap_err();
    assert!(
        err.to_string().contains("cannot reach the token endpoint"),
        "{err}"
    );
}

#[tokio::test]
async fn expired_and_misnamed_certificates_are_refused_with_their_reason() {
    for (certificate, problem, hint) in [
        (ServerCertificate::Expired, TlsProblem::Expired, "expired"),
        (
            ServerCertificate::WrongName,
            TlsProblem::NameMismatch,
            "not valid for this host name",
        ),
    ] {
        let dovecot = Dovecot::start_with(DovecotOptions {
            certificate,
            ..Default::default()
        });
        for security in [Security::Tls, Security::StartTls] {
            let err = Session::connect(&config(&dovecot, security))
                .await
                .unwrap_err();
            match &err {
                MailError::Tls { problem: found, .. } => {
                    assert_eq!(found, &problem, "{certificate:?} {security:?}")
                }
                other => panic!("{certificate:?} {security:?}: {other}"),
            }
            assert!(err.to_string().contains(hint), "{err}");
        }
    }
}
