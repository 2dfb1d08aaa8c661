//! Wire types of the MCP Registry API (`GET /v0.1/servers`) and of `server.json`.
//!
//! Only the fields toolmesh uses are declared; serde ignores the rest, so new fields in
//! the registry's schema never break a load. A page is parsed in two steps (the envelope,
//! then each entry on its own) so one malformed entry cannot fail the whole page.

use serde::Deserialize;
use serde_json::Value;

/// One page of `GET /v0.1/servers`; entries are kept raw and parsed one by one.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    #[serde(default)]
    pub(crate) servers: Vec<Value>,
    #[serde(default)]
    pub(crate) metadata: PageMetadata,
}

/// Pagination of a page.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageMetadata {
    /// Cursor of the next page; absent (or empty) on the last page.
    #[serde(default)]
    pub(crate) next_cursor: Option<String>,
}

/// One entry of a page: a `server.json` and the registry's own metadata about it.
#[derive(Debug, Deserialize)]
pub(crate) struct Entry {
    pub(crate) server: ServerJson,
    #[serde(rename = "_meta", default)]
    pub(crate) meta: EntryMeta,
}

/// `_meta` of an entry.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EntryMeta {
    #[serde(rename = "io.modelcontextprotocol.registry/official", default)]
    pub(crate) official: Option<Official>,
}

/// What the official registry says about an entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Official {
    #[serde(default)]
    pub(crate) status: Option<Status>,
    #[serde(default)]
    pub(crate) updated_at: Option<String>,
    #[serde(default)]
    pub(crate) is_latest: Option<bool>,
}

/// Lifecycle of a server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// In use.
    Active,
    /// Still works; its publisher recommends something else.
    Deprecated,
    /// Withdrawn: toolmesh drops it.
    Deleted,
    /// A status this version of toolmesh does not know; treated as active.
    #[serde(other)]
    Unknown,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Deprecated => "deprecated",
            Status::Deleted => "deleted",
            Status::Unknown => "unknown",
        }
    }
}

/// The parts of `server.json` toolmesh uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ServerJson {
    /// Reverse-DNS name, `io.github.owner/weather`.
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) version: Option<String>,
    #[serde(default)]
    pub(crate) remotes: Vec<Remote>,
    #[serde(default)]
    pub(crate) packages: Vec<Package>,
}

/// A hosted endpoint of a server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Remote {
    /// `streamable-http` or `sse`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) headers: Vec<Header>,
}

/// A header a remote expects; `value` is absent when the user must supply it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Header {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default, alias = "is_required")]
    pub(crate) is_required: bool,
}

/// An installable package of a server. toolmesh never installs or runs it by itself; it
/// only checks that an allow-listed command matches a package the entry really has.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Package {
    /// `npm`, `pypi`, `oci`, … (older registries spell it `registry_type`).
    #[serde(default, alias = "registry_type")]
    pub(crate) registry_type: Option<String>,
    #[serde(default)]
    pub(crate) identifier: Option<String>,
    #[serde(default)]
    pub(crate) transport: Option<PackageTransport>,
}

/// How a package talks once started.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct PackageTransport {
    /// `stdio`, `streamable-http` or `sse`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

impl Package {
    /// Whether it speaks MCP over stdin/stdout.
    pub(crate) fn is_stdio(&self) -> bool {
        self.transport.as_ref().is_some_and(|t| t.kind == "stdio")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_with_unknown_fields_and_both_spellings_parses() -> Result<(), serde_json::Error> {
        let entry: Entry = serde_json::from_value(serde_json::json!({
            "server": {
                "$schema": "https://static.modelcontextprotocol.io/schemas/2025-10-17/server.schema.json",
                "name": "io.github.acme/fs",
                "version": "1.2.3",
                "brandNewField": {"x": 1},
                "packages": [
                    {"registryType": "npm", "identifier": "@acme/fs", "transport": {"type": "stdio"}},
                    {"registry_type": "pypi", "identifier": "acme-fs"}
                ]
            },
            "_meta": {"io.modelcontextprotocol.registry/official": {
                "status": "retired", "isLatest": true, "updatedAt": "2025-10-01T00:00:00Z"
            }}
        }))?;
        assert_eq!(
            entry.server.packages[1].registry_type.as_deref(),
            Some("pypi")
        );
        assert!(entry.server.packages[0].is_stdio());
        assert!(!entry.server.packages[1].is_stdio());
        let official = entry.meta.official.unwrap_or_default();
        assert_eq!(official.status, Some(Status::Unknown));
        assert_eq!(official.is_latest, Some(true));
        Ok(())
    }
}
