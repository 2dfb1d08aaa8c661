//! A gateway's view of the registry in etcd: the prefix loaded once, then followed from the
//! loaded revision + 1; after a lost connection the watch resumes from the last revision
//! seen (a full reload when etcd has compacted it away). The view is published whole on a
//! `watch` channel, so a burst of changes reaches the router as one batch.

use std::{collections::BTreeMap, sync::Arc, time::Duration, time::SystemTime};

use etcd_client::{Client, GetOptions, WatchOptions, WatchResponse};
use tokio::{sync::watch, task::JoinHandle};

use super::{
    EtcdError, EtcdOptions, MemberRecord,
    record::{parse_key, services, services_prefix},
};
use crate::discovery::{Discovered, SourceHealth};

/// Waits between reconnection attempts: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3));

/// Follows the instances registered in etcd.
#[derive(Debug)]
pub struct EtcdMembership {
    view: watch::Receiver<Discovered>,
    follower: JoinHandle<()>,
}

/// The records as last seen, and the revision they were seen at.
struct View {
    options: EtcdOptions,
    records: BTreeMap<(String, String), MemberRecord>,
    /// 0 until loaded (and again when a reload is needed).
    revision: i64,
    /// The cluster the records were read from.
    cluster: u64,
    tx: watch::Sender<Discovered>,
}

impl EtcdMembership {
    /// Loads the registry and follows it. When etcd cannot be reached: an error if
    /// `options.required`, otherwise an empty view marked lost that fills in once etcd
    /// answers.
    ///
    /// # Errors
    ///
    /// Invalid options; etcd unreachable while required.
    pub async fn start(options: EtcdOptions) -> Result<Self, EtcdError> {
        options.validate()?;
        let (tx, rx) = watch::channel(Discovered::default());
        let mut view = View {
            options,
            records: BTreeMap::new(),
            revision: 0,
            cluster: 0,
            tx,
        };
        let client = match view.connect_and_load().await {
            Ok(client) => Some(client),
            Err(e) if view.options.required => return Err(e),
            Err(e) => {
                tracing::warn!("{e}; serving the configured services and retrying");
                view.lost(&e);
                None
            }
        };
        Ok(Self {
            view: rx,
            follower: tokio::spawn(view.follow(client)),
        })
    }

    /// The latest view; changes whenever membership or reachability does.
    pub fn view(&self) -> watch::Receiver<Discovered> {
        self.view.clone()
    }
}

impl Drop for EtcdMembership {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl View {
    async fn connect_and_load(&mut self) -> Result<Client, EtcdError> {
        let mut client = self.options.connect().await?;
        self.load(&mut client).await?;
        Ok(client)
    }

    /// Reads every record under the prefix at one revision.
    async fn load(&mut self, client: &mut Client) -> Result<(), EtcdError> {
        let prefix = services_prefix(&self.options.prefix);
        let response = client
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| self.unreachable(&e))?;
        self.records.clear();
        for kv in response.kvs() {
            self.put(kv.key(), kv.value());
        }
        self.revision = response.header().map_or(0, |h| h.revision());
        self.cluster = response.header().map_or(0, |h| h.cluster_id());
        self.publish(SourceHealth::Live);
        tracing::info!(
            instances = self.records.len(),
            revision = self.revision,
            "registry loaded from etcd"
        );
        Ok(())
    }

    /// Watches until the connection fails, then reconnects with backoff, forever.
    async fn follow(mut self, mut client: Option<Client>) {
        let mut wait = BACKOFF.0;
        loop {
            let attempt = match client.take() {
                Some(client) => Ok(client),
                None => self.options.connect().await,
            };
            let ended = match attempt {
                Ok(mut client) => self.watch(&mut client, &mut wait).await,
                Err(e) => Err(e),
            };
            if let Err(e) = ended {
                self.lost(&e);
                tracing::warn!("{e}; routing on the last known membership, retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BACKOFF.1);
            }
        }
    }

    /// Follows changes from the last revision on; returns when the stream fails.
    async fn watch(&mut self, client: &mut Client, wait: &mut Duration) -> Result<(), EtcdError> {
        if self.revision != 0 && self.replaced(client).await? {
            self.revision = 0;
        }
        if self.revision == 0 {
            self.load(client).await?;
        }
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.revision + 1)
            .with_progress_notify();
        let prefix = services_prefix(&self.options.prefix);
        let mut stream = client
            .watch(prefix, Some(options))
            .await
            .map_err(|e| self.unreachable(&e))?;
        loop {
            let Some(response) = stream.message().await.map_err(|e| self.unreachable(&e))? else {
                return Err(self.unreachable(&"the watch stream ended"));
            };
            if response.compact_revision() > 0 || response.canceled() {
                // The revision to resume from is gone: read everything again.
                tracing::info!(
                    compacted = response.compact_revision(),
                    "etcd compacted the watched revision; reloading the registry"
                );
                self.revision = 0;
                return Ok(());
            }
            if response.created() {
                *wait = BACKOFF.0;
                if self.tx.borrow().health != SourceHealth::Live {
                    tracing::info!("etcd is back; following the registry again");
                    self.publish(SourceHealth::Live);
                }
            }
            self.apply(&response);
        }
    }

    /// Whether etcd's store is not the one last read (a rebuilt cluster, a restore from an
    /// older snapshot): its revision went back, or it is another cluster. Resuming the watch
    /// there would miss every change below the old revision.
    async fn replaced(&self, client: &mut Client) -> Result<bool, EtcdError> {
        let prefix = services_prefix(&self.options.prefix);
        let probe = client
            .get(
                prefix,
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .map_err(|e| self.unreachable(&e))?;
        let (revision, cluster) = probe
            .header()
            .map_or((0, 0), |h| (h.revision(), h.cluster_id()));
        let replaced = revision < self.revision || cluster != self.cluster;
        if replaced {
            tracing::warn!(
                was = self.revision,
                now = revision,
                "etcd's store was replaced (its revision went back or its cluster changed); reloading the registry"
            );
        }
        Ok(replaced)
    }

    /// Applies one response's events (one publication for all of them).
    fn apply(&mut self, response: &WatchResponse) {
        let events = response.events();
        for event in events {
            let Some(kv) = event.kv() else { continue };
            // 0 put, 1 delete (read raw: the typed accessor panics on unknown values).
            match event.0.r#type {
                0 => self.put(kv.key(), kv.value()),
                1 => self.delete(kv.key()),
                other => tracing::warn!(kind = other, "unknown etcd event ignored"),
            }
        }
        if let Some(header) = response.header() {
            self.revision = self.revision.max(header.revision());
        }
        if !events.is_empty() {
            self.publish(SourceHealth::Live);
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        let Some(id) = self.key_of(key) else { return };
        match serde_json::from_slice::<MemberRecord>(value) {
            Ok(record) => {
                self.records.insert(id, record);
            }
            Err(e) => {
                tracing::warn!(
                    service = id.0,
                    instance = id.1,
                    "registry record ignored: {e}"
                );
                self.records.remove(&id);
            }
        }
    }

    fn delete(&mut self, key: &[u8]) {
        if let Some(id) = self.key_of(key) {
            self.records.remove(&id);
        }
    }

    fn key_of(&self, key: &[u8]) -> Option<(String, String)> {
        let key = std::str::from_utf8(key).ok()?;
        parse_key(&self.options.prefix, key).map(|(s, i)| (s.to_owned(), i.to_owned()))
    }

    fn publish(&self, health: SourceHealth) {
        let services = Arc::new(services(&self.records));
        self.tx.send_replace(Discovered { services, health });
    }

    /// Marks the view lost (keeping its services and the time it was first lost).
    fn lost(&self, error: &EtcdError) {
        self.tx.send_modify(|view| {
            let since = match &view.health {
                SourceHealth::Lost { since, .. } => *since,
                _ => SystemTime::now(),
            };
            view.health = SourceHealth::Lost {
                error: error.to_string(),
                since,
            };
        });
    }

    fn unreachable(&self, reason: &dyn std::fmt::Display) -> EtcdError {
        EtcdError::request(self.options.shown(), reason)
    }
}
