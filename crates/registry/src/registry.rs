//! [`Registry`]: services → instances → tools, changed at runtime, read as snapshots.

pub(crate) mod service;

use std::{
    collections::HashMap,
    sync::{Arc, Weak, atomic::Ordering},
    time::Duration,
};

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use toolmesh_core::{CallToolResult, ServerId, ToolNaming};
use toolmesh_pool::{HealthStatus, PoolEvent};
use toolmesh_resilience::{
    BreakerState, CacheConfig, RateLimitConfig, RateLimiter, ResultCache, RetryBudget,
    RetryBudgetConfig,
};

use crate::{Catalog, MeshEvent, RegistryError, ServiceSpec, router::Flights};
use service::Service;

/// Read-mostly state, swapped whole on every change.
pub(crate) struct State {
    pub(crate) services: Vec<Arc<Service>>,
    /// Position of each service in `services`.
    index: HashMap<ServerId, usize>,
    pub(crate) catalog: Arc<Catalog>,
}

impl State {
    fn new(services: Vec<Arc<Service>>, catalog: Arc<Catalog>) -> Self {
        let index = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.spec.id.clone(), i))
            .collect();
        Self {
            services,
            index,
            catalog,
        }
    }

    pub(crate) fn service(&self, id: &ServerId) -> Option<&Arc<Service>> {
        self.services.get(*self.index.get(id)?)
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
    /// Fetches of cached tools running now, shared by their callers.
    pub(crate) flights: Flights,
    pub(crate) budget: RetryBudget,
    pub(crate) per_tool: Option<RateLimiter>,
    pub(crate) per_principal: Option<RateLimiter>,
    /// Input schemas, compiled once per catalog.
    pub(crate) schemas: crate::arguments::Schemas,
    /// Roles granting tools; none: every caller may use every tool.
    pub(crate) policy: arc_swap::ArcSwapOption<crate::Policy>,
    /// Rate limits by caller and tool; none: no limit beyond the options'.
    pub(crate) limits: arc_swap::ArcSwapOption<crate::RateLimits>,
    /// Rolling baselines per tool, and the anomalies they revealed.
    pub(crate) anomalies: crate::anomaly::Anomalies,
    /// Where every call is recorded; none: nowhere.
    pub(crate) audit: arc_swap::ArcSwapOption<crate::Audit>,
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
    /// Calls per second allowed for each tool (key: the tool's catalog name).
    pub rate_limit_per_tool: Option<RateLimitConfig>,
    /// Calls per second allowed for each principal (key: `CallContext::principal`).
    pub rate_limit_per_principal: Option<RateLimitConfig>,
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
            rate_limit_per_tool: None,
            rate_limit_per_principal: None,
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
                state: ArcSwap::from_pointee(State::new(
                    Vec::new(),
                    Arc::new(Catalog::empty(options.naming.clone())),
                )),
                changes: tokio::sync::Mutex::new(()),
                naming: options.naming,
                events: broadcast::channel(1024).0,
                cache: ResultCache::new(options.cache),
                flights: Flights::default(),
                budget: RetryBudget::new(options.retry_budget),
                per_tool: options.rate_limit_per_tool.map(RateLimiter::new),
                per_principal: options.rate_limit_per_principal.map(RateLimiter::new),
                schemas: Default::default(),
                policy: arc_swap::ArcSwapOption::empty(),
                audit: arc_swap::ArcSwapOption::empty(),
                limits: arc_swap::ArcSwapOption::empty(),
                anomalies: Default::default(),
            }),
        }
    }

    /// The latest anomalies (a tool's latency or error rate far from its baseline),
    /// oldest first.
    pub fn anomalies(&self) -> Vec<crate::Anomaly> {
        self.inner.anomalies.recent()
    }

    /// Limits calls by caller and tool from now on (`None`: lifts the limits).
    pub fn set_rate_limits(&self, limits: Option<crate::RateLimits>) {
        self.inner.limits.store(limits.map(Arc::new));
    }

    /// Records every call from now on in `audit` (`None`: stops recording).
    pub fn set_audit(&self, audit: Option<crate::Audit>) {
        self.inner.audit.store(audit.map(Arc::new));
    }

    /// Sets (or, with `None`, lifts) the policy every call is checked against; calls
    /// already admitted are not affected.
    pub fn set_policy(&self, policy: Option<crate::Policy>) {
        self.inner.policy.store(policy.map(Arc::new));
    }

    /// Whether a caller with `roles` may use the tool, prompt or resource named
    /// `rendered` in the catalog (`bare`: its own name, or the URI again); `Err` says why
    /// not. A caller without roles (`None`: not authenticated, in process) may use all.
    pub fn permits(
        &self,
        roles: Option<&[String]>,
        rendered: &str,
        bare: &str,
    ) -> Result<(), String> {
        match (roles, &*self.inner.policy.load()) {
            (Some(roles), Some(policy)) => policy.check(roles, rendered, bare),
            _ => Ok(()),
        }
    }

    /// [`permits`](Self::permits) for a call under `ctx`, as the error the call fails with.
    pub(crate) fn admit(
        &self,
        ctx: &toolmesh_core::CallContext,
        rendered: &str,
        bare: &str,
    ) -> Result<(), toolmesh_core::CallError> {
        self.permits(ctx.roles.as_deref(), rendered, bare)
            .map_err(|reason| {
                metrics::counter!("toolmesh_policy_denied_total").increment(1);
                toolmesh_core::CallError::Denied {
                    tool: rendered.to_owned(),
                    principal: ctx
                        .principal
                        .as_deref()
                        .map_or_else(|| "the caller".to_owned(), |p| format!("`{p}`")),
                    reason,
                }
            })
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

    /// Adds services whose tools are given rather than listed from their instances (for
    /// servers slow to start, offline catalogs and benchmarks). A later list-changed
    /// notification replaces a list. The catalog is rebuilt once for all of them.
    pub async fn add_services_with_tools(
        &self,
        services: Vec<(ServiceSpec, Vec<toolmesh_core::Tool>)>,
    ) -> Result<(), RegistryError> {
        let _change = self.inner.changes.lock().await;
        let state = self.inner.state.load_full();
        if let Some((spec, _)) = services
            .iter()
            .find(|(s, _)| state.service(&s.id).is_some())
        {
            return Err(RegistryError::DuplicateService(spec.id.clone()));
        }
        let started = futures::future::join_all(
            services
                .into_iter()
                .map(|(spec, tools)| Service::start_with_tools(spec, tools)),
        )
        .await;
        let started = self.started(started, &[]).await?;
        self.swap(|list| list.extend(started.iter().cloned()));
        Ok(())
    }

    /// Keeps the started services if all started; otherwise closes them and returns the
    /// first error.
    async fn started(
        &self,
        results: Vec<Result<Arc<Service>, RegistryError>>,
        running: &[Arc<Service>],
    ) -> Result<Vec<Arc<Service>>, RegistryError> {
        let mut ok = Vec::with_capacity(results.len());
        let mut first_error = None;
        for result in results {
            match result {
                Ok(service) => ok.push(service),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            futures::future::join_all(ok.iter().map(|s| s.shutdown_except(running))).await;
            return Err(e);
        }
        for service in &ok {
            self.watch(service);
            self.inner.event(MeshEvent::ServiceChanged {
                service: service.spec.id.clone(),
                change: "added",
            });
        }
        Ok(ok)
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

    /// Makes the registry hold exactly `specs`, in their order: new and changed services
    /// start (concurrently) before anything is swapped, the catalog is rebuilt once, then
    /// removed and replaced services drain their in-flight calls and close. If a service
    /// cannot start, nothing changes.
    pub async fn apply(&self, specs: Vec<ServiceSpec>) -> Result<(), RegistryError> {
        let _change = self.inner.changes.lock().await;
        let current = self.inner.state.load_full();
        let fresh: Vec<ServiceSpec> = specs
            .iter()
            .filter(|spec| {
                current
                    .service(&spec.id)
                    .is_none_or(|old| &old.spec != *spec)
            })
            .cloned()
            .collect();
        if fresh.is_empty() && specs.len() == current.services.len() {
            return Ok(());
        }
        let started = futures::future::join_all(fresh.into_iter().map(|spec| {
            let previous = current.service(&spec.id).cloned();
            async move { Service::start_from(spec, previous.as_deref()).await }
        }))
        .await;
        let started = self.started(started, &current.services).await?;
        let next: Vec<Arc<Service>> = specs
            .iter()
            .filter_map(|spec| {
                started
                    .iter()
                    .find(|s| s.spec.id == spec.id)
                    .or_else(|| current.service(&spec.id))
                    .cloned()
            })
            .collect();
        let retired: Vec<Arc<Service>> = current
            .services
            .iter()
            .filter(|old| !next.iter().any(|s| Arc::ptr_eq(s, old)))
            .cloned()
            .collect();
        self.swap(|services| *services = next.clone());
        for old in &retired {
            let change = if next.iter().any(|s| s.spec.id == old.spec.id) {
                "replaced"
            } else {
                "removed"
            };
            self.inner.event(MeshEvent::ServiceChanged {
                service: old.spec.id.clone(),
                change,
            });
        }
        futures::future::join_all(retired.iter().map(|s| s.shutdown_except(&next))).await;
        Ok(())
    }

    /// Takes a service out of (or back into) the catalog without stopping it.
    pub fn set_service_enabled(&self, id: &ServerId, enabled: bool) -> Result<(), RegistryError> {
        let state = self.inner.state.load();
        let service = state
            .service(id)
            .ok_or_else(|| RegistryError::UnknownService(id.clone()))?;
        service.enabled.store(enabled, Ordering::Relaxed);
        self.inner.rebuild();
        Ok(())
    }

    /// Stops (or resumes) routing to a service's native backend.
    pub fn set_native_enabled(&self, id: &ServerId, enabled: bool) -> Result<(), RegistryError> {
        let state = self.inner.state.load();
        let service = state
            .service(id)
            .ok_or_else(|| RegistryError::UnknownService(id.clone()))?;
        service.native_enabled.store(enabled, Ordering::Relaxed);
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
        self.inner.rebuild();
    }

    /// Drains and closes every service.
    pub async fn shutdown(&self) {
        let _change = self.inner.changes.lock().await;
        let state = self.inner.state.load_full();
        self.swap(Vec::clear);
        futures::future::join_all(state.services.iter().map(|s| s.shutdown())).await;
        // The drained calls' lines, if the audit log holds them.
        if let Some(audit) = self.inner.audit.load_full() {
            audit.flush();
        }
    }

    /// Swaps in a new service list and catalog.
    fn swap(&self, change: impl Fn(&mut Vec<Arc<Service>>)) {
        self.inner.update(change);
    }

    /// Follows a service's instances: list changes rebuild the catalog, health and breaker
    /// changes become mesh events. Ends when the service is gone.
    fn watch(&self, service: &Arc<Service>) {
        let unwatched = service
            .instances
            .iter()
            .filter(|i| !i.watched.swap(true, std::sync::atomic::Ordering::Relaxed));
        for instance in unwatched {
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
                            Ok(PoolEvent::ResourceUpdated { uri, .. }) => {
                                let Some(inner) = inner.upgrade() else { return };
                                inner.event(MeshEvent::ResourceUpdated { uri });
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
        self.state.rcu(|state| {
            let mut services = state.services.clone();
            change(&mut services);
            let catalog = Arc::new(Catalog::build(&self.naming, &services));
            State::new(services, catalog)
        });
        let tools = self.state.load().catalog.len();
        self.event(MeshEvent::CatalogChanged { tools });
    }

    pub(crate) fn rebuild(&self) {
        self.update(|_| {});
    }
}
