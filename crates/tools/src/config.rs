//! Configuration of the standard tool set.

use serde::{Deserialize, Serialize};

use crate::{ArxivConfig, FilesystemConfig, HttpFetchConfig, WebSearchConfig};

/// What [`Toolbox::default_tools`](crate::Toolbox::default_tools) builds.
///
/// Every field has a default; unknown fields are an error.
///
/// ```
/// let config: toolmesh_tools::ToolsConfig = serde_json::from_value(serde_json::json!({
///     "filesystem": { "roots": ["/srv/data"], "allow_write": false },
///     "http_fetch": { "timeout": "10s", "allow_hosts": ["intranet.example", "10.1.0.0/16"] },
///     "web_search": { "base_url": "http://127.0.0.1:8888" }
/// }))?;
/// assert_eq!(config.http_fetch.max_bytes, 1024 * 1024);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    /// The sandboxed filesystem tools; absent (the default) registers none.
    pub filesystem: Option<FilesystemConfig>,
    /// `http_fetch`: timeout, size limit and the hosts it may reach on private networks.
    pub http_fetch: HttpFetchConfig,
    /// `arxiv_search`: the API endpoint.
    pub arxiv: ArxivConfig,
    /// `web_search` through a SearXNG-compatible API; absent (the default) registers none.
    pub web_search: Option<WebSearchConfig>,
}
