//! The setup record, the settings and the interaction template: what an
//! admin configures, as typed values that parse.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;

use crate::money::Amount;

/// How the connection to the IMAP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (port 993).
    Tls,
    /// Plain connection upgraded with STARTTLS (port 143).
    StartTls,
    /// No TLS: refused unless the host is a loopback address or the admin
    /// allowed it explicitly.
    None,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
            Security::None => "none",
        }
    }
}

impl FromStr for Security {
    type Err = SettingError;
    fn from_str(s: &str) -> Result<Security, SettingError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls" => Ok(Security::Tls),
            "starttls" => Ok(Security::StartTls),
            "none" | "plain" => Ok(Security::None),
            other => Err(SettingError::Invalid {
                key: "security",
                value: other.to_owned(),
                expected: "tls, starttls or none",
            }),
        }
    }
}

/// Which certificate authorities a TLS connection trusts. A certificate is
/// always verified; this only chooses the roots (plus any CA file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsTrust {
    /// The Mozilla roots built into Mailscribe: the same on every machine.
    #[default]
    Bundled,
    /// The operating system's trust store (on Debian, what
    /// `update-ca-certificates` installed), for an internal CA that IT
    /// already rolled out to every server.
    System,
}

impl TlsTrust {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsTrust::Bundled => "bundled",
            TlsTrust::System => "system",
        }
    }
}

impl FromStr for TlsTrust {
    type Err = SettingError;
    fn from_str(s: &str) -> Result<TlsTrust, SettingError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bundled" => Ok(TlsTrust::Bundled),
            "system" => Ok(TlsTrust::System),
            other => Err(SettingError::Invalid {
                key: "trust",
                value: other.to_owned(),
                expected: "bundled or system",
            }),
        }
    }
}

/// How Mailscribe logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// User and password: AUTHENTICATE PLAIN, or LOGIN.
    Basic,
    /// A client-credentials token, then XOAUTH2 or OAUTHBEARER.
    OAuth2,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Basic => "basic",
            AuthKind::OAuth2 => "oauth2",
        }
    }
}

impl FromStr for AuthKind {
    type Err = SettingError;
    fn from_str(s: &str) -> Result<AuthKind, SettingError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "basic" => Ok(AuthKind::Basic),
            "oauth2" => Ok(AuthKind::OAuth2),
            other => Err(SettingError::Invalid {
                key: "auth",
                value: other.to_owned(),
                expected: "basic or oauth2",
            }),
        }
    }
}

/// Where a secret comes from: sealed in the database, or from outside at
/// each run (BC's `OnGetEmailLoggingClientSecret` hook, for vaults).
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Sealed(SealedSecret),
    /// An environment variable of the Mailscribe process.
    Env(String),
    /// A file holding the secret (trailing whitespace ignored).
    File(String),
    /// A shell command whose standard output is the secret. Only the CLI
    /// may set one: a web session must never run commands on the server.
    Exec(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a secret source: use env:NAME, file:PATH or exec:COMMAND")]
pub struct SecretRefError(pub String);

impl SecretRef {
    /// A source as the admin writes it: `env:NAME`, `file:PATH`, `exec:COMMAND`.
    pub fn parse_source(text: &str) -> Result<SecretRef, SecretRefError> {
        let bad = || SecretRefError(text.to_owned());
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        match kind.trim() {
            "env" => Ok(SecretRef::Env(rest.to_owned())),
            "file" => Ok(SecretRef::File(rest.to_owned())),
            "exec" => Ok(SecretRef::Exec(rest.to_owned())),
            _ => Err(bad()),
        }
    }

    /// Why a web session may not set this source, if it may not. Running a
    /// command is reserved to someone with a shell on the server, and
    /// Mailscribe's own variables (the secret key among them) must not be
    /// sendable as a password to a server of the admin's choosing.
    pub fn refused_from_web(&self) -> Option<&'static str> {
        match self {
            SecretRef::Exec(_) => Some(
                "an exec: source can only be set with `mailscribe mailbox configure` on the server, \
                 so that a web session can never run commands there; use env:NAME or file:PATH here",
            ),
            SecretRef::Env(name) if name.to_ascii_uppercase().starts_with("MAILSCRIBE_") => Some(
                "MAILSCRIBE_ variables hold Mailscribe's own configuration and keys; name another variable",
            ),
            _ => None,
        }
    }

    /// The form stored in the database.
    pub fn to_storage(&self) -> String {
        match self {
            SecretRef::Sealed(sealed) => sealed.0.clone(),
            SecretRef::Env(name) => format!("env:{name}"),
            SecretRef::File(path) => format!("file:{path}"),
            SecretRef::Exec(command) => format!("exec:{command}"),
        }
    }

    pub fn from_storage(text: &str) -> SecretRef {
        SecretRef::parse_source(text)
            .unwrap_or_else(|_| SecretRef::Sealed(SealedSecret(text.to_owned())))
    }

    /// What may be shown of it: the source, or a mask for a sealed value.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Sealed(_) => "******** (stored encrypted)".to_owned(),
            other => other.to_storage(),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Exchange Online's IMAP scope for app-only access.
pub const EXCHANGE_ONLINE_SCOPE: &str = "https://outlook.office365.com/.default";

/// The Entra ID token endpoint of a tenant.
pub fn entra_token_url(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
}

/// Why a token URL is refused: the client secret travels in the request
/// body, so it goes only over TLS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the token URL {0} is refused: the client secret is sent to it, so it must start with https:// \
     (plain http:// is accepted only for a loopback address such as 127.0.0.1, for tests)"
)]
pub struct TokenUrlError(pub String);

/// Checks that a token URL is `https://`, or `http://` to a loopback host
/// (127.0.0.0/8, `[::1]`, `localhost`).
pub fn check_token_url(url: &str) -> Result<(), TokenUrlError> {
    let url = url.trim();
    let refused = || TokenUrlError(url.to_owned());
    let (scheme, rest) = url.split_once("://").ok_or_else(refused)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(refused());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" => {
            let host = match authority.strip_prefix('[') {
                Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
                None => authority.split(':').next().unwrap_or_default(),
            };
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback { Ok(()) } else { Err(refused()) }
        }
        _ => Err(refused()),
    }
}

/// The OAuth2 half of a setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSetup {
    pub token_url: String,
    /// The Entra ID tenant the token URL was made from, if any.
    pub tenant: Option<String>,
    pub client_id: SecretRef,
    pub client_secret: SecretRef,
    pub scope: String,
}

/// A secret as stored: `v1:<key id>:<nonce>:<ciphertext>`, never the plain
/// value. Encryption lives outside the core; the core only carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(pub String);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret(..)")
    }
}

/// The one setup record of PRODUCT.md section 6 (connection and folders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSetup {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub auth: AuthKind,
    pub username: String,
    pub password: Option<SecretRef>,
    pub oauth: Option<OAuthSetup>,
    pub queue_folder: String,
    pub storage_folder: String,
    pub not_logged_folder: Option<String>,
    pub quarantine_folder: Option<String>,
    pub batch_size: u32,
    pub allow_plaintext: bool,
    /// A PEM file of extra certificate authorities, trusted in addition to
    /// `tls_trust`.
    pub ca_file: Option<String>,
    pub tls_trust: TlsTrust,
}

impl MailboxSetup {
    pub const DEFAULT_BATCH_SIZE: u32 = 100;

    /// The identity of the queue for the ledger and the lease: one worker per
    /// mailbox, and (mailbox, UIDVALIDITY, UID) names one copy.
    pub fn mailbox_key(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.username, self.host, self.port, self.queue_folder
        )
    }

    /// The names of the fields that differ from `before`, for the audit
    /// log: names only, never values (secrets among them).
    pub fn changed_fields(&self, before: &MailboxSetup) -> Vec<&'static str> {
        let oauth = |s: &MailboxSetup| {
            s.oauth
                .as_ref()
                .map(|o| (o.token_url.clone(), o.tenant.clone(), o.scope.clone()))
        };
        let secret = |s: &MailboxSetup| {
            s.oauth
                .as_ref()
                .map(|o| (o.client_id.to_storage(), o.client_secret.to_storage()))
        };
        [
            ("host", self.host != before.host),
            ("port", self.port != before.port),
            ("security", self.security != before.security),
            ("auth", self.auth != before.auth),
            ("user", self.username != before.username),
            (
                "password",
                self.password.as_ref().map(SecretRef::to_storage)
                    != before.password.as_ref().map(SecretRef::to_storage),
            ),
            ("oauth", oauth(self) != oauth(before)),
            ("oauth_client", secret(self) != secret(before)),
            ("queue", self.queue_folder != before.queue_folder),
            ("storage", self.storage_folder != before.storage_folder),
            (
                "not_logged_folder",
                self.not_logged_folder != before.not_logged_folder,
            ),
            (
                "quarantine_folder",
                self.quarantine_folder != before.quarantine_folder,
            ),
            ("batch_size", self.batch_size != before.batch_size),
            (
                "allow_plaintext",
                self.allow_plaintext != before.allow_plaintext,
            ),
            ("ca_file", self.ca_file != before.ca_file),
            ("trust", self.tls_trust != before.tls_trust),
        ]
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
    }
}

/// Why a kept secret may not go to a changed target: the fields of the
/// target that differ from those it was stored with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {} changed, and a stored secret is only ever sent to the server it was stored for: \
     give the password or client secret again (typed in, or as a source)",
    fields.join(", ")
)]
pub struct TargetChanged {
    pub fields: Vec<&'static str>,
}

/// Whether the secrets kept with `stored_with` (its password, OAuth2
/// client id and secret, sealed or as an `env:`/`file:`/`exec:` source)
/// may be used for `target`. They may only when everything that decides
/// where and how they are sent is unchanged: host, port, security mode
/// (with the plaintext allowance), TLS trust, CA file, user, and for
/// OAuth2 the token URL. Anything else (folders, batch size, scope) may
/// change and keep them. Every place that merges a form with a kept
/// secret asks this, so an admin session cannot point a stored secret at
/// a server of its choosing.
pub fn may_reuse_kept_secrets(
    stored_with: &MailboxSetup,
    target: &MailboxSetup,
) -> Result<(), TargetChanged> {
    let token_url = |s: &MailboxSetup| s.oauth.as_ref().map(|o| o.token_url.trim().to_owned());
    let fields: Vec<&'static str> = [
        (
            "host",
            !stored_with
                .host
                .trim()
                .eq_ignore_ascii_case(target.host.trim()),
        ),
        ("port", stored_with.port != target.port),
        (
            "security",
            stored_with.security != target.security
                || stored_with.allow_plaintext != target.allow_plaintext,
        ),
        ("trust", stored_with.tls_trust != target.tls_trust),
        ("CA file", stored_with.ca_file != target.ca_file),
        (
            "user",
            stored_with.username.trim() != target.username.trim(),
        ),
        (
            "token URL",
            stored_with.oauth.is_some()
                && target.oauth.is_some()
                && token_url(stored_with) != token_url(target),
        ),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(name, _)| name)
    .collect();
    if fields.is_empty() {
        Ok(())
    } else {
        Err(TargetChanged { fields })
    }
}

impl MailboxSetup {
    /// Drops the kept secrets: the password, and the whole OAuth2 half
    /// (its client id and secret cannot stand alone). What is left needs
    /// them given again before it can connect.
    pub fn forget_secrets(&mut self) {
        self.password = None;
        self.oauth = None;
    }
}

/// Which secret sources a web session may set, as the operator allowed
/// them on the server (`MAILSCRIBE_SECRET_DIRS`, `MAILSCRIBE_SECRET_ENV`):
/// none by default. Sources set from the CLI, and those stored before,
/// are not judged by this.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebSecretPolicy {
    /// Directories (absolute, symlinks resolved) whose regular files may
    /// be named by `file:`.
    pub dirs: Vec<String>,
    /// Variable names `env:` may name.
    pub env_names: Vec<String>,
}

/// Directories no secret file may live under: the kernel's views of
/// processes, devices and itself.
const FORBIDDEN_SECRET_DIRS: [&str; 3] = ["/proc", "/sys", "/dev"];

fn is_under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    !dir.is_empty()
        && (path == dir
            || path
                .strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/')))
}

impl WebSecretPolicy {
    /// Reads the two settings: `dirs` colon-separated, `env_names`
    /// comma-separated; empty parts are ignored. Relative directories and
    /// directories under /proc, /sys or /dev are left out.
    pub fn parse(dirs: Option<&str>, env_names: Option<&str>) -> WebSecretPolicy {
        let dirs = dirs
            .unwrap_or_default()
            .split(':')
            .map(|d| d.trim().trim_end_matches('/'))
            .filter(|d| d.starts_with('/') && !d.contains("/../") && !d.ends_with("/.."))
            .filter(|d| {
                !FORBIDDEN_SECRET_DIRS
                    .iter()
                    .any(|forbidden| is_under(d, forbidden))
            })
            .map(str::to_owned)
            .collect();
        let env_names = env_names
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        WebSecretPolicy { dirs, env_names }
    }

    /// Why a web session may not name the variable `name`, if it may not.
    pub fn refuse_env(&self, name: &str) -> Option<String> {
        if self.env_names.iter().any(|allowed| allowed == name) {
            return None;
        }
        Some(format!(
            "the variable {name} is not one the operator allowed for secrets set from the web: \
             add it to MAILSCRIBE_SECRET_ENV (comma-separated) on the server, or set the source with \
             `mailscribe mailbox configure` there"
        ))
    }

    /// Why a web session may not name the file whose path, with every
    /// symlink resolved, is `resolved`, if it may not. Whether it is a
    /// regular file is the caller's to check (that is I/O).
    pub fn refuse_file(&self, resolved: &str) -> Option<String> {
        if FORBIDDEN_SECRET_DIRS
            .iter()
            .any(|forbidden| is_under(resolved, forbidden))
        {
            return Some(format!(
                "{resolved} is under /proc, /sys or /dev, where no secret file may be"
            ));
        }
        if self
            .dirs
            .iter()
            .any(|dir| is_under(resolved, dir) && resolved != dir)
        {
            return None;
        }
        Some(format!(
            "{resolved} is not under a directory the operator allowed for secret files set from the web: \
             add its directory to MAILSCRIBE_SECRET_DIRS (colon-separated) on the server, or set the source \
             with `mailscribe mailbox configure` there"
        ))
    }
}

/// Whether logging is on, and who accepted the data statement when.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enablement {
    pub enabled: bool,
    pub accepted_by: Option<String>,
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    /// Keep ids, dates, subject, matched people and where the message lies.
    Reference,
    /// Also keep the raw message, compressed.
    Full,
}

impl StorageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageMode::Reference => "reference",
            StorageMode::Full => "full",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("unknown setting '{0}'; known settings: {known}", known = Settings::KEYS.join(", "))]
    UnknownKey(String),
    #[error("'{value}' is not a valid value for {key}: expected {expected}")]
    Invalid {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Operational settings, kept as key/value rows so that new ones need no
/// migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub interval_seconds: u32,
    pub time_zone: Tz,
    pub storage_mode: StorageMode,
    /// Skip messages marked Private, Personal or Company-Confidential.
    pub skip_sensitive: bool,
    pub max_attempts: u32,
    /// Days before ledger rows of not-logged messages are purged.
    pub not_logged_retention_days: u32,
    /// A web session unused this long ends (besides its absolute 12 hours).
    pub session_idle_minutes: u32,
    /// The template logged mail uses.
    pub email_template: String,
    /// Password sign-in on the web. Off: only single sign-on signs in; the
    /// CLI, which needs no sign-in, can always turn it on again.
    pub local_passwords: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            interval_seconds: 60,
            time_zone: Tz::UTC,
            storage_mode: StorageMode::Reference,
            skip_sensitive: true,
            max_attempts: 3,
            not_logged_retention_days: 90,
            session_idle_minutes: 30,
            email_template: InteractionTemplate::EMAIL.to_owned(),
            local_passwords: true,
        }
    }
}

impl Settings {
    pub const KEYS: [&'static str; 9] = [
        "interval",
        "time_zone",
        "storage_mode",
        "sensitivity_rule",
        "max_attempts",
        "not_logged_retention_days",
        "session_idle_minutes",
        "email_template",
        "local_passwords",
    ];

    /// Applies one `key = value` pair, validating the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingError> {
        let value = value.trim();
        let invalid = |key: &'static str, expected: &'static str| SettingError::Invalid {
            key,
            value: value.to_owned(),
            expected,
        };
        match key {
            "interval" => {
                self.interval_seconds = parse_duration_seconds(value).ok_or_else(|| {
                    invalid(
                        "interval",
                        "a number of seconds from 5 to 86400, like 60 or 5m",
                    )
                })?;
            }
            "time_zone" => {
                self.time_zone = value.parse::<Tz>().map_err(|_| {
                    invalid(
                        "time_zone",
                        "an IANA time zone name such as Europe/Helsinki or UTC",
                    )
                })?;
            }
            "storage_mode" => {
                self.storage_mode = match value {
                    "reference" => StorageMode::Reference,
                    "full" => StorageMode::Full,
                    _ => return Err(invalid("storage_mode", "reference or full")),
                };
            }
            "sensitivity_rule" => {
                self.skip_sensitive = match value {
                    "on" | "true" => true,
                    "off" | "false" => false,
                    _ => return Err(invalid("sensitivity_rule", "on or off")),
                };
            }
            "max_attempts" => {
                self.max_attempts = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| invalid("max_attempts", "a whole number from 1 to 100"))?;
            }
            "not_logged_retention_days" => {
                self.not_logged_retention_days = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=3650).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "not_logged_retention_days",
                            "a whole number of days from 1 to 3650",
                        )
                    })?;
            }
            "session_idle_minutes" => {
                self.session_idle_minutes = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=720).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "session_idle_minutes",
                            "a whole number of minutes from 1 to 720",
                        )
                    })?;
            }
            "email_template" => {
                let code = value.to_uppercase();
                if code.is_empty() || code.len() > 20 || code.contains(char::is_whitespace) {
                    return Err(invalid(
                        "email_template",
                        "a template code of 1 to 20 characters, without spaces",
                    ));
                }
                self.email_template = code;
            }
            "local_passwords" => {
                self.local_passwords = match value {
                    "on" | "true" => true,
                    "off" | "false" => false,
                    _ => return Err(invalid("local_passwords", "on or off")),
                };
            }
            other => return Err(SettingError::UnknownKey(other.to_owned())),
        }
        Ok(())
    }

    /// The settings as `key = value` pairs, in `KEYS` order.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("interval", self.interval_seconds.to_string()),
            ("time_zone", self.time_zone.name().to_owned()),
            ("storage_mode", self.storage_mode.as_str().to_owned()),
            (
                "sensitivity_rule",
                if self.skip_sensitive { "on" } else { "off" }.to_owned(),
            ),
            ("max_attempts", self.max_attempts.to_string()),
            (
                "not_logged_retention_days",
                self.not_logged_retention_days.to_string(),
            ),
            (
                "session_idle_minutes",
                self.session_idle_minutes.to_string(),
            ),
            ("email_template", self.email_template.clone()),
            (
                "local_passwords",
                if self.local_passwords { "on" } else { "off" }.to_owned(),
            ),
        ]
    }
}

fn parse_duration_seconds(value: &str) -> Option<u32> {
    let (digits, unit) = match value.strip_suffix('m') {
        Some(minutes) => (minutes, 60),
        None => (value.strip_suffix('s').unwrap_or(value), 1),
    };
    let seconds = digits.parse::<u32>().ok()?.checked_mul(unit)?;
    (5..=86_400).contains(&seconds).then_some(seconds)
}

/// What Mailscribe reads and what it keeps, as the admin accepts it before
/// logging is enabled. It differs between storage modes; the terminal and
/// the web app show this same text.
pub fn data_statement(mode: StorageMode) -> String {
    let kept = match mode {
        StorageMode::Reference => {
            "Mailscribe keeps only: the Message-ID, the dates, the subject, the matched salesperson and contact \
             numbers, and where the message lies in the storage folder. Message bodies and attachments stay on \
             the mail server; opening a logged message fetches it from there."
        }
        StorageMode::Full => {
            "Mailscribe keeps: the Message-ID, the dates, the subject, the matched salesperson and contact \
             numbers, where the message lies in the storage folder, AND A COMPRESSED COPY OF EVERY LOGGED \
             MESSAGE, bodies and attachments included (storage mode 'full')."
        }
    };
    format!(
        "Data statement\n\
         Mailscribe will read every message in the queue folder of the configured mailbox: its headers (sender, \
         To and Cc addresses, subject, dates, Message-ID, Sensitivity) and flags. It decides for each message \
         whether it is an exchange between a salesperson and a contact. Logged messages are moved to the \
         storage folder; other messages are removed from the queue (or moved to the configured folder).\n\
         {kept}\n\
         For every message seen, the decision ledger keeps when it was seen, the sender address, the outcome \
         and the reason, and the subject only for logged messages; rows of messages that were not logged are \
         purged after the retention period."
    )
}

/// An interaction template: what each entry it makes costs and lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionTemplate {
    pub code: String,
    pub description: String,
    pub cost: Amount,
    pub duration_minutes: u32,
    /// Business Central's interaction group, copied to each entry.
    pub interaction_group: Option<String>,
    /// A campaign the entries count toward, copied to each entry.
    pub campaign_no: Option<String>,
}

impl InteractionTemplate {
    /// The code migrations create and entries use unless configured.
    pub const EMAIL: &'static str = "EMAIL";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_reject() {
        let mut settings = Settings::default();
        for (key, value) in [
            ("interval", "5m"),
            ("time_zone", "Europe/Helsinki"),
            ("storage_mode", "full"),
            ("sensitivity_rule", "off"),
            ("max_attempts", "5"),
        ] {
            settings.set(key, value).unwrap();
        }
        let pairs = settings.pairs();
        assert_eq!(pairs[0], ("interval", "300".to_owned()));
        assert_eq!(pairs[1], ("time_zone", "Europe/Helsinki".to_owned()));
        assert_eq!(pairs[3], ("sensitivity_rule", "off".to_owned()));

        let mut reloaded = Settings::default();
        for (key, value) in &pairs {
            reloaded.set(key, value).unwrap();
        }
        assert_eq!(reloaded, settings);

        for (key, value) in [
            ("interval", "1"),
            ("time_zone", "Mars/Olympus"),
            ("storage_mode", "everything"),
            ("max_attempts", "0"),
        ] {
            assert!(
                matches!(settings.set(key, value), Err(SettingError::Invalid { .. })),
                "{key}={value}"
            );
        }
        assert!(matches!(
            settings.set("colour", "blue"),
            Err(SettingError::UnknownKey(_))
        ));
    }

    #[test]
    fn data_statement_says_what_each_mode_keeps() {
        let reference = data_statement(StorageMode::Reference);
        let full = data_statement(StorageMode::Full);
        assert!(reference.contains("stay on the mail server"), "{reference}");
        assert!(!reference.contains("COPY OF EVERY LOGGED MESSAGE"));
        assert!(full.contains("COPY OF EVERY LOGGED MESSAGE"), "{full}");
        for statement in [&reference, &full] {
            assert!(
                statement.contains("queue folder")
                    && statement.contains("purged after the retention period")
            );
        }
    }

    fn oauth_setup(token_url: &str) -> MailboxSetup {
        MailboxSetup {
            host: "imap.example.com".into(),
            port: 993,
            security: Security::Tls,
            auth: AuthKind::OAuth2,
            username: "queue".into(),
            password: None,
            oauth: Some(OAuthSetup {
                token_url: token_url.into(),
                tenant: None,
                client_id: SecretRef::Env("CID".into()),
                client_secret: SecretRef::Sealed(SealedSecret("v1:k:n:c".into())),
                scope: EXCHANGE_ONLINE_SCOPE.into(),
            }),
            queue_folder: "Queue".into(),
            storage_folder: "Storage".into(),
            not_logged_folder: None,
            quarantine_folder: None,
            batch_size: 100,
            allow_plaintext: false,
            ca_file: None,
            tls_trust: TlsTrust::Bundled,
        }
    }

    #[test]
    fn a_kept_secret_is_reused_only_for_the_target_it_was_stored_with() {
        let stored = oauth_setup("https://login.example.com/token");
        let same_place = MailboxSetup {
            queue_folder: "Other".into(),
            batch_size: 5,
            host: "IMAP.example.com".into(),
            ..stored.clone()
        };
        assert_eq!(may_reuse_kept_secrets(&stored, &same_place), Ok(()));
        type Change = (&'static str, fn(&mut MailboxSetup));
        let changes: [Change; 9] = [
            ("host", |s| s.host = "evil.example".into()),
            ("port", |s| s.port = 994),
            ("security", |s| s.security = Security::StartTls),
            ("security", |s| s.allow_plaintext = true),
            ("trust", |s| s.tls_trust = TlsTrust::System),
            ("CA file", |s| s.ca_file = Some("/tmp/ca.pem".into())),
            ("user", |s| s.username = "other".into()),
            ("token URL", |s| {
                s.oauth.as_mut().unwrap().token_url = "https://evil.example/token".into()
            }),
            ("token URL", |s| {
                s.oauth.as_mut().unwrap().token_url = "https://login.example.com/token?x".into()
            }),
        ];
        for (field, change) in changes {
            let mut target = stored.clone();
            change(&mut target);
            let refused = may_reuse_kept_secrets(&stored, &target).unwrap_err();
            assert_eq!(refused.fields, [field]);
            assert!(
                refused
                    .to_string()
                    .contains("give the password or client secret again"),
                "{refused}"
            );
        }
    }

    #[test]
    fn web_secret_sources_are_allowed_only_where_the_operator_said() {
        let none = WebSecretPolicy::parse(None, None);
        assert!(
            none.refuse_env("IMAP_PASSWORD").is_some()
                && none.refuse_file("/run/secrets/imap").is_some()
        );
        let policy = WebSecretPolicy::parse(
            Some("/run/secrets/:relative::/proc/self:/dev"),
            Some("IMAP_PASSWORD, CLIENT_SECRET,"),
        );
        assert_eq!(policy.dirs, ["/run/secrets"]);
        assert_eq!(policy.env_names, ["IMAP_PASSWORD", "CLIENT_SECRET"]);
        assert!(policy.refuse_env("IMAP_PASSWORD").is_none());
        assert!(
            policy
                .refuse_env("HOME")
                .unwrap()
                .contains("MAILSCRIBE_SECRET_ENV")
        );
        assert!(policy.refuse_file("/run/secrets/imap").is_none());
        assert!(policy.refuse_file("/run/secrets/nested/imap").is_none());
        for refused in [
            "/run/secrets",
            "/run/secretsX/imap",
            "/etc/shadow",
            "/proc/self/environ",
            "/dev/zero",
        ] {
            assert!(policy.refuse_file(refused).is_some(), "{refused}");
        }
        let rooted = WebSecretPolicy::parse(Some("/"), None);
        assert!(
            rooted.dirs.is_empty(),
            "the root directory is no allow-list"
        );
    }

    #[test]
    fn token_urls_are_https_except_on_loopback() {
        for (url, allowed) in [
            (
                "https://login.microsoftonline.com/t/oauth2/v2.0/token",
                true,
            ),
            ("HTTPS://idp.example/token", true),
            ("http://127.0.0.1:8080/token", true),
            ("http://127.9.9.9/token", true),
            ("http://[::1]:80/token", true),
            ("http://localhost/token", true),
            ("http://idp.example/token", false),
            ("http://127.0.0.1.evil.example/token", false),
            ("http://localhost@evil.example/token", false),
            ("ftp://idp.example/token", false),
            ("idp.example/token", false),
            ("https:///token", false),
        ] {
            assert_eq!(check_token_url(url).is_ok(), allowed, "{url}");
        }
    }

    #[test]
    fn commands_and_mailscribe_variables_are_refused_from_the_web() {
        for (source, allowed) in [
            ("env:IMAP_PASSWORD", true),
            ("file:/run/secrets/imap", true),
            ("exec:vault read x", false),
            ("env:MAILSCRIBE_SECRET_KEY", false),
            ("env:mailscribe_db", false),
        ] {
            let parsed = SecretRef::parse_source(source).unwrap();
            assert_eq!(parsed.refused_from_web().is_none(), allowed, "{source}");
        }
        assert_eq!("System".parse::<TlsTrust>().unwrap(), TlsTrust::System);
        assert!("anything".parse::<TlsTrust>().is_err());
    }
}
