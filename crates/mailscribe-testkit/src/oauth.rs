//! A local OAuth2 server for tests: a client-credentials token endpoint
//! (the protocol of Microsoft Entra ID's `/oauth2/v2.0/token`) and an RFC 7662
//! introspection endpoint for Dovecot's oauth2 passdb. Exchange Online and
//! Entra ID cannot be reached from here; this is what stands in for them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    /// client id -> (client secret, mailbox user the token is for)
    clients: HashMap<String, (String, String)>,
    /// access token -> user
    tokens: HashMap<String, String>,
    token_requests: u64,
}

pub struct OAuthServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

pub(crate) fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

pub(crate) fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                    out.push(byte);
                    i += 2;
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn handle(mut stream: TcpStream, state: &Mutex<State>, counter: &AtomicU64) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let params = form(&String::from_utf8_lossy(&body));
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let mut state = state.lock().expect("oauth state");
    if path.starts_with("/introspect") {
        let user = params
            .get("token")
            .and_then(|t| state.tokens.get(t))
            .cloned();
        let body = match user {
            Some(user) => format!("{{\"active\": true, \"username\": \"{user}\"}}"),
            None => "{\"active\": false}".to_owned(),
        };
        respond(&mut stream, "200 OK", &body);
    } else if path.ends_with("/token") {
        state.token_requests += 1;
        let client = params.get("client_id").cloned().unwrap_or_default();
        let secret = params.get("client_secret").cloned().unwrap_or_default();
        match (
            params.get("grant_type").map(String::as_str),
            state.clients.get(&client).cloned(),
        ) {
            (Some("client_credentials"), Some((expected, user))) if expected == secret => {
                let token = format!("token-{}", counter.fetch_add(1, Ordering::SeqCst));
                state.tokens.insert(token.clone(), user);
                respond(
                    &mut stream,
                    "200 OK",
                    &format!(
                        "{{\"token_type\": \"Bearer\", \"expires_in\": 3599, \"access_token\": \"{token}\"}}"
                    ),
                );
            }
            (_, Some(_)) => respond(
                &mut stream,
                "401 Unauthorized",
                "{\"error\": \"invalid_client\", \
                \"error_description\": \"AADSTS7000215: Invalid client secret provided.\", \"error_codes\": [7000215]}",
            ),
            (_, None) => respond(
                &mut stream,
                "400 Bad Request",
                "{\"error\": \"unauthorized_client\", \
                \"error_description\": \"AADSTS700016: Application not found in the directory.\", \"error_codes\": [700016]}",
            ),
        }
    } else {
        respond(&mut stream, "404 Not Found", "{}");
    }
}

impl OAuthServer {
    /// Starts the server with the given `(client id, client secret, user)`.
    pub fn start(clients: &[(&str, &str, &str)]) -> OAuthServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind oauth server");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(Mutex::new(State {
            clients: clients
                .iter()
                .map(|(id, secret, user)| ((*id).into(), ((*secret).into(), (*user).into())))
                .collect(),
            ..State::default()
        }));
        let in_thread = state.clone();
        std::thread::spawn(move || {
            let counter = AtomicU64::new(1);
            for stream in listener.incoming().flatten() {
                handle(stream, &in_thread, &counter);
            }
        });
        OAuthServer { port, state }
    }

    pub fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/tenant/oauth2/v2.0/token", self.port)
    }

    pub fn introspection_url(&self) -> String {
        format!("http://127.0.0.1:{}/introspect", self.port)
    }

    /// Makes `token` valid for `user` without the token endpoint.
    pub fn grant(&self, token: &str, user: &str) {
        self.state
            .lock()
            .expect("oauth state")
            .tokens
            .insert(token.into(), user.into());
    }

    /// How many token requests the endpoint has answered.
    pub fn token_requests(&self) -> u64 {
        self.state.lock().expect("oauth state").token_requests
    }
}
