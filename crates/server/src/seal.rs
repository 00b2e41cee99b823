//! Sealing small secrets at rest with AES-256-GCM.
//!
//! Tessera stores client secrets only as SHA-256 hashes, with one exception: a
//! `client_secret_jwt` client signs its assertions with HMAC keyed by the secret itself
//! (OpenID Connect Core §9), and a hash cannot key an HMAC. For those clients alone the
//! secret is also kept sealed, under a key derived from the master key
//! ([`crate::master`]), so that every instance sharing the database opens it.
//! Earlier versions sealed with `<data_dir>/keys/secrets.key`; when that file exists it
//! still opens what it sealed.

use std::path::Path;

use anyhow::{bail, Context};
use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};

/// The file name of the sealing key of earlier versions under the keys directory.
pub const LEGACY_KEY_FILE: &str = "secrets.key";

/// Seals and opens values; `seal` output is `nonce (12 bytes) || ciphertext || tag`.
pub struct Sealer {
    key: RandomizedNonceKey,
    /// A key that only opens (values sealed by earlier versions).
    legacy: Option<RandomizedNonceKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(AES-256-GCM, key redacted)")
    }
}

fn aes_key(key: &[u8]) -> anyhow::Result<RandomizedNonceKey> {
    if key.len() != 32 {
        bail!("a sealing key has 32 bytes, not {}", key.len());
    }
    RandomizedNonceKey::new(&AES_256_GCM, key)
        .map_err(|_| anyhow::anyhow!("cannot build an AES-256-GCM key"))
}

impl Sealer {
    /// A sealer from 32 key bytes.
    pub fn from_key(key: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            key: aes_key(key)?,
            legacy: None,
        })
    }

    /// Also open values sealed with `<dir>/secrets.key`, if that file exists.
    pub fn with_legacy_key_in(mut self, dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(LEGACY_KEY_FILE);
        if path.exists() {
            let key =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            self.legacy =
                Some(aes_key(&key).with_context(|| format!("loading {}", path.display()))?);
        }
        Ok(self)
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
        for key in std::iter::once(&self.key).chain(self.legacy.as_ref()) {
            let nonce = Nonce::try_assume_unique_for_key(nonce)
                .map_err(|_| anyhow::anyhow!("bad nonce"))?;
            let mut in_out = ciphertext.to_vec();
            if let Ok(plain) = key.open_in_place(nonce, Aad::from(context), &mut in_out) {
                return Ok(plain.to_vec());
            }
        }
        bail!("the sealed value does not open with this key")
    }
}

/// Create `path` with `bytes`, readable by its owner only; fails if it exists.
pub(crate) fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        let sealer = Sealer::from_key(&[3u8; 32]).unwrap();
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
        assert!(Sealer::from_key(&[4u8; 32])
            .unwrap()
            .open(b"client-1", &a)
            .is_err());
    }

    #[test]
    fn a_legacy_key_file_still_opens_what_it_sealed() {
        let dir =
            std::env::temp_dir().join(format!("tessera-seal-{}", crate::crypto::random_string(8)));
        std::fs::create_dir_all(&dir).unwrap();
        write_new_private(&dir.join(LEGACY_KEY_FILE), &[5u8; 32]).unwrap();
        let old = Sealer::from_key(&[5u8; 32])
            .unwrap()
            .seal(b"c", b"s")
            .unwrap();
        let sealer = Sealer::from_key(&[6u8; 32])
            .unwrap()
            .with_legacy_key_in(&dir)
            .unwrap();
        assert_eq!(sealer.open(b"c", &old).unwrap(), b"s");
        // New values are sealed under the new key only.
        let new = sealer.seal(b"c", b"t").unwrap();
        assert!(Sealer::from_key(&[5u8; 32])
            .unwrap()
            .open(b"c", &new)
            .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
