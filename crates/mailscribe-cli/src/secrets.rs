//! Sealing stored secrets with AES-256-GCM under a key kept outside the
//! database.
//!
//! The key is 32 random bytes in base64, from `MAILSCRIBE_SECRET_KEY`, or
//! from a key file: `<database file>.key` for SQLite, `./mailscribe.key`
//! (or `MAILSCRIBE_KEY_FILE`) for PostgreSQL. The file is created with mode
//! 0600 the first time a secret is stored. A sealed value is
//! `v1:<key id>:<nonce>:<ciphertext>`, so a later key rotation needs no
//! data migration.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mailscribe_core::SealedSecret;
use mailscribe_store::DatabaseUrl;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretError {
    #[error(
        "the secret key is missing: the key file {0} does not exist and MAILSCRIBE_SECRET_KEY is not set; \
         restore the key file (or set the variable) that was used when the password was stored, \
         or store the password again with `mailscribe mailbox configure`"
    )]
    KeyMissing(PathBuf),
    #[error("the secret key is not 32 bytes of base64 ({0})")]
    KeyMalformed(String),
    #[error("cannot read or create the key file {path}: {source}")]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error("the stored secret was sealed with key {stored}, but the current key is {current}; restore that key")]
    WrongKey { stored: String, current: String },
    #[error("the stored secret cannot be decrypted: it is damaged or the key is wrong")]
    Undecryptable,
}

pub(crate) struct SecretKey {
    key: [u8; 32],
    id: String,
}

impl SecretKey {
    fn from_base64(text: &str) -> Result<SecretKey, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|err| SecretError::KeyMalformed(err.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| SecretError::KeyMalformed(format!("{} bytes", b.len())))?;
        let digest = Sha256::digest(key);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Ok(SecretKey { key, id })
    }

    pub(crate) fn key_file_for(db: &DatabaseUrl) -> PathBuf {
        if let Ok(path) = std::env::var("MAILSCRIBE_KEY_FILE") {
            return PathBuf::from(path);
        }
        match db.sqlite_path() {
            Some(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".key");
                PathBuf::from(name)
            }
            None => PathBuf::from("mailscribe.key"),
        }
    }

    /// The key for reading secrets; never creates one.
    pub(crate) fn load(db: &DatabaseUrl) -> Result<SecretKey, SecretError> {
        if let Ok(text) = std::env::var("MAILSCRIBE_SECRET_KEY") {
            return SecretKey::from_base64(&text);
        }
        let path = SecretKey::key_file_for(db);
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretKey::from_base64(&text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(SecretError::KeyMissing(path)),
            Err(source) => Err(SecretError::KeyFile { path, source }),
        }
    }

    /// The key for storing secrets; creates the key file when there is no
    /// key yet.
    pub(crate) fn load_or_create(db: &DatabaseUrl) -> Result<SecretKey, SecretError> {
        match SecretKey::load(db) {
            Err(SecretError::KeyMissing(path)) => create_key_file(&path),
            other => other,
        }
    }

    pub(crate) fn seal(&self, purpose: &str, secret: &SecretString) -> SealedSecret {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: secret.expose_secret().as_bytes(), aad: purpose.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        SealedSecret(format!("v1:{}:{}:{}", self.id, STANDARD.encode(nonce), STANDARD.encode(ciphertext)))
    }

    pub(crate) fn open(&self, purpose: &str, sealed: &SealedSecret) -> Result<SecretString, SecretError> {
        let parts: Vec<&str> = sealed.0.split(':').collect();
        let [_version @ "v1", key_id, nonce, ciphertext] = parts.as_slice() else {
            return Err(SecretError::Undecryptable);
        };
        if *key_id != self.id {
            return Err(SecretError::WrongKey { stored: (*key_id).to_owned(), current: self.id.clone() });
        }
        let nonce = STANDARD.decode(nonce).map_err(|_| SecretError::Undecryptable)?;
        let ciphertext = STANDARD.decode(ciphertext).map_err(|_| SecretError::Undecryptable)?;
        if nonce.len() != 12 {
            return Err(SecretError::Undecryptable);
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        let plain = cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: purpose.as_bytes() })
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| SecretError::Undecryptable)
    }
}

fn create_key_file(path: &Path) -> Result<SecretKey, SecretError> {
    let key_error = |source| SecretError::KeyFile { path: path.to_owned(), source };
    let key = Aes256Gcm::generate_key(&mut OsRng);
    let text = STANDARD.encode(key);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(key_error)?;
    file.write_all(format!("{text}\n").as_bytes()).map_err(key_error)?;
    file.sync_all().map_err(key_error)?;
    tracing::info!(path = %path.display(), "created a new secret key file");
    SecretKey::from_base64(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    #[test]
    fn seal_and_open_round_trip_without_the_plain_text() {
        let secret = SecretString::from("hunter2-very-secret");
        let sealed = key(1).seal("imap-password", &secret);
        assert!(!sealed.0.contains("hunter2"));
        assert!(sealed.0.starts_with("v1:"));
        assert_eq!(key(1).open("imap-password", &sealed).unwrap().expose_secret(), "hunter2-very-secret");
        // Two seals of one secret differ (fresh nonce).
        assert_ne!(key(1).seal("imap-password", &secret), sealed);
    }

    #[test]
    fn wrong_key_purpose_or_tampering_is_refused() {
        let sealed = key(1).seal("imap-password", &SecretString::from("x"));
        assert!(matches!(key(2).open("imap-password", &sealed), Err(SecretError::WrongKey { .. })));
        assert!(matches!(key(1).open("client-secret", &sealed), Err(SecretError::Undecryptable)));
        let mut tampered = sealed.0.clone();
        tampered.pop();
        tampered.push('A');
        assert!(key(1).open("imap-password", &SealedSecret(tampered)).is_err());
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
    }
}
