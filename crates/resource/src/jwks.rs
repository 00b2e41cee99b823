//! The issuer's public keys (RFC 7517), parsed once and cached by `kid`. An unknown
//! `kid` triggers a refetch, but never more often than the configured floor.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

/// Signature algorithms a [`crate::Verifier`] may accept. `none` does not exist here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    ES256,
    EdDSA,
    RS256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::ES256, Self::EdDSA, Self::RS256]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// A verification key and the one algorithm it may be used with.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub alg: Algorithm,
    material: Material,
}

#[derive(Debug, Clone)]
enum Material {
    /// ES256: uncompressed P-256 point; EdDSA: the 32-byte Ed25519 key.
    Raw(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl Key {
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match (&self.material, self.alg) {
            (Material::Raw(k), Algorithm::ES256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, k)
                    .verify(message, sig)
                    .is_ok()
            }
            (Material::Raw(k), Algorithm::EdDSA) => UnparsedPublicKey::new(&signature::ED25519, k)
                .verify(message, sig)
                .is_ok(),
            (Material::Rsa { n, e }, Algorithm::RS256) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

fn decode(field: &Option<String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(field.as_deref()?).ok()
}

/// Parse one JWK into a key, deciding its algorithm from its type: a key is never
/// used with an algorithm it does not have.
fn parse_key(raw: RawJwk) -> Option<(String, Key)> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let (alg, material) = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("EC", Some("P-256")) => {
            let (x, y) = (decode(&raw.x)?, decode(&raw.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = vec![4u8];
            point.extend(x);
            point.extend(y);
            (Algorithm::ES256, Material::Raw(point))
        }
        ("OKP", Some("Ed25519")) => {
            let x = decode(&raw.x)?;
            if x.len() != 32 {
                return None;
            }
            (Algorithm::EdDSA, Material::Raw(x))
        }
        ("RSA", _) => (
            Algorithm::RS256,
            Material::Rsa {
                n: decode(&raw.n)?,
                e: decode(&raw.e)?,
            },
        ),
        _ => return None,
    };
    // A key that declares an algorithm must declare its own.
    if raw.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
        return None;
    }
    Some((raw.kid?, Key { alg, material }))
}

/// Parse a JWKS document; keys Tessera cannot use are skipped.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Key>, String> {
    let raw: RawJwks =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not valid JSON: {e}"))?;
    Ok(raw
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<RawJwk>(k).ok())
        .filter_map(parse_key)
        .collect())
}

/// Cached keys by `kid`, with a floor on how often they are fetched again.
pub(crate) struct KeyCache {
    keys: RwLock<HashMap<String, Key>>,
    /// Held while fetching, so concurrent misses cause one fetch; holds when the
    /// last fetch was attempted.
    last_fetch: Mutex<Option<Instant>>,
    floor: Duration,
}

impl KeyCache {
    pub fn new(floor: Duration) -> Self {
        Self {
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            floor,
        }
    }

    /// The key named `kid`, fetching the JWKS with `fetch` when it is unknown and the
    /// last fetch is older than the floor.
    pub async fn get<F, Fut>(&self, kid: &str, fetch: F) -> Result<Option<Key>, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<HashMap<String, Key>, String>>,
    {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(Some(key.clone()));
        }
        let mut last = self.last_fetch.lock().await;
        // Another task may have fetched while this one waited.
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(Some(key.clone()));
        }
        if last.is_some_and(|t| t.elapsed() < self.floor) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        let fresh = fetch().await?;
        let found = fresh.get(kid).cloned();
        *self.keys.write().await = fresh;
        Ok(found)
    }
}
