//! A client's public keys for `private_key_jwt`: a JWK Set (RFC 7517 §5) parsed into
//! keys ready to verify a JWS signature (RFC 7515) with the algorithms of RFC 7518 §3
//! and RFC 8037 §3.1 that Tessera accepts.

use anyhow::{bail, Context};
use aws_lc_rs::signature::{
    self, ParsedPublicKey, RsaPublicKeyComponents, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// A JWS algorithm accepted in a client assertion. `none` is not one of them, ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    ES256,
    EdDSA,
    RS256,
    PS256,
    /// `client_secret_jwt` only: HMAC with the client secret (RFC 7518 §3.2).
    HS256,
}

impl Alg {
    /// Every algorithm, as listed in the `*_auth_signing_alg_values_supported` metadata.
    pub const ALL: [Alg; 5] = [Alg::ES256, Alg::EdDSA, Alg::RS256, Alg::PS256, Alg::HS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::HS256 => "HS256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    fn verification(self) -> Option<&'static dyn VerificationAlgorithm> {
        match self {
            Self::ES256 => Some(&ECDSA_P256_SHA256_FIXED),
            Self::EdDSA => Some(&signature::ED25519),
            Self::RS256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            Self::PS256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
            Self::HS256 => None,
        }
    }
}

/// JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2,
/// §6.4.1; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 9] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "r"];

/// One public key of a client, parsed for each algorithm it may verify.
pub struct ClientKey {
    pub kid: Option<String>,
    /// The algorithms this key verifies: decided by its type, narrowed by its `alg`.
    verifiers: Vec<(Alg, ParsedPublicKey)>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<&str> = self.verifiers.iter().map(|(a, _)| a.as_str()).collect();
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("algs", &algs)
            .finish()
    }
}

impl ClientKey {
    /// Whether a JWS with header `alg` may be verified with this key.
    pub fn allows(&self, alg: Alg) -> bool {
        self.verifiers.iter().any(|(a, _)| *a == alg)
    }

    /// Verify `signature` over `message` with `alg`; false if the key does not allow it.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

fn member<'a>(jwk: &'a Value, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

fn decode(jwk: &Value, name: &str) -> anyhow::Result<Vec<u8>> {
    let text = member(jwk, name).with_context(|| format!("the key has no {name}"))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .with_context(|| format!("{name} is not BASE64URL"))
}

fn parse(alg: Alg, bytes: &[u8]) -> anyhow::Result<(Alg, ParsedPublicKey)> {
    let verification = alg.verification().context("not a public-key algorithm")?;
    let key = ParsedPublicKey::new(verification, bytes)
        .map_err(|e| anyhow::anyhow!("not a valid {} public key: {e}", alg.as_str()))?;
    Ok((alg, key))
}

/// Parse one JWK. Refuses private and symmetric keys, and key types Tessera cannot
/// verify with.
pub fn parse_key(jwk: &Value) -> anyhow::Result<ClientKey> {
    if !jwk.is_object() {
        bail!("a key is not a JSON object");
    }
    if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| jwk.get(**m).is_some()) {
        bail!("the key has the private member {private:?}: register public keys only");
    }
    let kid = member(jwk, "kid").map(str::to_owned);
    let declared = match jwk.get("alg") {
        None => None,
        Some(a) => {
            let name = a.as_str().context("alg is not a string")?;
            Some(
                Alg::parse(name)
                    .filter(|a| *a != Alg::HS256)
                    .with_context(|| format!("alg {name} is not supported"))?,
            )
        }
    };
    let kty = member(jwk, "kty").context("the key has no kty")?;
    // RFC 7517 §4.4: a key's `alg`, when present, is the only algorithm it is used with.
    let wanted = |alg: Alg| declared.is_none_or(|d| d == alg);
    let mut verifiers = Vec::new();
    match kty {
        "EC" => {
            let crv = member(jwk, "crv").unwrap_or("");
            if crv != "P-256" {
                bail!("EC curve {crv:?} is not supported (P-256 only)");
            }
            let (x, y) = (decode(jwk, "x")?, decode(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                bail!("a P-256 key has 32-byte x and y");
            }
            // RFC 7518 §6.2.1: the uncompressed point is 0x04 || x || y.
            let point = [&[4u8][..], &x, &y].concat();
            if wanted(Alg::ES256) {
                verifiers.push(parse(Alg::ES256, &point)?);
            }
        }
        "OKP" => {
            let crv = member(jwk, "crv").unwrap_or("");
            if crv != "Ed25519" {
                bail!("OKP curve {crv:?} is not supported (Ed25519 only)");
            }
            let x = decode(jwk, "x")?;
            if wanted(Alg::EdDSA) {
                verifiers.push(parse(Alg::EdDSA, &x)?);
            }
        }
        "RSA" => {
            let (n, e) = (decode(jwk, "n")?, decode(jwk, "e")?);
            // RFC 7518 §6.3.1: unsigned big-endian, no leading zero octets.
            let n = n.strip_prefix(&[0u8][..]).unwrap_or(&n);
            if n.len() < 256 {
                bail!("RSA keys must have at least 2048 bits");
            }
            let components = RsaPublicKeyComponents { n, e: e.as_slice() };
            for (alg, params) in [
                (Alg::RS256, &signature::RSA_PKCS1_2048_8192_SHA256),
                (Alg::PS256, &signature::RSA_PSS_2048_8192_SHA256),
            ] {
                if wanted(alg) {
                    let key = components
                        .to_parsed_public_key(params)
                        .map_err(|e| anyhow::anyhow!("not a valid RSA public key: {e}"))?;
                    verifiers.push((alg, key));
                }
            }
        }
        "oct" => bail!("symmetric keys do not belong in a JWK Set"),
        other => bail!("key type {other:?} is not supported"),
    }
    if verifiers.is_empty() {
        bail!(
            "alg {} does not fit key type {kty}",
            declared.map_or("", Alg::as_str)
        );
    }
    Ok(ClientKey { kid, verifiers })
}

/// Parse a JWK Set document. Every key must be usable: a set with a private key, or a
/// key Tessera cannot verify with, is refused as a whole.
pub fn parse_set(set: &Value) -> anyhow::Result<Vec<ClientKey>> {
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .context("a JWK Set is an object with a \"keys\" array")?;
    if keys.is_empty() {
        bail!("the JWK Set has no keys");
    }
    let parsed = keys
        .iter()
        .enumerate()
        .map(|(i, k)| parse_key(k).with_context(|| format!("key {i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Keys for encryption (RFC 7517 §4.2 `use: enc`) are skipped, not refused.
    let signing: Vec<ClientKey> = parsed
        .into_iter()
        .zip(keys)
        .filter(|(_, raw)| member(raw, "use").is_none_or(|u| u == "sig"))
        .map(|(k, _)| k)
        .collect();
    if signing.is_empty() {
        bail!("the JWK Set has no signing key");
    }
    Ok(signing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn private_and_symmetric_keys_are_refused() {
        let d = json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"});
        assert!(parse_key(&d).unwrap_err().to_string().contains("\"d\""));
        let oct = json!({"kty": "oct", "k": "AAAA"});
        assert!(parse_key(&oct).is_err());
        assert!(parse_set(&json!({"keys": []})).is_err());
    }

    #[test]
    fn alg_must_fit_the_key_type() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        use aws_lc_rs::signature::KeyPair;
        let x = URL_SAFE_NO_PAD.encode(kp.public_key().as_ref());
        let ok = parse_key(&json!({"kty": "OKP", "crv": "Ed25519", "x": x})).unwrap();
        assert!(ok.allows(Alg::EdDSA) && !ok.allows(Alg::ES256));
        let sig = kp.sign(b"msg");
        assert!(ok.verify(Alg::EdDSA, b"msg", sig.as_ref()));
        assert!(!ok.verify(Alg::EdDSA, b"other", sig.as_ref()));
        let wrong = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "ES256"});
        assert!(parse_key(&wrong).is_err());
    }
}
