//! Standard Webhooks signatures: the `webhook-signature` header a receiver checks to know a
//! delivery came from kb, unaltered, and recently.
//!
//! The signed content is `{msg_id}.{timestamp}.{body}`, so neither the id (the receiver's
//! idempotency key) nor the timestamp (its replay window) can be changed without breaking the
//! signature. Secrets are shown to clients as `whsec_` and standard base64, the form every
//! Standard Webhooks library takes, so receivers need no kb-specific code.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix that marks a symmetric Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The size of a generated secret: the specification's minimum, and what its reference
/// libraries generate.
const GENERATED_BYTES: usize = 24;

/// The key sizes the specification allows (192 to 512 bits).
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// An endpoint's signing key.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self(crate::secret::random_bytes(GENERATED_BYTES))
    }

    /// Reads a key in its shown form, `whsec_` and standard base64 of 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self(key))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length (longer ones are hashed first), so this cannot fail.
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

/// The shown form, `whsec_<base64>`: what a client is given once, and what kb stores.
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }
}

/// Redacted, so a secret in a logged struct does not leak into the logs.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_[redacted])")
    }
}

/// Why a text is not a webhook secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with {SECRET_PREFIX}")]
    Prefix,
    #[error("a webhook secret is {SECRET_PREFIX} followed by standard base64")]
    Base64,
    #[error("a webhook secret holds 24 to 64 bytes, not {0}")]
    Length(usize),
}

/// The signature of one delivery under one key: `v1,<base64 of HMAC-SHA256>`.
///
/// `msg_id` must not contain `.`, since the signed content is delimited by dots; kb's ids are
/// its own, never a client's.
pub fn sign(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    debug_assert!(!msg_id.contains('.'), "a webhook id must not contain a dot");
    let mut mac = secret.mac();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key, space-separated, so that during a key
/// rotation a receiver holding either the old or the new key can verify.
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector of the Standard Webhooks reference libraries
    // (libraries/python/tests/test_webhooks.py, `test_sign_function`).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TIMESTAMP: i64 = 1614265330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_like_the_reference_libraries() {
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        assert_eq!(
            sign(&secret, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
            VECTOR_SIGNATURE
        );
    }

    #[test]
    fn every_part_of_the_signed_content_matters() {
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        let other = Secret::generate();
        for changed in [
            sign(&other, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
            sign(&secret, "msg_other", VECTOR_TIMESTAMP, VECTOR_BODY),
            sign(&secret, VECTOR_ID, VECTOR_TIMESTAMP + 1, VECTOR_BODY),
            sign(
                &secret,
                VECTOR_ID,
                VECTOR_TIMESTAMP,
                br#"{"test": 2432232315}"#,
            ),
        ] {
            assert_ne!(changed, VECTOR_SIGNATURE);
            assert!(changed.starts_with("v1,"));
        }
    }

    #[test]
    fn the_header_carries_one_signature_per_key_in_order() {
        let old = Secret::parse(VECTOR_SECRET).unwrap();
        let new = Secret::generate();
        let header = signature_header(&[&new, &old], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                sign(&new, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY).as_str(),
                VECTOR_SIGNATURE
            ]
        );
        assert_eq!(
            signature_header(&[&old], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
            VECTOR_SIGNATURE
        );
        assert_eq!(
            signature_header(&[], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
            ""
        );
    }

    #[test]
    fn secrets_round_trip_through_their_shown_form() {
        let vector = Secret::parse(VECTOR_SECRET).unwrap();
        assert_eq!(vector.to_string(), VECTOR_SECRET);

        let fresh = Secret::generate();
        let shown = fresh.to_string();
        assert!(shown.starts_with("whsec_"));
        // 24 bytes are 32 base64 characters, without padding.
        assert_eq!(shown.len(), "whsec_".len() + 32);
        let again = Secret::parse(&shown).unwrap();
        assert_eq!(again.to_string(), shown);
        assert_eq!(
            sign(&again, "msg_1", 1, b"{}"),
            sign(&fresh, "msg_1", 1, b"{}")
        );
        assert_ne!(Secret::generate().to_string(), shown);

        let longest = format!("whsec_{}", STANDARD.encode([7u8; 64]));
        assert_eq!(Secret::parse(&longest).unwrap().to_string(), longest);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::Prefix
        );
        assert_eq!(
            Secret::parse("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::Prefix
        );
        for text in [
            "whsec_not base64!",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
            // URL-safe base64 is not the standard alphabet.
            "whsec_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_",
        ] {
            assert_eq!(
                Secret::parse(text).unwrap_err(),
                SecretError::Base64,
                "{text:?}"
            );
        }
        assert_eq!(Secret::parse("whsec_").unwrap_err(), SecretError::Length(0));
        let short = format!("whsec_{}", STANDARD.encode([1u8; 23]));
        assert_eq!(Secret::parse(&short).unwrap_err(), SecretError::Length(23));
        let long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
        assert_eq!(Secret::parse(&long).unwrap_err(), SecretError::Length(65));
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        let debug = format!("{secret:?}");
        assert!(
            !debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{debug}"
        );
        assert!(debug.contains("redacted"));
    }
}
