//! Signing keys: parsed once and kept as ready key pairs, so that signing a token
//! costs one signature and nothing more. A [`Keys`] is one snapshot of the keys in the
//! database ([`super::ring`] keeps it fresh); the JWKS publishes the public half of
//! every key in it (RFC 7517 §5), including the next key before it signs.

use std::collections::HashMap;

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
enum PublicKey {
    /// The uncompressed point `0x04 || x || y`.
    Es256(Vec<u8>),
    EdDsa(Vec<u8>),
    Rs256 {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl PublicKey {
    fn alg(&self) -> SigningAlg {
        match self {
            Self::Es256(_) => SigningAlg::ES256,
            Self::EdDsa(_) => SigningAlg::EdDSA,
            Self::Rs256 { .. } => SigningAlg::RS256,
        }
    }
}

/// A key that may sign from `activates_at` on.
struct Signer {
    activates_at: i64,
    key: PrivateKey,
    /// BASE64URL of the JOSE header of tokens it signs.
    header_b64: String,
    kid: String,
}

/// One snapshot of the signing keys: those of the configured algorithm that may sign,
/// and the public half of every key.
pub struct Keys {
    alg: SigningAlg,
    /// Keys of `alg` with their private half, latest activation first.
    signers: Vec<Signer>,
    public: HashMap<String, PublicKey>,
    jwks: Jwks,
    rng: SystemRandom,
}

/// A freshly generated key: its public JWK and its PKCS#8 private key.
pub struct Generated {
    pub jwk: Jwk,
    pub pkcs8: Vec<u8>,
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

/// Generate a key pair for `alg`.
pub fn generate(alg: SigningAlg) -> anyhow::Result<Generated> {
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
    let (_, jwk) = load(alg, &der)?;
    Ok(Generated { jwk, pkcs8: der })
}

/// Parse a PKCS#8 private key of `alg`, with its public JWK (`kid` its thumbprint).
fn load(alg: SigningAlg, der: &[u8]) -> anyhow::Result<(PrivateKey, Jwk)> {
    let bad = |_| anyhow::anyhow!("not a valid PKCS#8 {} key", alg.as_str());
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
    Ok((key, jwk))
}

/// The public key of a JWK, ready to verify.
fn public_from_jwk(alg: SigningAlg, jwk: &Jwk) -> anyhow::Result<PublicKey> {
    let field = |v: &Option<String>, name: &str| -> anyhow::Result<Vec<u8>> {
        URL_SAFE_NO_PAD
            .decode(
                v.as_deref()
                    .with_context(|| format!("the JWK has no {name}"))?,
            )
            .with_context(|| format!("the JWK's {name} is not BASE64URL"))
    };
    Ok(match alg {
        SigningAlg::ES256 => {
            let mut point = vec![4u8];
            point.extend(field(&jwk.x, "x")?);
            point.extend(field(&jwk.y, "y")?);
            PublicKey::Es256(point)
        }
        SigningAlg::EdDSA => PublicKey::EdDsa(field(&jwk.x, "x")?),
        SigningAlg::RS256 => PublicKey::Rs256 {
            n: field(&jwk.n, "n")?,
            e: field(&jwk.e, "e")?,
        },
    })
}

/// The public JWK of a PKCS#8 private key of `alg` (a key file of an earlier version).
pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> anyhow::Result<Generated> {
    let (_, jwk) = load(alg, der)?;
    Ok(Generated {
        jwk,
        pkcs8: der.to_vec(),
    })
}

/// A key of the database as [`Keys::new`] takes it: its record fields, parsed.
pub struct KeyEntry {
    pub alg: SigningAlg,
    pub jwk: Jwk,
    /// The PKCS#8 private key, opened; `None` if wiped.
    pub pkcs8: Option<Vec<u8>>,
    pub activates_at: i64,
}

impl Keys {
    /// A snapshot of `entries` (by `activates_at`, oldest first) signing with keys of
    /// `alg`.
    pub fn new(alg: SigningAlg, entries: Vec<KeyEntry>) -> anyhow::Result<Self> {
        let mut signers = Vec::new();
        let mut public = HashMap::new();
        let mut jwks = Jwks { keys: Vec::new() };
        for entry in entries.into_iter().rev() {
            let kid = entry.jwk.kid.clone();
            public.insert(
                kid.clone(),
                public_from_jwk(entry.alg, &entry.jwk)
                    .with_context(|| format!("signing key {kid}"))?,
            );
            if let (true, Some(der)) = (entry.alg == alg, &entry.pkcs8) {
                let (key, jwk) =
                    load(entry.alg, der).with_context(|| format!("signing key {kid}"))?;
                anyhow::ensure!(
                    jwk.kid == kid,
                    "signing key {kid}: the private key does not match its public key"
                );
                let header =
                    serde_json::json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": kid });
                signers.push(Signer {
                    activates_at: entry.activates_at,
                    key,
                    header_b64: b64(header.to_string().as_bytes()),
                    kid: kid.clone(),
                });
            }
            jwks.keys.push(entry.jwk);
        }
        Ok(Self {
            alg,
            signers,
            public,
            jwks,
            rng: SystemRandom::new(),
        })
    }

    /// The key that signs at `now`: the latest activated one (or, if none has
    /// activated yet, the earliest to come).
    fn signer(&self, now: i64) -> anyhow::Result<&Signer> {
        self.signers
            .iter()
            .find(|s| s.activates_at <= now)
            .or_else(|| self.signers.last())
            .with_context(|| format!("no {} signing key", self.alg.as_str()))
    }

    /// The `kid` of the key that signs at `now`.
    pub fn signing_kid(&self, now: i64) -> Option<&str> {
        self.signer(now).ok().map(|s| s.kid.as_str())
    }

    /// The algorithm of the signing keys.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public keys, for `jwks_uri`.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Sign a JWT access token (RFC 9068 §2.1: `typ` is `at+jwt`).
    /// Signed by the key in force at `now`.
    pub fn sign_jwt(&self, now: i64, claims: &impl serde::Serialize) -> anyhow::Result<String> {
        let signer = self.signer(now)?;
        let payload = b64(&serde_json::to_vec(claims)?);
        let mut token = String::with_capacity(signer.header_b64.len() + payload.len() + 400);
        token.push_str(&signer.header_b64);
        token.push('.');
        token.push_str(&payload);
        let msg = token.as_bytes();
        let sig = match &signer.key {
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
        if header.get("alg")?.as_str()? != key.alg().as_str()
            || header.get("typ")?.as_str()? != "at+jwt"
        {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let msg = &token.as_bytes()[..h.len() + 1 + p.len()];
        let ok = match key {
            PublicKey::Es256(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(msg, &sig)
            }
            PublicKey::EdDsa(x) => UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, &sig),
            PublicKey::Rs256 { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                msg,
                &sig,
            ),
        };
        ok.ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(alg: SigningAlg, activates_at: i64) -> KeyEntry {
        let g = generate(alg).unwrap();
        KeyEntry {
            alg,
            jwk: g.jwk,
            pkcs8: Some(g.pkcs8),
            activates_at,
        }
    }

    #[test]
    fn sign_and_verify_every_algorithm() {
        for alg in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
            let keys = Keys::new(alg, vec![entry(alg, 0)]).unwrap();
            let token = keys
                .sign_jwt(10, &serde_json::json!({"sub": "alice"}))
                .unwrap();
            assert_eq!(keys.verify_jwt(&token).unwrap()["sub"], "alice");
            // A flipped payload character breaks the signature.
            let mut tampered = token.clone().into_bytes();
            let i = token.find('.').unwrap() + 2;
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            assert!(keys
                .verify_jwt(std::str::from_utf8(&tampered).unwrap())
                .is_none());
            // The public key rebuilt from the JWK alone verifies too.
            let mut public_only = entry(alg, 0);
            let e = Keys::new(alg, vec![entry(alg, 0)]).unwrap();
            public_only.jwk = e.jwks().keys[0].clone();
            public_only.pkcs8 = None;
            let verifier = Keys::new(alg, vec![public_only]).unwrap();
            let token = e.sign_jwt(10, &serde_json::json!({"sub": "bob"})).unwrap();
            assert_eq!(verifier.verify_jwt(&token).unwrap()["sub"], "bob");
        }
    }

    #[test]
    fn the_latest_activated_key_signs_and_every_key_is_published() {
        let old = entry(SigningAlg::ES256, 0);
        let next = entry(SigningAlg::ES256, 100);
        let other = entry(SigningAlg::EdDSA, 50);
        let (old_kid, next_kid) = (old.jwk.kid.clone(), next.jwk.kid.clone());
        let keys = Keys::new(SigningAlg::ES256, vec![old, other, next]).unwrap();
        assert_eq!(keys.jwks().keys.len(), 3);
        assert_eq!(keys.signing_kid(99), Some(old_kid.as_str()));
        assert_eq!(keys.signing_kid(100), Some(next_kid.as_str()));
        let before = keys.sign_jwt(99, &serde_json::json!({})).unwrap();
        let after = keys.sign_jwt(100, &serde_json::json!({})).unwrap();
        assert!(keys.verify_jwt(&before).is_some() && keys.verify_jwt(&after).is_some());
    }

    #[test]
    fn alg_none_refused() {
        let keys = Keys::new(SigningAlg::EdDSA, vec![entry(SigningAlg::EdDSA, 0)]).unwrap();
        let kid = &keys.jwks().keys[0].kid;
        let header = b64(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#).as_bytes());
        let token = format!("{header}.{}.", b64(br#"{"sub":"x"}"#));
        assert!(keys.verify_jwt(&token).is_none());
    }
}
