//! API keys: the configuration holds only each key's SHA-256; a presented key is hashed
//! and compared with every configured digest in constant time.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthMethod, Identity};

/// What every generated key starts with, so that one found in a log or a repository is
/// recognisable as a toolmesh key.
pub const KEY_PREFIX: &str = "tm_";

/// One accepted API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Names the key in logs and audit; the principal is `key:ID`.
    pub id: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// Roles of whoever presents it.
    pub roles: Vec<String>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// A key given by its SHA-256 as 64 hex digits.
    ///
    /// # Errors
    ///
    /// What is wrong with `sha256_hex`, to show next to the key's configuration.
    pub fn from_sha256_hex(
        id: impl Into<String>,
        sha256_hex: &str,
        roles: Vec<String>,
    ) -> Result<Self, String> {
        Ok(Self {
            id: id.into(),
            sha256: parse_sha256_hex(sha256_hex)?,
            roles,
        })
    }

    /// A key given in clear (tests, embedding); only its digest is kept.
    pub fn from_key(id: impl Into<String>, key: &str, roles: Vec<String>) -> Self {
        Self {
            id: id.into(),
            sha256: Sha256::digest(key.as_bytes()).into(),
            roles,
        }
    }
}

/// A new random key, `tm_` and 32 random bytes in URL-safe base64.
pub fn new_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The SHA-256 of `key`, as the configuration writes it (64 lowercase hex digits).
pub fn api_key_sha256(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 64 hex digits as 32 bytes.
pub(crate) fn parse_sha256_hex(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`sha256` must be the key's SHA-256 as 64 hex digits, got {} characters; \
             `toolmesh auth hash-key` prints a new key with its digest",
            text.chars().count()
        ));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| "`sha256` must be 64 hex digits".to_owned())?;
    }
    Ok(out)
}

/// The configured keys, each with the identity it establishes (built once).
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiKeys(Vec<(ApiKey, Identity)>);

impl ApiKeys {
    pub(crate) fn new(keys: Vec<ApiKey>) -> Self {
        Self(
            keys.into_iter()
                .map(|key| {
                    let identity = Identity::new(
                        format!("key:{}", key.id),
                        key.roles.iter().cloned(),
                        AuthMethod::ApiKey,
                    );
                    (key, identity)
                })
                .collect(),
        )
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Who presents `presented`: the key whose digest is its digest. Every digest is
    /// compared, in constant time, so the time taken tells nothing about which bytes
    /// matched.
    pub(crate) fn find(&self, presented: &str) -> Option<&Identity> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (key, identity) in &self.0 {
            if bool::from(key.sha256.ct_eq(&digest)) {
                found = Some(identity);
            }
        }
        found
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_matches_its_digest() {
        let key = new_api_key();
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), KEY_PREFIX.len() + 43);
        let digest = api_key_sha256(&key);
        let keys = ApiKeys::new(vec![
            ApiKey::from_key("other", "tm_other", vec![]),
            ApiKey::from_sha256_hex("ci", &digest, vec!["ops".into()]).unwrap(),
        ]);
        assert_eq!(
            keys.find(&key).map(|i| i.principal.to_string()),
            Some("key:ci".to_owned())
        );
        assert!(keys.find("tm_wrong").is_none());
        assert_ne!(new_api_key(), key);
    }

    #[test]
    fn digests_must_be_64_hex_digits() {
        assert!(parse_sha256_hex(&"a".repeat(64)).is_ok());
        assert!(parse_sha256_hex(&"a".repeat(63)).is_err());
        assert!(parse_sha256_hex(&"g".repeat(64)).is_err());
        assert!(parse_sha256_hex(&"é".repeat(32)).is_err());
    }
}
