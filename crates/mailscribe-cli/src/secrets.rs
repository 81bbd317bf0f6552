//! Sealing stored secrets with AES-256-GCM under a key kept outside the
//! database.
//!
//! The key is 32 random bytes in base64, from `MAILSCRIBE_SECRET_KEY`, or
//! from a key file: `<database file>.key` for SQLite, `./mailscribe.key`
//! (or `MAILSCRIBE_KEY_FILE`) for PostgreSQL. The file is created with mode
//! 0600 the first time a secret is stored. A sealed value is
//! `v1:<key id>:<nonce>:<ciphertext>`, so a key rotation needs no data
//! migration. The key file may hold several keys, one per line: the first
//! seals, any of them opens (by key id). `mailscribe secrets rotate-key`
//! adds a new first key, re-seals every stored secret with it, then drops
//! the old ones, so that at every moment the file opens what the database
//! holds.
//!
//! A secret can also come from outside at each run (`SecretRef`): an
//! environment variable, a file, or a command's output.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mailscribe_core::{SealedSecret, SecretRef};
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
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the key file {path} can be read by others (mode {mode:o}): anyone who can read it can open the stored \
         passwords; make it readable by its owner only: chmod 600 {path}"
    )]
    KeyFileExposed { path: PathBuf, mode: u32 },
    #[error(
        "the stored secret was sealed with key {stored}, but the current key is {current}; restore that key"
    )]
    WrongKey { stored: String, current: String },
    #[error("the stored secret cannot be decrypted: it is damaged or the key is wrong")]
    Undecryptable,
}

pub(crate) struct SecretKey {
    key: [u8; 32],
    id: String,
}

/// The current key and any older ones still needed to open secrets.
pub(crate) struct KeyRing {
    pub(crate) current: SecretKey,
    older: Vec<SecretKey>,
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

    fn to_base64(&self) -> String {
        STANDARD.encode(self.key)
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn seal(&self, purpose: &str, secret: &SecretString) -> SealedSecret {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.expose_secret().as_bytes(),
                    aad: purpose.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        SealedSecret(format!(
            "v1:{}:{}:{}",
            self.id,
            STANDARD.encode(nonce),
            STANDARD.encode(ciphertext)
        ))
    }

    fn open(
        &self,
        purpose: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> Result<SecretString, SecretError> {
        let nonce = STANDARD
            .decode(nonce)
            .map_err(|_| SecretError::Undecryptable)?;
        let ciphertext = STANDARD
            .decode(ciphertext)
            .map_err(|_| SecretError::Undecryptable)?;
        if nonce.len() != 12 {
            return Err(SecretError::Undecryptable);
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretError::Undecryptable)
    }
}

fn new_key() -> SecretKey {
    let key = Aes256Gcm::generate_key(&mut OsRng);
    SecretKey::from_base64(&STANDARD.encode(key)).expect("a generated key is 32 bytes")
}

/// Writes the key file atomically (a temporary file renamed over it), mode 0600.
fn write_key_file(path: &Path, keys: &[&SecretKey]) -> Result<(), SecretError> {
    let key_error = |source| SecretError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(key_error)?;
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", k.to_base64()))
        .collect();
    file.write_all(text.as_bytes()).map_err(key_error)?;
    file.sync_all().map_err(key_error)?;
    std::fs::rename(&temporary, path).map_err(key_error)
}

impl KeyRing {
    fn parse(text: &str) -> Result<KeyRing, SecretError> {
        let mut keys = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(SecretKey::from_base64);
        let current = keys
            .next()
            .ok_or_else(|| SecretError::KeyMalformed("no key in the file".into()))??;
        Ok(KeyRing {
            current,
            older: keys.collect::<Result<_, _>>()?,
        })
    }

    /// The keys for reading secrets; never creates one.
    pub(crate) fn load(db: &DatabaseUrl) -> Result<KeyRing, SecretError> {
        if let Ok(text) = std::env::var("MAILSCRIBE_SECRET_KEY") {
            return KeyRing::parse(&text.replace([',', ' '], "\n"));
        }
        let path = SecretKey::key_file_for(db);
        // A key readable by group or others is refused, not used: it would
        // open every stored secret to them.
        if let Ok(metadata) = std::fs::metadata(&path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretError::KeyFileExposed { path, mode });
            }
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => KeyRing::parse(&text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Err(SecretError::KeyMissing(path))
            }
            Err(source) => Err(SecretError::KeyFile { path, source }),
        }
    }

    /// The keys for storing secrets; creates the key file when there is
    /// no key yet.
    pub(crate) fn load_or_create(db: &DatabaseUrl) -> Result<KeyRing, SecretError> {
        match KeyRing::load(db) {
            Err(SecretError::KeyMissing(path)) => {
                let key = new_key();
                write_key_file(&path, &[&key])?;
                tracing::info!(path = %path.display(), "created a new secret key file");
                Ok(KeyRing {
                    current: key,
                    older: Vec::new(),
                })
            }
            other => other,
        }
    }

    pub(crate) fn seal(&self, purpose: &str, secret: &SecretString) -> SealedSecret {
        self.current.seal(purpose, secret)
    }

    pub(crate) fn open(
        &self,
        purpose: &str,
        sealed: &SealedSecret,
    ) -> Result<SecretString, SecretError> {
        let parts: Vec<&str> = sealed.0.split(':').collect();
        let [_version @ "v1", key_id, nonce, ciphertext] = parts.as_slice() else {
            return Err(SecretError::Undecryptable);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == *key_id)
            .ok_or_else(|| SecretError::WrongKey {
                stored: (*key_id).to_owned(),
                current: self.current.id.clone(),
            })?;
        key.open(purpose, nonce, ciphertext)
    }

    /// Step one of a rotation: a new current key, the old ones kept so
    /// that what is stored still opens. Returns the new ring.
    pub(crate) fn begin_rotation(self, db: &DatabaseUrl) -> Result<KeyRing, SecretError> {
        if std::env::var_os("MAILSCRIBE_SECRET_KEY").is_some() {
            return Err(SecretError::KeyMalformed(
                "the key comes from MAILSCRIBE_SECRET_KEY: rotate it by putting a new key first in that variable \
                 (comma-separated, new,old), running `mailscribe secrets rotate-key`, then removing the old one"
                    .into(),
            ));
        }
        let fresh = new_key();
        let mut keys: Vec<&SecretKey> = vec![&fresh, &self.current];
        keys.extend(&self.older);
        write_key_file(&SecretKey::key_file_for(db), &keys)?;
        let KeyRing { current, mut older } = self;
        older.insert(0, current);
        Ok(KeyRing {
            current: fresh,
            older,
        })
    }

    /// Step three: everything is sealed with the current key; drop the rest.
    pub(crate) fn finish_rotation(self, db: &DatabaseUrl) -> Result<KeyRing, SecretError> {
        if std::env::var_os("MAILSCRIBE_SECRET_KEY").is_none() {
            write_key_file(&SecretKey::key_file_for(db), &[&self.current])?;
        }
        Ok(KeyRing {
            current: self.current,
            older: Vec::new(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    #[error("the environment variable {0} is not set or empty")]
    EnvMissing(String),
    #[error("cannot read the secret file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the secret command `{command}` failed: {detail}")]
    Exec { command: String, detail: String },
    #[error("the secret from {0} is empty")]
    Empty(String),
    #[error(transparent)]
    Sealed(#[from] SecretError),
}

/// The most a secret file or a secret command's output may hold: a
/// secret is a few hundred bytes, and a source pointed at something huge
/// must not fill the memory.
pub(crate) const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Reads a secret from where it lives. `exec:` runs through `sh -c`.
/// Blocks (files, commands): call it off the async runtime.
pub(crate) fn resolve(
    reference: &SecretRef,
    purpose: &str,
    keys: impl FnOnce() -> Result<KeyRing, SecretError>,
) -> Result<SecretString, SourceError> {
    let value = match reference {
        SecretRef::Sealed(sealed) => return Ok(keys()?.open(purpose, sealed)?),
        SecretRef::Env(name) => std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SourceError::EnvMissing(name.clone()))?,
        SecretRef::File(path) => read_secret_file(Path::new(path))
            .map_err(|source| SourceError::File {
                path: path.clone(),
                source,
            })?
            .trim_end()
            .to_owned(),
        SecretRef::Exec(command) => run_secret_command(command)?,
    };
    if value.is_empty() {
        return Err(SourceError::Empty(reference.to_storage()));
    }
    Ok(SecretString::from(value))
}

/// Opening a FIFO for reading waits for a writer; with this flag it does
/// not, so a FIFO swapped in after the type check cannot hang a run.
#[cfg(target_os = "linux")]
const O_NONBLOCK: i32 = 0o4000;
#[cfg(not(target_os = "linux"))]
const O_NONBLOCK: i32 = 0;

/// Reads a regular file of at most [`MAX_SECRET_BYTES`]; FIFOs, devices,
/// sockets and directories are refused.
pub(crate) fn read_secret_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let not_regular = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (FIFOs, devices and sockets are refused): name a file that holds the secret",
        )
    };
    if !std::fs::metadata(path)?.file_type().is_file() {
        return Err(not_regular());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} KiB, which no secret is: name the file that holds only the secret",
                MAX_SECRET_BYTES / 1024
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Runs a secret command and returns its standard output, refused beyond
/// [`MAX_SECRET_BYTES`] (the command is then killed).
fn run_secret_command(command: &str) -> Result<String, SourceError> {
    use std::io::Read;
    let failed = |detail: String| SourceError::Exec {
        command: command.to_owned(),
        detail,
    };
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|err| failed(err.to_string()))?;
    // Standard error is drained beside, so that a chatty command cannot
    // block on a full pipe; only its start is kept for the message.
    let stderr = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut stderr) = stderr {
            let _ = (&mut stderr).take(4096).read_to_end(&mut kept);
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        }
        kept
    });
    let mut stdout = Vec::new();
    let read = match child.stdout.take() {
        Some(out) => out.take(MAX_SECRET_BYTES + 1).read_to_end(&mut stdout),
        None => Ok(0),
    };
    if stdout.len() as u64 > MAX_SECRET_BYTES {
        let _ = child.kill();
        let _ = child.wait();
        let _ = stderr_reader.join();
        return Err(failed(format!(
            "its output is larger than {} KiB, which no secret is",
            MAX_SECRET_BYTES / 1024
        )));
    }
    let status = child.wait().map_err(|err| failed(err.to_string()))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    read.map_err(|err| failed(err.to_string()))?;
    if !status.success() {
        return Err(failed(format!(
            "{status}: {}",
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&stdout).trim_end().to_owned())
}

/// Why a source typed into the web may not be used on this server: the
/// key file itself (never a secret's home), or a source outside the
/// operator's allow-list. `what` names the secret in the message.
pub(crate) fn refuse_source_from_web(
    url: &DatabaseUrl,
    source: &SecretRef,
    what: &str,
) -> Option<String> {
    if let SecretRef::File(path) = source {
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        if canonical(Path::new(path)) == canonical(&SecretKey::key_file_for(url)) {
            return Some(format!(
                "that file is Mailscribe's secret key; name the file that holds the {what}"
            ));
        }
    }
    refuse_web_source(&web_secret_policy(), source)
}

/// Which secret sources a web session may set on this server:
/// `MAILSCRIBE_SECRET_DIRS` and `MAILSCRIBE_SECRET_ENV`, the directories
/// with their symlinks resolved.
pub(crate) fn web_secret_policy() -> mailscribe_core::WebSecretPolicy {
    let dirs = std::env::var("MAILSCRIBE_SECRET_DIRS").ok();
    let names = std::env::var("MAILSCRIBE_SECRET_ENV").ok();
    let mut policy = mailscribe_core::WebSecretPolicy::parse(dirs.as_deref(), names.as_deref());
    let resolved: Vec<String> = policy
        .dirs
        .iter()
        .filter_map(|dir| Path::new(dir).canonicalize().ok())
        .map(|dir| dir.display().to_string())
        .collect();
    // Resolving may lead somewhere forbidden: parse again to judge that.
    policy.dirs = mailscribe_core::WebSecretPolicy::parse(Some(&resolved.join(":")), None).dirs;
    policy
}

/// Why a web session may not set `source` on this server, if it may not:
/// `env:` only names the operator listed, `file:` only regular files under
/// the directories the operator listed, judged after resolving symlinks.
pub(crate) fn refuse_web_source(
    policy: &mailscribe_core::WebSecretPolicy,
    source: &SecretRef,
) -> Option<String> {
    match source {
        SecretRef::Env(name) => policy.refuse_env(name),
        SecretRef::File(path) => {
            let path = Path::new(path);
            if !path.is_absolute() {
                return Some(format!(
                    "{}: give the absolute path of the secret file",
                    path.display()
                ));
            }
            let resolved = match path.canonicalize() {
                Ok(resolved) => resolved,
                Err(err) => {
                    return Some(format!(
                        "{}: {err}; the file must exist on the server",
                        path.display()
                    ));
                }
            };
            if let Some(why) = policy.refuse_file(&resolved.display().to_string()) {
                return Some(why);
            }
            match std::fs::metadata(&resolved) {
                Ok(meta) if meta.file_type().is_file() => None,
                Ok(_) => Some(format!(
                    "{} is not a regular file: name a file that holds the secret",
                    resolved.display()
                )),
                Err(err) => Some(format!("{}: {err}", resolved.display())),
            }
        }
        SecretRef::Exec(_) | SecretRef::Sealed(_) => source.refused_from_web().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> KeyRing {
        KeyRing {
            current: SecretKey::from_base64(&STANDARD.encode([byte; 32])).unwrap(),
            older: Vec::new(),
        }
    }

    #[test]
    fn seal_and_open_round_trip_without_the_plain_text() {
        let secret = SecretString::from("hunter2-very-secret");
        let sealed = key(1).seal("imap-password", &secret);
        assert!(!sealed.0.contains("hunter2"));
        assert!(sealed.0.starts_with("v1:"));
        assert_eq!(
            key(1)
                .open("imap-password", &sealed)
                .unwrap()
                .expose_secret(),
            "hunter2-very-secret"
        );
        // Two seals of one secret differ (fresh nonce).
        assert_ne!(key(1).seal("imap-password", &secret), sealed);
    }

    #[test]
    fn wrong_key_purpose_or_tampering_is_refused() {
        let sealed = key(1).seal("imap-password", &SecretString::from("x"));
        assert!(matches!(
            key(2).open("imap-password", &sealed),
            Err(SecretError::WrongKey { .. })
        ));
        assert!(matches!(
            key(1).open("client-secret", &sealed),
            Err(SecretError::Undecryptable)
        ));
        let mut tampered = sealed.0.clone();
        tampered.pop();
        tampered.push('A');
        assert!(
            key(1)
                .open("imap-password", &SealedSecret(tampered))
                .is_err()
        );
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn older_keys_still_open_what_they_sealed() {
        let sealed = key(1).seal("p", &SecretString::from("x"));
        let ring = KeyRing {
            current: key(2).current,
            older: vec![key(1).current],
        };
        assert_eq!(ring.open("p", &sealed).unwrap().expose_secret(), "x");
    }

    #[test]
    fn secret_files_and_outputs_are_capped_and_fifos_refused() {
        let dir = tempfile::tempdir().unwrap();
        let never = || -> Result<KeyRing, SecretError> { unreachable!() };
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 64 * 1024 + 1]).unwrap();
        let err = resolve(&SecretRef::File(big.display().to_string()), "p", never).unwrap_err();
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
        let exact = dir.path().join("exact");
        std::fs::write(&exact, vec![b'y'; 64 * 1024]).unwrap();
        assert_eq!(
            resolve(&SecretRef::File(exact.display().to_string()), "p", never)
                .unwrap()
                .expose_secret()
                .len(),
            64 * 1024
        );
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = resolve(&SecretRef::File(fifo.display().to_string()), "p", never).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = resolve(&SecretRef::File("/dev/zero".into()), "p", never).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let err = resolve(&SecretRef::Exec("yes".into()), "p", never).unwrap_err();
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
    }

    #[test]
    fn web_sources_follow_the_operators_allow_list_after_resolving_symlinks() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = allowed.path().join("imap");
        std::fs::write(&secret, "pw").unwrap();
        let elsewhere = outside.path().join("other");
        std::fs::write(&elsewhere, "pw").unwrap();
        let link = allowed.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let nested = allowed.path().join("dir");
        std::fs::create_dir(&nested).unwrap();
        let dir = allowed.path().canonicalize().unwrap().display().to_string();
        let policy = mailscribe_core::WebSecretPolicy::parse(Some(&dir), Some("IMAP_PASSWORD"));
        let file = |p: &std::path::Path| SecretRef::File(p.display().to_string());
        assert_eq!(refuse_web_source(&policy, &file(&secret)), None);
        assert!(
            refuse_web_source(&policy, &file(&elsewhere))
                .unwrap()
                .contains("MAILSCRIBE_SECRET_DIRS")
        );
        assert!(
            refuse_web_source(&policy, &file(&link))
                .unwrap()
                .contains("MAILSCRIBE_SECRET_DIRS"),
            "a symlink out is judged by its target"
        );
        assert!(
            refuse_web_source(&policy, &file(&nested))
                .unwrap()
                .contains("not a regular file")
        );
        assert!(refuse_web_source(&policy, &file(&allowed.path().join("missing"))).is_some());
        assert!(refuse_web_source(&policy, &SecretRef::File("relative/imap".into())).is_some());
        assert!(
            refuse_web_source(&policy, &SecretRef::File("/proc/self/environ".into())).is_some()
        );
        assert_eq!(
            refuse_web_source(&policy, &SecretRef::Env("IMAP_PASSWORD".into())),
            None
        );
        assert!(
            refuse_web_source(&policy, &SecretRef::Env("HOME".into()))
                .unwrap()
                .contains("MAILSCRIBE_SECRET_ENV")
        );
        assert!(refuse_web_source(&policy, &SecretRef::Exec("true".into())).is_some());
        let nothing = mailscribe_core::WebSecretPolicy::default();
        assert!(
            refuse_web_source(&nothing, &file(&secret)).is_some(),
            "nothing is allowed by default"
        );
    }

    #[test]
    fn sources_resolve() {
        let never = || -> Result<KeyRing, SecretError> { unreachable!("no key needed") };
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "from-file\n").unwrap();
        let path = file.path().display().to_string();
        assert_eq!(
            resolve(&SecretRef::File(path), "p", never)
                .unwrap()
                .expose_secret(),
            "from-file"
        );
        assert_eq!(
            resolve(&SecretRef::Exec("printf 'from exec'".into()), "p", never)
                .unwrap()
                .expose_secret(),
            "from exec"
        );
        assert!(matches!(
            resolve(&SecretRef::Exec("exit 3".into()), "p", never),
            Err(SourceError::Exec { .. })
        ));
        assert!(matches!(
            resolve(
                &SecretRef::Env("MAILSCRIBE_SURELY_UNSET".into()),
                "p",
                never
            ),
            Err(SourceError::EnvMissing(_))
        ));
        assert!(matches!(
            resolve(&SecretRef::File("/nonexistent/x".into()), "p", never),
            Err(SourceError::File { .. })
        ));
    }
}
