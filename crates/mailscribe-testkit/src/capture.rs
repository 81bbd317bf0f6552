//! Capturing servers: a plaintext IMAP server and an HTTP endpoint that
//! record every byte a client sends them and refuse every login, so that a
//! test can show a secret was (or was never) sent somewhere. Plaintext on
//! loopback, so a secret sent would really arrive in the capture.
//!
//! Each runs on a Tokio runtime of its own thread, so a test that blocks
//! its own thread (running the binary, say) never stops it answering.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What a capturing server received, over all its connections.
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    connections: usize,
}

/// A capturing server of either kind.
pub struct Capture {
    pub address: SocketAddr,
    captured: Arc<Mutex<Captured>>,
}

#[derive(Clone, Copy)]
enum Protocol {
    Imap,
    Http,
}

impl Capture {
    /// A plaintext IMAP server on `ip` (any loopback address) and `port`
    /// (0 for a free one), offering AUTHENTICATE PLAIN, LOGIN, XOAUTH2 and
    /// OAUTHBEARER and refusing them all.
    pub fn imap(ip: Ipv4Addr, port: u16) -> Capture {
        Capture::start(ip, port, Protocol::Imap)
    }

    /// An HTTP endpoint on 127.0.0.1 and a free port that answers every
    /// request as a token endpoint refusing the client (400
    /// `invalid_client`).
    pub fn http() -> Capture {
        Capture::start(Ipv4Addr::LOCALHOST, 0, Protocol::Http)
    }

    fn start(ip: Ipv4Addr, port: u16, protocol: Protocol) -> Capture {
        let listener =
            std::net::TcpListener::bind((IpAddr::V4(ip), port)).expect("bind the capturing server");
        let address = listener.local_addr().expect("address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let captured = Arc::new(Mutex::new(Captured::default()));
        let in_thread = captured.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("capture runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                while let Ok((stream, _)) = listener.accept().await {
                    in_thread.lock().expect("capture").connections += 1;
                    let captured = in_thread.clone();
                    tokio::spawn(async move {
                        match protocol {
                            Protocol::Imap => imap_session(stream, &captured).await,
                            Protocol::Http => http_exchange(stream, &captured).await,
                        }
                    });
                }
            });
        });
        Capture { address, captured }
    }

    /// `http://address/token`, for an HTTP capture.
    pub fn token_url(&self) -> String {
        format!("http://{}/tenant/oauth2/v2.0/token", self.address)
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.captured.lock().expect("capture").connections
    }

    /// Everything received, as text (lossy).
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.captured.lock().expect("capture").bytes).into_owned()
    }

    /// Whether `secret` arrived: in the clear, percent-encoded, or inside
    /// a base64 token (as AUTHENTICATE PLAIN and XOAUTH2 send it).
    pub fn saw(&self, secret: &str) -> bool {
        let received = self.received();
        if received.contains(secret) || percent_decode(&received).contains(secret) {
            return true;
        }
        received.split_whitespace().any(|token| {
            base64::engine::general_purpose::STANDARD
                .decode(token)
                .is_ok_and(|decoded| String::from_utf8_lossy(&decoded).contains(secret))
        })
    }
}

fn record(captured: &Mutex<Captured>, bytes: &[u8]) {
    captured
        .lock()
        .expect("capture")
        .bytes
        .extend_from_slice(bytes);
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(byte) => {
                    out.push(byte);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const CAPABILITIES: &str = "IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 AUTH=OAUTHBEARER";

/// Enough IMAP for a client to try to log in: greeting, CAPABILITY,
/// AUTHENTICATE (with or without an initial response), LOGIN, LOGOUT.
async fn imap_session(stream: TcpStream, captured: &Mutex<Captured>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if write
        .write_all(format!("* OK [CAPABILITY {CAPABILITIES}] capture ready\r\n").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => record(captured, &line),
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let mut words = text.split_whitespace();
        let tag = words.next().unwrap_or("*").to_owned();
        let command = words.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        let answer = match command.as_str() {
            "CAPABILITY" => format!("* CAPABILITY {CAPABILITIES}\r\n{tag} OK done\r\n"),
            "AUTHENTICATE" => {
                if rest.len() < 2 {
                    // Ask for the response and record it.
                    if write.write_all(b"+ \r\n").await.is_err() {
                        return;
                    }
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => record(captured, &line),
                    }
                }
                format!("{tag} NO [AUTHENTICATIONFAILED] captured\r\n")
            }
            "LOGIN" => {
                // A literal password ({n}) follows on the next line.
                if text.ends_with('}') {
                    if write.write_all(b"+ go ahead\r\n").await.is_err() {
                        return;
                    }
                    line.clear();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => record(captured, &line),
                    }
                }
                format!("{tag} NO [AUTHENTICATIONFAILED] captured\r\n")
            }
            "LOGOUT" => {
                let _ = write
                    .write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes())
                    .await;
                return;
            }
            _ => format!("{tag} BAD not here\r\n"),
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One HTTP request (headers and a Content-Length body), recorded, then
/// a token endpoint's refusal.
async fn http_exchange(stream: TcpStream, captured: &Mutex<Captured>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut length = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => record(captured, &line),
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    if reader.read_exact(&mut body).await.is_ok() {
        record(captured, &body);
    }
    let answer = "{\"error\": \"invalid_client\", \"error_description\": \"captured\"}";
    let _ = write
        .write_all(
            format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .as_bytes(),
        )
        .await;
}
