//! Secrets and tokens: every random value a client must not guess (API keys, quiz session
//! tokens, ticket nonces and choice ids, signing keys) and the hashes under which kb stores
//! them. One place, so every one of them comes from the operating system's generator and is
//! encoded the same way.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// `n` bytes from the operating system's random source.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // The OS generator failing means the machine cannot hand out secrets at all; nothing
    // sensible can continue.
    OsRng
        .try_fill_bytes(&mut buf)
        .expect("the operating system's random source works");
    buf
}

/// `n` random bytes, hex-encoded (`2n` characters).
pub fn random_hex(n: usize) -> String {
    hex::encode(random_bytes(n))
}

/// A fresh unguessable token: 256 random bits, base64url.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(32))
}

/// A fresh token and the hash it is stored under.
pub fn new_token() -> (String, String) {
    let token = random_token();
    let hash = sha256_hex(&token);
    (token, hash)
}

/// SHA-256 of `s`.
pub fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// SHA-256 of `s`, hex-encoded: how tokens and keys are stored and looked up.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(sha256(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_stored_by_their_hash() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in base64url without padding");
        assert_eq!(hash_a, sha256_hex(&a));
        assert_eq!(hash_a.len(), 64);
        assert_eq!(random_hex(8).len(), 16);
    }
}
