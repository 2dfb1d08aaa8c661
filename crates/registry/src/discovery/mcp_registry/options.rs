//! What to load from the MCP Registry and from local `server.json` files.

use std::{
    collections::{BTreeMap, HashSet},
    path::PathBuf,
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::McpRegistryError;

/// Where the MCP Registry source reads servers from, which of them it keeps and how
/// often it looks again.
///
/// ```
/// # use toolmesh_registry::discovery::mcp_registry::McpRegistryOptions;
/// let options: McpRegistryOptions = serde_json::from_value(serde_json::json!({
///     "url": "https://registry.modelcontextprotocol.io",
///     "names": ["io.github.acme/weather"],
///     "aliases": {"io.github.acme/weather": "weather"},
///     "refresh": "5m"
/// })).unwrap();
/// options.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpRegistryOptions {
    /// Base URL of a registry API (`https://registry.modelcontextprotocol.io`); toolmesh
    /// appends `/v0.1/servers`. Absent: only `files` are read.
    pub url: Option<String>,
    /// Local `server.json` files (one server each), read again at every refresh and
    /// treated like registry entries. A file with the same server name as a registry
    /// entry replaces it.
    pub files: Vec<PathBuf>,
    /// Passed to the registry as `search` (a substring of the server name).
    pub search: Option<String>,
    /// When non-empty, only servers with exactly these names are kept.
    pub names: Vec<String>,
    /// Service names by server name (`io.github.acme/weather: weather`); otherwise the
    /// last segment of the server name, lowercased, is used.
    pub aliases: BTreeMap<String, String>,
    /// The servers that may be started locally from one of their packages, with the
    /// command that does it. Nothing else from the registry is ever executed.
    pub packages: Vec<AllowedPackage>,
    /// How often [`follow`](super::McpRegistrySource::follow) loads again.
    #[serde(with = "toolmesh_core::duration")]
    pub refresh: Duration,
    /// Deadline of one HTTP request to the registry.
    #[serde(with = "toolmesh_core::duration")]
    pub timeout: Duration,
    /// Entries asked for per page (`limit`); the official registry allows at most 100.
    pub page_limit: u32,
}

impl Default for McpRegistryOptions {
    fn default() -> Self {
        Self {
            url: None,
            files: Vec::new(),
            search: None,
            names: Vec::new(),
            aliases: BTreeMap::new(),
            packages: Vec::new(),
            refresh: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            page_limit: 100,
        }
    }
}

/// A registry server allowed to run locally over stdio, and how to start it (no shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedPackage {
    /// The server's registry name (`io.github.acme/fs`); its entry must list a stdio
    /// package.
    pub name: String,
    /// Program to run (`npx`, `uvx`, a path).
    pub command: String,
    /// Its arguments (`["-y", "@acme/fs@1.2.3"]`); pin a version.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables of the child.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl McpRegistryOptions {
    /// Options reading the registry API at `url`, other settings at their defaults.
    pub fn registry(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Checks that the options can work; the error says what to change.
    pub fn validate(&self) -> Result<(), McpRegistryError> {
        if self.url.is_none() && self.files.is_empty() {
            return Err(invalid(
                "nothing to load: set `url` (e.g. https://registry.modelcontextprotocol.io) or list `files`",
            ));
        }
        if let Some(url) = &self.url {
            self.servers_url(url)?;
        }
        if self.refresh.is_zero() {
            return Err(invalid(
                "`refresh` is zero: give an interval such as \"10m\"",
            ));
        }
        if self.timeout.is_zero() {
            return Err(invalid(
                "`timeout` is zero: give a deadline such as \"10s\"",
            ));
        }
        if self.page_limit == 0 {
            return Err(invalid("`page_limit` is zero: give 1-100 entries per page"));
        }
        let mut seen = HashSet::new();
        for package in &self.packages {
            if package.command.trim().is_empty() {
                return Err(invalid(format!(
                    "packages: `{}` has an empty `command`; give the program to run",
                    package.name
                )));
            }
            if !seen.insert(package.name.as_str()) {
                return Err(invalid(format!(
                    "packages: `{}` is listed twice; keep one command per server",
                    package.name
                )));
            }
        }
        for (name, alias) in &self.aliases {
            if toolmesh_core::ToolName::new(alias, "x").is_err() {
                return Err(invalid(format!(
                    "aliases: `{alias}` (for `{name}`) is not a valid service name: use 1-64 characters from A-Z a-z 0-9 _ -"
                )));
            }
        }
        Ok(())
    }

    /// `{url}/v0.1/servers`, checked.
    pub(crate) fn servers_url(&self, base: &str) -> Result<reqwest::Url, McpRegistryError> {
        let url = reqwest::Url::parse(base).map_err(|e| {
            invalid(format!(
                "`url` `{base}` is not a valid URL ({e}); give e.g. https://registry.modelcontextprotocol.io"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(format!(
                "`url` `{base}` must be an http:// or https:// URL with a host"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(format!(
                "`url` `{base}` has a query or fragment; give only the base URL of the API"
            )));
        }
        let path = format!("{}/v0.1/servers", url.path().trim_end_matches('/'));
        let mut servers = url;
        servers.set_path(&path);
        Ok(servers)
    }

    /// The allow-list entry of `name`.
    pub(crate) fn allowed(&self, name: &str) -> Option<&AllowedPackage> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// Whether the `names` filter keeps `name`.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }
}

fn invalid(reason: impl Into<String>) -> McpRegistryError {
    McpRegistryError::InvalidOptions(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<McpRegistryOptions, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn defaults_and_durations() -> Result<(), Box<dyn std::error::Error>> {
        let o = parse(serde_json::json!({"url": "http://127.0.0.1:1/base/", "timeout": "2s"}))?;
        assert_eq!(o.refresh, Duration::from_secs(600));
        assert_eq!(o.timeout, Duration::from_secs(2));
        assert_eq!(o.page_limit, 100);
        o.validate()?;
        assert_eq!(
            o.servers_url("http://127.0.0.1:1/base/")?.as_str(),
            "http://127.0.0.1:1/base/v0.1/servers"
        );
        Ok(())
    }

    #[test]
    fn a_typo_is_an_error() {
        let err = parse(serde_json::json!({"url": "http://h", "refesh": "1m"}));
        assert!(err.is_err_and(|e| e.to_string().contains("refesh")));
    }

    #[test]
    fn validation_says_what_to_fix() {
        let msg = |o: McpRegistryOptions| match o.validate() {
            Err(e) => e.to_string(),
            Ok(()) => String::new(),
        };
        assert!(msg(McpRegistryOptions::default()).contains("set `url`"));
        assert!(msg(McpRegistryOptions::registry("ftp://h")).contains("http:// or https://"));
        assert!(msg(McpRegistryOptions::registry("not a url")).contains("not a valid URL"));
        let mut o = McpRegistryOptions::registry("http://h");
        o.refresh = Duration::ZERO;
        assert!(msg(o).contains("`refresh` is zero"));
        let mut o = McpRegistryOptions::registry("http://h");
        o.aliases.insert("io.x/y".into(), "has space".into());
        assert!(msg(o).contains("has space"));
    }
}
