//! OAuth2 for IMAP: the client-credentials grant (RFC 6749 section 4.4)
//! against a token endpoint, by default Microsoft Entra ID's, and the SASL
//! mechanisms that carry the token: XOAUTH2 and OAUTHBEARER (RFC 7628).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::MailError;

pub use mailscribe_core::setup::{EXCHANGE_ONLINE_SCOPE, entra_token_url};

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

pub struct OAuthClient {
    pub token_url: String,
    pub client_id: SecretString,
    pub client_secret: SecretString,
    pub scope: String,
}

struct CachedToken {
    token: SecretString,
    renew_at: Instant,
}

/// Gets access tokens and keeps one until shortly before it expires.
pub struct TokenProvider {
    client: OAuthClient,
    http: reqwest::Client,
    cached: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("token_url", &self.client.token_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// What the admin should do about a refused token request. Entra ID's
/// AADSTS codes are the most precise signal; the RFC 6749 error is next.
fn token_hint(error: &TokenError) -> &'static str {
    let has = |code: u64| {
        error.error_codes.contains(&code)
            || error.error_description.contains(&format!("AADSTS{code}"))
    };
    if has(7_000_222) {
        "the client secret has expired (AADSTS7000222): create a new secret in the app registration and configure it again"
    } else if has(7_000_215) {
        "the client secret is wrong or has expired: create a new secret in the app registration and configure it again \
         (use the secret's value, not its id)"
    } else if has(700_016) {
        "the client id is wrong, or the app is not registered in this tenant: check the application (client) id and the tenant"
    } else if has(90_002) || has(900_023) || has(90_013) {
        "the tenant is wrong: use the directory (tenant) id or a verified domain of the organisation"
    } else if has(65_001) || has(500_011) || has(7_000_112) {
        "the app has no consent for IMAP: grant admin consent to IMAP.AccessAsApp and register the service principal in Exchange"
    } else if error.error == "invalid_scope" || has(70_011) || has(1_002_012) {
        "the scope is not valid: for Exchange Online use https://outlook.office365.com/.default"
    } else if error.error == "invalid_client" || error.error == "unauthorized_client" {
        "the client id or the client secret is wrong"
    } else {
        "the token endpoint refused the request"
    }
}

impl TokenProvider {
    pub fn new(client: OAuthClient) -> Result<TokenProvider, MailError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|err| MailError::Token {
                hint: "cannot create the HTTP client".into(),
                detail: err.to_string(),
            })?;
        Ok(TokenProvider {
            client,
            http,
            cached: Mutex::new(None),
        })
    }

    pub fn token_url(&self) -> &str {
        &self.client.token_url
    }

    /// A valid access token, from the cache while it lasts.
    pub async fn token(&self) -> Result<SecretString, MailError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.token.clone());
        }
        let fresh = self.request().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (after the server refused it).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(&self) -> Result<CachedToken, MailError> {
        let client = &self.client;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.expose_secret()),
            ("client_secret", client.client_secret.expose_secret()),
            ("scope", client.scope.as_str()),
        ];
        let response = self
            .http
            .post(&client.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|err| MailError::Token {
                hint: format!("cannot reach the token endpoint {}", client.token_url),
                detail: err.without_url().to_string(),
            })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let error: TokenError = serde_json::from_str(&body).unwrap_or_default();
            return Err(MailError::Token {
                hint: token_hint(&error).to_owned(),
                detail: format!("HTTP {status}: {} {}", error.error, error.error_description)
                    .trim()
                    .to_owned(),
            });
        }
        let parsed: TokenResponse =
            serde_json::from_str(&body).map_err(|err| MailError::Token {
                hint: "the token endpoint answered without an access token".into(),
                detail: err.to_string(),
            })?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        // Renew five minutes early, or halfway through a short-lived token.
        let renew_in = lifetime.checked_sub(RENEW_BEFORE).unwrap_or(lifetime / 2);
        Ok(CachedToken {
            token: SecretString::from(parsed.access_token),
            renew_at: Instant::now() + renew_in,
        })
    }
}

/// The initial client response of XOAUTH2 (Google's and Microsoft's
/// mechanism): `user=U^Aauth=Bearer T^A^A`.
pub(crate) fn xoauth2_response(user: &str, token: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// The initial client response of OAUTHBEARER (RFC 7628 section 3.1).
pub(crate) fn oauthbearer_response(user: &str, token: &str) -> Vec<u8> {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    format!("n,a={user},\x01auth=Bearer {token}\x01\x01").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_responses() {
        assert_eq!(
            xoauth2_response("u@x", "t"),
            b"user=u@x\x01auth=Bearer t\x01\x01"
        );
        assert_eq!(
            oauthbearer_response("a,b=c", "t"),
            b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01"
        );
    }

    #[test]
    fn token_errors_get_hints() {
        let error = |codes: Vec<u64>, error: &str| TokenError {
            error: error.into(),
            error_description: String::new(),
            error_codes: codes,
        };
        assert!(
            token_hint(&error(vec![7_000_215], "invalid_client"))
                .contains("client secret is wrong")
        );
        assert!(
            token_hint(&error(vec![7_000_222], "invalid_client"))
                .contains("client secret has expired")
        );
        assert!(
            token_hint(&error(vec![700_016], "unauthorized_client")).contains("client id is wrong")
        );
        assert!(token_hint(&error(vec![90_002], "invalid_request")).contains("tenant is wrong"));
        assert!(token_hint(&error(vec![65_001], "invalid_grant")).contains("consent"));
        assert!(token_hint(&error(vec![], "invalid_scope")).contains("scope"));
        assert_eq!(
            token_hint(&error(vec![], "")),
            "the token endpoint refused the request"
        );
    }
}
