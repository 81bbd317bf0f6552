//! `serve-memory`: the resident memory of a real `mailscribe serve` while
//! it serves pages. The store holds 100,000 entries; rounds of requests
//! (the log unfiltered and filtered, entries, contacts, decisions, the JSON
//! API) go to the server over HTTP, and the server's VmRSS is read from
//! /proc after each round. Flat means the last rounds are no higher than
//! the first ones after warm-up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use mailscribe_core::Role;
use mailscribe_store::Store;
use mailscribe_testkit::TestDatabase;

use crate::log::{CONTACTS, fill, topic};
use crate::measure::sibling_binary;
use crate::messages::Lcg;

const ENTRIES: u32 = 100_000;
pub(crate) const DEFAULT_ROUNDS: usize = 40;
const REQUESTS_PER_ROUND: usize = 500;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request on a new connection; returns (status, headers, body).
pub(crate) fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    Ok((status, head.to_owned(), body.to_owned()))
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

fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kb / 1024.0)
}

pub(crate) async fn serve_memory(rounds: usize) -> anyhow::Result<()> {
    println!(
        "== memory of `mailscribe serve` while pages are served ({ENTRIES} entries, {rounds} rounds of {REQUESTS_PER_ROUND} requests)"
    );
    let db = TestDatabase::sqlite();
    let store = Store::open(&db.url().parse()?).await?;
    fill(&store, ENTRIES).await?;
    let hash = mailscribe_web::hash_password("bench-password".into())
        .await
        .map_err(anyhow::Error::msg)?;
    let admin = store
        .create_user("bench", &hash, Role::Admin, None, Utc::now())
        .await?;
    let token = mailscribe_web::generate_token();
    store
        .create_api_token(&mailscribe_web::hash_token(&token), admin, Utc::now(), None)
        .await?;
    store.close().await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let server = Server(
        Command::new(sibling_binary("mailscribe")?)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("MAILSCRIBE_DB", db.url())
            .env("MAILSCRIBE_KEY_FILE", dir.path().join("bench.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(port, "GET", "/healthz", &[], "")
        .map(|r| r.0)
        .unwrap_or(0)
        != 200
    {
        if Instant::now() > deadline {
            bail!("serve did not answer /healthz within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, head, body) = request(port, "GET", "/login", &[], "")?;
    let login_cookie = cookie(&head, "__Host-mailscribe_login_csrf").context("no login cookie")?;
    let form = format!(
        "name=bench&password=bench-password&csrf={}",
        csrf(&body).context("no csrf")?
    );
    let (status, head, _) = request(
        port,
        "POST",
        "/login",
        &[
            (
                "Cookie",
                &format!("__Host-mailscribe_login_csrf={login_cookie}"),
            ),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    )?;
    let session = cookie(&head, "__Host-mailscribe_session")
        .with_context(|| format!("sign-in failed with {status}"))?;
    let session_cookie = format!("__Host-mailscribe_session={session}");
    let bearer = format!("Bearer {token}");

    let pid = server.0.id();
    let mut rng = Lcg(17);
    let mut series = Vec::with_capacity(rounds + 1);
    series.push(rss_mb(pid)?);
    let started = Instant::now();
    for _ in 0..rounds {
        for i in 0..REQUESTS_PER_ROUND {
            let (path, api) = match i % 7 {
                0 => ("/interactions".to_owned(), false),
                1 => (format!("/interactions?q={}", topic(rng.next(220))), false),
                2 => (
                    format!("/interactions?contact={}", 1 + rng.next(CONTACTS)),
                    false,
                ),
                3 => (
                    format!("/interactions/{}", 1 + rng.next(u64::from(ENTRIES))),
                    false,
                ),
                4 => ("/contacts?q=1".to_owned(), false),
                5 => ("/decisions".to_owned(), false),
                _ => (
                    format!("/api/v1/interactions?q={}", topic(rng.next(220))),
                    true,
                ),
            };
            let auth = if api {
                ("Authorization", bearer.as_str())
            } else {
                ("Cookie", session_cookie.as_str())
            };
            let (status, _, _) = request(port, "GET", &path, &[auth], "")?;
            if status != 200 {
                bail!("GET {path} answered {status}");
            }
        }
        series.push(rss_mb(pid)?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let total = rounds * REQUESTS_PER_ROUND;
    let rendered: Vec<String> = series.iter().map(|mb| format!("{mb:.1}")).collect();
    println!(
        "   {total} requests in {seconds:.1} s ({:.0} per second, one at a time)",
        total as f64 / seconds
    );
    println!(
        "   VmRSS in MB after sign-in and after each round: {}",
        rendered.join(" ")
    );
    let warm = series[2.min(series.len() - 1)];
    let half = series[series.len() / 2];
    let last = *series.last().unwrap_or(&warm);
    let peak = series.iter().copied().fold(0.0, f64::max);
    println!(
        "   after warm-up (round 2) {warm:.1} MB, half-way {half:.1} MB, at the end {last:.1} MB, peak {peak:.1} MB; \
         growth over the second half {:+.1} MB",
        last - half
    );
    Ok(())
}
