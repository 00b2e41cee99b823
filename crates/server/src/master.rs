//! The master key: 32 random bytes from `TESSERA_MASTER_KEY` (or the config's
//! `master_key`), from which the keys that encrypt secrets at rest are derived with
//! HKDF-SHA256 (RFC 5869), one per purpose, so that no two uses share a key.
//!
//! With PostgreSQL several instances share one database and must share the master key,
//! so it must be given; Tessera refuses to start rather than keep signing keys in the
//! clear. With SQLite, when none is given, one is generated at
//! `<data_dir>/keys/master.key` (mode 0600) on first use.

use std::path::Path;

use anyhow::{bail, Context};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::config::Config;
use crate::seal::Sealer;

/// The file name of a generated master key under the keys directory (SQLite only).
pub const KEY_FILE: &str = "master.key";

/// What a derived key protects; the HKDF `info` of each.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// The private halves of the signing keys in the database.
    SigningKeys,
    /// The sealed secrets of `client_secret_jwt` clients.
    ClientSecrets,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Self::SigningKeys => b"tessera/signing-keys/v1",
            Self::ClientSecrets => b"tessera/client-secrets/v1",
        }
    }
}

/// The master key in force.
pub struct MasterKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    /// Parse a master key given as base64 (standard or URL-safe, padded or not).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let bytes = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .context(
                "the master key is not base64 (generate one with `tessera key new-master-key`)",
            )?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!(
                "the master key must be 32 bytes, not {} (generate one with `tessera key new-master-key`)",
                b.len()
            )
        })?;
        Ok(Self { bytes })
    }

    /// A fresh master key from the operating system's random number generator.
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
            anyhow::anyhow!("the operating system's random number generator failed")
        })?;
        Ok(Self { bytes })
    }

    /// The key in standard base64, as `TESSERA_MASTER_KEY` takes it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// The master key of `config`: the configured one, or with SQLite the one under
    /// `<data_dir>/keys/` (generated on first use). PostgreSQL without one is refused.
    pub fn resolve(config: &Config) -> anyhow::Result<Self> {
        if let Some(given) = &config.master_key {
            return Self::parse(&given.0).context("invalid master_key (TESSERA_MASTER_KEY)");
        }
        if !config.database_url().starts_with("sqlite:") {
            bail!(
                "a master key is required with PostgreSQL: set TESSERA_MASTER_KEY (or master_key \
                 in the config) to 32 random bytes in base64, the same on every instance; \
                 `tessera key new-master-key` prints one"
            );
        }
        Self::load_or_generate(&config.data_dir.join("keys"))
    }

    /// Load `<dir>/master.key`, generating it (mode 0600) if it does not exist.
    fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            let key = Self::generate()?;
            match crate::seal::write_new_private(&path, &key.bytes) {
                Ok(()) => tracing::info!(path = %path.display(), "generated the master key"),
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} does not hold 32 bytes", path.display()))?;
        Ok(Self { bytes })
    }

    /// The 32-byte key for `purpose` (HKDF-SHA256, empty salt, the purpose as `info`).
    pub fn derive(&self, purpose: Purpose) -> [u8; 32] {
        let mut out = [0u8; 32];
        let info = [purpose.info()];
        Salt::new(HKDF_SHA256, &[])
            .extract(&self.bytes)
            .expand(&info, HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out))
            .expect("HKDF-SHA256 yields 32 bytes");
        out
    }

    /// An AES-256-GCM sealer under the key derived for `purpose`.
    pub fn sealer(&self, purpose: Purpose) -> anyhow::Result<Sealer> {
        Sealer::from_key(&self.derive(purpose))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_base64_of_32_bytes_only() {
        let key = MasterKey::generate().unwrap();
        let text = key.to_base64();
        assert_eq!(MasterKey::parse(&text).unwrap().bytes, key.bytes);
        assert_eq!(
            MasterKey::parse(&URL_SAFE_NO_PAD.encode(key.bytes))
                .unwrap()
                .bytes,
            key.bytes
        );
        let short = MasterKey::parse(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert!(format!("{short:#}").contains("32 bytes, not 16"));
        assert!(MasterKey::parse("not base64 at all!").is_err());
    }

    #[test]
    fn purposes_get_different_keys() {
        let key = MasterKey::parse(&STANDARD.encode([7u8; 32])).unwrap();
        assert_ne!(
            key.derive(Purpose::SigningKeys),
            key.derive(Purpose::ClientSecrets)
        );
        // Deterministic: every instance with the same master key derives the same keys.
        assert_eq!(
            key.derive(Purpose::SigningKeys),
            MasterKey::parse(&STANDARD.encode([7u8; 32]))
                .unwrap()
                .derive(Purpose::SigningKeys)
        );
    }
}
