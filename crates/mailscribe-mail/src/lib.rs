//! The IMAP connector: connect (TLS, STARTTLS or plain), log in, find
//! folders as users write them, fetch, move and delete in batches, and
//! watch the queue with IDLE.
//!
//! Boundary: this crate knows nothing about the database. It answers "what
//! is in the queue" and does "move these UIDs there"; the worker decides.
//!
//! Every command after login is sent and read by hand (`Session::command`)
//! rather than through async-imap's helpers, because those report a NO, a
//! BAD or a closed connection as an empty success and drop COPYUID codes.

mod batch;
mod connect;
mod folder;
mod oauth;
mod session;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use batch::{MessageSummary, plan_batches, uid_set};
pub use folder::{FolderInfo, decode_modified_utf7, encode_modified_utf7};
pub use oauth::{EXCHANGE_ONLINE_SCOPE, OAuthClient, TokenProvider, entra_token_url};
pub use session::{FetchedMessage, MoveOutcome, SelectedFolder, Session};
pub use watch::{QueueWatcher, WatchEvent};

pub use mailscribe_core::{Security, TlsTrust};
use secrecy::SecretString;

/// How to log in.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// AUTHENTICATE PLAIN where offered, else LOGIN.
    Basic {
        username: String,
        password: SecretString,
    },
    /// An OAuth2 access token for `username` (the mailbox), with SASL
    /// XOAUTH2 where offered, else OAUTHBEARER.
    OAuth2 {
        username: String,
        tokens: Arc<TokenProvider>,
    },
}

impl Credentials {
    pub fn username(&self) -> &str {
        match self {
            Credentials::Basic { username, .. } | Credentials::OAuth2 { username, .. } => username,
        }
    }
}

/// Everything needed to open a session.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Allow `Security::None` to a host that is not a loopback address.
    pub allow_plaintext: bool,
    /// Extra trusted CA certificates (PEM), for servers with a private CA.
    pub ca_file: Option<PathBuf>,
    /// The roots trusted besides `ca_file`: bundled, or the system's store.
    pub trust: TlsTrust,
    pub credentials: Credentials,
    /// Longest wait for any one server response.
    pub timeout: Duration,
    /// Capabilities to act as if the server lacked (upper case), e.g. `MOVE`
    /// or `UIDPLUS`: for servers with a broken extension, and to test the
    /// fallbacks against a server that has them.
    pub ignore_capabilities: Vec<String>,
}

impl ConnectionConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
}

/// The verified certificate of the server, as check setup reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertificate {
    /// The issuer's distinguished name (RFC 4514).
    pub issuer: String,
    pub not_after: chrono::DateTime<chrono::Utc>,
}

/// What kind of TLS failure, so that the admin gets the right hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    UnknownIssuer,
    NameMismatch,
    Expired,
    Other(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "refusing to send the password unencrypted to {host}: use --security tls or starttls, \
         or --allow-plaintext if this network is trusted"
    )]
    PlaintextRefused { host: String },
    #[error("cannot reach {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("TLS with {host} failed: {}", tls_hint(.problem))]
    Tls { host: String, problem: TlsProblem },
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("the server does not offer STARTTLS: use --security tls (usually port 993)")]
    NoStartTls,
    #[error("login refused by the server: {0}")]
    AuthFailed(String),
    #[error("no OAuth2 token: {hint} ({detail})")]
    Token { hint: String, detail: String },
    #[error("the folder '{folder}' does not exist on the server; existing folders: {}", .available.join(", "))]
    FolderNotFound {
        folder: String,
        available: Vec<String>,
    },
    #[error("the server refused {command}: {text}")]
    Refused { command: String, text: String },
    #[error("the connection to the server was lost during {0}")]
    ConnectionLost(String),
    #[error("the server did not answer {0} within the timeout")]
    Timeout(String),
    #[error("the server sent something unexpected during {command}: {detail}")]
    Protocol { command: String, detail: String },
}

fn tls_hint(problem: &TlsProblem) -> String {
    match problem {
        TlsProblem::UnknownIssuer => "the certificate is signed by an unknown authority; \
             if the server uses a private CA, give its certificate with --ca-file, \
             or trust the system's store with --trust system if IT installed the CA there"
            .into(),
        TlsProblem::NameMismatch => "the certificate is not valid for this host name; \
             connect with the name the certificate was issued for"
            .into(),
        TlsProblem::Expired => {
            "the server's certificate has expired (or is not yet valid); renew it".into()
        }
        TlsProblem::Other(detail) => detail.clone(),
    }
}

impl MailError {
    /// Connection, TLS and authentication problems: the run cannot start
    /// or cannot go on (exit code 5 in the CLI).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            MailError::PlaintextRefused { .. }
                | MailError::Connect { .. }
                | MailError::Tls { .. }
                | MailError::CaFile { .. }
                | MailError::NoStartTls
                | MailError::AuthFailed(_)
                | MailError::Token { .. }
                | MailError::ConnectionLost(_)
                | MailError::Timeout(_)
        )
    }
}

pub type Result<T, E = MailError> = std::result::Result<T, E>;
