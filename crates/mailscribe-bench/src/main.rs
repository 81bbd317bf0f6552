//! `mailscribe-bench`: benchmarks that print numbers. Never part of the
//! test command.
//!
//! - `queue`: 10,000 messages in a Dovecot queue; `mailscribe run --once`
//!   on SQLite against a bare-protocol baseline (UID FETCH, parse, UID MOVE,
//!   same batch size, no database); median of three; peak memory.
//! - `large-message`: the peak memory one 30 MB message adds to a run.
//! - `lookups`: address lookups in a directory of 1,000,000 addresses.
//! - `log`: the first page of the interaction log with 1,000,000 entries.
//! - `serve-memory`: the memory of `mailscribe serve` while it serves pages.
//!
//! Build with `cargo build --release -p mailscribe-cli -p mailscribe-bench`;
//! the benchmark runs `target/release/mailscribe` from beside itself.

mod log;
mod lookups;
mod measure;
mod messages;
mod queue;
mod serve;

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

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        bail!("usage: mailscribe-bench all|queue|large-message|lookups|log|serve-memory [--messages N] [--rounds N]");
    };
    if command == "measure" {
        return measure::measure_child(&args[1..]);
    }
    let messages: u32 = number(&args, "--messages")?.unwrap_or(10_000);
    let rounds: usize = number(&args, "--rounds")?.unwrap_or(serve::DEFAULT_ROUNDS);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        match command.as_str() {
            "queue" => queue::queue(messages).await,
            "large-message" => queue::large_message().await,
            "lookups" => lookups::lookups().await,
            "log" => log::log().await,
            "serve-memory" => serve::serve_memory(rounds).await,
            "all" => {
                queue::queue(messages).await?;
                queue::large_message().await?;
                lookups::lookups().await?;
                log::log().await?;
                serve::serve_memory(rounds).await
            }
            other => bail!("unknown benchmark {other}"),
        }
    })
}
