//! Secrets at rest: the master key and the AEAD that encrypts gateway and device tokens.
//!
//! Ciphertexts are `nonce (24 bytes) ‖ XChaCha20-Poly1305 ciphertext`; the associated data names
//! the purpose, so a blob cannot be swapped from one column into another.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox};

const KEY_LEN: usize = 32;

/// The 32-byte master key, zeroed when dropped.
pub type MasterKey = SecretBox<[u8; KEY_LEN]>;
const NONCE_LEN: usize = 24;
pub const MASTER_KEY_FILE: &str = "master.key";
/// The systemd credential name (`LoadCredential=master-key:…`).
pub const MASTER_KEY_CREDENTIAL: &str = "master-key";

/// Associated data for each kind of encrypted value.
pub mod purpose {
    /// Tokens stored before they were bound to their gateway (read once, to bind them).
    pub const GATEWAY_TOKEN: &[u8] = b"gateway-supervisor/gateway-token/v1";
    pub const DEVICE_TOKEN: &[u8] = b"gateway-supervisor/device-token/v1";
    /// Tokens bound to their gateway's id and address (`db/gateways/tokens.rs`).
    pub const GATEWAY_TOKEN_BOUND: &[u8] = b"gateway-supervisor/gateway-token/v2";
    pub const DEVICE_TOKEN_BOUND: &[u8] = b"gateway-supervisor/device-token/v2";
    pub const DEVICE_IDENTITY: &[u8] = b"gateway-supervisor/device-identity/v1";
    pub const MASTER_KEY_CHECK: &[u8] = b"gateway-supervisor/master-key-check/v1";
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("master key from {source_name} is invalid: {reason}")]
    BadKey { source_name: String, reason: String },
    #[error("cannot read or write {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("decryption failed (wrong master key or corrupted value)")]
    Decrypt,
    #[error("random number generator failed: {0}")]
    Random(String),
    #[error(
        "the master key file {path} is missing, but the database holds data encrypted with a \
         master key; restore the file from the backup you made with the database (a new key \
         would leave every stored token unreadable)"
    )]
    MissingKey { path: PathBuf },
    #[error(
        "the master key file {path} can be read by other users (mode {mode:04o}); run \
         `chmod 600 {path}`"
    )]
    LooseMode { path: PathBuf, mode: u32 },
}

/// Where the master key came from (logged; the key itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Credential(PathBuf),
    Config,
    File(PathBuf),
    Generated(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Credential(p) => write!(f, "systemd credential {}", p.display()),
            KeySource::Config => f.write_str("configuration (secrets.master_key)"),
            KeySource::File(p) => write!(f, "file {}", p.display()),
            KeySource::Generated(p) => write!(f, "newly generated file {}", p.display()),
        }
    }
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretsError> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|e| SecretsError::Random(e.to_string()))?;
    Ok(buf)
}

/// `N` random bytes as lowercase hex: request, spawn and connection ids.
pub fn random_hex<const N: usize>() -> Result<String, SecretsError> {
    random_bytes::<N>().map(hex::encode)
}

/// Encrypts and decrypts values at rest under the master key.
pub struct Cipher {
    aead: XChaCha20Poly1305,
    /// A secret derived from the master key for other uses than encryption at rest (the
    /// cluster's hop credential): HMAC-SHA256(master key, a fixed label). The master key
    /// itself is not kept.
    derived: SecretBox<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

/// HMAC-SHA256 of `parts`, one after the other, under `key`: what the daemon's derived keys
/// (one per purpose, from the master key) and signed cookies are made with.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl Cipher {
    pub fn new(key: &SecretBox<[u8; KEY_LEN]>) -> Self {
        let derived = hmac_sha256(
            key.expose_secret(),
            &[b"gateway-supervisor derived secret v1"],
        );
        Cipher {
            aead: XChaCha20Poly1305::new(key.expose_secret().into()),
            derived: SecretBox::new(Box::new(derived)),
        }
    }

    /// The same on every daemon with the same master key; never the master key itself.
    pub fn derived_secret(&self) -> &[u8; KEY_LEN] {
        self.derived.expose_secret()
    }

    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let nonce = XNonce::from_slice(&nonce_bytes);
        let ct = self
            .aead
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SecretsError::Random("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretsError> {
        if blob.len() < NONCE_LEN {
            return Err(SecretsError::Decrypt);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        self.aead
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| SecretsError::Decrypt)
    }
}

fn parse_key(text: &str, source_name: &str) -> Result<SecretBox<[u8; KEY_LEN]>, SecretsError> {
    let text = text.trim();
    let bytes = if text.len() == KEY_LEN * 2 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(text).ok()
    } else {
        B64.decode(text).ok()
    };
    let bad = |reason: &str| SecretsError::BadKey {
        source_name: source_name.to_owned(),
        reason: reason.to_owned(),
    };
    let bytes = bytes.ok_or_else(|| bad("not base64 or hex"))?;
    let key: [u8; KEY_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| bad("must decode to exactly 32 bytes"))?;
    Ok(SecretBox::new(Box::new(key)))
}

fn read_key_file(path: &Path, source_name: &str) -> Result<SecretBox<[u8; KEY_LEN]>, SecretsError> {
    let text = fs::read_to_string(path).map_err(|e| SecretsError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    parse_key(&text, source_name)
}

/// Writes `contents` to a new file readable by the owner only.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), SecretsError> {
    let io = |e: std::io::Error| SecretsError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    // create_new + mode is subject to the umask; make 0600 explicit.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)
}

/// Resolves the master key: systemd credential → configuration → `<state>/master.key`
/// (generated, mode 0600, only when `new_database`: for a database that already holds
/// encrypted data a missing file is an error, and nothing is written).
pub fn load_master_key(
    credentials_dir: Option<&Path>,
    configured: Option<&str>,
    state_dir: &Path,
    new_database: bool,
) -> Result<(MasterKey, KeySource), SecretsError> {
    if let Some(dir) = credentials_dir {
        let path = dir.join(MASTER_KEY_CREDENTIAL);
        if path.is_file() {
            let key = read_key_file(&path, "the systemd credential")?;
            return Ok((key, KeySource::Credential(path)));
        }
    }
    if let Some(text) = configured.filter(|t| !t.trim().is_empty()) {
        return Ok((parse_key(text, "secrets.master_key")?, KeySource::Config));
    }
    let path = state_dir.join(MASTER_KEY_FILE);
    if path.exists() {
        let mode = fs::metadata(&path)
            .map_err(|e| SecretsError::Io {
                path: path.clone(),
                reason: e.to_string(),
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::LooseMode { path, mode });
        }
        let key = read_key_file(&path, &path.display().to_string())?;
        return Ok((key, KeySource::File(path)));
    }
    if !new_database {
        return Err(SecretsError::MissingKey { path });
    }
    let raw = random_bytes::<KEY_LEN>()?;
    write_private_file(&path, format!("{}\n", B64.encode(raw)).as_bytes())?;
    Ok((SecretBox::new(Box::new(raw)), KeySource::Generated(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretBox<[u8; KEY_LEN]> {
        SecretBox::new(Box::new([byte; KEY_LEN]))
    }

    #[test]
    fn round_trip_and_purpose_binding() {
        let cipher = Cipher::new(&key(7));
        let blob = cipher.encrypt(b"tok-123", purpose::GATEWAY_TOKEN).unwrap();
        assert!(!blob.windows(7).any(|w| w == b"tok-123"));
        assert_eq!(
            cipher.decrypt(&blob, purpose::GATEWAY_TOKEN).unwrap(),
            b"tok-123"
        );
        assert!(cipher.decrypt(&blob, purpose::DEVICE_TOKEN).is_err());
        assert!(
            Cipher::new(&key(8))
                .decrypt(&blob, purpose::GATEWAY_TOKEN)
                .is_err()
        );
        // Random nonces: the same plaintext never encrypts to the same blob.
        assert_ne!(
            blob,
            cipher.encrypt(b"tok-123", purpose::GATEWAY_TOKEN).unwrap()
        );
        assert!(cipher.decrypt(&blob[..10], purpose::GATEWAY_TOKEN).is_err());
    }

    #[test]
    fn a_missing_key_file_is_not_regenerated_for_an_existing_database() {
        let state = tempfile::tempdir().unwrap();
        let err = load_master_key(None, None, state.path(), false).unwrap_err();
        assert!(matches!(err, SecretsError::MissingKey { .. }), "{err}");
        assert!(
            !state.path().join(MASTER_KEY_FILE).exists(),
            "nothing written"
        );
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let state = tempfile::tempdir().unwrap();
        load_master_key(None, None, state.path(), true).unwrap();
        let path = state.path().join(MASTER_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_master_key(None, None, state.path(), false).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn master_key_precedence_and_generation() {
        let state = tempfile::tempdir().unwrap();
        let creds = tempfile::tempdir().unwrap();
        // Nothing configured: generated once, 0600, then reused.
        let (k1, src) = load_master_key(None, None, state.path(), true).unwrap();
        assert!(matches!(src, KeySource::Generated(_)));
        let mode = fs::metadata(state.path().join(MASTER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (k2, src) = load_master_key(None, None, state.path(), true).unwrap();
        assert!(matches!(src, KeySource::File(_)));
        assert_eq!(k1.expose_secret(), k2.expose_secret());
        // Config beats the file; the credential beats both.
        let hex_key = "11".repeat(32);
        let (k3, src) = load_master_key(None, Some(&hex_key), state.path(), true).unwrap();
        assert_eq!(src, KeySource::Config);
        assert_eq!(k3.expose_secret(), &[0x11; 32]);
        fs::write(
            creds.path().join(MASTER_KEY_CREDENTIAL),
            B64.encode([0x22; 32]),
        )
        .unwrap();
        let (k4, src) =
            load_master_key(Some(creds.path()), Some(&hex_key), state.path(), true).unwrap();
        assert!(matches!(src, KeySource::Credential(_)));
        assert_eq!(k4.expose_secret(), &[0x22; 32]);
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let state = tempfile::tempdir().unwrap();
        let err = load_master_key(None, Some("c2hvcnQ="), state.path(), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("32 bytes"), "{err}");
        assert!(!err.contains("c2hvcnQ"), "{err}");
    }
}
