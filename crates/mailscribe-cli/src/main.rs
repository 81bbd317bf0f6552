//! The `mailscribe` binary: argument parsing, wiring and exit codes.
//!
//! The command names, flags, output columns and exit codes are a contract
//! that scripts rely on (README.md lists them).

mod accounts;
mod allocator;
mod bc_import;
mod commands;
mod export;
mod logging;
mod secrets;
mod sso;
mod telemetry;
mod templates;
mod wizard;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes of the contract.
pub(crate) mod exit {
    pub(crate) const OTHER: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const DISABLED_OR_INCOMPLETE: u8 = 3;
    pub(crate) const LEASE_HELD: u8 = 4;
    pub(crate) const CONNECTION: u8 = 5;
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    pub(crate) fn new(code: u8, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            code: exit::OTHER,
            error: error.into(),
        }
    }
}

#[derive(Parser)]
#[command(
    name = "mailscribe",
    version = env!("MAILSCRIBE_VERSION"),
    about = "Logs the mail between salespeople and contacts from an IMAP queue folder"
)]
pub(crate) struct Cli {
    /// Database: sqlite://PATH, a file path, or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "MAILSCRIBE_DB",
        default_value = "./mailscribe.db"
    )]
    pub(crate) db: String,
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Log lines for people (text) or one JSON object per line (json).
    #[arg(
        long,
        global = true,
        env = "MAILSCRIBE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub(crate) log_format: logging::LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

// Parsed once per process: the size of its largest variant does not matter.
#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    /// Salespeople: import from CSV (code,name,email), list.
    Salespeople {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Contacts: import from CSV (no,name,email,company[,type]), list.
    Contacts {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// The IMAP mailbox to read.
    Mailbox {
        #[command(subcommand)]
        command: MailboxCommand,
    },
    /// Check the setup: one line per check, PASS, FAIL or SKIP with a hint.
    Check(MailboxArg),
    /// The assisted setup, step by step, in a terminal.
    Setup(MailboxArg),
    /// Operational settings.
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Interaction templates.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Campaigns that templates (and so entries) count toward.
    Campaign {
        #[command(subcommand)]
        command: CampaignCommand,
    },
    /// Turn logging on (after a passing check and accepting the data statement).
    Enable(EnableArgs),
    /// Turn logging off; scheduled runs idle.
    Disable(MailboxArg),
    /// Process the queue.
    Run(RunArgs),
    /// Run the queue every interval until stopped (Ctrl-C or SIGTERM).
    Serve(ServeArgs),
    /// Export the interaction log.
    Interactions {
        #[command(subcommand)]
        command: InteractionsCommand,
    },
    /// Export the decision ledger: one row per message seen.
    Decisions {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Export the audit log: sign-ins, account, token and setup changes, imports, deletions.
    Audit {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// People who use the web app and the API.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Stored secrets and their key.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Single sign-on with an OpenID Connect provider: configure, show, disable.
    Sso {
        #[command(subcommand)]
        command: sso::SsoCommand,
    },
    /// A consistent copy of a SQLite database (VACUUM INTO). Back up the
    /// key file with it. On PostgreSQL, use pg_dump.
    Backup {
        /// Where to write the copy; it must not exist yet.
        #[arg(long)]
        output: PathBuf,
    },
    /// Print a shell completion script: bash, zsh or fish.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the manual page (roff), for `man -l -` or /usr/local/share/man/man1.
    Man,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user: admin (setup and all data), user (all data) or salesperson (own entries only).
    Add {
        name: String,
        #[arg(long)]
        role: String,
        /// The salesperson code whose entries a salesperson account sees.
        #[arg(long)]
        salesperson: Option<String>,
        /// An environment variable holding the password.
        #[arg(long, value_name = "VAR")]
        password_env: String,
    },
    /// Every user, tab-separated: name, role, salesperson code, status, last sign-in.
    List,
    /// Set a user's password; their sessions end and their tokens are revoked.
    Passwd {
        name: String,
        #[arg(long, value_name = "VAR")]
        password_env: String,
    },
    /// Change a user's role; their sessions end and their tokens are revoked.
    SetRole {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        salesperson: Option<String>,
    },
    /// Lock a user out: sessions end and tokens are revoked at once.
    Disable { name: String },
    /// Let a disabled user sign in again (with no old session or token).
    Enable { name: String },
    /// Remove a user with their sessions and tokens.
    Remove { name: String },
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create an API token for a user; it is printed once, for `Authorization: Bearer`.
    Create {
        #[arg(long)]
        user: String,
        /// Days until it expires (default 90), or `never`.
        #[arg(long, value_name = "DAYS", default_value = "90")]
        expires_in: String,
    },
    /// Tokens, tab-separated: id, user, created, last used, expires (never the token).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id (from `token list`).
    Revoke { id: i64 },
}

#[derive(Subcommand)]
pub(crate) enum SecretsCommand {
    /// Seal every stored secret with a new key, then retire the old key.
    RotateKey,
}

#[derive(Subcommand)]
pub(crate) enum DirectoryCommand {
    /// Upsert from a CSV file; nothing is imported when a row is bad.
    /// Business Central's own list exports (English captions, ',' or ';')
    /// are read as well.
    Import {
        file: PathBuf,
        /// Only show what would be imported.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print everyone, one per line.
    List,
}

/// Which mailbox setup a command works on.
#[derive(Args, Clone)]
pub(crate) struct MailboxArg {
    /// The mailbox's name: ASCII letters, digits, '-' and '_' (default: default).
    #[arg(long, default_value = "default")]
    pub(crate) mailbox: String,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum MailboxCommand {
    /// Store the connection and folders (the password is stored encrypted).
    Configure(ConfigureArgs),
    /// Show the stored setup (the password is never shown).
    Show(MailboxArg),
    /// Remove the setup and its stored secrets (only while logging is
    /// disabled). Logged entries and people are kept.
    Clear(MailboxArg),
    /// Every mailbox, tab-separated: name, enabled, host, queue, last run,
    /// status, last error, next attempt.
    List,
}

#[derive(Args)]
pub(crate) struct ConfigureArgs {
    #[command(flatten)]
    pub(crate) mailbox: MailboxArg,
    #[arg(long)]
    pub(crate) host: String,
    /// Default: 993 with tls, 143 otherwise.
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// tls, starttls or none.
    #[arg(long, default_value = "tls")]
    pub(crate) security: String,
    /// The mailbox user (for OAuth2, the mailbox the app may open).
    #[arg(long)]
    pub(crate) user: String,
    /// basic (user and password) or oauth2 (client credentials, XOAUTH2).
    #[arg(long, default_value = "basic")]
    pub(crate) auth: String,
    /// The name of an environment variable holding the password; it is read once and stored encrypted.
    #[arg(long, value_name = "VAR")]
    pub(crate) password_env: Option<String>,
    /// Where to read the password at each run instead: env:NAME, file:PATH or exec:COMMAND.
    #[arg(long, value_name = "SOURCE")]
    pub(crate) password_from: Option<String>,
    /// OAuth2: the Entra ID tenant (id or domain); the token URL is made from it.
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// OAuth2: the token endpoint, for any OAuth2 server (instead of --tenant).
    #[arg(long, value_name = "URL")]
    pub(crate) token_url: Option<String>,
    /// OAuth2: the application (client) id, stored encrypted.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// OAuth2: where to read the client id at each run: env:NAME, file:PATH or exec:COMMAND.
    #[arg(long, value_name = "SOURCE")]
    pub(crate) client_id_from: Option<String>,
    /// OAuth2: an environment variable holding the client secret; read once, stored encrypted.
    #[arg(long, value_name = "VAR")]
    pub(crate) client_secret_env: Option<String>,
    /// OAuth2: where to read the client secret at each run: env:NAME, file:PATH or exec:COMMAND.
    #[arg(long, value_name = "SOURCE")]
    pub(crate) client_secret_from: Option<String>,
    /// OAuth2: the scope to ask for.
    #[arg(long, default_value = "https://outlook.office365.com/.default")]
    pub(crate) scope: String,
    /// The queue folder as you see it, e.g. "Public Folders/Email Logging/Queue".
    #[arg(long)]
    pub(crate) queue: String,
    /// Where logged messages are moved.
    #[arg(long)]
    pub(crate) storage: String,
    /// Move not-logged messages here instead of deleting them from the queue.
    #[arg(long)]
    pub(crate) not_logged_folder: Option<String>,
    /// Move messages that keep failing here after the maximum attempts.
    #[arg(long)]
    pub(crate) quarantine_folder: Option<String>,
    /// UIDs per FETCH and MOVE command.
    #[arg(long, default_value_t = 100)]
    pub(crate) batch_size: u32,
    /// Allow an unencrypted connection to a host that is not a loopback address.
    #[arg(long)]
    pub(crate) allow_plaintext: bool,
    /// PEM file with the CA certificate(s) of a private CA.
    #[arg(long, value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Which roots to trust besides --ca-file: `bundled` (Mozilla's, built
    /// in) or `system` (the operating system's store; SSL_CERT_FILE and
    /// SSL_CERT_DIR are honoured).
    #[arg(long, default_value = "bundled")]
    pub(crate) trust: String,
    /// This mailbox's sweep interval (seconds, or like 5m), instead of the
    /// global `interval` setting; `global` goes back to it.
    #[arg(long)]
    pub(crate) interval: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum SettingsCommand {
    /// Print every setting.
    Show,
    /// Change one setting: interval, time_zone, storage_mode, sensitivity_rule, max_attempts,
    /// not_logged_retention_days.
    Set { key: String, value: String },
}

#[derive(Subcommand)]
pub(crate) enum TemplateCommand {
    /// Create or change a template.
    Set {
        code: String,
        /// Cost per interaction, e.g. 2.50.
        #[arg(long)]
        cost: String,
        /// Duration per interaction in minutes.
        #[arg(long)]
        minutes: u32,
        #[arg(long)]
        description: Option<String>,
        /// The interaction group copied to each entry ("" clears it).
        #[arg(long)]
        group: Option<String>,
        /// The campaign the entries count toward ("" clears it).
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Every template, tab-separated: code, description, cost, minutes, group, campaign, in use.
    List,
    /// Remove a template (refused while logged mail uses it).
    Remove { code: String },
}

#[derive(Subcommand)]
pub(crate) enum CampaignCommand {
    /// Create or change a campaign.
    Set {
        no: String,
        #[arg(long)]
        description: String,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        starts: Option<String>,
        /// Last day, YYYY-MM-DD.
        #[arg(long)]
        ends: Option<String>,
    },
    /// Every campaign, tab-separated: no, description, starts, ends.
    List,
}

#[derive(Args)]
pub(crate) struct EnableArgs {
    #[command(flatten)]
    pub(crate) mailbox: MailboxArg,
    /// Accept the data statement without being asked (for scripts).
    #[arg(long)]
    pub(crate) accept_data_statement: bool,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Perform one run and exit (the only mode; `serve` runs on a schedule).
    #[arg(long)]
    pub(crate) once: bool,
    /// Handle at most this many messages in this run.
    #[arg(long)]
    pub(crate) max_per_run: Option<usize>,
    /// text or json.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: SummaryFormat,
    /// The mailbox to run (default: default).
    #[arg(long, conflicts_with = "all")]
    pub(crate) mailbox: Option<String>,
    /// Run every enabled mailbox, one after another.
    #[arg(long)]
    pub(crate) all: bool,
    /// When a `serve` holds the mailbox, ask it to run and wait this many
    /// seconds for its summary.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) wait: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SummaryFormat {
    Text,
    Json,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Handle at most this many messages per run.
    #[arg(long)]
    pub(crate) max_per_run: Option<usize>,
    /// Where the web app and the API listen.
    #[arg(long, env = "MAILSCRIBE_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// Accepted for compatibility and changes nothing: cookies are Secure
    /// (and named __Host-…) unless --insecure-cookies is given.
    #[arg(long)]
    pub(crate) secure_cookies: bool,
    /// Cookies without Secure and without the __Host- prefix, for users who
    /// reach Mailscribe over plain HTTP at an address other than 127.0.0.1
    /// or localhost (browsers accept Secure cookies from those over HTTP).
    #[arg(long, conflicts_with = "secure_cookies")]
    pub(crate) insecure_cookies: bool,
    /// A reverse proxy in front of Mailscribe (CIDR, such as 10.0.0.0/8, or
    /// one address; repeatable): from these peers only, the client address
    /// comes from X-Forwarded-For and the scheme from X-Forwarded-Proto.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub(crate) trusted_proxies: Vec<mailscribe_web::Cidr>,
    /// Also serve /metrics, /healthz and /readyz here, to any client (on the
    /// main listener /metrics answers loopback clients only).
    #[arg(long, env = "MAILSCRIBE_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
pub(crate) enum InteractionsCommand {
    /// Write every entry as CSV or JSON.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: export::Format,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Delete entries with their comments; a message record no entry uses
    /// any more goes too. The decision ledger keeps every decision.
    Delete {
        /// Canceled entries (with --before).
        #[arg(long, requires = "before")]
        canceled: bool,
        /// Entries that happened before this day (YYYY-MM-DD, in the configured time zone).
        #[arg(long, value_name = "DATE", requires = "canceled")]
        before: Option<String>,
        /// These entries, by number (repeatable).
        #[arg(long = "entry", value_name = "NO", conflicts_with = "canceled")]
        entries: Vec<i64>,
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Import an export of Business Central's Interaction Log Entries.
    /// Importing the same entries again adds nothing.
    ImportBc {
        file: PathBuf,
        /// How the export writes dates, e.g. %d.%m.%Y (default %Y-%m-%d).
        #[arg(long, value_name = "FORMAT")]
        date_format: Option<String>,
        /// Amounts are written like 1,50.
        #[arg(long)]
        decimal_comma: bool,
        /// Create contacts and salespeople the directory lacks, instead of refusing the file.
        #[arg(long)]
        create_missing: bool,
        /// Only say what would be imported.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ExportCommand {
    /// Write every row as CSV or JSON.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: export::Format,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

fn init_logging(verbose: u8, default: &str, format: logging::LogFormat) {
    let level = match verbose {
        0 => default,
        1 => "info",
        _ => "debug",
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},sqlx=warn")));
    // async-imap traces every command line, LOGIN and AUTHENTICATE included:
    // never let those through, whatever RUST_LOG says.
    for quiet in ["async_imap=off", "imap_proto=off"] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        logging::LogFormat::Text => builder.init(),
        logging::LogFormat::Json => builder
            .fmt_fields(logging::JsonFields)
            .event_format(logging::JsonLines)
            .init(),
    }
}

fn main() -> ExitCode {
    allocator::give_large_blocks_back();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    // What needs no database and no runtime.
    match &cli.command {
        Command::Completions { shell } => {
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "mailscribe",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            return match page.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: cannot write the manual page: {err}");
                    ExitCode::from(exit::OTHER)
                }
            };
        }
        _ => {}
    }
    let serving = matches!(cli.command, Command::Serve(_));
    init_logging(
        cli.verbose,
        if serving { "info" } else { "warn" },
        cli.log_format,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::OTHER);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
