//! Pseudonymisation of user ids (docs/EVENTS.md, `user_id`).
//!
//! A raw `user_id` never leaves the request handler: it is replaced by the first 8 bytes of
//! HMAC-SHA-256(key, user_id), read as a big-endian `u64`. Eight bytes keep per-day activity sets
//! compact; the chance that two of a million users share a key is about 3e-8.
//!
//! The key comes from the config (`privacy.hmac_key`) or the environment
//! (`FLYWHEEL_HMAC_KEY`); without either, a random key is generated on first start and kept in
//! `<data_dir>/hmac.key` with mode 0600, so that pseudonyms stay stable across restarts.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Pseudonymizer {
    mac: HmacSha256,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

/// Where the key came from, so start-up can log it (never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    FileExisting,
    FileGenerated,
}

impl Pseudonymizer {
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mac = match HmacSha256::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => unreachable!("hmac accepts any key length"),
        };
        Self { mac }
    }

    /// The pseudonymous key of a user id.
    pub fn key(&self, user_id: &str) -> u64 {
        let mut m = self.mac.clone();
        m.update(user_id.as_bytes());
        let out = m.finalize().into_bytes();
        let mut b = [0u8; 8];
        b.copy_from_slice(&out[..8]);
        u64::from_be_bytes(b)
    }

    /// A fingerprint of the key (HMAC of a fixed label, 16 hex digits): the same key gives the
    /// same fingerprint, and it reveals nothing about the key. Recorded in the store so that a
    /// process with a different key refuses to share it.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.key("flywheel key fingerprint v1").to_be_bytes())
    }

    /// Use the configured key, or load the key file in `data_dir`; never creates one (for
    /// commands that must find users under the key the service used).
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<Self, String> {
        let path = data_dir.join("hmac.key");
        if configured.is_none() && !path.exists() {
            return Err(format!(
                "no privacy.hmac_key configured and no key file at {}: without the service's key, user ids cannot be matched to their pseudonyms",
                path.display()
            ));
        }
        Self::load_or_create(configured, data_dir)
            .map(|(p, _)| p)
            .map_err(|e| format!("cannot read the pseudonymisation key: {e}"))
    }

    /// Use the configured key, or load (or create) the key file in `data_dir`.
    pub fn load_or_create(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> std::io::Result<(Self, KeySource)> {
        if let Some(k) = configured {
            return Ok((Self::new(k.as_bytes()), KeySource::Configured));
        }
        let path = data_dir.join("hmac.key");
        match std::fs::read_to_string(&path) {
            Ok(s) => {
                let bytes = hex::decode(s.trim()).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: not a hex key ({e})", path.display()),
                    )
                })?;
                Ok((Self::new(&bytes), KeySource::FileExisting))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                write_private(&path, hex::encode(key).as_bytes())?;
                Ok((Self::new(&key), KeySource::FileGenerated))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_stable_and_keyed() {
        let a = Pseudonymizer::new(b"k1");
        let b = Pseudonymizer::new(b"k2");
        assert_eq!(a.key("alice"), a.key("alice"));
        assert_ne!(a.key("alice"), a.key("bob"));
        assert_ne!(a.key("alice"), b.key("alice"));
    }

    #[test]
    fn generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (p1, s1) = Pseudonymizer::load_or_create(None, dir.path()).expect("create");
        assert_eq!(s1, KeySource::FileGenerated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("hmac.key"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (p2, s2) = Pseudonymizer::load_or_create(None, dir.path()).expect("load");
        assert_eq!(s2, KeySource::FileExisting);
        assert_eq!(p1.key("u"), p2.key("u"));
    }
}
