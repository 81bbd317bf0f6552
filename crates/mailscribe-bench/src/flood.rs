//! `signin-flood`: whether sign-in stays usable while a flood of guesses
//! comes from many addresses.
//!
//! A release `mailscribe serve` on a SQLite store with one user, added with
//! `mailscribe user add` (so the password rule applies). The user signs in
//! once before the flood, so that the pair (127.0.0.1, name) is known to
//! the throttle, as it would be for someone who uses Mailscribe every day.
//! Then, at the same time:
//!
//! - the flood: `--attempts` (default 2,000) sign-ins with a wrong password
//!   and rotating user names (every tenth one the real user's name), each on
//!   a new connection from the next source address in 127.0.0.2 ..
//!   127.0.7.255 (all of 127/8 is loopback on Linux), 32 in flight, each
//!   sent as soon as a slot is free;
//! - the real user: from 127.0.0.1, once a second until the flood is done,
//!   `GET /login` and then `POST /login` with the right password.
//!
//! It reports the real user's sign-in times (the POST alone, and the page
//! and the POST together) and how many of its attempts got 429, the flood's
//! answers by status, and the server's peak CPU (utime + stime from
//! /proc/PID/stat every 250 ms, as % of one core) and peak memory (VmHWM,
//! and the highest VmRSS sampled).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::install::{Env, mailscribe, sqlite_url};
use crate::measure::percentile;
use crate::serve_process::ServeProcess;

pub(crate) const DEFAULT_ATTEMPTS: usize = 2_000;
const IN_FLIGHT: usize = 32;
const USER: &str = "rosa";
/// At least 12 characters and not a common password.
const PASSWORD: &str = "quartz-lantern-7-meadow";
const CSRF_COOKIE: &str = "__Host-mailscribe_login_csrf";
const SESSION_COOKIE: &str = "__Host-mailscribe_session";
/// Source addresses of the flood: 127.0.0.2 .. 127.0.7.255.
const FIRST_SOURCE: u32 = u32::from_be_bytes([127, 0, 0, 2]);
const SOURCES: u32 = u32::from_be_bytes([127, 0, 7, 255]) - FIRST_SOURCE + 1;
const REAL_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Linux's USER_HZ, the unit of utime and stime in /proc/PID/stat; 100 on
/// every architecture the project builds for.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// An HTTP response: status, head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request on a new connection from `source`.
async fn request(
    source: Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<Answer> {
    let exchange = async {
        let socket = TcpSocket::new_v4()?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .with_context(|| format!("bind {source}"))?;
        let mut stream = socket
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await?;
        let mut text = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(body);
        stream.write_all(text.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status line")?;
        anyhow::Ok(Answer {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .context("no answer within 30 s")?
}

fn cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
}

fn csrf(body: &str) -> Option<String> {
    let start = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    body[start..].split('"').next().map(str::to_owned)
}

/// The sign-in form's token, as its page hands it out: (cookie, field).
async fn login_form(source: Ipv4Addr, port: u16) -> anyhow::Result<(String, String)> {
    let page = request(source, port, "GET", "/login", &[], "").await?;
    if page.status != 200 {
        bail!("GET /login answered {}", page.status);
    }
    Ok((
        cookie(&page.head, CSRF_COOKIE).context("no sign-in cookie")?,
        csrf(&page.body).context("no csrf field")?,
    ))
}

async fn post_login(
    source: Ipv4Addr,
    port: u16,
    (cookie, field): &(String, String),
    name: &str,
    password: &str,
) -> anyhow::Result<Answer> {
    let cookie = format!("{CSRF_COOKIE}={cookie}");
    let form = format!("name={name}&password={password}&csrf={field}");
    request(
        source,
        port,
        "POST",
        "/login",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    )
    .await
}

/// One sign-in of the real user: (status of the POST, seconds of the POST,
/// seconds of the page and the POST).
async fn real_sign_in(port: u16) -> anyhow::Result<(u16, f64, f64)> {
    let started = Instant::now();
    let form = login_form(REAL_SOURCE, port).await?;
    let posted = Instant::now();
    let answer = post_login(REAL_SOURCE, port, &form, USER, PASSWORD).await?;
    let post = posted.elapsed().as_secs_f64();
    if answer.status == 303 && cookie(&answer.head, SESSION_COOKIE).is_none() {
        bail!("a sign-in answered 303 without a session cookie");
    }
    Ok((answer.status, post, started.elapsed().as_secs_f64()))
}

/// The n-th address of the flood.
fn flood_source(attempt: usize) -> Ipv4Addr {
    Ipv4Addr::from(FIRST_SOURCE + (attempt as u32 % SOURCES))
}

fn flood_name(attempt: usize) -> String {
    if attempt.is_multiple_of(10) {
        USER.to_owned()
    } else {
        format!("guess{}", attempt % 97)
    }
}

/// The server's CPU time so far (utime + stime), in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which ends with the last ')': state is
    // field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("no command name in stat")?
        .1
        .split_whitespace()
        .collect();
    let field =
        |n: usize| -> anyhow::Result<u64> { Ok(fields.get(n - 3).context("short stat")?.parse()?) };
    Ok(field(14)? + field(15)?)
}

fn status_kb(pid: u32, key: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {key} in status"))
}

#[derive(Default)]
struct Usage {
    peak_cpu_percent: f64,
    mean_cpu_percent: f64,
    peak_rss_kb: f64,
}

/// Samples the server every 250 ms until `done`.
async fn sample(pid: u32, done: Arc<AtomicBool>) -> anyhow::Result<Usage> {
    let mut usage = Usage::default();
    let first = (Instant::now(), cpu_ticks(pid)?);
    let mut last = first;
    let mut interval = tokio::time::interval(SAMPLE_EVERY);
    interval.tick().await;
    while !done.load(Ordering::Relaxed) {
        interval.tick().await;
        let now = (Instant::now(), cpu_ticks(pid)?);
        let percent = |from: (Instant, u64)| {
            (now.1 - from.1) as f64
                / CLOCK_TICKS_PER_SECOND
                / now.0.duration_since(from.0).as_secs_f64()
                * 100.0
        };
        usage.peak_cpu_percent = usage.peak_cpu_percent.max(percent(last));
        usage.mean_cpu_percent = percent(first);
        usage.peak_rss_kb = usage.peak_rss_kb.max(status_kb(pid, "VmRSS:")?);
        last = now;
    }
    Ok(usage)
}

fn describe(seconds: &mut [f64]) -> String {
    if seconds.is_empty() {
        return "no samples".into();
    }
    seconds.sort_by(|a, b| a.total_cmp(b));
    format!(
        "p50 {:.3} s, p95 {:.3} s, max {:.3} s",
        percentile(seconds, 0.5),
        percentile(seconds, 0.95),
        seconds[seconds.len() - 1]
    )
}

pub(crate) async fn signin_flood(attempts: usize) -> anyhow::Result<()> {
    println!(
        "== sign-in flood: {attempts} failed sign-ins from 127.0.0.2 .. 127.0.7.255, {IN_FLIGHT} in flight, \
         while a real user signs in once a second from 127.0.0.1"
    );
    let dir = tempfile::tempdir()?;
    let env: Env = vec![
        ("MAILSCRIBE_DB", sqlite_url(dir.path())),
        (
            "MAILSCRIBE_KEY_FILE",
            dir.path().join("mailscribe.key").display().to_string(),
        ),
        ("FLOOD_PASSWORD", PASSWORD.to_owned()),
    ];
    mailscribe(
        &env,
        dir.path(),
        &[
            "user",
            "add",
            USER,
            "--role",
            "user",
            "--password-env",
            "FLOOD_PASSWORD",
        ],
    )?;
    let server = ServeProcess::start(&env, dir.path(), "flood", None)?;
    server.wait_healthy(Duration::from_secs(30))?;
    let port = server.port;
    let pid = server.pid();

    // Before the flood: the user is known to the throttle after this, and
    // these are the quiet times to compare with.
    let mut quiet = Vec::new();
    for _ in 0..5 {
        let (status, post, _) = real_sign_in(port).await?;
        if status != 303 {
            bail!("the real user's sign-in before the flood answered {status}");
        }
        quiet.push(post);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let rss_before_kb = status_kb(pid, "VmRSS:")?;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample(pid, done.clone()));

    // The flood takes one sign-in form and sends its token with every guess,
    // as a script would.
    let form = Arc::new(login_form(flood_source(0), port).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (next, form) = (next.clone(), form.clone());
        workers.push(tokio::spawn(async move {
            let mut answers: BTreeMap<String, usize> = BTreeMap::new();
            let mut errors = Vec::new();
            loop {
                let attempt = next.fetch_add(1, Ordering::Relaxed);
                if attempt >= attempts {
                    break;
                }
                let key = match post_login(
                    flood_source(attempt),
                    port,
                    &form,
                    &flood_name(attempt),
                    "not-the-password-1",
                )
                .await
                {
                    Ok(answer)
                        if answer.status == 401 && answer.body.contains("Wrong user name") =>
                    {
                        "401 wrong name or password".to_owned()
                    }
                    Ok(answer) => {
                        let retry = answer
                            .head
                            .lines()
                            .any(|l| l.to_ascii_lowercase().starts_with("retry-after:"));
                        format!(
                            "{}{}",
                            answer.status,
                            if retry { " with Retry-After" } else { "" }
                        )
                    }
                    Err(error) => {
                        errors.push(format!("{error:#}"));
                        "connection error".to_owned()
                    }
                };
                *answers.entry(key).or_default() += 1;
            }
            (answers, errors)
        }));
    }

    let flood_done = Arc::new(AtomicBool::new(false));
    let real = {
        let flood_done = flood_done.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !flood_done.load(Ordering::Relaxed) {
                interval.tick().await;
                results.push(real_sign_in(port).await);
            }
            results
        })
    };

    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    for worker in workers {
        let (counted, failed) = worker.await?;
        for (key, n) in counted {
            *answers.entry(key).or_default() += n;
        }
        errors.extend(failed);
    }
    let flood_seconds = started.elapsed().as_secs_f64();
    flood_done.store(true, Ordering::Relaxed);
    let real = real.await?;
    done.store(true, Ordering::Relaxed);
    let usage = sampler.await??;
    let hwm_kb = status_kb(pid, "VmHWM:")?;

    println!(
        "   flood: {attempts} attempts in {flood_seconds:.1} s ({:.0} per second), answers:",
        attempts as f64 / flood_seconds
    );
    for (key, n) in &answers {
        println!("     {key}: {n}");
    }
    if let Some(first) = errors.first() {
        println!("     first connection error: {first}");
    }
    println!(
        "   real user before the flood (POST /login, {} sign-ins): {}",
        quiet.len(),
        describe(&mut quiet)
    );
    let mut post = Vec::new();
    let mut both = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut real_errors = Vec::new();
    for result in real {
        match result {
            Ok((status, p, b)) => {
                *statuses.entry(status).or_default() += 1;
                if status == 303 {
                    post.push(p);
                    both.push(b);
                }
            }
            Err(error) => real_errors.push(format!("{error:#}")),
        }
    }
    let rendered: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    println!(
        "   real user during the flood: {} attempts, answers {}; 429: {}; errors: {}",
        statuses.values().sum::<usize>() + real_errors.len(),
        rendered.join(", "),
        statuses.get(&429).copied().unwrap_or(0),
        real_errors.len()
    );
    println!("     signed in (POST /login): {}", describe(&mut post));
    println!(
        "     with the page first (GET + POST): {}",
        describe(&mut both)
    );
    println!(
        "   server: peak CPU {:.0}% of one core (250 ms samples), mean {:.0}% over the flood; \
         VmRSS before the flood {:.1} MB, peak VmRSS sampled {:.1} MB, VmHWM {:.1} MB",
        usage.peak_cpu_percent,
        usage.mean_cpu_percent,
        rss_before_kb / 1024.0,
        usage.peak_rss_kb / 1024.0,
        hwm_kb / 1024.0
    );
    Ok(())
}
