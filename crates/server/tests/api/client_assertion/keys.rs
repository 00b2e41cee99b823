//! The client's side of an assertion: key pairs, their public JWKs, and JWS signing.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A client's private key, as the client would hold it.
pub enum Key {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Key {
    pub fn es256() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Key::Es256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap(),
        )
    }

    pub fn rs256() -> Self {
        Key::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    pub fn eddsa() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Key::EdDsa(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Key::Es256(_) => "ES256",
            Key::Rs256(_) => "RS256",
            Key::EdDsa(_) => "EdDSA",
        }
    }

    /// The public JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            Key::Es256(kp) => {
                let point = kp.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Key::Rs256(kp) => {
                let public = kp.public_key();
                json!({"kty": "RSA", "kid": kid, "alg": "RS256",
                       "n": b64(public.modulus().big_endian_without_leading_zero()),
                       "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
            Key::EdDsa(kp) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(kp.public_key().as_ref())})
            }
        }
    }

    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Key::Es256(kp) => kp.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Key::Rs256(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
                sig
            }
            Key::EdDsa(kp) => kp.sign(msg).as_ref().to_vec(),
        }
    }

    /// A signed assertion with `kid` in the header.
    pub fn assertion(&self, kid: &str, claims: &Value) -> String {
        jws(
            &json!({"alg": self.alg(), "kid": kid, "typ": "JWT"}),
            claims,
            |m| self.sign(m),
        )
    }
}

/// A JWS in compact serialization (RFC 7515 §7.1).
pub fn jws(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}
