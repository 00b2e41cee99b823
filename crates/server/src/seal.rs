//! Sealing small secrets at rest with AES-256-GCM under a key of the data dir.
//!
//! Tessera stores client secrets only as SHA-256 hashes, with one exception: a
//! `client_secret_jwt` client signs its assertions with HMAC keyed by the secret itself
//! (OpenID Connect Core §9), and a hash cannot key an HMAC. For those clients alone the
//! secret is also kept sealed here. The key lives in `<data_dir>/keys/secrets.key`
//! (32 random bytes, mode 0600), generated on first use.

use std::path::Path;

use anyhow::{bail, Context};
use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};

/// The file name of the sealing key under the keys directory.
pub const KEY_FILE: &str = "secrets.key";

/// Seals and opens values; `seal` output is `nonce (12 bytes) || ciphertext || tag`.
pub struct Sealer {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(AES-256-GCM, key redacted)")
    }
}

impl Sealer {
    /// A sealer from 32 key bytes.
    pub fn from_key(key: &[u8]) -> anyhow::Result<Self> {
        if key.len() != 32 {
            bail!("a sealing key has 32 bytes, not {}", key.len());
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, key)
            .map_err(|_| anyhow::anyhow!("cannot build an AES-256-GCM key"))?;
        Ok(Self { key })
    }

    /// Load `<dir>/secrets.key`, generating it (mode 0600) if it does not exist.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            let mut key = [0u8; 32];
            aws_lc_rs::rand::fill(&mut key).map_err(|_| {
                anyhow::anyhow!("the operating system's random number generator failed")
            })?;
            match write_new_private(&path, &key) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "generated the secret-sealing key")
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        let key = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_key(&key).with_context(|| format!("loading {}", path.display()))
    }

    /// Encrypt `plaintext`, binding it to `context` (e.g. the client id) so that a
    /// sealed value copied to another record does not open there.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context), &mut in_out)
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + in_out.len());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// Decrypt a value sealed with the same key and `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            bail!("the sealed value is too short");
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut in_out)
            .map_err(|_| anyhow::anyhow!("the sealed value does not open with this key"))?;
        Ok(plain.to_vec())
    }
}

/// Create `path` with `bytes`, readable by its owner only; fails if it exists.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let dir =
            std::env::temp_dir().join(format!("tessera-seal-{}", crate::crypto::random_string(8)));
        let sealer = Sealer::load_or_generate(&dir).unwrap();
        let a = sealer.seal(b"client-1", b"secret").unwrap();
        let b = sealer.seal(b"client-1", b"secret").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert_eq!(sealer.open(b"client-1", &a).unwrap(), b"secret");
        assert!(
            sealer.open(b"client-2", &a).is_err(),
            "bound to its context"
        );
        let mut tampered = a.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(b"client-1", &tampered).is_err());
        // The same key is loaded again, with owner-only permissions.
        let again = Sealer::load_or_generate(&dir).unwrap();
        assert_eq!(again.open(b"client-1", &a).unwrap(), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
