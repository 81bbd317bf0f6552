//! The queue benchmark and the large-message memory benchmark.
//!
//! The queue benchmark runs on two setups of Dovecot: maildir over
//! implicit TLS (the common production shape, where the protocol itself is
//! slow and Mailscribe's overhead hides), and sdbox without TLS over
//! loopback (the fastest server path, where Mailscribe's own costs show).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mailscribe_core::parse_message;
use mailscribe_mail::{ConnectionConfig, Credentials, Security, Session, plan_batches};
use mailscribe_testkit::{Dovecot, DovecotOptions, QUEUE, STORAGE};
use secrecy::SecretString;

use crate::install::{self, Env, MailboxFolders, Transport};
use crate::measure::{measure_mailscribe, median};
use crate::messages::{self, Lcg};

/// A Dovecot mail storage and how Mailscribe reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    MaildirTls,
    SdboxPlain,
}

impl Setup {
    pub(crate) const ALL: [Setup; 2] = [Setup::MaildirTls, Setup::SdboxPlain];

    pub(crate) fn parse(text: &str) -> anyhow::Result<Setup> {
        match text {
            "maildir-tls" => Ok(Setup::MaildirTls),
            "sdbox-plain" => Ok(Setup::SdboxPlain),
            other => bail!("unknown setup {other}: maildir-tls or sdbox-plain"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Setup::MaildirTls => "Dovecot maildir over implicit TLS",
            Setup::SdboxPlain => "Dovecot sdbox without TLS over loopback",
        }
    }

    fn transport(self) -> Transport {
        match self {
            Setup::MaildirTls => Transport::Tls,
            Setup::SdboxPlain => Transport::Plain,
        }
    }
}

pub(crate) fn connection(dovecot: &Dovecot, transport: Transport) -> ConnectionConfig {
    let (port, security) = match transport {
        Transport::Tls => (dovecot.imaps_port, Security::Tls),
        Transport::Plain => (dovecot.imap_port, Security::None),
    };
    ConnectionConfig {
        host: "127.0.0.1".into(),
        port,
        security,
        allow_plaintext: false,
        ca_file: Some(dovecot.ca_file()),
        trust: mailscribe_mail::TlsTrust::Bundled,
        credentials: Credentials::Basic {
            username: dovecot.user().into(),
            password: SecretString::from(dovecot.password()),
        },
        timeout: Duration::from_secs(120),
        ignore_capabilities: Vec::new(),
    }
}

/// A Dovecot for `setup` with `messages` in the queue: written straight
/// into the maildir, or appended over IMAP to sdbox (which has no format
/// a file copy could fake).
async fn filled_dovecot(setup: Setup, messages: &[Vec<u8>]) -> anyhow::Result<Dovecot> {
    match setup {
        Setup::MaildirTls => {
            let dovecot = Dovecot::start();
            for raw in messages {
                dovecot.deliver(QUEUE, raw, None, false);
            }
            Ok(dovecot)
        }
        Setup::SdboxPlain => {
            let dovecot = Dovecot::start_with(DovecotOptions {
                public_format: "sdbox",
                ..DovecotOptions::default()
            });
            let mut session = Session::connect(&connection(&dovecot, Transport::Plain)).await?;
            let queue = session.resolve_folder(QUEUE).await?;
            for raw in messages {
                session.append(&queue, raw, None).await?;
            }
            session.logout().await;
            Ok(dovecot)
        }
    }
}

/// The protocol alone: what any client must do to empty the queue.
/// Returns its wall time and the CPU time this process spent meanwhile
/// (nothing else runs in it then).
async fn baseline(setup: Setup, messages: &[Vec<u8>]) -> anyhow::Result<(f64, f64)> {
    let dovecot = filled_dovecot(setup, messages).await?;
    let cpu_before = crate::measure::own_cpu_seconds()?;
    let started = Instant::now();
    let mut session = Session::connect(&connection(&dovecot, setup.transport())).await?;
    let queue = session.resolve_folder(QUEUE).await?;
    let storage = session.resolve_folder(STORAGE).await?;
    let selected = session.select(&queue).await?;
    let listing = session.list_messages(selected).await?;
    let (mut fetch_t, mut parse_t, mut move_t) = (0.0, 0.0, 0.0);
    for batch in plan_batches(&listing, install::batch_size()? as usize, 16 * 1024 * 1024) {
        let uids: Vec<u32> = batch.iter().map(|m| m.uid).collect();
        let t = Instant::now();
        let fetched = session.fetch(&uids).await?;
        fetch_t += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let parsed = tokio::task::spawn_blocking(move || {
            fetched
                .iter()
                .filter_map(|m| m.raw.as_deref().map(parse_message))
                .count()
        })
        .await?;
        if parsed != uids.len() {
            bail!("baseline fetched {parsed} of {} messages", uids.len());
        }
        parse_t += t.elapsed().as_secs_f64();
        let t = Instant::now();
        session.move_messages(&uids, &storage).await?;
        move_t += t.elapsed().as_secs_f64();
    }
    if std::env::var_os("BENCH_LOG").is_some() {
        eprintln!(
            "baseline phases: fetch {fetch_t:.3} s, parse {parse_t:.3} s, move {move_t:.3} s"
        );
    }
    session.logout().await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = crate::measure::own_cpu_seconds()? - cpu_before;
    if dovecot.count(QUEUE) != 0 {
        bail!("the baseline left messages in the queue");
    }
    Ok((seconds, cpu_seconds))
}

/// A configured, enabled installation in `dir` on SQLite, pointing at
/// `dovecot` over `transport`.
fn install_sqlite(
    dir: &Path,
    dovecot: &Dovecot,
    transport: Transport,
    extra_settings: &[(&str, &str)],
) -> anyhow::Result<Env> {
    install::install_with(
        dir,
        &install::sqlite_url(dir),
        dovecot,
        transport,
        &[MailboxFolders::default_mailbox()],
        extra_settings,
    )
}

/// How many times the queue benchmark runs each side: `BENCH_REPEAT` (1 to
/// 50), else 3. On a machine shared with other work the times vary by a
/// tenth from run to run; more repetitions steady the medians.
fn repetitions() -> anyhow::Result<u32> {
    match std::env::var("BENCH_REPEAT") {
        Err(_) => Ok(3),
        Ok(text) => match text.parse::<u32>() {
            Ok(count @ 1..=50) => Ok(count),
            _ => bail!("BENCH_REPEAT={text:?}: give a whole number from 1 to 50"),
        },
    }
}

/// The queue benchmark on each of `setups`.
pub(crate) async fn queue(count: u32, setups: &[Setup]) -> anyhow::Result<()> {
    let mut rng = Lcg(42);
    let mix: Vec<Vec<u8>> = (1..=count)
        .map(|n| messages::message(n, &mut rng))
        .collect();
    for setup in setups {
        queue_on(*setup, &mix).await?;
    }
    Ok(())
}

async fn queue_on(setup: Setup, mix: &[Vec<u8>]) -> anyhow::Result<()> {
    let count = u32::try_from(mix.len())?;
    let bytes: usize = mix.iter().map(Vec::len).sum();
    println!(
        "== queue: {count} messages, {:.1} MB, batch size {}, {}, SQLite",
        bytes as f64 / 1e6,
        install::batch_size()?,
        setup.describe()
    );
    println!("   mix: {}", messages::MIX);
    let (mut baseline_times, mut run_times, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for repetition in 1..=repetitions()? {
        let (baseline_seconds, baseline_cpu) = baseline(setup, mix).await?;
        let dovecot = filled_dovecot(setup, mix).await?;
        let dir = tempfile::tempdir()?;
        let env = install_sqlite(dir.path(), &dovecot, setup.transport(), &[])?;
        let run = measure_mailscribe(&env, dir.path(), &["run", "--once"])?;
        if dovecot.count(QUEUE) != 0 {
            bail!("mailscribe left messages in the queue");
        }
        println!(
            "   run {repetition}: baseline {baseline_seconds:.2} s ({:.0} msg/s, CPU {baseline_cpu:.2} s); mailscribe run --once {:.2} s ({:.0} msg/s, CPU {:.2} s), peak RSS {:.1} MB",
            f64::from(count) / baseline_seconds,
            run.seconds,
            f64::from(count) / run.seconds,
            run.cpu_seconds,
            run.max_rss_mb
        );
        baseline_times.push(baseline_seconds);
        run_times.push(run.seconds);
        peaks.push(run.max_rss_mb);
    }
    let (baseline_median, run_median) = (median(&mut baseline_times), median(&mut run_times));
    let peak = peaks.iter().copied().fold(0.0, f64::max);
    println!(
        "   {}: median baseline {baseline_median:.2} s ({:.0} msg/s), mailscribe {run_median:.2} s ({:.0} msg/s); \
         ratio {:.2} (goal >= 0.9); peak RSS {peak:.1} MB (goal < 100 MB)",
        setup.describe(),
        f64::from(count) / baseline_median,
        f64::from(count) / run_median,
        baseline_median / run_median
    );
    Ok(())
}

pub(crate) async fn large_message() -> anyhow::Result<()> {
    println!("== large message: one 30 MB message against an idle run");
    for mode in ["reference", "full"] {
        let dovecot = Dovecot::start();
        let dir = tempfile::tempdir()?;
        let env = install_sqlite(
            dir.path(),
            &dovecot,
            Transport::Tls,
            &[("storage_mode", mode)],
        )?;
        let idle = measure_mailscribe(&env, dir.path(), &["run", "--once"]).context("idle run")?;
        dovecot.deliver(QUEUE, &messages::large_message(30), None, false);
        let large =
            measure_mailscribe(&env, dir.path(), &["run", "--once"]).context("large run")?;
        if dovecot.count(STORAGE) != 1 {
            bail!("the large message was not logged");
        }
        println!(
            "   storage_mode {mode}: idle run peak {:.1} MB, with the 30 MB message {:.1} MB: +{:.1} MB (goal <= 100 MB), {:.2} s",
            idle.max_rss_mb,
            large.max_rss_mb,
            large.max_rss_mb - idle.max_rss_mb,
            large.seconds
        );
    }
    Ok(())
}
