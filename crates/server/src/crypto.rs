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
    fill_random(&mut buf);
    hex(&buf)
}

/// A new identifier that sorts by creation time (for rows created on the request
/// path, so that a new row's key lands at the end of its index; see
/// [`ordered_token`]): 48 bits of milliseconds since the epoch, then 80 random bits,
/// as 32 lowercase hex digits like [`random_id`] (the layout of a version 7 UUID,
/// RFC 9562 §5.7, without its version bits). Not a secret.
pub fn ordered_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut buf = [0u8; 16];
    buf[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    fill_random(&mut buf[6..]);
    hex(&buf)
}

/// `len` random bytes, BASE64URL without padding.
pub fn random_string(len: usize) -> String {
    let mut buf = vec![0u8; len];
    fill_random(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Fill `buf` from the system's random number generator. It fails only if the OS
/// cannot provide entropy at all; no secret can be made safely then, so this is a
/// fatal condition.
fn fill_random(buf: &mut [u8]) {
    SystemRandom::new()
        .fill(buf)
        .expect("the operating system's random number generator failed");
}

/// Lowercase hex digits of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Nanoseconds since the epoch, big-endian: the part of an id that grows with time
/// (an earlier wall clock only costs locality, never uniqueness).
fn now_nanos() -> [u8; 8] {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        .to_be_bytes()
}

/// Bytes of an [`ordered_token`] before BASE64URL: an 8-byte id, then 32 random bytes.
const ORDERED_LEN: usize = 8 + 32;
/// Characters of an [`ordered_token`]: 40 bytes in BASE64URL without padding.
const ORDERED_TEXT_LEN: usize = 54;

/// A fresh token for a row that is looked up by its key ([`hash_secret`]): an 8-byte
/// id that grows with time (nanoseconds since the epoch, big-endian) followed by 32
/// random bytes (256 bits, the whole secret), BASE64URL without padding (54
/// characters).
///
/// The id puts the token's key in time order: a new row's key lands at the end of the
/// key index instead of on a random page of it, so one commit of many tokens writes a
/// few pages instead of one page per token, and the recent part of a large index stays
/// in the cache. The id is not secret (it tells when the token was minted, as
/// `expires_in` does); an earlier wall clock only costs locality, never uniqueness.
pub fn ordered_token() -> String {
    let mut buf = [0u8; ORDERED_LEN];
    buf[..8].copy_from_slice(&now_nanos());
    fill_random(&mut buf[8..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The key under which a secret's row is stored and found: SHA-256 of its text; for a
/// token made by [`ordered_token`], its 8-byte id followed by the first 24 bytes of the
/// SHA-256, so that keys sort by time. Either way the key is computed from the text
/// alone, and finding a text for a stored key means inverting SHA-256 (2^192 work for
/// the 24 bytes).
pub fn hash_secret(secret: &str) -> TokenHash {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    // Room for base64's estimate of 54 characters (42 bytes); 54 decode to 40.
    let mut id = [0u8; ORDERED_LEN + 2];
    let ordered = secret.len() == ORDERED_TEXT_LEN
        && URL_SAFE_NO_PAD.decode_slice(secret, &mut id) == Ok(ORDERED_LEN);
    if ordered {
        out[..8].copy_from_slice(&id[..8]);
        out[8..].copy_from_slice(&d.as_ref()[..24]);
    } else {
        out.copy_from_slice(d.as_ref());
    }
    out
}

/// Bytes of a refresh token's chain id: 8 bytes that grow with time (nanoseconds since
/// the epoch, big-endian), then 8 random bytes.
pub const CHAIN_LEN: usize = 16;
/// The id of a refresh token chain: every token that rotation makes from one refresh
/// token carries the id of the first ([`chained_token`]).
pub type ChainId = [u8; CHAIN_LEN];
/// Bytes of a [`chained_token`] before BASE64URL: the chain id, then 32 random bytes.
const CHAINED_LEN: usize = CHAIN_LEN + 32;
/// Characters of a [`chained_token`]: 48 bytes in BASE64URL without padding.
const CHAINED_TEXT_LEN: usize = 64;

/// The id of a new refresh token chain. Its 8 random bytes keep it unguessable: the
/// id is half of every token of the chain, and presenting a token with the id of a
/// chain but not its current secret revokes the chain's grant (reuse detection).
pub fn new_chain() -> ChainId {
    let mut id = [0u8; CHAIN_LEN];
    id[..8].copy_from_slice(&now_nanos());
    fill_random(&mut id[8..]);
    id
}

/// A refresh token of the chain `chain`: the chain id followed by 32 random bytes (256
/// bits, the whole secret), BASE64URL without padding (64 characters).
pub fn chained_token(chain: &ChainId) -> String {
    let mut buf = [0u8; CHAINED_LEN];
    buf[..CHAIN_LEN].copy_from_slice(chain);
    fill_random(&mut buf[CHAIN_LEN..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The key of a refresh token: for a [`chained_token`], its chain id followed by the
/// first 16 bytes of the SHA-256 of its text (finding a text for a stored key means
/// inverting SHA-256: 2^128 work); for a token minted before chains, its
/// [`hash_secret`]. Either way the first [`CHAIN_LEN`] bytes are the id of the token's
/// chain ([`chain_of`]): the chain of an older token is the one it started.
pub fn refresh_key(token: &str) -> TokenHash {
    // Room for base64's estimate of 64 characters (50 bytes); 64 decode to 48.
    let mut raw = [0u8; CHAINED_LEN + 2];
    let chained = token.len() == CHAINED_TEXT_LEN
        && URL_SAFE_NO_PAD.decode_slice(token, &mut raw) == Ok(CHAINED_LEN);
    if !chained {
        return hash_secret(token);
    }
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out[..CHAIN_LEN].copy_from_slice(&raw[..CHAIN_LEN]);
    out[CHAIN_LEN..].copy_from_slice(&d.as_ref()[..32 - CHAIN_LEN]);
    out
}

/// The chain id in a refresh token's key ([`refresh_key`]).
pub fn chain_of(key: &TokenHash) -> ChainId {
    let mut id = [0u8; CHAIN_LEN];
    id.copy_from_slice(&key[..CHAIN_LEN]);
    id
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
    fn ordered_tokens_have_time_ordered_keys() {
        let first = ordered_token();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ordered_token();
        assert_eq!(first.len(), 54, "{first}");
        assert_ne!(first, second);
        let (a, b) = (hash_secret(&first), hash_secret(&second));
        assert!(a < b, "a later token's key sorts after an earlier one's");
        // The key is the id, then SHA-256 of the text cut to 24 bytes.
        let d = digest::digest(&digest::SHA256, second.as_bytes());
        assert_eq!(&b[8..], &d.as_ref()[..24]);
        assert_eq!(&b[..8], &URL_SAFE_NO_PAD.decode(&second).unwrap()[..8]);
        // Any other text is keyed by its whole SHA-256, as before.
        let secret = random_token();
        let d = digest::digest(&digest::SHA256, secret.as_bytes());
        assert_eq!(&hash_secret(&secret)[..], d.as_ref());
        let not_base64 = "!".repeat(54);
        let d = digest::digest(&digest::SHA256, not_base64.as_bytes());
        assert_eq!(&hash_secret(&not_base64)[..], d.as_ref());
    }

    #[test]
    fn chained_tokens_carry_their_chain_in_their_key() {
        let chain = new_chain();
        let (first, second) = (chained_token(&chain), chained_token(&chain));
        assert_eq!(first.len(), 64, "{first}");
        assert_ne!(first, second);
        let (a, b) = (refresh_key(&first), refresh_key(&second));
        assert_eq!(chain_of(&a), chain);
        assert_eq!(chain_of(&b), chain);
        assert_ne!(a, b, "the tokens of one chain have keys of their own");
        let d = digest::digest(&digest::SHA256, first.as_bytes());
        assert_eq!(&a[CHAIN_LEN..], &d.as_ref()[..16]);
        assert_ne!(chain_of(&refresh_key(&chained_token(&new_chain()))), chain);
        // A token minted before chains keeps its key; its chain is the key's start.
        let older = ordered_token();
        assert_eq!(refresh_key(&older), hash_secret(&older));
        let oldest = random_token();
        assert_eq!(refresh_key(&oldest), hash_secret(&oldest));
        let not_base64 = "!".repeat(64);
        assert_eq!(refresh_key(&not_base64), hash_secret(&not_base64));
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
        let first = ordered_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ordered_id();
        for id in [&first, &second] {
            assert_eq!(id.len(), 32);
            assert!(id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
        assert!(first < second, "{first} {second}");
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
