//! Tokens verified a moment ago. A client sends the same JWT with every request;
//! verifying it again each time (decode, signature, claims) was the largest part of what
//! JWT authentication added per call. A token is taken on trust for at most
//! [`REUSE`], never past its `exp`, and only under the keys it was verified with (a
//! JWKS reload verifies it again). Refusals are not remembered.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::Identity;

/// How long a verified token is taken on trust.
pub(crate) const REUSE: Duration = Duration::from_secs(30);

/// Tokens remembered at most; past that the memory starts again.
const MAX: usize = 4096;

struct Entry {
    identity: Identity,
    until: Instant,
    generation: u64,
}

/// Verified tokens and who they identified.
#[derive(Default)]
pub(crate) struct Remembered(Mutex<HashMap<Box<str>, Entry>>);

impl Remembered {
    /// Who `token` identified, if it was verified under `generation` and is still good.
    pub(crate) fn get(&self, token: &str, generation: u64) -> Option<Identity> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token)
            .filter(|e| e.generation == generation && Instant::now() < e.until)
            .map(|e| e.identity.clone())
    }

    /// Remembers `token`, verified under `generation`, valid until `expires` (Unix
    /// seconds).
    pub(crate) fn put(&self, token: &str, identity: Identity, generation: u64, expires: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let left = Duration::from_secs(expires.saturating_sub(now)).min(REUSE);
        if left.is_zero() {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX {
            map.clear();
        }
        map.insert(
            token.into(),
            Entry {
                identity,
                until: Instant::now() + left,
                generation,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::auth::AuthMethod;

    fn someone() -> Identity {
        Identity::new("alice", ["reader".to_owned()], AuthMethod::Jwt)
    }

    fn in_secs(secs: u64) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + secs
    }

    #[test]
    fn a_token_is_remembered_under_its_keys_only_and_never_past_exp() {
        let remembered = Remembered::default();
        remembered.put("t1", someone(), 3, in_secs(3600));
        assert_eq!(
            remembered.get("t1", 3).map(|i| i.principal.to_string()),
            Some("alice".to_owned())
        );
        assert!(remembered.get("t1", 4).is_none(), "the keys were reloaded");
        assert!(remembered.get("t2", 3).is_none());
        // Expired (or expiring this second): not remembered at all.
        remembered.put("old", someone(), 3, in_secs(0));
        assert!(remembered.get("old", 3).is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let remembered = Remembered::default();
        for n in 0..(MAX + 10) {
            remembered.put(&format!("t{n}"), someone(), 0, in_secs(3600));
        }
        let held = remembered.0.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert!(held <= MAX, "{held}");
        assert!(remembered.get(&format!("t{}", MAX + 9), 0).is_some());
    }
}
