//! Signing keys: generated on first start under `<data_dir>/keys/`, parsed once, and
//! kept as ready key pairs so that signing a token costs one signature and nothing more.
//! The JWKS publishes the public half of every key found there (RFC 7517 §5).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey,
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tessera_protocol::metadata::{Jwk, Jwks};

use crate::config::SigningAlg;

enum PrivateKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// The public half of a key, ready to verify.
struct PublicKey {
    alg: SigningAlg,
    /// For ES256 and EdDSA the raw public key; for RS256 the DER `RSAPublicKey`.
    bytes: Vec<u8>,
}

struct Loaded {
    alg: SigningAlg,
    key: PrivateKey,
    jwk: Jwk,
}

/// The signing key in use, and the public keys that verify every key on disk.
pub struct Keys {
    active: PrivateKey,
    active_alg: SigningAlg,
    /// BASE64URL of the JOSE header of tokens signed by the active key.
    header_b64: String,
    public: HashMap<String, PublicKey>,
    jwks: Jwks,
    rng: SystemRandom,
}

fn file_name(alg: SigningAlg) -> &'static str {
    match alg {
        SigningAlg::ES256 => "es256.p8",
        SigningAlg::EdDSA => "eddsa.p8",
        SigningAlg::RS256 => "rs256.p8",
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order.
fn thumbprint(jwk: &Jwk) -> String {
    let canonical = match jwk.kty.as_str() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk.crv.as_deref().unwrap_or(""),
            jwk.x.as_deref().unwrap_or(""),
            jwk.y.as_deref().unwrap_or("")
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk.crv.as_deref().unwrap_or(""),
            jwk.x.as_deref().unwrap_or("")
        ),
        _ => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk.e.as_deref().unwrap_or(""),
            jwk.n.as_deref().unwrap_or("")
        ),
    };
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
}

fn generate(alg: SigningAlg) -> anyhow::Result<Vec<u8>> {
    let rng = SystemRandom::new();
    let der = match alg {
        SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("generating an ES256 key"))?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key"))?
            .as_ref()
            .to_vec(),
        SigningAlg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("generating an RSA key"))?
            .as_der()
            .map_err(|_| anyhow::anyhow!("encoding an RSA key"))?
            .as_ref()
            .to_vec(),
    };
    Ok(der)
}

fn load(alg: SigningAlg, der: &[u8]) -> anyhow::Result<Loaded> {
    let bad = |_| anyhow::anyhow!("the {} key file is not a valid PKCS#8 key", alg.as_str());
    let mut jwk = Jwk {
        kty: String::new(),
        kid: String::new(),
        use_: "sig".into(),
        alg: alg.as_str().into(),
        crv: None,
        x: None,
        y: None,
        n: None,
        e: None,
    };
    let key = match alg {
        SigningAlg::ES256 => {
            let kp =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?;
            // Uncompressed point: 0x04 || x || y.
            let point = kp.public_key().as_ref();
            jwk.kty = "EC".into();
            jwk.crv = Some("P-256".into());
            jwk.x = Some(b64(&point[1..33]));
            jwk.y = Some(b64(&point[33..65]));
            PrivateKey::Es256(kp)
        }
        SigningAlg::EdDSA => {
            let kp = Ed25519KeyPair::from_pkcs8(der).map_err(bad)?;
            jwk.kty = "OKP".into();
            jwk.crv = Some("Ed25519".into());
            jwk.x = Some(b64(kp.public_key().as_ref()));
            PrivateKey::EdDsa(kp)
        }
        SigningAlg::RS256 => {
            let kp = RsaKeyPair::from_pkcs8(der).map_err(bad)?;
            let public = kp.public_key();
            jwk.kty = "RSA".into();
            jwk.n = Some(b64(public.modulus().big_endian_without_leading_zero()));
            jwk.e = Some(b64(public.exponent().big_endian_without_leading_zero()));
            PrivateKey::Rs256(kp)
        }
    };
    jwk.kid = thumbprint(&jwk);
    Ok(Loaded { alg, key, jwk })
}

fn public_bytes(key: &PrivateKey) -> Vec<u8> {
    match key {
        PrivateKey::Es256(kp) => kp.public_key().as_ref().to_vec(),
        PrivateKey::EdDsa(kp) => kp.public_key().as_ref().to_vec(),
        PrivateKey::Rs256(kp) => kp.public_key().as_ref().to_vec(),
    }
}

impl Keys {
    /// Load every key under `dir`, generating the key for `alg` if it is missing.
    pub fn load_or_generate(dir: &Path, alg: SigningAlg) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let active_path = dir.join(file_name(alg));
        if !active_path.exists() {
            let der = generate(alg)?;
            write_private(&active_path, &der)?;
            tracing::info!(alg = alg.as_str(), path = %active_path.display(), "generated a signing key");
        }
        let mut active = None;
        let mut public = HashMap::new();
        let mut jwks = Jwks { keys: Vec::new() };
        for candidate in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
            let path = dir.join(file_name(candidate));
            if !path.exists() {
                continue;
            }
            let der =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let loaded =
                load(candidate, &der).with_context(|| format!("loading {}", path.display()))?;
            public.insert(
                loaded.jwk.kid.clone(),
                PublicKey {
                    alg: loaded.alg,
                    bytes: public_bytes(&loaded.key),
                },
            );
            jwks.keys.push(loaded.jwk.clone());
            if candidate == alg {
                active = Some(loaded);
            }
        }
        let active = active.context("the active signing key did not load")?;
        Ok(Self::from_parts(active, public, jwks))
    }

    fn from_parts(active: Loaded, public: HashMap<String, PublicKey>, jwks: Jwks) -> Self {
        let header = serde_json::json!({ "alg": active.alg.as_str(), "typ": "at+jwt", "kid": active.jwk.kid });
        Self {
            header_b64: b64(header.to_string().as_bytes()),
            active: active.key,
            active_alg: active.alg,
            public,
            jwks,
            rng: SystemRandom::new(),
        }
    }

    /// The algorithm of the active key.
    pub fn alg(&self) -> SigningAlg {
        self.active_alg
    }

    /// The public keys, for `jwks_uri`.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Sign a JWT access token (RFC 9068 §2.1: `typ` is `at+jwt`).
    pub fn sign_jwt(&self, claims: &impl serde::Serialize) -> anyhow::Result<String> {
        let payload = b64(&serde_json::to_vec(claims)?);
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() + 400);
        token.push_str(&self.header_b64);
        token.push('.');
        token.push_str(&payload);
        let msg = token.as_bytes();
        let sig = match &self.active {
            PrivateKey::Es256(kp) => kp
                .sign(&self.rng, msg)
                .map_err(|_| anyhow::anyhow!("ES256 signing failed"))?
                .as_ref()
                .to_vec(),
            PrivateKey::EdDsa(kp) => kp.sign(msg).as_ref().to_vec(),
            PrivateKey::Rs256(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .map_err(|_| anyhow::anyhow!("RS256 signing failed"))?;
                sig
            }
        };
        token.push('.');
        token.push_str(&b64(&sig));
        Ok(token)
    }

    /// Verify a JWT signed by one of our keys and return its payload.
    ///
    /// The header's `alg` must be the algorithm of the key named by `kid` (never
    /// `none`, never another algorithm), and `typ` must be `at+jwt`.
    pub fn verify_jwt(&self, token: &str) -> Option<serde_json::Value> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        let key = self.public.get(header.get("kid")?.as_str()?)?;
        if header.get("alg")?.as_str()? != key.alg.as_str()
            || header.get("typ")?.as_str()? != "at+jwt"
        {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let msg = &token.as_bytes()[..h.len() + 1 + p.len()];
        let ok = match key.alg {
            SigningAlg::ES256 => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.bytes).verify(msg, &sig)
            }
            SigningAlg::EdDSA => {
                UnparsedPublicKey::new(&signature::ED25519, &key.bytes).verify(msg, &sig)
            }
            SigningAlg::RS256 => {
                UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &key.bytes)
                    .verify(msg, &sig)
            }
        };
        ok.ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    }
}

/// Write a private key readable by its owner only.
fn write_private(path: &Path, der: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(der)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_every_algorithm() {
        let dir =
            std::env::temp_dir().join(format!("tessera-keys-{}", crate::crypto::random_string(8)));
        for alg in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
            let keys = Keys::load_or_generate(&dir, alg).unwrap();
            let token = keys.sign_jwt(&serde_json::json!({"sub": "alice"})).unwrap();
            assert_eq!(keys.verify_jwt(&token).unwrap()["sub"], "alice");
            // A flipped payload character breaks the signature.
            let mut tampered = token.clone().into_bytes();
            let i = token.find('.').unwrap() + 2;
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            assert!(keys
                .verify_jwt(std::str::from_utf8(&tampered).unwrap())
                .is_none());
        }
        // All three keys stay published.
        let keys = Keys::load_or_generate(&dir, SigningAlg::ES256).unwrap();
        assert_eq!(keys.jwks().keys.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn alg_none_refused() {
        let dir =
            std::env::temp_dir().join(format!("tessera-keys-{}", crate::crypto::random_string(8)));
        let keys = Keys::load_or_generate(&dir, SigningAlg::EdDSA).unwrap();
        let kid = &keys.jwks().keys[0].kid;
        let header = b64(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#).as_bytes());
        let token = format!("{header}.{}.", b64(br#"{"sub":"x"}"#));
        assert!(keys.verify_jwt(&token).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
