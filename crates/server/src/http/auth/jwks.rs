//! The issuer's signing keys (a JWKS, RFC 7517), from a file or a URL, cached; a token
//! signed with a key id not in the cache reloads them once (key rotation).

use std::{path::PathBuf, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{Jwk, PublicKeyUse},
};
use serde_json::Value;
use tokio::time::Instant;

/// A URL's keys are fetched again after this long.
const URL_MAX_AGE: Duration = Duration::from_secs(600);
/// Unknown key ids refetch a URL at most this often (a flood of made-up `kid`s must not
/// become a flood of requests to the issuer).
const URL_MIN_REFRESH: Duration = Duration::from_secs(30);
/// Bound on one fetch.
const URL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One verification key.
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    /// The algorithm the key is for, when the JWKS says.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) key: DecodingKey,
}

impl Key {
    /// Whether a token with header `kid` and `alg` may be checked with this key.
    fn fits(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        let kid_fits = kid.is_none_or(|kid| self.kid.as_deref() == Some(kid));
        let alg_fits = match self.alg {
            Some(own) => own == alg,
            None => self.key.family() == alg.family(),
        };
        kid_fits && alg_fits
    }
}

#[derive(Debug)]
enum Source {
    File(PathBuf),
    Url {
        url: String,
        client: reqwest::Client,
    },
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("JWKS file {}", path.display()),
            Self::Url { url, .. } => format!("JWKS URL {url}"),
        }
    }
}

struct Loaded {
    keys: Vec<Arc<Key>>,
    /// When the keys were read; `None` before the first read of a URL.
    at: Option<Instant>,
    /// Counts reloads, so that requests waiting on one do not reload again.
    generation: u64,
}

/// The cached keys of one source.
pub(crate) struct KeyStore {
    source: Source,
    loaded: ArcSwap<Loaded>,
    /// Held while reloading: one reload at a time.
    reloading: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("source", &self.source.describe())
            .field("keys", &self.loaded.load().keys.len())
            .finish()
    }
}

impl KeyStore {
    /// Keys from a file, read now.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or holds no usable signing key.
    pub(crate) fn file(path: PathBuf) -> Result<Self, String> {
        let source = Source::File(path.clone());
        let text = std::fs::read(&path)
            .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?;
        let keys = parse(&text).map_err(|e| format!("{}: {e}", source.describe()))?;
        Ok(Self::with(source, keys, Some(Instant::now())))
    }

    /// Keys from a URL, fetched on first use.
    pub(crate) fn url(url: String) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(URL_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for the JWKS URL: {e}"))?;
        Ok(Self::with(Source::Url { url, client }, Vec::new(), None))
    }

    fn with(source: Source, keys: Vec<Arc<Key>>, at: Option<Instant>) -> Self {
        Self {
            source,
            loaded: ArcSwap::from_pointee(Loaded {
                keys,
                at,
                generation: 0,
            }),
            reloading: tokio::sync::Mutex::new(None),
        }
    }

    /// Counts the reloads of the keys: a token verified under another generation is
    /// verified again.
    pub(crate) fn generation(&self) -> u64 {
        self.loaded.load().generation
    }

    /// The keys a token with `kid` and `alg` may be signed with; reloads the source
    /// when none fits (a rotated key) or when a URL's keys are old.
    pub(crate) async fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<Key>> {
        let loaded = self.loaded.load_full();
        let fitting = fitting(&loaded, kid, alg);
        let stale = match (&self.source, loaded.at) {
            (Source::Url { .. }, Some(at)) => at.elapsed() > URL_MAX_AGE,
            (Source::Url { .. }, None) => true,
            (Source::File(_), _) => false,
        };
        if !fitting.is_empty() && !stale {
            return fitting;
        }
        self.reload(loaded.generation).await;
        fitting_now(self, kid, alg)
    }

    /// Reads the source again unless another request did since `seen`.
    async fn reload(&self, seen: u64) {
        let mut last = self.reloading.lock().await;
        if self.loaded.load().generation != seen {
            return;
        }
        if let (Source::Url { .. }, Some(at)) = (&self.source, *last)
            && at.elapsed() < URL_MIN_REFRESH
        {
            return;
        }
        *last = Some(Instant::now());
        match self.read().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "loaded the {}", self.source.describe());
                self.loaded.store(Arc::new(Loaded {
                    keys,
                    at: Some(Instant::now()),
                    generation: seen + 1,
                }));
            }
            // The keys held stay in use.
            Err(error) => tracing::warn!("cannot reload the {}: {error}", self.source.describe()),
        }
    }

    async fn read(&self) -> Result<Vec<Arc<Key>>, String> {
        let bytes = match &self.source {
            Source::File(path) => tokio::fs::read(path).await.map_err(|e| e.to_string())?,
            Source::Url { url, client } => {
                let response = client
                    .get(url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("answered {}", response.status()));
                }
                if response
                    .content_length()
                    .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
                {
                    return Err(format!(
                        "the document is larger than {MAX_JWKS_BYTES} bytes"
                    ));
                }
                let body = response.bytes().await.map_err(|e| e.to_string())?;
                if body.len() > MAX_JWKS_BYTES {
                    return Err(format!(
                        "the document is larger than {MAX_JWKS_BYTES} bytes"
                    ));
                }
                body.to_vec()
            }
        };
        parse(&bytes)
    }
}

fn fitting(loaded: &Loaded, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<Key>> {
    loaded
        .keys
        .iter()
        .filter(|key| key.fits(kid, alg))
        .cloned()
        .collect()
}

fn fitting_now(store: &KeyStore, kid: Option<&str>, alg: Algorithm) -> Vec<Arc<Key>> {
    fitting(&store.loaded.load(), kid, alg)
}

/// The signing keys of a JWKS document; keys for encryption, symmetric keys and kinds
/// this build cannot verify with are left out.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<Arc<Key>>, String> {
    let document: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Some(entries) = document.get("keys").and_then(Value::as_array) else {
        return Err("not a JWKS: expected an object with a `keys` array".to_owned());
    };
    let mut keys = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match key(entry) {
            Ok(Some(key)) => keys.push(Arc::new(key)),
            Ok(None) => {}
            Err(why) => tracing::warn!("JWKS key {i} left out: {why}"),
        }
    }
    if keys.is_empty() {
        return Err(
            "no usable signing key (RSA, EC P-256/P-384 or Ed25519 with `use: sig` or no `use`)"
                .to_owned(),
        );
    }
    Ok(keys)
}

fn key(entry: &Value) -> Result<Option<Key>, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| e.to_string())?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    if matches!(
        jwk.algorithm,
        jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
    ) {
        return Err("a symmetric key has no place in a JWKS; configure `hs256_secret`".to_owned());
    }
    let alg = match jwk.common.key_algorithm {
        // The key's `alg` as the signing algorithm it names (encryption ones do not).
        Some(alg) => Some(
            serde_json::to_value(alg)
                .ok()
                .and_then(|v| v.as_str().and_then(|s| s.parse::<Algorithm>().ok()))
                .ok_or_else(|| format!("`alg` {alg:?} is no signing algorithm"))?,
        ),
        None => None,
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok(Some(Key {
        kid: jwk.common.key_id,
        alg,
        key,
    }))
}
