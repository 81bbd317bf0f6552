//! A small local OpenID Connect provider for tests: a discovery document, a
//! JWKS, an authorization endpoint that sends the browser straight back
//! with a code (as if the user had signed in), and a token endpoint that
//! checks the client secret and the PKCE verifier and returns an
//! RS256-signed ID token.
//!
//! Microsoft Entra ID cannot be reached from here; this implements the
//! protocol it documents (authorization code flow with PKCE,
//! `client_secret_basic` or `client_secret_post`) and stands in for it.
//! On request it mints wrong tokens (`Fault`), so that tests can show each
//! is refused.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use sha2::{Digest, Sha256};

use crate::oauth::{decode, form};

/// A wrong ID token to mint instead of a right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A nonce other than the one the authorization request carried.
    WrongNonce,
    /// An audience other than the client id.
    WrongAudience,
    /// Expired an hour ago.
    Expired,
    /// A valid token with one byte of its signature changed.
    TamperedSignature,
    /// An issuer other than the provider's.
    WrongIssuer,
    /// Signed by a key the JWKS does not hold (under the JWKS key's id).
    UnknownKey,
}

/// Who the provider says signs in: the `sub` and any further claims.
#[derive(Debug, Clone)]
pub struct OidcUser {
    pub subject: String,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl OidcUser {
    /// A user with `preferred_username` and, when given, Entra-style `roles`.
    pub fn new(subject: &str, preferred_username: &str, roles: &[&str]) -> OidcUser {
        let mut claims = serde_json::Map::new();
        claims.insert("preferred_username".into(), preferred_username.into());
        if !roles.is_empty() {
            claims.insert(
                "roles".into(),
                roles.iter().map(|r| serde_json::Value::from(*r)).collect(),
            );
        }
        OidcUser {
            subject: subject.into(),
            claims,
        }
    }

    pub fn with_claim(mut self, name: &str, value: serde_json::Value) -> OidcUser {
        self.claims.insert(name.into(), value);
        self
    }
}

struct Grant {
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    user: OidcUser,
}

struct State {
    client_id: String,
    client_secret: String,
    user: Option<OidcUser>,
    fault: Option<Fault>,
    grants: HashMap<String, Grant>,
    token_requests: u64,
}

pub struct OidcProvider {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

fn new_key(kid: &str) -> CoreRsaPrivateSigningKey {
    let output = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .expect("openssl genrsa (the openssl package)");
    assert!(output.status.success(), "openssl genrsa failed");
    let pem = String::from_utf8(output.stdout).expect("PEM");
    CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new(kid.into())))
        .expect("an RSA key")
}

struct Keys {
    signing: CoreRsaPrivateSigningKey,
    /// Not in the JWKS: for `Fault::UnknownKey`.
    other: CoreRsaPrivateSigningKey,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sign(
    key: &CoreRsaPrivateSigningKey,
    header: &serde_json::Value,
    payload: &serde_json::Value,
) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = key
        .sign(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            input.as_bytes(),
        )
        .expect("RS256 signature");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn mint(issuer: &str, state: &State, keys: &Keys, grant: &Grant) -> String {
    let now = now_seconds();
    let fault = state.fault;
    let mut payload = grant.user.claims.clone();
    let issuer = if fault == Some(Fault::WrongIssuer) {
        format!("{issuer}/other")
    } else {
        issuer.to_owned()
    };
    let audience = if fault == Some(Fault::WrongAudience) {
        "another-client".to_owned()
    } else {
        state.client_id.clone()
    };
    let (iat, exp) = if fault == Some(Fault::Expired) {
        (now - 7200, now - 3600)
    } else {
        (now, now + 600)
    };
    payload.insert("iss".into(), issuer.into());
    payload.insert("sub".into(), grant.user.subject.clone().into());
    payload.insert("aud".into(), audience.into());
    payload.insert("iat".into(), iat.into());
    payload.insert("exp".into(), exp.into());
    let nonce = if fault == Some(Fault::WrongNonce) {
        Some("not-the-nonce-that-was-sent".to_owned())
    } else {
        grant.nonce.clone()
    };
    if let Some(nonce) = nonce {
        payload.insert("nonce".into(), nonce.into());
    }
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "test-key"});
    let key = if fault == Some(Fault::UnknownKey) {
        &keys.other
    } else {
        &keys.signing
    };
    let token = sign(key, &header, &serde_json::Value::Object(payload));
    if fault == Some(Fault::TamperedSignature) {
        let (input, signature) = token.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        bytes[10] ^= 0x01;
        return format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes));
    }
    token
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, extra: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
}

fn json(stream: &mut TcpStream, status: &str, body: &serde_json::Value) {
    respond(stream, status, "application/json", "", &body.to_string());
}

fn handle(
    mut stream: TcpStream,
    port: u16,
    state: &Mutex<State>,
    keys: &Keys,
    counter: &AtomicU64,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut length = 0usize;
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_owned();
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let issuer = format!("http://127.0.0.1:{port}");
    match path {
        "/.well-known/openid-configuration" => json(
            &mut stream,
            "200 OK",
            &serde_json::json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "profile", "email"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "preferred_username", "roles"],
            }),
        ),
        "/jwks" => {
            let jwk = serde_json::to_value(keys.signing.as_verification_key()).expect("JWK");
            json(&mut stream, "200 OK", &serde_json::json!({"keys": [jwk]}));
        }
        "/authorize" => {
            let params = form(query);
            let mut state = state.lock().expect("oidc state");
            let get = |name: &str| params.get(name).cloned().unwrap_or_default();
            let usable = get("response_type") == "code"
                && get("client_id") == state.client_id
                && get("code_challenge_method") == "S256"
                && !get("code_challenge").is_empty()
                && get("scope").split(' ').any(|s| s == "openid");
            let Some(user) = state.user.clone().filter(|_| usable) else {
                respond(
                    &mut stream,
                    "400 Bad Request",
                    "text/plain",
                    "",
                    "invalid authorization request",
                );
                return;
            };
            let code = format!("code-{}", counter.fetch_add(1, Ordering::SeqCst));
            state.grants.insert(
                code.clone(),
                Grant {
                    nonce: params.get("nonce").cloned(),
                    challenge: get("code_challenge"),
                    redirect_uri: get("redirect_uri"),
                    user,
                },
            );
            let location = format!(
                "{}?code={code}&state={}",
                get("redirect_uri"),
                encode(&get("state"))
            );
            respond(
                &mut stream,
                "302 Found",
                "text/plain",
                &format!("Location: {location}\r\n"),
                "",
            );
        }
        "/token" => {
            let params = form(&String::from_utf8_lossy(&body));
            let mut state = state.lock().expect("oidc state");
            state.token_requests += 1;
            let (client_id, secret) = match authorization.strip_prefix("Basic ") {
                Some(basic) => {
                    let text = STANDARD
                        .decode(basic.trim())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .unwrap_or_default();
                    let (id, secret) = text.split_once(':').unwrap_or(("", ""));
                    (decode(id), decode(secret))
                }
                None => (
                    params.get("client_id").cloned().unwrap_or_default(),
                    params.get("client_secret").cloned().unwrap_or_default(),
                ),
            };
            if client_id != state.client_id || secret != state.client_secret {
                json(
                    &mut stream,
                    "401 Unauthorized",
                    &serde_json::json!({"error": "invalid_client"}),
                );
                return;
            }
            let code = params.get("code").cloned().unwrap_or_default();
            let Some(grant) = state.grants.remove(&code) else {
                json(
                    &mut stream,
                    "400 Bad Request",
                    &serde_json::json!({"error": "invalid_grant"}),
                );
                return;
            };
            let verifier = params.get("code_verifier").cloned().unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let redirect_ok = params
                .get("redirect_uri")
                .is_some_and(|uri| *uri == grant.redirect_uri);
            if challenge != grant.challenge || !redirect_ok {
                json(
                    &mut stream,
                    "400 Bad Request",
                    &serde_json::json!({"error": "invalid_grant"}),
                );
                return;
            }
            let id_token = mint(&issuer, &state, keys, &grant);
            json(
                &mut stream,
                "200 OK",
                &serde_json::json!({
                    "access_token": format!("access-{}", counter.fetch_add(1, Ordering::SeqCst)),
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "id_token": id_token,
                }),
            );
        }
        _ => respond(&mut stream, "404 Not Found", "text/plain", "", "not found"),
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl OidcProvider {
    /// Starts the provider for one client. Each connection is answered on
    /// a thread of its own (a browser may hold idle connections open).
    pub fn start(client_id: &str, client_secret: &str) -> OidcProvider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind oidc provider");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            user: None,
            fault: None,
            grants: HashMap::new(),
            token_requests: 0,
        }));
        let keys = Arc::new(Keys {
            signing: new_key("test-key"),
            other: new_key("test-key"),
        });
        let in_thread = state.clone();
        std::thread::spawn(move || {
            let counter = Arc::new(AtomicU64::new(1));
            for stream in listener.incoming().flatten() {
                let (state, keys, counter) = (in_thread.clone(), keys.clone(), counter.clone());
                std::thread::spawn(move || handle(stream, port, &state, &keys, &counter));
            }
        });
        OidcProvider { port, state }
    }

    /// The issuer: `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Who the next authorization signs in.
    pub fn sign_in_as(&self, user: OidcUser) {
        self.state.lock().expect("oidc state").user = Some(user);
    }

    /// Mint the next ID tokens wrongly (`None`: rightly again).
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.lock().expect("oidc state").fault = fault;
    }

    /// How many token requests the provider has answered.
    pub fn token_requests(&self) -> u64 {
        self.state.lock().expect("oidc state").token_requests
    }
}
