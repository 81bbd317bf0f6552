//! The process's Prometheus recorder, installed by `serve`, and the usual
//! process metrics, read from `/proc` at each scrape.

use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder and returns what renders `/metrics`.
pub(crate) fn install() -> anyhow::Result<mailscribe_web::MetricsRenderer> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(mailscribe_worker::metrics::RUN_DURATION.to_owned()),
            mailscribe_worker::metrics::RUN_DURATION_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(mailscribe_web::operations::HTTP_DURATION.to_owned()),
                HTTP_BUCKETS,
            )
        })
        .context("cannot configure the metrics")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    mailscribe_worker::metrics::describe();
    mailscribe_web::describe_metrics();
    metrics::describe_gauge!(
        "process_resident_memory_bytes",
        metrics::Unit::Bytes,
        "Resident memory size"
    );
    metrics::describe_gauge!("process_open_fds", "Open file descriptors");
    metrics::describe_gauge!(
        "process_start_time_seconds",
        metrics::Unit::Seconds,
        "When the process started (Unix time)"
    );
    let started = chrono::Utc::now().timestamp() as f64;
    Ok(Arc::new(move || {
        if let Some(bytes) = resident_bytes() {
            metrics::gauge!("process_resident_memory_bytes").set(bytes as f64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            metrics::gauge!("process_open_fds").set(fds.count() as f64);
        }
        metrics::gauge!("process_start_time_seconds").set(started);
        handle.run_upkeep();
        handle.render()
    }))
}

/// VmRSS from `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}
