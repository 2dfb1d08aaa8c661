//! How to reach etcd: endpoints, key prefix, credentials, TLS.

use std::{path::PathBuf, time::Duration};

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use serde::{Deserialize, Serialize};

use super::EtcdError;

/// `registry.etcd` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdOptions {
    /// Client URLs of the cluster (`http://127.0.0.1:2379`; `https://` with `tls`).
    pub endpoints: Vec<String>,
    /// Every key lives under this prefix; gateways sharing a registry share it.
    pub prefix: String,
    /// User name, for an etcd with authentication on.
    pub username: Option<String>,
    /// Its password (never shown).
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// TLS to etcd.
    pub tls: Option<EtcdTls>,
    /// Whether a gateway must reach etcd to start. `false`: start from the configuration
    /// alone and keep trying.
    pub required: bool,
    /// How long one connection attempt or request may take.
    #[serde(with = "toolmesh_core::duration")]
    pub timeout: Duration,
}

/// TLS settings for etcd's client port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdTls {
    /// CA certificate (PEM) that signed etcd's server certificate.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), when etcd asks for one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// Name to verify in etcd's certificate, when it differs from the endpoint's host.
    pub domain: Option<String>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/toolmesh".into(),
            username: None,
            password: None,
            tls: None,
            required: true,
            timeout: Duration::from_secs(5),
        }
    }
}

impl EtcdOptions {
    /// Options for `endpoints` with every other setting at its default.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Uses `prefix` for every key.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Checks the settings, saying what to fix.
    ///
    /// # Errors
    ///
    /// No endpoints, a bad endpoint, a prefix not starting with `/`, a password without a
    /// user, half a client certificate, or a zero timeout.
    pub fn validate(&self) -> Result<(), EtcdError> {
        let invalid = |why: String| Err(EtcdError::Invalid(why));
        if self.endpoints.is_empty() {
            return invalid(
                "`endpoints` is empty: give etcd's client URLs, e.g. [\"http://127.0.0.1:2379\"]"
                    .into(),
            );
        }
        for endpoint in &self.endpoints {
            let ok = ["http://", "https://"].iter().any(|s| {
                endpoint
                    .strip_prefix(s)
                    .is_some_and(|rest| !rest.is_empty())
            });
            if !ok {
                return invalid(format!(
                    "endpoint `{endpoint}` is not a URL: write it as http://HOST:PORT (or https:// with `tls`)"
                ));
            }
        }
        if !self.prefix.starts_with('/') || self.prefix.len() < 2 || self.prefix.ends_with('/') {
            return invalid(format!(
                "prefix `{}` must start with `/` and not end with one, e.g. /toolmesh",
                self.prefix
            ));
        }
        if self.password.is_some() != self.username.is_some() {
            return invalid("`username` and `password` go together".into());
        }
        if let Some(tls) = &self.tls
            && tls.cert.is_some() != tls.key.is_some()
        {
            return invalid("tls: `cert` and `key` go together".into());
        }
        if self.timeout.is_zero() {
            return invalid("`timeout` must be above zero".into());
        }
        Ok(())
    }

    /// The endpoints, for messages.
    pub(crate) fn shown(&self) -> String {
        self.endpoints.join(",")
    }

    /// Connects (bounded by `timeout`).
    pub(crate) async fn connect(&self) -> Result<Client, EtcdError> {
        self.validate()?;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.timeout)
            .with_timeout(self.timeout)
            // A store that vanishes without closing the connection is noticed in seconds.
            .with_keep_alive(Duration::from_secs(2), self.timeout)
            .with_keep_alive_while_idle(true);
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            options = options.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            options = options.with_tls(tls.options()?);
        }
        let unreachable = |reason: String| EtcdError::request(self.shown(), &reason);
        let connecting = Client::connect(self.endpoints.clone(), Some(options));
        tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| unreachable(e.to_string()))
    }
}

impl EtcdTls {
    fn options(&self) -> Result<TlsOptions, EtcdError> {
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).map_err(|e| {
                EtcdError::Invalid(format!("tls.{what}: cannot read {}: {e}", path.display()))
            })
        };
        let mut options = TlsOptions::new();
        if let Some(ca) = &self.ca {
            options = options.ca_certificate(Certificate::from_pem(read(ca, "ca")?));
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            options = options.identity(Identity::from_pem(read(cert, "cert")?, read(key, "key")?));
        }
        if let Some(domain) = &self.domain {
            options = options.domain_name(domain.clone());
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_say_what_to_fix() {
        let cases = [
            (
                EtcdOptions::new(Vec::<String>::new()),
                "endpoints` is empty",
            ),
            (EtcdOptions::new(["127.0.0.1:2379"]), "not a URL"),
            (
                EtcdOptions::new(["http://a:1"]).prefix("toolmesh"),
                "must start with `/`",
            ),
            (
                EtcdOptions::new(["http://a:1"]).prefix("/t/"),
                "not end with one",
            ),
        ];
        for (options, expected) in cases {
            let error = options.validate().expect_err(expected).to_string();
            assert!(error.contains(expected), "{error}");
        }
        assert!(EtcdOptions::default().validate().is_ok());
    }
}
