//! [`Registry`]: services → instances → tools, changed at runtime, read as snapshots.

pub(crate) mod service;

use std::{
    sync::{Arc, Weak, atomic::Ordering},
    time::Duration,
};

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use toolmesh_core::{CallToolResult, ServerId, ToolNaming};
use toolmesh_pool::{HealthStatus, PoolEvent};
use toolmesh_resilience::{BreakerState, CacheConfig, ResultCache, RetryBudget, RetryBudgetConfig};

use crate::{Catalog, MeshEvent, RegistryError, ServiceSpec};
use service::Service;

/// Read-mostly state, swapped whole on every change.
pub(crate) struct State {
    pub(crate) services: Vec<Arc<Service>>,
    pub(crate) catalog: Arc<Catalog>,
}

impl State {
    pub(crate) fn service(&self, id: &ServerId) -> Option<&Arc<Service>> {
        self.services.iter().find(|s| &s.spec.id == id)
    }
}

/// Cache key: rendered tool name and canonical JSON arguments.
pub(crate) type CacheKey = (String, String);

pub(crate) struct Inner {
    pub(crate) state: ArcSwap<State>,
    /// Serializes changes; readers never wait on it.
    changes: tokio::sync::Mutex<()>,
    pub(crate) naming: ToolNaming,
    pub(crate) events: broadcast::Sender<MeshEvent>,
    pub(crate) cache: ResultCache<CacheKey, CallToolResult>,
    pub(crate) budget: RetryBudget,
}

/// The services toolmesh routes to. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Registry {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.load();
        f.debug_struct("Registry")
            .field("services", &state.services.len())
            .field("tools", &state.catalog.len())
            .finish()
    }
}

/// Registry-wide settings.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// How qualified names are rendered.
    pub naming: ToolNaming,
    /// Result cache bounds and stale-if-error period.
    pub cache: CacheConfig,
    /// Failovers allowed relative to calls, so an outage cannot multiply load.
    pub retry_budget: RetryBudgetConfig,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            naming: ToolNaming::default(),
            cache: CacheConfig {
                stale_if_error: Duration::from_secs(300),
                ..CacheConfig::default()
            },
            retry_budget: RetryBudgetConfig::default(),
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(RegistryOptions::default())
    }
}

impl Registry {
    /// An empty registry.
    pub fn new(options: RegistryOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: ArcSwap::from_pointee(State {
                    services: Vec::new(),
                    catalog: Arc::new(Catalog::empty(options.naming.clone())),
                }),
                changes: tokio::sync::Mutex::new(()),
                naming: options.naming,
                events: broadcast::channel(1024).0,
                cache: ResultCache::new(options.cache),
                budget: RetryBudget::new(options.retry_budget),
            }),
        }
    }

    /// A registry with `specs` added in order.
    pub async fn from_specs(
        specs: Vec<ServiceSpec>,
        options: RegistryOptions,
    ) -> Result<Self, RegistryError> {
        let registry = Self::new(options);
        registry.apply(specs).await?;
        Ok(registry)
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.state.load().catalog.clone()
    }

    /// Names of the registered services, in order.
    pub fn services(&self) -> Vec<ServerId> {
        self.inner
            .state
            .load()
            .services
            .iter()
            .map(|s| s.spec.id.clone())
            .collect()
    }

    /// The spec a service runs with.
    pub fn spec(&self, id: &ServerId) -> Option<ServiceSpec> {
        self.inner.state.load().service(id).map(|s| s.spec.clone())
    }

    /// Subscribes to breaker trips, instance down/up, failovers and catalog changes.
    pub fn subscribe(&self) -> broadcast::Receiver<MeshEvent> {
        self.inner.events.subscribe()
    }

    /// Starts a service's instances, lists its tools and adds them to the catalog.
    pub async fn add_service(&self, spec: ServiceSpec) -> Result<(), RegistryError> {
        let _change = self.inner.changes.lock().await;
        if self.inner.state.load().service(&spec.id).is_some() {
            return Err(RegistryError::DuplicateService(spec.id));
        }
        let id = spec.id.clone();
        let service = Service::start(spec).await?;
        self.watch(&service);
        self.swap(|services| services.push(service.clone()));
        self.inner.event(MeshEvent::ServiceChanged {
            service: id,
            change: "added",
        });
        Ok(())
    }

    /// Adds a service whose tools are given rather than listed from its instances (for
    /// servers known to be slow to start, offline catalogs and benchmarks). A later
    /// list-changed notification replaces the list.
    pub async fn add_service_with_tools(
        &self,
        spec: ServiceSpec,
        tools: Vec<toolmesh_core::Tool>,
    ) -> Result<(), RegistryError> {
        let _change = self.inner.changes.lock().await;
        if self.inner.state.load().service(&spec.id).is_some() {
            return Err(RegistryError::DuplicateService(spec.id));
        }
        let id = spec.id.clone();
        let service = Service::start_with_tools(spec, tools).await?;
        self.watch(&service);
        self.swap(|services| services.push(service.clone()));
        self.inner.event(MeshEvent::ServiceChanged {
            service: id,
            change: "added",
        });
        Ok(())
    }

    /// Removes a service: it leaves the catalog at once, in-flight calls finish (up to the
    /// drain timeout), then its instances close.
    pub async fn remove_service(&self, id: &ServerId) -> Result<(), RegistryError> {
        let _change = self.inner.changes.lock().await;
        let service = self
            .inner
            .state
            .load()
            .service(id)
            .cloned()
            .ok_or_else(|| RegistryError::UnknownService(id.clone()))?;
        self.swap(|services| services.retain(|s| &s.spec.id != id));
        self.inner.event(MeshEvent::ServiceChanged {
            service: id.clone(),
            change: "removed",
        });
        service.shutdown().await;
        Ok(())
    }

    /// Makes the registry hold exactly `specs`: new services are added, missing ones
    /// removed, changed ones replaced (the new one starts before the old one drains).
    pub async fn apply(&self, specs: Vec<ServiceSpec>) -> Result<(), RegistryError> {
        let current = self.inner.state.load_full();
        for old in &current.services {
            if !specs.iter().any(|s| s.id == old.spec.id) {
                self.remove_service(&old.spec.id).await?;
            }
        }
        for spec in specs {
            match current.service(&spec.id) {
                None => self.add_service(spec).await?,
                Some(old) if old.spec == spec => {}
                Some(_) => self.replace_service(spec).await?,
            }
        }
        Ok(())
    }

    async fn replace_service(&self, spec: ServiceSpec) -> Result<(), RegistryError> {
        let _change = self.inner.changes.lock().await;
        let id = spec.id.clone();
        let fresh = Service::start(spec).await?;
        self.watch(&fresh);
        let old = self.inner.state.load().service(&id).cloned();
        self.swap(|services| {
            if let Some(slot) = services.iter_mut().find(|s| s.spec.id == id) {
                *slot = fresh.clone();
            }
        });
        self.inner.event(MeshEvent::ServiceChanged {
            service: id,
            change: "replaced",
        });
        if let Some(old) = old {
            old.shutdown().await;
        }
        Ok(())
    }

    /// Takes a service out of (or back into) the catalog without stopping it.
    pub fn set_service_enabled(&self, id: &ServerId, enabled: bool) -> Result<(), RegistryError> {
        let state = self.inner.state.load();
        let service = state
            .service(id)
            .ok_or_else(|| RegistryError::UnknownService(id.clone()))?;
        service.enabled.store(enabled, Ordering::Relaxed);
        self.rebuild();
        Ok(())
    }

    /// Stops (or resumes) routing to one instance.
    pub fn set_instance_enabled(
        &self,
        service: &ServerId,
        instance: &str,
        enabled: bool,
    ) -> Result<(), RegistryError> {
        let state = self.inner.state.load();
        let svc = state
            .service(service)
            .ok_or_else(|| RegistryError::UnknownService(service.clone()))?;
        let inst = svc
            .instances
            .iter()
            .find(|i| i.spec.id.as_str() == instance)
            .ok_or_else(|| RegistryError::UnknownInstance {
                service: service.clone(),
                instance: instance.to_owned(),
            })?;
        inst.enabled.store(enabled, Ordering::Relaxed);
        Ok(())
    }

    /// Lists every service's tools again and rebuilds the catalog.
    pub async fn refresh(&self) {
        let services = self.inner.state.load().services.clone();
        futures::future::join_all(services.iter().map(|s| s.refresh_tools())).await;
        self.rebuild();
    }

    /// Drains and closes every service.
    pub async fn shutdown(&self) {
        let _change = self.inner.changes.lock().await;
        let state = self.inner.state.load_full();
        self.swap(Vec::clear);
        futures::future::join_all(state.services.iter().map(|s| s.shutdown())).await;
    }

    /// Swaps in a new service list and catalog.
    fn swap(&self, change: impl Fn(&mut Vec<Arc<Service>>)) {
        self.inner.update(change);
    }

    fn rebuild(&self) {
        self.inner.rebuild();
    }

    /// Follows a service's instances: list changes rebuild the catalog, health and breaker
    /// changes become mesh events. Ends when the service is gone.
    fn watch(&self, service: &Arc<Service>) {
        for instance in &service.instances {
            let mut pool_events = instance.pool.events();
            let mut breaker_events = instance.pool.breaker().subscribe();
            let inner: Weak<Inner> = Arc::downgrade(&self.inner);
            let weak_instance = Arc::downgrade(instance);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        event = pool_events.recv() => match event {
                            Ok(PoolEvent::ListChanged { .. }) => {
                                let Some(instance) = weak_instance.upgrade() else { return };
                                instance.refresh().await;
                                match inner.upgrade() { Some(inner) => inner.rebuild(), None => return }
                            }
                            Ok(PoolEvent::HealthChanged { instance, status, reason }) => {
                                let Some(inner) = inner.upgrade() else { return };
                                inner.event(match status {
                                    HealthStatus::Unhealthy => MeshEvent::InstanceDown { instance, reason },
                                    _ => MeshEvent::InstanceUp { instance },
                                });
                            }
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                        event = breaker_events.recv() => match event {
                            Ok(e) if e.to == BreakerState::Open => {
                                let (Some(inner), Some(instance)) = (inner.upgrade(), weak_instance.upgrade()) else { return };
                                inner.event(MeshEvent::BreakerTripped { instance: instance.spec.id.clone() });
                            }
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                    }
                    if weak_instance.strong_count() == 0 {
                        return;
                    }
                }
            });
        }
    }
}

impl Inner {
    pub(crate) fn event(&self, event: MeshEvent) {
        let _ = self.events.send(event);
    }

    /// Applies `change` to the service list and rebuilds the catalog, retrying if another
    /// update (a list-changed rebuild) landed meanwhile, so none is lost.
    fn update(&self, change: impl Fn(&mut Vec<Arc<Service>>)) {
        let next = self.state.rcu(|state| {
            let mut services = state.services.clone();
            change(&mut services);
            let catalog = Arc::new(Catalog::build(&self.naming, &services));
            State { services, catalog }
        });
        let _ = next;
        let tools = self.state.load().catalog.len();
        self.event(MeshEvent::CatalogChanged { tools });
    }

    pub(crate) fn rebuild(&self) {
        self.update(|_| {});
    }
}
