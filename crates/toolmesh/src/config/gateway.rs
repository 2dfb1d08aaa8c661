//! `gateway:`: how the gateway serves its clients; for now who may call it (`auth:`).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use toolmesh_registry::{Audit, AuditConfig, Policy, RateLimits, RateRule, RoleGrant};
use toolmesh_server::{
    TlsConfig,
    auth::{ApiKey, AuthMode, AuthSettings, Identity, JwtKeys, JwtSettings},
};

use super::services::Problem;

/// The `gateway:` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Inbound authentication; without it the gateway serves loopback clients only
    /// (unless `--allow-unauthenticated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Roles and the tools, prompts and resources they grant (allow/deny globs); checked
    /// by the router for every caller with roles (authenticated clients, their agents).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, RoleGrant>,
    /// Rate limits by caller and tool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateRule>,
    /// The audit log: one JSON line per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditConfig>,
    /// HTTPS: the certificate and key (PEM), re-read when they change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl GatewayConfig {
    /// Whether nothing is set.
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }

    /// The policy of `roles`, or `None` when no role is configured.
    ///
    /// # Errors
    ///
    /// A glob that does not parse, at its key path.
    pub(crate) fn policy(&self) -> Result<Option<Policy>, Problem> {
        if self.roles.is_empty() {
            return Ok(None);
        }
        Policy::new(&self.roles)
            .map(Some)
            .map_err(|e| Problem::new(&["gateway", "roles", &e.role], 2, e.to_string()))
    }

    /// The rate limits, or `None` when none is configured.
    ///
    /// # Errors
    ///
    /// A rule that cannot work, at its key path.
    pub(crate) fn rate_limits(&self) -> Result<Option<RateLimits>, Problem> {
        if self.rate_limits.is_empty() {
            return Ok(None);
        }
        RateLimits::new(&self.rate_limits).map(Some).map_err(|e| {
            Problem::new(
                &["gateway", "rate_limits", &e.index.to_string()],
                2,
                e.reason,
            )
        })
    }

    /// Opens the audit log, when configured.
    ///
    /// # Errors
    ///
    /// The file cannot be opened, at `gateway.audit.file`; a zero
    /// `gateway.audit.flush_interval`.
    pub(crate) fn audit(&self) -> Result<Option<Audit>, Problem> {
        let Some(config) = &self.audit else {
            return Ok(None);
        };
        check_audit(config)?;
        Audit::new(config.clone())
            .map(Some)
            .map_err(|e| Problem::new(&["gateway", "audit", "file"], 2, e.to_string()))
    }
}

/// `gateway.auth`: which credentials the HTTP edge accepts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `required` (the default): every request needs a valid credential; `optional`:
    /// requests without one are served as `anonymous` with `anonymous_role`.
    #[serde(default)]
    pub mode: AuthModeConfig,
    /// API keys, each by the SHA-256 of the key (`toolmesh auth hash-key` makes one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<ApiKeyConfig>,
    /// Bearer JWTs from one issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
    /// Role of anonymous requests in `optional` mode (default `anonymous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_role: Option<String>,
    /// Role of the local user when serving over stdio (default `local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio_role: Option<String>,
    /// This server's canonical URL as clients reach it (`https://mesh.example.com/mcp`):
    /// the audience JWTs must name (RFC 8707) and the resource of the metadata
    /// document. Default: `http://LISTEN-ADDRESS/mcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Where clients get tokens (RFC 9728 `authorization_servers`); default the JWT
    /// issuer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// Scopes listed in the metadata document; default `required_scopes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Scopes every JWT must grant (`scope`/`scp`); without one: 403
    /// `insufficient_scope`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
}

/// `gateway.auth.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthModeConfig {
    /// Every request needs a valid credential.
    #[default]
    Required,
    /// Requests without credentials are anonymous.
    Optional,
}

/// One entry of `gateway.auth.api_keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Names the key (the principal is `key:ID`).
    pub id: String,
    /// SHA-256 of the key, 64 hex digits.
    pub sha256: String,
    /// Roles of whoever presents it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `gateway.auth.jwt`: one of `jwks_file`, `jwks_url` or `hs256_secret`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// Accepted `aud` values; default the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// The issuer's JWKS on disk; read again when a token names an unknown key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// The issuer's JWKS URL (https; http only on loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// A shared HS256 secret (at least 32 bytes; `${VAR}` keeps it out of the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret: Option<String>,
    /// The claim with the roles, or a dotted path (`realm_access.roles`); default
    /// `roles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles_claim: Option<String>,
    /// Clock skew allowed on `exp`/`nbf` (default 60s).
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub leeway: Option<Duration>,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_file", &self.jwks_file)
            .field("jwks_url", &self.jwks_url)
            .field(
                "hs256_secret",
                &self.hs256_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("roles_claim", &self.roles_claim)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl AuthConfig {
    /// What the HTTP edge checks; `default_resource` (the URL the gateway listens at)
    /// unless `resource` is set.
    ///
    /// # Errors
    ///
    /// A [`Problem`] for a configuration changed in code since it was loaded.
    pub(crate) fn settings(&self, default_resource: &str) -> Result<AuthSettings, Problem> {
        validate(self)?;
        let mut settings = AuthSettings::new(
            self.resource
                .clone()
                .unwrap_or_else(|| default_resource.to_owned()),
        )
        .mode(match self.mode {
            AuthModeConfig::Required => AuthMode::Required,
            AuthModeConfig::Optional => AuthMode::Optional,
        });
        for (i, key) in self.api_keys.iter().enumerate() {
            let key = ApiKey::from_sha256_hex(&key.id, &key.sha256, key.roles.clone())
                .map_err(|message| at(&["api_keys", &i.to_string(), "sha256"], message))?;
            settings = settings.api_key(key);
        }
        if let Some(jwt) = &self.jwt {
            settings = settings.jwt(jwt.settings()?);
        }
        if let Some(role) = &self.anonymous_role {
            settings.anonymous_role = role.clone();
        }
        settings.authorization_servers = self.authorization_servers.clone();
        settings.scopes_supported = self.scopes_supported.clone();
        settings.required_scopes = self.required_scopes.clone();
        Ok(settings)
    }

    /// Who calls over stdio: the local user, with `stdio_role`.
    pub fn stdio_identity(&self) -> Identity {
        Identity::local_user(self.stdio_role.as_deref().unwrap_or(DEFAULT_STDIO_ROLE))
    }
}

/// The local user's role over stdio unless `stdio_role` says otherwise.
pub const DEFAULT_STDIO_ROLE: &str = "local";

impl JwtConfig {
    fn settings(&self) -> Result<JwtSettings, Problem> {
        let keys = match (&self.jwks_file, &self.jwks_url, &self.hs256_secret) {
            (Some(file), None, None) => JwtKeys::JwksFile(file.clone()),
            (None, Some(url), None) => JwtKeys::JwksUrl(url.clone()),
            (None, None, Some(secret)) => JwtKeys::Hs256Secret(secret.clone()),
            _ => {
                return Err(at(
                    &["jwt"],
                    "set exactly one of `jwks_file`, `jwks_url` (the issuer's signing keys) \
                     or `hs256_secret` (a shared secret)",
                ));
            }
        };
        let mut settings = JwtSettings::new(self.issuer.clone(), keys);
        settings.audience = self.audience.clone();
        if let Some(claim) = &self.roles_claim {
            settings = settings.roles_claim(claim.clone());
        }
        if let Some(leeway) = self.leeway {
            settings = settings.leeway(leeway);
        }
        Ok(settings)
    }
}

/// The audit settings checked without opening the file.
fn check_audit(audit: &AuditConfig) -> Result<(), Problem> {
    match audit.flush_interval_problem() {
        Some(problem) => Err(Problem::new(
            &["gateway", "audit", "flush_interval"],
            2,
            problem,
        )),
        None => Ok(()),
    }
}

/// Checks `gateway`; problems name their key path.
pub(crate) fn check(gateway: &GatewayConfig) -> Result<(), Problem> {
    if let Some(auth) = &gateway.auth {
        validate(auth)?;
    }
    gateway.policy()?;
    gateway.rate_limits()?;
    if let Some(audit) = &gateway.audit {
        check_audit(audit)?;
    }
    if let Some(tls) = &gateway.tls {
        tls.server_config()
            .map_err(|e| Problem::new(&["gateway", "tls"], 2, e.to_string()))?;
    }
    Ok(())
}

fn validate(auth: &AuthConfig) -> Result<(), Problem> {
    if auth.mode == AuthModeConfig::Required && auth.api_keys.is_empty() && auth.jwt.is_none() {
        return Err(at(
            &[],
            "no credential would be accepted: add `api_keys` (`toolmesh auth hash-key` makes \
             one) or `jwt`, or set `mode: optional`",
        ));
    }
    let mut ids = BTreeSet::new();
    for (i, key) in auth.api_keys.iter().enumerate() {
        let index = i.to_string();
        if key.id.trim().is_empty() {
            return Err(at(
                &["api_keys", &index, "id"],
                "give the key an `id` (it names the caller in logs)",
            ));
        }
        if !ids.insert(key.id.as_str()) {
            return Err(at(
                &["api_keys", &index, "id"],
                format!("key id `{}` is used twice; ids must be unique", key.id),
            ));
        }
        ApiKey::from_sha256_hex(&key.id, &key.sha256, Vec::new())
            .map_err(|message| at(&["api_keys", &index, "sha256"], message))?;
        roles(&key.roles, &["api_keys", &index, "roles"])?;
    }
    for (name, role) in [
        ("anonymous_role", &auth.anonymous_role),
        ("stdio_role", &auth.stdio_role),
    ] {
        if role.as_ref().is_some_and(|r| r.trim().is_empty()) {
            return Err(at(&[name], "a role cannot be empty"));
        }
    }
    if let Some(resource) = &auth.resource {
        url(resource, &["resource"], true)?;
    }
    for (i, server) in auth.authorization_servers.iter().enumerate() {
        url(server, &["authorization_servers", &i.to_string()], false)?;
    }
    if let Some(jwt) = &auth.jwt {
        if jwt.issuer.trim().is_empty() {
            return Err(at(
                &["jwt", "issuer"],
                "set `issuer` to the `iss` your tokens carry",
            ));
        }
        jwt.settings()?;
        if let Some(secret) = &jwt.hs256_secret
            && secret.len() < 32
        {
            return Err(at(
                &["jwt", "hs256_secret"],
                format!(
                    "the secret is {} bytes; use at least 32 random bytes",
                    secret.len()
                ),
            ));
        }
        if let Some(jwks_url) = &jwt.jwks_url {
            url(jwks_url, &["jwt", "jwks_url"], true)?;
            if !jwks_url.starts_with("https://") && !is_loopback_url(jwks_url) {
                return Err(at(
                    &["jwt", "jwks_url"],
                    "the JWKS must be fetched over https:// (http:// only from this machine)",
                ));
            }
        }
        if jwt
            .roles_claim
            .as_ref()
            .is_some_and(|c| c.split('.').any(str::is_empty))
        {
            return Err(at(
                &["jwt", "roles_claim"],
                "name a claim, or a dotted path such as `realm_access.roles`",
            ));
        }
    }
    Ok(())
}

fn roles(roles: &[String], path: &[&str]) -> Result<(), Problem> {
    if roles.iter().any(|r| r.trim().is_empty()) {
        return Err(at(path, "a role cannot be empty"));
    }
    Ok(())
}

/// An absolute http(s) URL (without fragment when `strict`).
fn url(text: &str, path: &[&str], strict: bool) -> Result<(), Problem> {
    let ok = (text.starts_with("https://") || text.starts_with("http://"))
        && text
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'))
        && !(strict && text.contains('#'))
        && !text.contains(char::is_whitespace);
    if ok {
        return Ok(());
    }
    Err(at(
        path,
        format!("`{text}` is not an absolute http(s) URL such as https://mesh.example.com/mcp"),
    ))
}

fn is_loopback_url(text: &str) -> bool {
    let rest = text.strip_prefix("http://").unwrap_or_default();
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn at(rest: &[&str], message: impl Into<String>) -> Problem {
    let mut path = vec!["gateway", "auth"];
    path.extend_from_slice(rest);
    Problem::new(&path, 2, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn auth(yaml: &str) -> AuthConfig {
        use figment::providers::Format as _;
        figment::Figment::from(figment::providers::Yaml::string(yaml))
            .extract()
            .unwrap()
    }

    fn problem(yaml: &str) -> (String, String) {
        let p = validate(&auth(yaml)).unwrap_err();
        let path: Vec<&str> = p.path.iter().map(String::as_str).collect();
        (super::super::diagnose::render_path(&path), p.message)
    }

    #[test]
    fn a_good_section_gives_settings() {
        let config = auth(&format!(
            "api_keys: [{{ id: ci, sha256: {}, roles: [ops] }}]\njwt: {{ issuer: https://idp, jwks_file: /k.json, leeway: 5s }}\n",
            "a".repeat(64)
        ));
        let settings = config.settings("http://127.0.0.1:8383/mcp").unwrap();
        assert_eq!(settings.resource, "http://127.0.0.1:8383/mcp");
        assert_eq!(settings.api_keys[0].id, "ci");
        assert_eq!(settings.jwt.unwrap().leeway, Duration::from_secs(5));
        assert_eq!(
            config.stdio_identity().roles.to_vec(),
            vec!["local".to_owned()]
        );
    }

    #[test]
    fn problems_name_their_key() {
        assert_eq!(problem("mode: required\n").0, "gateway.auth");
        assert_eq!(
            problem("api_keys: [{ id: a, sha256: abc }]\n").0,
            "gateway.auth.api_keys[0].sha256"
        );
        let digest = "b".repeat(64);
        assert_eq!(
            problem(&format!(
                "api_keys: [{{ id: a, sha256: {digest} }}, {{ id: a, sha256: {digest} }}]\n"
            ))
            .0,
            "gateway.auth.api_keys[1].id"
        );
        assert_eq!(
            problem("jwt: { issuer: x, jwks_file: /a, jwks_url: https://b }\n").0,
            "gateway.auth.jwt"
        );
        assert_eq!(
            problem("jwt: { issuer: x, jwks_url: http://idp.example/jwks }\n").0,
            "gateway.auth.jwt.jwks_url"
        );
        assert!(
            validate(&auth(
                "jwt: { issuer: x, jwks_url: http://127.0.0.1:9/jwks }\n"
            ))
            .is_ok()
        );
        assert_eq!(
            problem("jwt: { issuer: x, hs256_secret: short }\n").0,
            "gateway.auth.jwt.hs256_secret"
        );
        assert_eq!(
            problem("mode: optional\nresource: /mcp\n").0,
            "gateway.auth.resource"
        );
    }
}
