//! One place where the registry's services are decided: the configured services merged with
//! the discovery sources' latest views. A reload and a membership change both come here, one
//! at a time, so the last apply always reflects the latest of both.

use tokio::sync::Mutex;
use toolmesh_registry::{Registry, RegistryError, ServiceSpec, discovery::merge};

use super::{Error, sources::Sources};
use crate::config::RegistryConfig;

pub(crate) struct Composer {
    registry: Registry,
    state: Mutex<State>,
}

struct State {
    /// Servers, exposed agents and workflows of the configuration in force.
    configured: Vec<ServiceSpec>,
    sources: Sources,
}

impl Composer {
    pub(crate) fn new(registry: Registry, configured: Vec<ServiceSpec>, sources: Sources) -> Self {
        Self {
            registry,
            state: Mutex::new(State {
                configured,
                sources,
            }),
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Applies the configured services with the sources' latest views.
    pub(crate) async fn recompose(&self) -> Result<(), RegistryError> {
        let state = self.state.lock().await;
        self.apply(&state).await
    }

    /// Puts a new configuration in force: its services (`configured`), and its publication
    /// of `servers`.
    pub(crate) async fn reconfigure(
        &self,
        configured: Vec<ServiceSpec>,
        registry: &RegistryConfig,
        servers: &[ServiceSpec],
    ) -> Result<(), Error> {
        let mut state = self.state.lock().await;
        state.configured = configured;
        self.apply(&state).await?;
        state.sources.publish(registry, servers).await
    }

    async fn apply(&self, state: &State) -> Result<(), RegistryError> {
        let discovered = state.sources.views.discovered();
        self.registry
            .apply(merge(state.configured.clone(), &discovered))
            .await
    }

    /// Withdraws the publication and stops following the sources.
    pub(crate) async fn close(&self) {
        self.state.lock().await.sources.close().await;
    }
}
