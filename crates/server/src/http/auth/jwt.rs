//! Checking a bearer JWT: signature (a JWKS key, or an HS256 secret when one is
//! configured), `iss`, `aud` naming this server (RFC 8707), `exp` (required) and `nbf`
//! with leeway; then the subject, roles and scopes it carries.

use std::{path::PathBuf, sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

use super::jwks::{Key, KeyStore};

/// Algorithms accepted with a JWKS: asymmetric only, so that a public key can never be
/// used as an HMAC secret.
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Shortest HS256 secret accepted: 256 bits.
pub(crate) const MIN_SECRET_BYTES: usize = 32;

/// Where the issuer's keys come from.
#[derive(Clone)]
#[non_exhaustive]
pub enum JwtKeys {
    /// A JWKS document on disk, read at start and again when a token names an unknown
    /// key id.
    JwksFile(PathBuf),
    /// A JWKS document fetched over HTTPS, cached, fetched again when a token names an
    /// unknown key id (at most every 30 s) or after 10 minutes.
    JwksUrl(String),
    /// A shared HS256 secret (at least 32 bytes); then only HS256 tokens are accepted.
    Hs256Secret(String),
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::JwksFile(path) => f.debug_tuple("JwksFile").field(path).finish(),
            Self::JwksUrl(url) => f.debug_tuple("JwksUrl").field(url).finish(),
            Self::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
        }
    }
}

/// How bearer JWTs are checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwtSettings {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// Values one of which `aud` must contain; empty: the resource (this server's URL).
    pub audience: Vec<String>,
    /// The keys tokens are signed with.
    pub keys: JwtKeys,
    /// The claim holding the roles: a name, or a dotted path (`realm_access.roles`);
    /// an array of strings or one space-separated string.
    pub roles_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

impl JwtSettings {
    /// Tokens from `issuer`, signed with `keys`; roles from `roles`, 60 s leeway.
    pub fn new(issuer: impl Into<String>, keys: JwtKeys) -> Self {
        Self {
            issuer: issuer.into(),
            audience: Vec::new(),
            keys,
            roles_claim: "roles".to_owned(),
            leeway: Duration::from_secs(60),
        }
    }

    /// Accepts tokens whose `aud` names `audience` (instead of the resource).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    /// Reads roles from `claim`.
    pub fn roles_claim(mut self, claim: impl Into<String>) -> Self {
        self.roles_claim = claim.into();
        self
    }

    /// Sets the clock skew allowed.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
}

enum Keys {
    Store(KeyStore),
    Secret(DecodingKey),
}

/// What a valid token says about its bearer.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) subject: String,
    pub(crate) roles: Vec<String>,
    pub(crate) scopes: Vec<String>,
    /// `exp`, in seconds since the Unix epoch.
    pub(crate) expires: u64,
}

/// Checks tokens against one issuer.
pub(crate) struct JwtVerifier {
    keys: Keys,
    issuer: String,
    audience: Vec<String>,
    roles_claim: Vec<String>,
    leeway: Duration,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// From settings; `resource` is the audience unless others are given. Reads a JWKS
    /// file now.
    pub(crate) fn new(settings: &JwtSettings, resource: &str) -> Result<Self, String> {
        if settings.issuer.trim().is_empty() {
            return Err("jwt.issuer is empty; set it to the `iss` your tokens carry".to_owned());
        }
        let keys = match &settings.keys {
            JwtKeys::JwksFile(path) => Keys::Store(KeyStore::file(path.clone())?),
            JwtKeys::JwksUrl(url) => Keys::Store(KeyStore::url(url.clone())?),
            JwtKeys::Hs256Secret(secret) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(format!(
                        "jwt.hs256_secret is {} bytes; use at least {MIN_SECRET_BYTES} random bytes",
                        secret.len()
                    ));
                }
                Keys::Secret(
                    DecodingKey::from_secret(secret.as_bytes())
                        .map_err(|e| format!("jwt.hs256_secret cannot be used: {e}"))?,
                )
            }
        };
        let audience = if settings.audience.is_empty() {
            vec![resource.to_owned()]
        } else {
            settings.audience.clone()
        };
        Ok(Self {
            keys,
            issuer: settings.issuer.clone(),
            audience,
            roles_claim: settings.roles_claim.split('.').map(str::to_owned).collect(),
            leeway: settings.leeway,
        })
    }

    /// Which keys a verification used: the JWKS's reload count (0 for a secret).
    pub(crate) fn generation(&self) -> u64 {
        match &self.keys {
            Keys::Store(store) => store.generation(),
            Keys::Secret(_) => 0,
        }
    }

    /// The bearer of `token`, or why the token is refused (safe to send back: it never
    /// quotes the token).
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "the bearer token is neither a known API key nor a JWT".to_owned())?;
        let alg = header.alg;
        let candidates: Vec<Arc<Key>> = match &self.keys {
            Keys::Secret(secret) => {
                if alg != Algorithm::HS256 {
                    return Err(format!("JWT algorithm {alg:?} is not accepted; HS256 is"));
                }
                vec![Arc::new(Key {
                    kid: None,
                    alg: Some(Algorithm::HS256),
                    key: secret.clone(),
                })]
            }
            Keys::Store(store) => {
                if !ASYMMETRIC.contains(&alg) {
                    return Err(format!(
                        "JWT algorithm {alg:?} is not accepted; sign with RS256, ES256 or EdDSA"
                    ));
                }
                store.candidates(header.kid.as_deref(), alg).await
            }
        };
        if candidates.is_empty() {
            return Err(match header.kid {
                Some(_) => {
                    "the JWT is signed with a key id the issuer's JWKS does not have".to_owned()
                }
                None => {
                    "the JWT names no key id (kid) and no key of its algorithm is known".to_owned()
                }
            });
        }
        let validation = self.validation(alg);
        let mut last = "the JWT signature does not verify".to_owned();
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return self.claims(data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
                Err(e) => {
                    last = self.explain(e.kind());
                    break;
                }
            }
        }
        Err(last)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();
        validation
    }

    fn explain(&self, kind: &ErrorKind) -> String {
        match kind {
            ErrorKind::ExpiredSignature => "the JWT has expired (exp)".to_owned(),
            ErrorKind::ImmatureSignature => "the JWT is not valid yet (nbf)".to_owned(),
            ErrorKind::InvalidIssuer => format!(
                "the JWT's issuer (iss) is not the one trusted here, {}",
                self.issuer
            ),
            ErrorKind::InvalidAudience => format!(
                "the JWT's audience (aud) does not name this server; ask for a token for {} \
                 (RFC 8707 resource)",
                self.audience.join(" or ")
            ),
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("the JWT has no `{claim}` claim, which is required")
            }
            ErrorKind::InvalidClaimFormat(claim) => {
                format!("the JWT's `{claim}` claim has the wrong type")
            }
            ErrorKind::InvalidSignature => "the JWT signature does not verify".to_owned(),
            ErrorKind::InvalidAlgorithm => {
                "the JWT's algorithm does not fit the key it names".to_owned()
            }
            _ => "the JWT is malformed".to_owned(),
        }
    }

    fn claims(&self, claims: Map<String, Value>) -> Result<Verified, String> {
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err("the JWT's `sub` claim is missing or empty".to_owned()),
        };
        let mut roles_value = claims.get(self.roles_claim.first().map_or("", String::as_str));
        for segment in self.roles_claim.iter().skip(1) {
            roles_value = roles_value.and_then(|v| v.get(segment));
        }
        let roles = strings(roles_value);
        let scopes = match claims.get("scope") {
            Some(value) => strings(Some(value)),
            None => strings(claims.get("scp")),
        };
        // Required and checked by the validation: a number.
        let expires = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        Ok(Verified {
            subject,
            roles,
            scopes,
            expires,
        })
    }
}

/// An array of strings, or one string of space-separated words.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
