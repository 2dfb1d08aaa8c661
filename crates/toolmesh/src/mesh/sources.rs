//! The discovery sources of a mesh (the shared registry in etcd, the MCP Registry) and what
//! it publishes in etcd: their views are merged with the configured services by [`super::compose`].

use tokio::{sync::watch, task::JoinHandle};
use toolmesh_registry::{
    ServiceSpec,
    discovery::{
        Discovered, SourceHealth, SourceStatus,
        etcd::{EtcdMembership, Member, Registration},
        mcp_registry::McpRegistrySource,
    },
};

use crate::{Config, config::RegistryConfig, mesh::Error};

/// The views of every source, cheap to clone (for status pages and followers).
#[derive(Debug, Clone, Default)]
pub struct SourceViews {
    views: Vec<(&'static str, watch::Receiver<Discovered>)>,
}

impl SourceViews {
    /// Each source's state.
    pub fn status(&self) -> Vec<SourceStatus> {
        self.views
            .iter()
            .map(|(name, view)| SourceStatus::of(name, &view.borrow()))
            .collect()
    }

    /// Whether there is any source to follow.
    pub(crate) fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Every service the sources found, source by source.
    pub(crate) fn discovered(&self) -> Vec<ServiceSpec> {
        self.views
            .iter()
            .flat_map(|(_, view)| view.borrow().services.iter().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Waits until any view changes (membership or health); never returns without sources.
    pub(crate) async fn changed(&mut self) {
        if self.views.is_empty() {
            return std::future::pending().await;
        }
        let changes = self
            .views
            .iter_mut()
            .map(|(_, view)| Box::pin(view.changed()));
        let (result, ..) = futures::future::select_all(changes).await;
        if result.is_err() {
            // A source that ended stays at its last view.
            std::future::pending::<()>().await;
        }
    }
}

/// The running sources and the publication.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub(crate) views: SourceViews,
    membership: Option<EtcdMembership>,
    publication: Option<(Vec<Member>, Registration)>,
    polling: Option<JoinHandle<()>>,
}

impl Sources {
    /// Starts what `config.registry` asks for. etcd unreachable is an error unless
    /// `registry.etcd.required` is false.
    pub(crate) async fn start(config: &Config) -> Result<Self, Error> {
        let mut sources = Self::default();
        if let Some(etcd) = &config.registry.etcd {
            let membership = EtcdMembership::start(etcd.clone()).await?;
            sources.views.views.push(("etcd", membership.view()));
            sources.membership = Some(membership);
        }
        if let Some(options) = &config.registry.mcp_registry {
            let timeout = options.timeout;
            let (mut view, polling) = McpRegistrySource::new(options.clone())?.follow();
            // Serve what the first load finds; a slow or absent registry fills in later.
            let first = view.wait_for(|v| v.health != SourceHealth::Starting);
            if tokio::time::timeout(timeout * 2, first).await.is_err() {
                tracing::warn!(
                    "the MCP Registry has not answered yet; its servers join when it does"
                );
            }
            sources.views.views.push(("mcp_registry", view));
            sources.polling = Some(polling);
        }
        Ok(sources)
    }

    /// Publishes `services`' remote instances when `registry.publish` is on, replacing
    /// the previous publication when they changed.
    pub(crate) async fn publish(
        &mut self,
        registry: &RegistryConfig,
        services: &[ServiceSpec],
    ) -> Result<(), Error> {
        let members = match (&registry.etcd, registry.publish) {
            (Some(_), true) => RegistryConfig::members(services),
            _ => Vec::new(),
        };
        if self.publication.as_ref().map(|(m, _)| m) == Some(&members)
            || (members.is_empty() && self.publication.is_none())
        {
            return Ok(());
        }
        let old = self.publication.take();
        if let (Some(etcd), false) = (&registry.etcd, members.is_empty()) {
            let registration = Registration::start(etcd.clone(), members.clone(), registry.ttl)?;
            // Written before the old lease is revoked: keys that stay move to the new lease,
            // so the instances that stay never leave the other gateways' catalogs.
            if let Err(e) = registration.registered(etcd.timeout).await {
                tracing::warn!("publishing the new configuration's instances: {e}");
            }
            self.publication = Some((members, registration));
        }
        if let Some((_, old)) = old {
            old.close().await;
        }
        Ok(())
    }

    /// Withdraws the publication (at once, not after its lease) and stops following.
    pub(crate) async fn close(&mut self) {
        if let Some((_, registration)) = self.publication.take() {
            registration.close().await;
        }
        self.membership = None;
        if let Some(polling) = self.polling.take() {
            polling.abort();
        }
    }
}

impl Drop for Sources {
    fn drop(&mut self) {
        if let Some(polling) = self.polling.take() {
            polling.abort();
        }
    }
}
