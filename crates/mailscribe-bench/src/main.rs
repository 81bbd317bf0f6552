//! `mailscribe-bench`: benchmarks that print numbers. Never part of the
//! test command.
//!
//! - `queue`: 10,000 messages in a Dovecot queue; `mailscribe run --once`
//!   on SQLite against a bare-protocol baseline (UID FETCH, parse, UID MOVE,
//!   same batch size, no database); median of three (`BENCH_REPEAT=N` for
//!   more); peak memory. On two
//!   setups: maildir over TLS, and sdbox without TLS over loopback
//!   (`--setup maildir-tls|sdbox-plain` picks one).
//! - `large-message`: the peak memory one 30 MB message adds to a run.
//! - `lookups`: address lookups in a directory of 1,000,000 addresses.
//! - `log`: the first page of the interaction log with 1,000,000 entries.
//! - `serve-memory`: the memory of `mailscribe serve` while it serves pages.
//! - `idle-latency`: from a delivery into the queue until the entry is
//!   listed by the API, while `serve` idles on the queue (SQLite, then
//!   PostgreSQL).
//! - `soak`: APPENDs real-looking messages at a steady rate into the queue
//!   while `serve` works it (`--minutes N --rate R`, default 30 and 50 a
//!   second); latency from APPEND to entry, memory and open files every
//!   minute, every error.
//! - `takeover`: from SIGKILL of the instance holding a mailbox until the
//!   other instance commits, with the production lease timings (PostgreSQL).
//! - `multi-instance`: three instances on six mailboxes against one
//!   instance on one mailbox, same messages (PostgreSQL).
//! - `signin-flood`: a real user's sign-in time while 2,000 failed sign-ins
//!   come from many loopback addresses; the server's peak CPU and memory.
//!
//! `idle-latency` and `takeover` wait out real time by design (a steady
//! delivery rate, the lease's time to live), about nine and five minutes
//! with the defaults, so `all` leaves them out.
//!
//! Build with `cargo build --release -p mailscribe-cli -p mailscribe-bench`;
//! the benchmark runs `target/release/mailscribe` from beside itself.

mod flood;
mod idle;
mod install;
mod instances;
mod latency;
mod log;
mod lookups;
mod measure;
mod messages;
mod queue;
mod serve;
mod serve_process;
mod soak;
mod takeover;

use anyhow::bail;

/// The number after `flag`, if the flag is given.
fn number<T: std::str::FromStr>(args: &[String], flag: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match args.iter().position(|a| a == flag).map(|i| args.get(i + 1)) {
        None => Ok(None),
        Some(Some(n)) => Ok(Some(n.parse()?)),
        Some(None) => bail!("{flag} needs a number"),
    }
}

const USAGE: &str = "usage: mailscribe-bench all|queue|large-message|lookups|log|serve-memory|idle-latency|soak|takeover|multi-instance|signin-flood \
     [--messages N] [--rounds N] [--minutes N] [--rate R] [--setup maildir-tls|sdbox-plain] [--attempts N]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        bail!(USAGE);
    };
    if command == "--help" || command == "-h" {
        println!("{USAGE}");
        return Ok(());
    }
    if command == "measure" {
        return measure::measure_child(&args[1..]);
    }
    let messages: Option<u32> = number(&args, "--messages")?;
    let rounds: Option<usize> = number(&args, "--rounds")?;
    let minutes: Option<u32> = number(&args, "--minutes")?;
    let rate: Option<u32> = number(&args, "--rate")?;
    let setups = match args
        .iter()
        .position(|a| a == "--setup")
        .map(|i| args.get(i + 1))
    {
        None => queue::Setup::ALL.to_vec(),
        Some(Some(name)) => vec![queue::Setup::parse(name)?],
        Some(None) => bail!("--setup needs maildir-tls or sdbox-plain"),
    };
    let attempts: Option<usize> = number(&args, "--attempts")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command.as_str() {
            "queue" => queue::queue(messages.unwrap_or(10_000), &setups).await,
            "large-message" => queue::large_message().await,
            "lookups" => lookups::lookups().await,
            "log" => log::log().await,
            "serve-memory" => serve::serve_memory(rounds.unwrap_or(serve::DEFAULT_ROUNDS)).await,
            "idle-latency" => idle::idle_latency(messages.unwrap_or(idle::DEFAULT_MESSAGES)).await,
            "soak" => {
                soak::soak(
                    minutes.unwrap_or(soak::DEFAULT_MINUTES),
                    rate.unwrap_or(soak::DEFAULT_RATE),
                )
                .await
            }
            "takeover" => takeover::takeover(rounds.unwrap_or(takeover::DEFAULT_ROUNDS)).await,
            "multi-instance" => {
                instances::multi_instance(messages.unwrap_or(instances::DEFAULT_MESSAGES)).await
            }
            "signin-flood" => {
                flood::signin_flood(attempts.unwrap_or(flood::DEFAULT_ATTEMPTS)).await
            }
            "all" => {
                queue::queue(messages.unwrap_or(10_000), &setups).await?;
                queue::large_message().await?;
                lookups::lookups().await?;
                log::log().await?;
                serve::serve_memory(rounds.unwrap_or(serve::DEFAULT_ROUNDS)).await?;
                instances::multi_instance(instances::DEFAULT_MESSAGES).await
            }
            other => bail!("unknown benchmark {other}"),
        }
    })
}
