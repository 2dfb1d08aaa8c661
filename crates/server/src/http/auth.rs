//! Who is calling: inbound authentication of the HTTP edge.
//!
//! Every request to `/mcp` (and `/status`) must carry one credential — an API key
//! (`Authorization: Bearer KEY` or `X-API-Key: KEY`, checked against SHA-256 digests) or
//! a JWT (`Authorization: Bearer JWT`, checked against the issuer's keys). A request
//! without one, or with a bad one, gets `401` and a `WWW-Authenticate` challenge naming
//! the protected-resource metadata (RFC 9728), as the MCP authorization spec asks; a
//! token without a required scope gets `403 insufficient_scope`. The [`Identity`]
//! established travels with the request (with its [`Caller`], which the catalog server
//! puts on each call's `CallContext` and the router's policy checks). A client's
//! credential is never passed on to an upstream server.

mod api_key;
mod header;
mod jwks;
mod jwt;
mod metadata;
mod remembered;

use std::sync::Arc;

use crate::{Caller, ServerError};
use axum::{
    extract::Request,
    http::{HeaderMap, StatusCode, Uri, header::WWW_AUTHENTICATE},
    response::{IntoResponse, Response},
};

pub use api_key::{ApiKey, KEY_PREFIX, api_key_sha256, new_api_key};
pub use jwt::{JwtKeys, JwtSettings};

use api_key::ApiKeys;
use header::{Presented, credentials, query_carries_token};
use jwt::JwtVerifier;
use metadata::{Metadata, challenge};
use remembered::Remembered;

/// Whether a request may come without credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMode {
    /// Every request needs a valid credential.
    #[default]
    Required,
    /// A request without credentials is served as the anonymous principal (with
    /// [`AuthSettings::anonymous_role`]); a bad credential is still refused.
    Optional,
}

/// How the caller was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A configured API key.
    ApiKey,
    /// A bearer JWT.
    Jwt,
    /// No credential, in [`AuthMode::Optional`].
    Anonymous,
    /// The user who started the process (stdio serving).
    Local,
    /// A TLS client certificate signed by `gateway.tls.client_ca`.
    ClientCertificate,
}

/// Who a request is made for, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// `key:ID` for an API key, the JWT's `sub`, `anonymous`, or `local:USER`.
    pub principal: Arc<str>,
    /// Its roles (the router's policy grants tools by role).
    pub roles: Arc<[String]>,
    /// The scopes its token grants (JWTs only).
    pub scopes: Arc<[String]>,
    /// How it was established.
    pub method: AuthMethod,
}

impl Identity {
    /// An identity without scopes.
    pub fn new(
        principal: impl Into<Arc<str>>,
        roles: impl IntoIterator<Item = String>,
        method: AuthMethod,
    ) -> Self {
        Self {
            principal: principal.into(),
            roles: roles.into_iter().collect(),
            scopes: Arc::new([]),
            method,
        }
    }

    /// The user running this process (`$USER`, else `$LOGNAME`), with `role`: whoever
    /// talks to a gateway over its stdin is that user.
    pub fn local_user(role: impl Into<String>) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_owned());
        Self::new(format!("local:{user}"), [role.into()], AuthMethod::Local)
    }

    /// The caller the router's policy and the call context see.
    pub fn caller(&self) -> Caller {
        Caller {
            principal: self.principal.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// What the HTTP edge accepts as credentials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthSettings {
    /// Whether credentials are required.
    pub mode: AuthMode,
    /// Accepted API keys.
    pub api_keys: Vec<ApiKey>,
    /// Accepted JWTs.
    pub jwt: Option<JwtSettings>,
    /// The role of requests without credentials in [`AuthMode::Optional`].
    pub anonymous_role: String,
    /// This server's canonical URL (`https://mesh.example.com/mcp`): the audience JWTs
    /// must name and the `resource` of the metadata document.
    pub resource: String,
    /// Where clients get tokens (the metadata's `authorization_servers`); the JWT issuer
    /// when empty.
    pub authorization_servers: Vec<String>,
    /// Scopes listed in the metadata; the required ones when empty.
    pub scopes_supported: Vec<String>,
    /// Scopes every JWT must grant (`scope` or `scp` claim); a token without one is
    /// `403 insufficient_scope`. API keys are granted by configuration and need none.
    pub required_scopes: Vec<String>,
}

impl AuthSettings {
    /// Credentials required, none accepted yet, for the server at `resource`.
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            mode: AuthMode::Required,
            api_keys: Vec::new(),
            jwt: None,
            anonymous_role: "anonymous".to_owned(),
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
        }
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: AuthMode) -> Self {
        self.mode = mode;
        self
    }

    /// Accepts `key`.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_keys.push(key);
        self
    }

    /// Accepts JWTs checked with `jwt`.
    pub fn jwt(mut self, jwt: JwtSettings) -> Self {
        self.jwt = Some(jwt);
        self
    }

    /// Requires `scope` of every JWT.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        self.required_scopes.push(scope.into());
        self
    }
}

struct Inner {
    mode: AuthMode,
    keys: ApiKeys,
    jwt: Option<JwtVerifier>,
    anonymous: Identity,
    required_scopes: Vec<String>,
    metadata: Metadata,
    /// JWTs verified a moment ago.
    remembered: Remembered,
    /// `toolmesh_auth_accepted_total` by method, looked up once (on the first request,
    /// when the process's recorder is in place) rather than per request.
    accepted: std::sync::OnceLock<[metrics::Counter; METHODS.len()]>,
}

/// Checks requests against [`AuthSettings`]; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.inner.mode)
            .field("api_keys", &self.inner.keys)
            .field("jwt", &self.inner.jwt)
            .field("metadata", &self.inner.metadata.url)
            .finish()
    }
}

impl Authenticator {
    /// Checks the settings and reads a JWKS file.
    ///
    /// # Errors
    ///
    /// [`ServerError::Auth`] saying what is wrong: no credential accepted in required
    /// mode, a resource that is not an absolute URL, an unreadable JWKS, a short secret.
    pub fn new(settings: AuthSettings) -> Result<Self, ServerError> {
        if settings.mode == AuthMode::Required
            && settings.api_keys.is_empty()
            && settings.jwt.is_none()
        {
            return Err(ServerError::Auth(
                "no credential would be accepted: configure `api_keys` or `jwt`, or set \
                 `mode: optional`"
                    .to_owned(),
            ));
        }
        let jwt = settings
            .jwt
            .as_ref()
            .map(|jwt| JwtVerifier::new(jwt, &settings.resource))
            .transpose()
            .map_err(ServerError::Auth)?;
        let mut authorization_servers = settings.authorization_servers.clone();
        if authorization_servers.is_empty()
            && let Some(jwt) = &settings.jwt
        {
            authorization_servers.push(jwt.issuer.clone());
        }
        let scopes = if settings.scopes_supported.is_empty() {
            &settings.required_scopes
        } else {
            &settings.scopes_supported
        };
        let metadata = Metadata::new(&settings.resource, &authorization_servers, scopes)
            .map_err(ServerError::Auth)?;
        Ok(Self {
            inner: Arc::new(Inner {
                mode: settings.mode,
                keys: ApiKeys::new(settings.api_keys),
                jwt,
                anonymous: Identity::new(
                    "anonymous",
                    [settings.anonymous_role],
                    AuthMethod::Anonymous,
                ),
                required_scopes: settings.required_scopes,
                metadata,
                remembered: Remembered::default(),
                accepted: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The URL of the protected-resource metadata, as challenges name it.
    pub fn metadata_url(&self) -> &str {
        &self.inner.metadata.url
    }

    pub(crate) fn metadata_paths(&self) -> &[String] {
        &self.inner.metadata.paths
    }

    pub(crate) fn metadata_response(&self) -> Response {
        self.inner.metadata.response()
    }

    /// Who sent a request with `uri` and `headers`, or why it is refused.
    pub(crate) async fn authenticate(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        certificate: Option<&crate::Caller>,
    ) -> Result<Identity, Refusal> {
        if query_carries_token(uri.query()) {
            return Err(Refusal::invalid(
                "invalid_request",
                "credentials in the URL query are refused (they end up in logs); send \
                 `Authorization: Bearer TOKEN` instead",
            ));
        }
        let presented = credentials(headers)
            .map_err(|malformed| Refusal::invalid("invalid_request", malformed.0))?;
        let Some(presented) = presented else {
            if let Some(client) = certificate {
                return Ok(Identity::new(
                    client.principal.to_string(),
                    client.roles.iter().cloned(),
                    AuthMethod::ClientCertificate,
                ));
            }
            return match self.inner.mode {
                AuthMode::Optional => Ok(self.inner.anonymous.clone()),
                AuthMode::Required => Err(Refusal::Missing),
            };
        };
        if let Some(identity) = self.inner.keys.find(presented.secret()) {
            return Ok(identity.clone());
        }
        let (Presented::Bearer(token), Some(jwt)) = (presented, &self.inner.jwt) else {
            return Err(Refusal::invalid(
                "invalid_token",
                if self.inner.keys.is_empty() {
                    "API keys are not accepted here"
                } else {
                    "the API key is not valid"
                },
            ));
        };
        let generation = jwt.generation();
        if let Some(identity) = self.inner.remembered.get(token, generation) {
            return Ok(identity);
        }
        let verified = jwt
            .verify(token)
            .await
            .map_err(|why| Refusal::invalid("invalid_token", why))?;
        let missing: Vec<String> = self
            .inner
            .required_scopes
            .iter()
            .filter(|scope| !verified.scopes.contains(scope))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::InsufficientScope { missing });
        }
        let identity = Identity {
            principal: verified.subject.into(),
            roles: verified.roles.into(),
            scopes: verified.scopes.into(),
            method: AuthMethod::Jwt,
        };
        self.inner
            .remembered
            .put(token, identity.clone(), generation, verified.expires);
        Ok(identity)
    }

    fn refuse(&self, refusal: Refusal) -> Response {
        let url = self.metadata_url();
        let scopes = &self.inner.required_scopes;
        let (status, challenge, body) = match refusal {
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                challenge(url, None, None, scopes),
                "Unauthorized: this server needs a credential; send `Authorization: Bearer \
                 TOKEN` (an API key or a JWT) or `X-API-Key: KEY`\n"
                    .to_owned(),
            ),
            Refusal::Invalid { error, why } => (
                StatusCode::UNAUTHORIZED,
                challenge(url, Some(error), Some(&why), scopes),
                format!("Unauthorized: {why}\n"),
            ),
            Refusal::InsufficientScope { missing } => (
                StatusCode::FORBIDDEN,
                challenge(
                    url,
                    Some("insufficient_scope"),
                    Some("the token lacks a required scope"),
                    scopes,
                ),
                format!(
                    "Forbidden: the token lacks the scope {}; ask the authorization server \
                     for a token with it\n",
                    missing.join(", ")
                ),
            ),
        };
        (status, [(WWW_AUTHENTICATE, challenge)], body).into_response()
    }
}

/// Why a request is not served.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No credential at all.
    Missing,
    /// A credential that is malformed or not valid.
    Invalid { error: &'static str, why: String },
    /// A valid token without the scopes required.
    InsufficientScope { missing: Vec<String> },
}

impl Refusal {
    fn invalid(error: &'static str, why: impl Into<String>) -> Self {
        Self::Invalid {
            error,
            why: why.into(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid { error, .. } => error,
            Self::InsufficientScope { .. } => "insufficient_scope",
        }
    }
}

/// Authenticates the request (`certificate`: the caller of its verified client
/// certificate) and hands its [`Identity`] on in the request's extensions, or answers
/// the refusal. Part of the edge's one identifying layer (`http::identify`).
pub(crate) async fn admit(
    auth: &Authenticator,
    certificate: Option<&crate::Caller>,
    mut request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    match auth
        .authenticate(request.uri(), request.headers(), certificate)
        .await
    {
        Ok(identity) => {
            auth.accepted(identity.method).increment(1);
            request.extensions_mut().insert(identity.caller());
            request.extensions_mut().insert(identity);
            next(request).await
        }
        Err(refusal) => {
            let reason = refusal.reason();
            metrics::counter!("toolmesh_auth_refused_total", "reason" => reason).increment(1);
            if let Refusal::Invalid { why, .. } = &refusal {
                // The reason never quotes the credential.
                tracing::debug!(path = request.uri().path(), "refused a request: {why}");
            }
            auth.refuse(refusal)
        }
    }
}

const METHODS: [AuthMethod; 5] = [
    AuthMethod::ApiKey,
    AuthMethod::Jwt,
    AuthMethod::Anonymous,
    AuthMethod::Local,
    AuthMethod::ClientCertificate,
];

fn method_label(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::ApiKey => "api_key",
        AuthMethod::Jwt => "jwt",
        AuthMethod::Anonymous => "anonymous",
        AuthMethod::Local => "local",
        AuthMethod::ClientCertificate => "client_certificate",
    }
}

impl Authenticator {
    /// The accepted-requests counter of `method`.
    fn accepted(&self, method: AuthMethod) -> &metrics::Counter {
        let counters = self.inner.accepted.get_or_init(|| {
            METHODS.map(
                |m| metrics::counter!("toolmesh_auth_accepted_total", "method" => method_label(m)),
            )
        });
        let index = METHODS.iter().position(|m| *m == method).unwrap_or(0);
        &counters[index]
    }
}
