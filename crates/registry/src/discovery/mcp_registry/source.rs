//! Loading and following: pages of the registry API (all of them the first time, then
//! only what changed since the newest `updatedAt` seen), plus the local files.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::SystemTime,
};

use tokio::{sync::watch, task::JoinHandle};

use super::{
    McpRegistryError, McpRegistryOptions,
    api::{Entry, Page, ServerJson, Status},
    convert,
};
use crate::{
    ServiceSpec,
    discovery::{Discovered, SourceHealth},
};

/// Pages followed in one load at most; a registry whose cursor never ends is cut off.
const MAX_PAGES: usize = 1000;
/// Largest page body accepted (the official registry sends ~1 MB for 100 entries).
const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;

/// A discovery source reading the MCP Registry API and local `server.json` files.
///
/// [`load`](Self::load) reads once; [`follow`](Self::follow) keeps reading every
/// `refresh` and publishes each view as [`Discovered`].
#[derive(Debug)]
pub struct McpRegistrySource {
    options: McpRegistryOptions,
    servers_url: Option<reqwest::Url>,
    client: reqwest::Client,
    /// The registry's servers by name: the latest version of each not deleted.
    kept: BTreeMap<String, Kept>,
    /// The newest `updatedAt` seen, as sent (for `updated_since`) and parsed.
    newest: Option<(SystemTime, String)>,
    loaded_once: bool,
}

#[derive(Debug)]
struct Kept {
    server: ServerJson,
    status: Option<Status>,
    latest: bool,
}

impl McpRegistrySource {
    /// A source with checked options; nothing is fetched yet.
    pub fn new(options: McpRegistryOptions) -> Result<Self, McpRegistryError> {
        options.validate()?;
        let servers_url = match &options.url {
            Some(url) => Some(options.servers_url(url)?),
            None => None,
        };
        Ok(Self {
            client: toolmesh_transport::shared_client()?,
            options,
            servers_url,
            kept: BTreeMap::new(),
            newest: None,
            loaded_once: false,
        })
    }

    /// The options it runs with.
    pub fn options(&self) -> &McpRegistryOptions {
        &self.options
    }

    /// Reads the registry (everything the first time; later only what was updated since
    /// the newest change seen) and the files, and returns the services they describe.
    /// On error the kept view is unchanged, so the next load retries the same changes.
    pub async fn load(&mut self) -> Result<Vec<ServiceSpec>, McpRegistryError> {
        if let Some(url) = self.servers_url.clone() {
            let since = if self.loaded_once {
                self.newest.as_ref().map(|(_, raw)| raw.clone())
            } else {
                None
            };
            let entries = self.fetch_all(&url, since.as_deref()).await?;
            for entry in entries {
                self.keep(entry);
            }
        }
        let files = self.read_files().await?;
        self.loaded_once = true;

        // Files replace registry entries of the same name.
        let mut view: BTreeMap<&str, (&ServerJson, Option<Status>)> = BTreeMap::new();
        for (name, kept) in &self.kept {
            view.insert(name, (&kept.server, kept.status));
        }
        for server in &files {
            view.insert(&server.name, (server, None));
        }
        view.retain(|name, _| self.options.wants(name));
        Ok(convert::services(view.into_values(), &self.options))
    }

    /// Loads now and then every `refresh`, publishing each view. A failed load keeps the
    /// last services and reports [`SourceHealth::Lost`] (since the first failure in a
    /// row); the next good load reports [`SourceHealth::Live`] again. The task ends when
    /// every receiver is dropped.
    pub fn follow(mut self) -> (watch::Receiver<Discovered>, JoinHandle<()>) {
        let (tx, rx) = watch::channel(Discovered::default());
        let refresh = self.options.refresh;
        let task = tokio::spawn(async move {
            loop {
                let result = self.load().await;
                publish(&tx, result);
                tokio::select! {
                    () = tokio::time::sleep(refresh) => {}
                    () = tx.closed() => return,
                }
            }
        });
        (rx, task)
    }

    /// Every page from `url`, following `nextCursor`.
    async fn fetch_all(
        &self,
        url: &reqwest::Url,
        updated_since: Option<&str>,
    ) -> Result<Vec<Entry>, McpRegistryError> {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        let mut cursors = HashSet::new();
        for _ in 0..MAX_PAGES {
            let page_url = self.page_url(url, cursor.as_deref(), updated_since);
            let page = self.fetch_page(&page_url).await?;
            entries.extend(parse_entries(&page_url, page.servers));
            match page.metadata.next_cursor.filter(|c| !c.is_empty()) {
                None => return Ok(entries),
                Some(next) if !cursors.insert(next.clone()) => {
                    return Err(McpRegistryError::Pagination {
                        url: url.to_string(),
                        reason: format!("cursor `{next}` came back a second time"),
                    });
                }
                Some(next) => cursor = Some(next),
            }
        }
        Err(McpRegistryError::Pagination {
            url: url.to_string(),
            reason: format!("more than {MAX_PAGES} pages"),
        })
    }

    fn page_url(
        &self,
        url: &reqwest::Url,
        cursor: Option<&str>,
        updated_since: Option<&str>,
    ) -> reqwest::Url {
        let mut url = url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &self.options.page_limit.to_string());
            query.append_pair("version", "latest");
            if let Some(search) = &self.options.search {
                query.append_pair("search", search);
            }
            if let Some(since) = updated_since {
                query.append_pair("updated_since", since);
            }
            if let Some(cursor) = cursor {
                query.append_pair("cursor", cursor);
            }
        }
        url
    }

    async fn fetch_page(&self, url: &reqwest::Url) -> Result<Page, McpRegistryError> {
        let unreachable = |e: reqwest::Error| McpRegistryError::Unreachable {
            url: url.to_string(),
            reason: describe(&e, self.options.timeout),
        };
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.options.timeout)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(McpRegistryError::BadPage {
                    url: url.to_string(),
                    reason: format!(
                        "the body is larger than {} MiB; lower `page_limit`",
                        MAX_PAGE_BYTES / (1024 * 1024)
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(McpRegistryError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| McpRegistryError::BadPage {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// Applies one registry entry to the kept view.
    fn keep(&mut self, entry: Entry) {
        let official = entry.meta.official.unwrap_or_default();
        if let Some(raw) = &official.updated_at {
            match humantime::parse_rfc3339_weak(raw) {
                Ok(at) if self.newest.as_ref().is_none_or(|(newest, _)| at > *newest) => {
                    self.newest = Some((at, raw.clone()));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(server = %entry.server.name, "ignoring updatedAt `{raw}`: {e}")
                }
            }
        }
        let name = entry.server.name.clone();
        let latest = official.is_latest.unwrap_or(true);
        if official.status == Some(Status::Deleted) {
            // A deleted old version must not remove the kept latest one.
            if self
                .kept
                .get(&name)
                .is_some_and(|k| latest || k.server.version == entry.server.version)
            {
                tracing::info!(server = %name, "MCP Registry server deleted");
                self.kept.remove(&name);
            }
            return;
        }
        let replaces = self.kept.get(&name).is_none_or(|k| {
            rank_cmp(
                (latest, &entry.server.version),
                (k.latest, &k.server.version),
            ) != Ordering::Less
        });
        if replaces {
            self.kept.insert(
                name,
                Kept {
                    server: entry.server,
                    status: official.status,
                    latest,
                },
            );
        }
    }

    async fn read_files(&self) -> Result<Vec<ServerJson>, McpRegistryError> {
        let mut servers = Vec::with_capacity(self.options.files.len());
        for path in &self.options.files {
            let error = |reason: String| McpRegistryError::File {
                path: path.clone(),
                reason,
            };
            let text = tokio::fs::read(path)
                .await
                .map_err(|e| error(format!("{e}; check the path under `files`")))?;
            let server: ServerJson = serde_json::from_slice(&text).map_err(|e| {
                error(format!(
                    "not a server.json object ({e}); it needs at least `name` and `remotes` or `packages`"
                ))
            })?;
            servers.push(server);
        }
        Ok(servers)
    }
}

/// The well-formed entries of a page; the others are skipped with a warning.
fn parse_entries(url: &reqwest::Url, raw: Vec<serde_json::Value>) -> Vec<Entry> {
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, value)| {
            let name = value
                .pointer("/server/name")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("#{} (no name)", i + 1));
            match serde_json::from_value::<Entry>(value) {
                Ok(entry) if !entry.server.name.trim().is_empty() => Some(entry),
                Ok(_) => {
                    tracing::warn!(%url, "skipping MCP Registry entry {name}: its name is empty");
                    None
                }
                Err(e) => {
                    tracing::warn!(%url, server = %name, "skipping malformed MCP Registry entry `{name}`: {e}");
                    None
                }
            }
        })
        .collect()
}

/// Orders (is latest, version) pairs: the latest flag first, then the version.
fn rank_cmp(a: (bool, &Option<String>), b: (bool, &Option<String>)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| match (a.1, b.1) {
        (Some(x), Some(y)) => compare_versions(x, y),
        (x, y) => x.is_some().cmp(&y.is_some()),
    })
}

/// Semantic-version-like order: numeric parts compare as numbers, others as text.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<String> { v.split(['.', '-', '+']).map(str::to_owned).collect() };
    let (a, b) = (parts(a), parts(b));
    for (x, y) in a.iter().zip(&b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

fn publish(tx: &watch::Sender<Discovered>, result: Result<Vec<ServiceSpec>, McpRegistryError>) {
    tx.send_modify(|view| match result {
        Ok(services) => {
            if matches!(view.health, SourceHealth::Lost { .. }) {
                tracing::info!("MCP Registry source is reachable again");
            }
            view.services = Arc::new(services);
            view.health = SourceHealth::Live;
        }
        Err(e) => {
            let error = e.to_string();
            let since = match &view.health {
                SourceHealth::Lost { since, .. } => *since,
                _ => {
                    tracing::warn!("MCP Registry source lost, keeping the last services: {error}");
                    SystemTime::now()
                }
            };
            view.health = SourceHealth::Lost { error, since };
        }
    });
}

/// A reqwest error with its causes, which its `Display` leaves out.
fn describe(e: &reqwest::Error, timeout: std::time::Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {} (raise `timeout` if the registry is slow)",
            humantime::format_duration(timeout)
        );
    }
    // The URL is already in the error message around this text.
    let mut text = match e.url() {
        Some(url) => e.to_string().replace(&format!(" for url ({url})"), ""),
        None => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(compare_versions("1.10.0", "1.9.3"), Ordering::Greater);
        assert_eq!(compare_versions("2.0.0", "2.0.0"), Ordering::Equal);
        assert_eq!(compare_versions("0.1", "0.1.1"), Ordering::Less);
    }
}
