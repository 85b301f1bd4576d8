//! Issuer keys: the Ed25519 signing key a unit's backend (or `kioskctl`) holds, the public keys a kiosk
//! trusts, and their small text files.
//!
//! File formats (also in `docs/ticket-format.md`); `#` comments and blank lines are ignored, and the
//! first line is a fixed header so a secret file can never be mistaken for a public one:
//!
//! ```text
//! # issuer-00001234.key, mode 0600
//! graduate-kiosk ticket issuer secret key v1
//! key-id: 4660
//! seed: <64 hex digits, the Ed25519 secret seed>
//!
//! # issuer-00001234.pub
//! graduate-kiosk ticket issuer public key v1
//! key-id: 4660
//! public: <64 hex digits, the Ed25519 public key>
//! ```
//!
//! This module does not sign or verify tickets (see `format`) and keeps no key in any global state.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::TicketId;

const SECRET_HEADER: &str = "graduate-kiosk ticket issuer secret key v1";
const PUBLIC_HEADER: &str = "graduate-kiosk ticket issuer public key v1";

/// Why a key could not be made, read, written or trusted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(getrandom::Error),
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A key file (or a configured key) does not follow the format.
    #[error("bad key format: {0}")]
    Format(String),
    /// The bytes are not a valid Ed25519 public key (or are a weak, small-order one).
    #[error("key id {0}: not a valid Ed25519 public key")]
    InvalidPublicKey(u32),
    /// Two different public keys configured under one key id.
    #[error("key id {0} is configured twice with different public keys")]
    DuplicateKeyId(u32),
}

/// An issuer's signing key with its key id. `Debug` never shows the secret.
#[derive(Clone)]
pub struct IssuerKey {
    pub key_id: u32,
    signing: SigningKey,
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKey")
            .field("key_id", &self.key_id)
            .field("public", &self.public())
            .finish()
    }
}

/// The key id derived from a public key: the first four bytes of its SHA-256, so ids from independent
/// `keygen` runs practically never collide and anyone can recompute them.
pub fn derived_key_id(public: &[u8; 32]) -> u32 {
    let h = Sha256::digest(public);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(KeyError::Random)?;
    Ok(b)
}

impl TicketId {
    /// A fresh random ticket id from the operating system's random source.
    pub fn random() -> Result<TicketId, KeyError> {
        Ok(TicketId(random_bytes()?))
    }
}

impl IssuerKey {
    /// A new key from the operating system's random source.
    pub fn generate(key_id: u32) -> Result<IssuerKey, KeyError> {
        Ok(IssuerKey::from_seed(key_id, random_bytes()?))
    }

    /// A new key whose id is [`derived_key_id`] of its public key.
    pub fn generate_with_derived_id() -> Result<IssuerKey, KeyError> {
        let mut key = IssuerKey::generate(0)?;
        key.key_id = derived_key_id(&key.signing.verifying_key().to_bytes());
        Ok(key)
    }

    /// A key from a known 32-byte seed (tests, and loading a `.key` file).
    pub fn from_seed(key_id: u32, seed: [u8; 32]) -> IssuerKey {
        IssuerKey {
            key_id,
            signing: SigningKey::from_bytes(&seed),
        }
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The matching public key, to hand to kiosks.
    pub fn public(&self) -> IssuerPublicKey {
        IssuerPublicKey {
            key_id: self.key_id,
            key: self.signing.verifying_key(),
        }
    }

    /// The `.key` file text.
    pub fn to_key_file(&self) -> String {
        format!(
            "{SECRET_HEADER}\nkey-id: {}\nseed: {}\n",
            self.key_id,
            hex::encode(self.signing.to_bytes())
        )
    }

    /// Parses `.key` file text.
    pub fn from_key_file(text: &str) -> Result<IssuerKey, KeyError> {
        let (key_id, seed) = parse_key_text(text, SECRET_HEADER, "seed")?;
        Ok(IssuerKey::from_seed(key_id, seed))
    }

    /// Reads a `.key` file.
    pub fn load(path: &Path) -> Result<IssuerKey, KeyError> {
        IssuerKey::from_key_file(&read(path)?)
    }

    /// Writes `issuer-XXXXXXXX.key` (mode 0600, never overwriting) and `issuer-XXXXXXXX.pub` into `dir`,
    /// named by the key id in hex. Returns both paths.
    pub fn save(&self, dir: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
        let stem = format!("issuer-{:08x}", self.key_id);
        let key_path = dir.join(format!("{stem}.key"));
        let pub_path = dir.join(format!("{stem}.pub"));
        write_new(&key_path, self.to_key_file().as_bytes(), 0o600)?;
        write_new(&pub_path, self.public().to_pub_file().as_bytes(), 0o644)?;
        Ok((key_path, pub_path))
    }
}

/// A trusted issuer's public key with its key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerPublicKey {
    pub key_id: u32,
    pub key: VerifyingKey,
}

impl IssuerPublicKey {
    /// From the 64 hex digits a kiosk config lists. Weak (small-order) keys are refused: any signature
    /// would verify under some of them.
    pub fn from_hex(key_id: u32, hex_key: &str) -> Result<IssuerPublicKey, KeyError> {
        let bytes = decode_hex32(hex_key.trim())?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey(key_id))?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey(key_id));
        }
        Ok(IssuerPublicKey { key_id, key })
    }

    /// The public key as 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The `.pub` file text.
    pub fn to_pub_file(&self) -> String {
        format!(
            "{PUBLIC_HEADER}\nkey-id: {}\npublic: {}\n",
            self.key_id,
            self.hex()
        )
    }

    /// Parses `.pub` file text.
    pub fn from_pub_file(text: &str) -> Result<IssuerPublicKey, KeyError> {
        let (key_id, bytes) = parse_key_text(text, PUBLIC_HEADER, "public")?;
        IssuerPublicKey::from_hex(key_id, &hex::encode(bytes))
    }

    /// Reads a `.pub` file.
    pub fn load(path: &Path) -> Result<IssuerPublicKey, KeyError> {
        IssuerPublicKey::from_pub_file(&read(path)?)
    }
}

/// The issuer public keys a kiosk accepts, by key id. Several at once, so a unit can rotate keys without
/// invalidating tickets already on students' phones.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<u32, VerifyingKey>,
}

impl TrustedKeys {
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// Adds a key. The same key under the same id again is harmless; a different key under a known id is
    /// refused, because silently picking one would make verification depend on config order.
    pub fn insert(&mut self, key: IssuerPublicKey) -> Result<(), KeyError> {
        match self.keys.get(&key.key_id) {
            Some(existing) if *existing != key.key => Err(KeyError::DuplicateKeyId(key.key_id)),
            _ => {
                self.keys.insert(key.key_id, key.key);
                Ok(())
            }
        }
    }

    /// From `(key id, hex public key)` pairs, as the kiosk config lists them.
    pub fn from_pairs<I, S>(pairs: I) -> Result<TrustedKeys, KeyError>
    where
        I: IntoIterator<Item = (u32, S)>,
        S: AsRef<str>,
    {
        let mut t = TrustedKeys::new();
        for (id, hex_key) in pairs {
            t.insert(IssuerPublicKey::from_hex(id, hex_key.as_ref())?)?;
        }
        Ok(t)
    }

    /// From `.pub` files.
    pub fn load_pub_files<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
    ) -> Result<TrustedKeys, KeyError> {
        let mut t = TrustedKeys::new();
        for p in paths {
            t.insert(IssuerPublicKey::load(p.as_ref())?)?;
        }
        Ok(t)
    }

    /// The public key for a key id, if trusted.
    pub fn get(&self, key_id: u32) -> Option<&VerifyingKey> {
        self.keys.get(&key_id)
    }

    pub fn key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    // create_new: regenerating into the same directory must never destroy a key that signed live tickets.
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Set at creation so the secret is never readable by others, not even between create and chmod.
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)
}

fn decode_hex32(s: &str) -> Result<[u8; 32], KeyError> {
    let v = hex::decode(s).map_err(|e| KeyError::Format(format!("hex: {e}")))?;
    v.try_into()
        .map_err(|v: Vec<u8>| KeyError::Format(format!("expected 32 bytes, got {}", v.len())))
}

fn parse_key_text(text: &str, header: &str, value_name: &str) -> Result<(u32, [u8; 32]), KeyError> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    if lines.next() != Some(header) {
        return Err(KeyError::Format(format!("first line must be {header:?}")));
    }
    let (mut key_id, mut value) = (None, None);
    for line in lines {
        let (name, v) = line
            .split_once(':')
            .ok_or_else(|| KeyError::Format(format!("expected `name: value`: {line:?}")))?;
        match name.trim() {
            "key-id" => {
                let id = v
                    .trim()
                    .parse::<u32>()
                    .map_err(|e| KeyError::Format(format!("key-id: {e}")))?;
                if key_id.replace(id).is_some() {
                    return Err(KeyError::Format("key-id given twice".into()));
                }
            }
            n if n == value_name => {
                if value.replace(decode_hex32(v.trim())?).is_some() {
                    return Err(KeyError::Format(format!("{value_name} given twice")));
                }
            }
            other => return Err(KeyError::Format(format!("unknown field {other:?}"))),
        }
    }
    match (key_id, value) {
        (Some(id), Some(v)) => Ok((id, v)),
        _ => Err(KeyError::Format(format!("needs both key-id and {value_name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_save_with_mode_0600() {
        let key = IssuerKey::from_seed(7, [3; 32]);
        let back = IssuerKey::from_key_file(&key.to_key_file()).expect("parse .key");
        assert_eq!(back.public(), key.public());
        let public = IssuerPublicKey::from_pub_file(&key.public().to_pub_file()).expect("parse .pub");
        assert_eq!(public, key.public());

        let dir = tempfile::tempdir().expect("tempdir");
        let (k, p) = key.save(dir.path()).expect("save");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&k).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(IssuerKey::load(&k).expect("load").public(), key.public());
        assert_eq!(IssuerPublicKey::load(&p).expect("load"), key.public());
        assert!(
            matches!(key.save(dir.path()), Err(KeyError::Io { .. })),
            "must not overwrite"
        );
    }

    #[test]
    fn secret_file_is_not_accepted_as_public() {
        let key = IssuerKey::from_seed(7, [3; 32]);
        assert!(matches!(
            IssuerPublicKey::from_pub_file(&key.to_key_file()),
            Err(KeyError::Format(_))
        ));
    }

    #[test]
    fn trusted_keys_refuse_conflicting_ids_and_weak_keys() {
        let a = IssuerKey::from_seed(1, [1; 32]).public();
        let b = IssuerKey::from_seed(1, [2; 32]).public();
        let mut t = TrustedKeys::new();
        t.insert(a.clone()).expect("first");
        t.insert(a).expect("same again");
        assert!(matches!(t.insert(b), Err(KeyError::DuplicateKeyId(1))));
        // The identity point is a small-order key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            IssuerPublicKey::from_hex(9, &hex::encode(identity)),
            Err(KeyError::InvalidPublicKey(9))
        ));
    }

    #[test]
    fn derived_key_ids_differ() {
        let a = IssuerKey::generate_with_derived_id().expect("random");
        let b = IssuerKey::generate_with_derived_id().expect("random");
        assert_ne!(a.key_id, b.key_id);
        assert_eq!(a.key_id, derived_key_id(&a.public().key.to_bytes()));
    }
}
