//! Timing a child process and reading its peak memory.
//!
//! The benchmark re-runs itself as `mailscribe-bench measure CMD...`: that
//! helper has exactly one child, so `getrusage(RUSAGE_CHILDREN)` after the
//! wait is that child's peak resident set, not the benchmark's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use nix::sys::resource::{UsageWho, getrusage};

pub(crate) struct Measured {
    pub(crate) seconds: f64,
    pub(crate) max_rss_mb: f64,
    /// CPU time the child spent in user space and in the kernel.
    pub(crate) cpu_seconds: f64,
}

pub(crate) fn measure_child(args: &[String]) -> anyhow::Result<()> {
    let (program, rest) = args.split_first().context("measure: no command")?;
    let started = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .stdout(Stdio::null())
        .status()?;
    let seconds = started.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    // Linux reports ru_maxrss in kilobytes.
    let max_rss_kb = usage.max_rss();
    let cpu_seconds = timeval_seconds(usage.user_time()) + timeval_seconds(usage.system_time());
    println!(
        "{}",
        serde_json::json!({
            "seconds": seconds,
            "max_rss_kb": max_rss_kb,
            "cpu_seconds": cpu_seconds,
            "success": status.success(),
        })
    );
    Ok(())
}

/// CPU time (user and kernel) this process has used so far.
pub(crate) fn own_cpu_seconds() -> anyhow::Result<f64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    Ok(timeval_seconds(usage.user_time()) + timeval_seconds(usage.system_time()))
}

fn timeval_seconds(t: nix::sys::time::TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}

pub(crate) fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let here = std::env::current_exe()?;
    let path = here.parent().context("no parent directory")?.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p mailscribe-cli -p mailscribe-bench`",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `mailscribe ARGS` under the measuring helper. With `BENCH_WRAP`
/// set (for example to `valgrind --tool=callgrind`), `mailscribe` runs
/// under that command, split at spaces: for profiles, not for timings.
pub(crate) fn measure_mailscribe(
    env: &[(&str, String)],
    cwd: &Path,
    args: &[&str],
) -> anyhow::Result<Measured> {
    let wrap = std::env::var("BENCH_WRAP").unwrap_or_default();
    let output = Command::new(std::env::current_exe()?)
        .arg("measure")
        .args(wrap.split_whitespace())
        .arg(sibling_binary("mailscribe")?)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(cwd)
        .output()?;
    if std::env::var_os("BENCH_LOG").is_some() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value = serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "measure output {text:?} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    if value["success"] != true {
        bail!(
            "mailscribe {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Measured {
        seconds: value["seconds"].as_f64().unwrap_or(f64::NAN),
        max_rss_mb: value["max_rss_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        cpu_seconds: value["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
    })
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs `bench` on a throwaway SQLite store, then on a throwaway
/// PostgreSQL one, with the backend's name for the report.
pub(crate) async fn on_sqlite_and_postgres(
    bench: impl AsyncFn(&mailscribe_store::Store, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for (database, backend) in [
        (mailscribe_testkit::TestDatabase::sqlite(), "SQLite"),
        (
            mailscribe_testkit::TestDatabase::postgres().await,
            "PostgreSQL",
        ),
    ] {
        let store = mailscribe_store::Store::open(&database.url().parse()?).await?;
        bench(&store, backend).await?;
        store.close().await;
    }
    Ok(())
}
