//! Opening a session: TCP, TLS or STARTTLS, the greeting, and login.

use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;

use async_imap::imap_proto::{Capability, Response, ResponseCode, Status};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::{
    ConnectionConfig, Credentials, MailError, Result, Security, ServerCertificate, TlsProblem,
    TlsTrust,
};

/// One stream type for plain, STARTTLS and implicit TLS connections.
pub(crate) trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapIo for T {}
pub(crate) type BoxIo = Box<dyn ImapIo>;

pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn tls_config(config: &ConnectionConfig) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    match config.trust {
        TlsTrust::Bundled => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TlsTrust::System => {
            // Honours SSL_CERT_FILE and SSL_CERT_DIR, like OpenSSL does.
            let native = rustls_native_certs::load_native_certs();
            let (added, _unparsable) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                let detail = native
                    .errors
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "no certificates found".into());
                return Err(MailError::Tls {
                    host: config.host.clone(),
                    problem: TlsProblem::Other(format!(
                        "the system trust store is empty or unreadable ({detail}); install ca-certificates or use --trust bundled"
                    )),
                });
            }
        }
    }
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| MailError::CaFile {
            path: path.clone(),
            reason,
        };
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|err| ca_error(err.to_string()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| ca_error(err.to_string()))?;
        if certificates.is_empty() {
            return Err(ca_error("no PEM certificate in the file".into()));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|err| ca_error(err.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| MailError::Tls {
            host: config.host.clone(),
            problem: TlsProblem::Other(err.to_string()),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

fn classify_tls_error(err: &std::io::Error) -> TlsProblem {
    let Some(rustls_error) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return TlsProblem::Other(err.to_string());
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsProblem::UnknownIssuer,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsProblem::NameMismatch
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsProblem::Expired,
            other => TlsProblem::Other(format!("invalid certificate: {other:?}")),
        },
        other => TlsProblem::Other(other.to_string()),
    }
}

/// What the check shows of the server's certificate once it is verified.
fn describe_certificate(der: &CertificateDer<'_>) -> Option<ServerCertificate> {
    use x509_cert::der::Decode;
    let certificate = x509_cert::Certificate::from_der(der.as_ref()).ok()?;
    let tbs = certificate.tbs_certificate;
    let not_after = chrono::DateTime::<chrono::Utc>::from_timestamp(
        i64::try_from(tbs.validity.not_after.to_unix_duration().as_secs()).ok()?,
        0,
    )?;
    Some(ServerCertificate {
        issuer: tbs.issuer.to_string(),
        not_after,
    })
}

async fn start_tls(
    config: &ConnectionConfig,
    stream: BoxIo,
) -> Result<(BoxIo, Option<ServerCertificate>)> {
    let connector = tokio_rustls::TlsConnector::from(tls_config(config)?);
    let server_name = ServerName::try_from(
        config
            .host
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned(),
    )
    .map_err(|err| MailError::Tls {
        host: config.host.clone(),
        problem: TlsProblem::Other(err.to_string()),
    })?;
    let tls = timeout(config.timeout, connector.connect(server_name, stream))
        .await
        .map_err(|_| MailError::Timeout("the TLS handshake".into()))?
        .map_err(|err| MailError::Tls {
            host: config.host.clone(),
            problem: classify_tls_error(&err),
        })?;
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(describe_certificate);
    Ok((Box::new(tls), certificate))
}

/// Capabilities announced in a greeting or CAPABILITY response, upper-cased.
pub(crate) fn capability_names(capabilities: &[Capability<'_>]) -> Vec<String> {
    capabilities
        .iter()
        .map(|c| match c {
            Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
            Capability::Auth(mechanism) => format!("AUTH={}", mechanism.to_ascii_uppercase()),
            Capability::Atom(atom) => atom.to_ascii_uppercase(),
        })
        .collect()
}

/// Sends one initial response; answers any further challenge (the error
/// details XOAUTH2 sends on failure) with an empty line so that the server
/// can say NO.
struct SaslAuthenticator {
    response: Option<Vec<u8>>,
}

impl SaslAuthenticator {
    fn new(response: Vec<u8>) -> SaslAuthenticator {
        SaslAuthenticator {
            response: Some(response),
        }
    }
}

impl async_imap::Authenticator for SaslAuthenticator {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.response.take().unwrap_or_default()
    }
}

/// The text of a NO from async-imap's error, which keeps it only in a
/// formatted string.
fn server_text(error: &async_imap::error::Error) -> String {
    let text = error.to_string();
    match text.rfind("Some(\"") {
        Some(i) => {
            let tail = &text[i + 6..];
            tail[..tail.rfind("\")").unwrap_or(tail.len())].replace("\\\"", "\"")
        }
        None => text,
    }
}

/// A logged-in session, and the server's certificate when TLS was used.
pub(crate) async fn open(
    config: &ConnectionConfig,
) -> Result<(async_imap::Session<BoxIo>, Option<ServerCertificate>)> {
    if config.security == Security::None && !config.allow_plaintext && !is_loopback(&config.host) {
        return Err(MailError::PlaintextRefused {
            host: config.host.clone(),
        });
    }
    let connect_error = |source| MailError::Connect {
        host: config.host.clone(),
        port: config.port,
        source,
    };
    let host = config.host.trim_matches(|c| c == '[' || c == ']');
    let tcp = timeout(config.timeout, TcpStream::connect((host, config.port)))
        .await
        .map_err(|_| {
            connect_error(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection timed out",
            ))
        })?
        .map_err(connect_error)?;
    tcp.set_nodelay(true).ok();
    let mut stream: BoxIo = Box::new(tcp);
    let mut certificate = None;
    if config.security == Security::Tls {
        (stream, certificate) = start_tls(config, stream).await?;
    }

    let mut client = async_imap::Client::new(stream);
    let greeting = timeout(config.timeout, client.read_response())
        .await
        .map_err(|_| MailError::Timeout("the greeting".into()))?
        .map_err(|err| MailError::Protocol {
            command: "the greeting".into(),
            detail: err.to_string(),
        })?
        .ok_or_else(|| MailError::ConnectionLost("the greeting".into()))?;
    let mut capabilities: Option<Vec<String>> = match greeting.parsed() {
        Response::Data {
            status: Status::Ok,
            outcome,
        } => match &outcome.code {
            Some(ResponseCode::Capabilities(caps)) => Some(capability_names(caps)),
            _ => None,
        },
        Response::Data {
            status: Status::Bye,
            outcome,
        } => {
            return Err(MailError::Refused {
                command: "the connection".into(),
                text: outcome.information.as_deref().unwrap_or("BYE").to_owned(),
            });
        }
        Response::Data {
            status: Status::PreAuth,
            ..
        } => {
            return Err(MailError::Protocol {
                command: "the greeting".into(),
                detail:
                    "the server pre-authenticated the connection, which Mailscribe does not support"
                        .into(),
            });
        }
        other => {
            return Err(MailError::Protocol {
                command: "the greeting".into(),
                detail: format!("{other:?}"),
            });
        }
    };

    if config.security == Security::StartTls {
        if capabilities
            .as_ref()
            .is_some_and(|caps| !caps.iter().any(|c| c == "STARTTLS"))
        {
            return Err(MailError::NoStartTls);
        }
        timeout(
            config.timeout,
            client.run_command_and_check_ok("STARTTLS", None),
        )
        .await
        .map_err(|_| MailError::Timeout("STARTTLS".into()))?
        .map_err(|_| MailError::NoStartTls)?;
        let (upgraded, upgraded_certificate) = start_tls(config, client.into_inner()).await?;
        certificate = upgraded_certificate;
        client = async_imap::Client::new(upgraded);
        // Capabilities from before TLS are not to be trusted (RFC 3501 6.2.1).
        capabilities = None;
    }

    let session = log_in(config, client, capabilities.as_deref()).await?;
    Ok((session, certificate))
}

/// A user name that opens another mailbox the Exchange way, with `/` (as
/// MS-OXIMAP4 specifies) or `\\` (as widely used) between the parts.
fn is_delegate_access_name(username: &str) -> bool {
    username.contains('/') || username.contains('\\')
}

/// Authenticates on a connection whose greeting (and TLS) is done.
/// `capabilities` is `None` when they are not known yet.
async fn log_in(
    config: &ConnectionConfig,
    mut client: async_imap::Client<BoxIo>,
    capabilities: Option<&[String]>,
) -> Result<async_imap::Session<BoxIo>> {
    let ignored = |cap: &String| {
        config
            .ignore_capabilities
            .iter()
            .any(|i| i.eq_ignore_ascii_case(cap))
    };
    let offers = |mechanism: &str| {
        capabilities.map(|caps| {
            caps.iter()
                .any(|c| c == &format!("AUTH={mechanism}") && !ignored(c))
        })
    };
    match &config.credentials {
        Credentials::Basic { username, password } => {
            // Exchange's delegate-access name ("domain/account/mailbox",
            // MS-OXIMAP4) is specified for LOGIN only, and Exchange refuses
            // it in PLAIN: such a name goes straight to LOGIN.
            let offers_plain = if is_delegate_access_name(username) {
                Some(false)
            } else {
                offers("PLAIN")
            };
            if offers_plain != Some(false) {
                let authenticator = SaslAuthenticator::new(
                    format!("\0{username}\0{}", password.expose_secret()).into_bytes(),
                );
                match timeout(config.timeout, client.authenticate("PLAIN", authenticator)).await {
                    Err(_) => return Err(MailError::Timeout("AUTHENTICATE".into())),
                    Ok(Ok(session)) => return Ok(session),
                    // The server said it offers PLAIN and refused: wrong credentials.
                    Ok(Err((error, _))) if offers_plain == Some(true) => {
                        return Err(auth_error(&error));
                    }
                    Ok(Err((
                        async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_),
                        returned,
                    ))) => client = returned,
                    Ok(Err((error, _))) => return Err(auth_error(&error)),
                }
            }
            match timeout(
                config.timeout,
                client.login(username, password.expose_secret()),
            )
            .await
            {
                Err(_) => Err(MailError::Timeout("LOGIN".into())),
                Ok(Ok(session)) => Ok(session),
                Ok(Err((error, _))) => Err(auth_error(&error)),
            }
        }
        Credentials::OAuth2 { username, tokens } => {
            let token = tokens.token().await?;
            // XOAUTH2 is what Exchange Online and Gmail speak; OAUTHBEARER
            // is the standard one.
            let (mechanism, response) =
                if offers("XOAUTH2") == Some(false) && offers("OAUTHBEARER") == Some(true) {
                    (
                        "OAUTHBEARER",
                        crate::oauth::oauthbearer_response(username, token.expose_secret()),
                    )
                } else {
                    (
                        "XOAUTH2",
                        crate::oauth::xoauth2_response(username, token.expose_secret()),
                    )
                };
            match timeout(
                config.timeout,
                client.authenticate(mechanism, SaslAuthenticator::new(response)),
            )
            .await
            {
                Err(_) => Err(MailError::Timeout("AUTHENTICATE".into())),
                Ok(Ok(session)) => Ok(session),
                Ok(Err((error, _))) => {
                    // The next attempt asks for a new token.
                    tokens.forget().await;
                    Err(match auth_error(&error) {
                        MailError::AuthFailed(text) => MailError::AuthFailed(format!(
                            "{text}; the token was issued but not accepted for {username}: check that admin consent \
                             to IMAP.AccessAsApp was granted, that the service principal was registered with the \
                             enterprise application's object id (New-ServicePrincipal) and has access to this mailbox \
                             (Add-MailboxPermission), and that IMAP is enabled on it (Get-CASMailbox)"
                        )),
                        other => other,
                    })
                }
            }
        }
    }
}

fn auth_error(error: &async_imap::error::Error) -> MailError {
    match error {
        async_imap::error::Error::ConnectionLost | async_imap::error::Error::Io(_) => {
            MailError::ConnectionLost("login".into())
        }
        other => MailError::AuthFailed(server_text(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["imap.example.com", "10.0.0.1", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
