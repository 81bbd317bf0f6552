//! Timing messages from their arrival in the queue until their entry is
//! listed by the API, shared by `idle-latency` and `soak`.
//!
//! Each timed message has a subject whose last word is unique. A
//! `Tracker` holds the messages not yet seen, each with the moment it
//! arrived (the end of its delivery or of its APPEND); each `check` asks
//! `GET /api/v1/interactions` for the newest page and moves every subject
//! it lists into the latencies. A message still missing after
//! `SEARCH_AFTER` is also looked for by its subject word, since the newest
//! page may have moved past it. A figure is therefore up to one poll
//! interval above the moment of the commit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::measure::percentile;
use crate::serve::request;

/// A message not yet in the newest page after this long is also looked
/// for by its subject word.
const SEARCH_AFTER: Duration = Duration::from_secs(5);

/// Messages in flight, and the latencies of those already listed.
pub(crate) struct Tracker {
    port: u16,
    bearer: String,
    page: usize,
    give_up: Duration,
    pending: HashMap<String, Instant>,
    /// Seconds from arrival to the first response that listed the entry.
    pub(crate) latencies: Vec<f64>,
    /// Responses other than 200, and bodies that did not parse.
    pub(crate) api_errors: u64,
}

impl Tracker {
    /// Asks the API of the `serve` on `port` with the bearer token
    /// `token`, `page` entries at a time; a message not listed within
    /// `give_up` ends the measurement with an error.
    pub(crate) fn new(port: u16, token: &str, page: usize, give_up: Duration) -> Tracker {
        Tracker {
            port,
            bearer: format!("Bearer {token}"),
            page,
            give_up,
            pending: HashMap::new(),
            latencies: Vec::new(),
            api_errors: 0,
        }
    }

    /// A message with this subject arrived in the queue at `arrived`.
    pub(crate) fn arrived(&mut self, subject: String, arrived: Instant) {
        self.pending.insert(subject, arrived);
    }

    pub(crate) fn n_pending(&self) -> usize {
        self.pending.len()
    }

    /// One poll of the API: moves what it lists from pending to the
    /// latencies. `serve_log` is shown when a message is given up on.
    pub(crate) fn check(&mut self, serve_log: impl Fn() -> String) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(subjects) = self.listed(&format!("/api/v1/interactions?limit={}", self.page))?
        else {
            return Ok(());
        };
        let seen_at = Instant::now();
        for subject in subjects {
            if let Some(arrived) = self.pending.remove(&subject) {
                self.latencies.push((seen_at - arrived).as_secs_f64());
            }
        }
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, arrived)| **arrived)
            .map(|(s, a)| (s.clone(), *a));
        if let Some((subject, arrived)) = oldest {
            if arrived.elapsed() > self.give_up {
                bail!(
                    "{subject:?} was not listed within {:?}; the serve log:\n{}",
                    self.give_up,
                    serve_log()
                );
            }
            if arrived.elapsed() > SEARCH_AFTER
                && self
                    .listed(&search_path(&subject))?
                    .is_some_and(|found| found.contains(&subject))
            {
                self.pending.remove(&subject);
                self.latencies.push(arrived.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    /// The subjects of the entries `GET path` lists; `None` (counted as an
    /// API error) when the answer is not a 200 with a page of items.
    fn listed(&mut self, path: &str) -> anyhow::Result<Option<Vec<String>>> {
        let (status, _, body) = request(
            self.port,
            "GET",
            path,
            &[("Authorization", &self.bearer)],
            "",
        )?;
        if status != 200 {
            self.api_errors += 1;
            eprintln!("   GET {path} answered {status}: {body}");
            return Ok(None);
        }
        let page: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("GET {path}: {body}"))?;
        let Some(items) = page["items"].as_array() else {
            self.api_errors += 1;
            eprintln!("   GET {path}: no items in {body}");
            return Ok(None);
        };
        Ok(Some(
            items
                .iter()
                .filter_map(|item| item["subject"].as_str().map(str::to_owned))
                .collect(),
        ))
    }
}

/// The API path that finds a message by the unique last word of its subject.
fn search_path(subject: &str) -> String {
    format!(
        "/api/v1/interactions?q={}",
        subject.rsplit(' ').next().unwrap_or_default()
    )
}

/// p50, p95, p99, max, min and mean of `latencies`, for the report.
pub(crate) fn summary(mut latencies: Vec<f64>) -> String {
    if latencies.is_empty() {
        return "no message timed".to_owned();
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    format!(
        "p50 {:.3} s, p95 {:.3} s, p99 {:.3} s, max {:.3} s (min {:.3} s, mean {mean:.3} s)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.first().copied().unwrap_or(f64::NAN),
    )
}
