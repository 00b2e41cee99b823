//! Secrets: random values, SHA-256 hashes, constant-time comparison, Argon2id passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::store::TokenHash;

/// A fresh random value of 32 bytes (256 bits), BASE64URL without padding.
pub fn random_token() -> String {
    random_string(32)
}

/// A new identifier (of a client, user, grant, token record): 128 random bits as 32
/// lowercase hex digits. Hex, not BASE64URL, so that an id never starts with `-` and
/// can be passed to the command line as it is.
pub fn random_id() -> String {
    let mut buf = [0u8; 16];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator failed");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `len` random bytes, BASE64URL without padding.
pub fn random_string(len: usize) -> String {
    let mut buf = vec![0u8; len];
    // The system RNG fails only if the OS cannot provide entropy at all; no
    // secret can be made safely then, so this is a fatal condition.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 of a secret's text.
pub fn hash_secret(secret: &str) -> TokenHash {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compare two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// RFC 7636 §4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge,
/// compared in constant time.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let d = digest::digest(&digest::SHA256, verifier.as_bytes());
    constant_time_eq(
        URL_SAFE_NO_PAD.encode(d.as_ref()).as_bytes(),
        challenge.as_bytes(),
    )
}

/// Hash a user's password with Argon2id (the crate's defaults: m=19 MiB, t=2, p=1).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the operating system's random number generator failed"))?;
    let salt =
        SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("encoding a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Argon2id runs take 19 MiB and tens of milliseconds each: at most one per core at a
/// time, so that a flood of logins queues instead of exhausting memory and threads.
static PASSWORD_WORK: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });

/// Run Argon2id work on the blocking pool, at most one run per core at a time.
async fn password_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let _permit = PASSWORD_WORK
        .acquire()
        .await
        .map_err(|_| anyhow::anyhow!("password hashing is shut down"))?;
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// [`hash_password`] off the async workers, bounded as [`password_work`] says.
pub async fn hash_password_bounded(password: String) -> anyhow::Result<String> {
    password_work(move || hash_password(&password)).await?
}

/// [`verify_password`] off the async workers, bounded as [`password_work`] says.
pub async fn verify_password_bounded(password: String, phc: Option<String>) -> bool {
    password_work(move || verify_password(&password, phc.as_deref()))
        .await
        .unwrap_or(false)
}

/// A fixed Argon2id hash checked when the username is unknown, so that a failed
/// login costs the same whether or not the user exists.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Verify a password against a PHC hash, or against a dummy hash when there is none.
/// CPU-bound (tens of milliseconds): call from `spawn_blocking`.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    let dummy;
    let phc = match phc {
        Some(p) => p,
        None => {
            dummy = DUMMY_HASH.get_or_init(|| hash_password("tessera-dummy").unwrap_or_default());
            dummy.as_str()
        }
    };
    match PasswordHash::new(phc) {
        Ok(parsed) => {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && phc_is_real(phc)
        }
        Err(_) => false,
    }
}

fn phc_is_real(phc: &str) -> bool {
    DUMMY_HASH.get().is_none_or(|d| d != phc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_appendix_b() {
        // RFC 7636 Appendix B's example pair, and the same verifier with one character changed.
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            challenge
        ));
        assert!(!pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
    }

    #[test]
    fn ids_are_hex_so_the_command_line_takes_them() {
        for _ in 0..100 {
            let id = random_id();
            assert_eq!(id.len(), 32);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{id}"
            );
        }
        assert_ne!(random_id(), random_id());
    }

    #[test]
    fn passwords() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("wrong", Some(&h)));
        assert!(!verify_password("tessera-dummy", None));
    }
}
