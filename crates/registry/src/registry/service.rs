//! A running service: its instances (each a supervised pool with load stats) and the tools
//! each instance last listed.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use tokio::time::Instant;
use toolmesh_core::{CallContext, Tool};
use toolmesh_pool::InstancePool;
use toolmesh_transport::{Prompt, Resource, ResourceTemplate};

use crate::{
    InstanceSpec, NATIVE_INSTANCE, RegistryError, ServiceSpec,
    discovery::match_score,
    router::CallLabels,
    strategy::{LoadStats, Picker},
};

/// How long listing an instance's tools may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// One instance: its pool, its load and the tools it last listed.
pub(crate) struct Instance {
    pub(crate) spec: InstanceSpec,
    pub(crate) pool: InstancePool,
    /// Its metric labels and call-duration histogram, built once.
    pub(crate) labels: CallLabels,
    pub(crate) duration: metrics::Histogram,
    pub(crate) load: Arc<LoadStats>,
    pub(crate) enabled: AtomicBool,
    /// Whether the registry follows its events already (an instance kept across a change
    /// of its service is followed once).
    pub(crate) watched: AtomicBool,
    tools: ArcSwapOption<Vec<Arc<Tool>>>,
    prompts: ArcSwapOption<Vec<Prompt>>,
    resources: ArcSwapOption<Vec<Resource>>,
    templates: ArcSwapOption<Vec<ResourceTemplate>>,
}

impl Instance {
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The tools it listed last, if it ever answered.
    pub(crate) fn tools(&self) -> Option<Arc<Vec<Arc<Tool>>>> {
        self.tools.load_full()
    }

    /// Whether it is known to offer `tool` (unknown counts as yes).
    pub(crate) fn offers(&self, tool: &str) -> bool {
        self.tools
            .load()
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x.name == tool))
    }

    /// How many points of the `wanted` capabilities it meets: each declared by the
    /// instance or its service counts 2, each mentioned by one of its tools 1.
    pub(crate) fn capability_score(&self, service: &ServiceSpec, wanted: &[String]) -> u32 {
        let tools = self.tools.load();
        let tools = tools.as_deref().map(Vec::as_slice);
        wanted
            .iter()
            .map(|want| {
                let declared = self.spec.capabilities.iter().chain(&service.capabilities);
                match_score(declared, tools, want)
            })
            .sum()
    }

    /// Sets the tool list without asking the server.
    pub(crate) fn set_tools(&self, tools: Vec<Arc<Tool>>) {
        self.tools.store(Some(Arc::new(tools)));
    }

    /// The prompts it listed last.
    pub(crate) fn prompts(&self) -> Option<Arc<Vec<Prompt>>> {
        self.prompts.load_full()
    }

    /// The resources it listed last.
    pub(crate) fn resources(&self) -> Option<Arc<Vec<Resource>>> {
        self.resources.load_full()
    }

    /// The resource templates it listed last.
    pub(crate) fn templates(&self) -> Option<Arc<Vec<ResourceTemplate>>> {
        self.templates.load_full()
    }

    /// Lists its tools (and prompts and resources, when the server has them) again; keeps
    /// the old lists on failure.
    pub(crate) async fn refresh(&self) -> bool {
        let ctx = CallContext::with_timeout(LIST_TIMEOUT);
        let ctx = &ctx;
        let listed = self
            .pool
            .run(ctx, |s| async move {
                let tools = s.list_tools(ctx).await?;
                let caps = s.server_info().capabilities.clone();
                // A server without the capability has nothing to list; a failing list is
                // not worth losing the tools over.
                let prompts = match caps.prompts {
                    Some(_) => s.list_prompts(ctx).await.unwrap_or_default(),
                    None => Vec::new(),
                };
                let (resources, templates) = match caps.resources {
                    Some(_) => (
                        s.list_resources(ctx).await.unwrap_or_default(),
                        s.list_resource_templates(ctx).await.unwrap_or_default(),
                    ),
                    None => (Vec::new(), Vec::new()),
                };
                Ok((tools, prompts, resources, templates))
            })
            .await;
        match listed {
            Ok((tools, prompts, resources, templates)) => {
                self.set_tools(tools.into_iter().map(Arc::new).collect());
                self.prompts.store(Some(Arc::new(prompts)));
                self.resources.store(Some(Arc::new(resources)));
                self.templates.store(Some(Arc::new(templates)));
                true
            }
            Err(e) => {
                tracing::warn!(instance = %self.spec.id, "cannot list tools: {e}");
                false
            }
        }
    }
}

/// A service and its instances, ordered by priority tier (stable within a tier).
pub(crate) struct Service {
    pub(crate) spec: ServiceSpec,
    /// The native backend's tools, shared with the catalog.
    native_tools: Option<Arc<Vec<Arc<Tool>>>>,
    pub(crate) native_enabled: AtomicBool,
    /// Metric labels of calls to the native backend.
    pub(crate) native_labels: CallLabels,
    pub(crate) instances: Vec<Arc<Instance>>,
    pub(crate) picker: Picker,
    pub(crate) enabled: AtomicBool,
    /// When the tools were last listed (discovery age).
    pub(crate) listed_at: std::sync::Mutex<Option<Instant>>,
}

impl Service {
    /// Starts a pool per instance (concurrently) and lists their tools.
    pub(crate) async fn start(spec: ServiceSpec) -> Result<Arc<Self>, RegistryError> {
        Self::start_from(spec, None).await
    }

    /// Starts `spec` as the successor of `previous`: instances it keeps unchanged (same
    /// spec, pool settings and timeout) carry over with their pool, load and tool lists —
    /// a membership change does not reconnect the rest — and only new ones are listed.
    pub(crate) async fn start_from(
        spec: ServiceSpec,
        previous: Option<&Self>,
    ) -> Result<Arc<Self>, RegistryError> {
        let reusable = previous.filter(|p| {
            p.spec.instance_config == spec.instance_config && p.spec.timeout == spec.timeout
        });
        let service = Self::start_pools(spec, reusable).await?;
        let fresh: Vec<&Arc<Instance>> = service
            .instances
            .iter()
            .filter(|i| !reusable.is_some_and(|p| p.instances.iter().any(|o| Arc::ptr_eq(o, i))))
            .collect();
        let listed = futures::future::join_all(fresh.iter().map(|i| i.refresh())).await;
        let at = if listed.into_iter().any(|ok| ok) {
            Some(Instant::now())
        } else {
            reusable.and_then(|p| p.listed_at.lock().ok().and_then(|at| *at))
        };
        if let Ok(mut listed_at) = service.listed_at.lock() {
            *listed_at = at;
        }
        Ok(service)
    }

    /// Starts a pool per instance and takes `tools` as every instance's list.
    pub(crate) async fn start_with_tools(
        spec: ServiceSpec,
        tools: Vec<Tool>,
    ) -> Result<Arc<Self>, RegistryError> {
        let service = Self::start_pools(spec, None).await?;
        let tools: Vec<Arc<Tool>> = tools.into_iter().map(Arc::new).collect();
        for instance in &service.instances {
            instance.set_tools(tools.clone());
        }
        if let Ok(mut at) = service.listed_at.lock() {
            *at = Some(Instant::now());
        }
        Ok(service)
    }

    async fn start_pools(
        spec: ServiceSpec,
        previous: Option<&Self>,
    ) -> Result<Arc<Self>, RegistryError> {
        if let Err(e) = toolmesh_core::ToolName::new(&spec.namespace, "x") {
            return Err(RegistryError::InvalidSpec {
                service: spec.id.clone(),
                reason: e.to_string(),
            });
        }
        if spec.instances.is_empty() && spec.native.is_none() {
            return Err(RegistryError::InvalidSpec {
                service: spec.id.clone(),
                reason: "no instances; give `url`, `command` or `instances`".into(),
            });
        }
        let mut specs = spec.instances.clone();
        specs.sort_by_key(|i| i.priority);
        let started = futures::future::join_all(specs.into_iter().map(|i| {
            let config = spec.instance_config.clone();
            let mut endpoint = i.endpoint.clone();
            endpoint.timeout.get_or_insert(spec.timeout);
            let labels = CallLabels::new(spec.id.as_str(), i.id.as_str());
            let kept = previous
                .and_then(|p| p.instances.iter().find(|o| o.spec == i))
                .cloned();
            async move {
                if let Some(kept) = kept {
                    return Ok(kept);
                }
                let pool = InstancePool::start(i.id.clone(), endpoint, config).await;
                pool.map(|pool| {
                    Arc::new(Instance {
                        duration: labels.duration(),
                        labels,
                        spec: i,
                        pool,
                        load: Arc::new(LoadStats::new()),
                        enabled: AtomicBool::new(true),
                        watched: AtomicBool::new(false),
                        tools: ArcSwapOption::empty(),
                        prompts: ArcSwapOption::empty(),
                        resources: ArcSwapOption::empty(),
                        templates: ArcSwapOption::empty(),
                    })
                })
            }
        }))
        .await;
        let mut instances = Vec::with_capacity(started.len());
        for instance in started {
            instances.push(instance.map_err(|e| RegistryError::InvalidSpec {
                service: spec.id.clone(),
                reason: e.to_string(),
            })?);
        }
        let native_tools = spec
            .native
            .as_ref()
            .map(|n| Arc::new(n.tools.iter().cloned().map(Arc::new).collect::<Vec<_>>()));
        let service = Arc::new(Self {
            native_tools,
            native_enabled: AtomicBool::new(true),
            native_labels: CallLabels::new(spec.id.as_str(), NATIVE_INSTANCE),
            picker: Picker::new(spec.strategy),
            enabled: AtomicBool::new(spec.enabled),
            spec,
            instances,
            listed_at: std::sync::Mutex::new(None),
        });
        Ok(service)
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Lists every instance's tools (concurrently).
    pub(crate) async fn refresh_tools(&self) {
        let listed = futures::future::join_all(self.instances.iter().map(|i| i.refresh())).await;
        if listed.into_iter().any(|ok| ok)
            && let Ok(mut at) = self.listed_at.lock()
        {
            *at = Some(Instant::now());
        }
    }

    /// The service's tools: those of the most preferred instance that listed any, plus
    /// native tools no instance lists.
    pub(crate) fn tools(&self) -> Option<Arc<Vec<Arc<Tool>>>> {
        let listed = self.instances.iter().find_map(|i| i.tools());
        match (listed, &self.native_tools) {
            (Some(listed), Some(native)) => {
                let mut all = (*listed).clone();
                all.extend(
                    native
                        .iter()
                        .filter(|n| !listed.iter().any(|t| t.name == n.name))
                        .cloned(),
                );
                Some(Arc::new(all))
            }
            (listed, native) => listed.or_else(|| native.clone()),
        }
    }

    /// The service's prompts: those of the most preferred instance that listed any.
    pub(crate) fn prompts(&self) -> Option<Arc<Vec<Prompt>>> {
        self.instances.iter().find_map(|i| i.prompts())
    }

    /// The service's resources, likewise.
    pub(crate) fn resources(&self) -> Option<Arc<Vec<Resource>>> {
        self.instances.iter().find_map(|i| i.resources())
    }

    /// The service's resource templates, likewise.
    pub(crate) fn templates(&self) -> Option<Arc<Vec<ResourceTemplate>>> {
        self.instances.iter().find_map(|i| i.templates())
    }

    /// The native backend, if enabled and implementing `tool`.
    pub(crate) fn native_for(&self, tool: &str) -> Option<&crate::NativeBackend> {
        self.spec
            .native
            .as_ref()
            .filter(|n| self.native_enabled.load(Ordering::Relaxed) && n.offers(tool))
    }

    /// How long ago the tools were listed.
    pub(crate) fn discovery_age(&self) -> Option<Duration> {
        self.listed_at
            .lock()
            .ok()
            .and_then(|at| at.map(|t| t.elapsed()))
    }

    /// Instances whose tool list differs from the service's, in words.
    pub(crate) fn divergence(&self) -> Vec<String> {
        let Some(reference) = self.tools() else {
            return Vec::new();
        };
        let expected: BTreeSet<&str> = reference.iter().map(|t| t.name.as_ref()).collect();
        let mut out = Vec::new();
        for instance in &self.instances {
            let Some(tools) = instance.tools() else {
                continue;
            };
            let have: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
            let missing: Vec<_> = expected.difference(&have).copied().collect();
            let extra: Vec<_> = have.difference(&expected).copied().collect();
            if !missing.is_empty() || !extra.is_empty() {
                out.push(format!(
                    "instance `{}` lacks [{}] and adds [{}]",
                    instance.spec.id,
                    missing.join(", "),
                    extra.join(", ")
                ));
            }
        }
        out
    }

    /// Drains and closes every instance.
    pub(crate) async fn shutdown(&self) {
        self.shutdown_except(&[]).await;
    }

    /// Drains and closes its instances but those of `kept` (its successors, which carry
    /// some of them over).
    pub(crate) async fn shutdown_except(&self, kept: &[Arc<Self>]) {
        let gone = self.instances.iter().filter(|i| {
            !kept
                .iter()
                .any(|s| s.instances.iter().any(|k| Arc::ptr_eq(k, i)))
        });
        futures::future::join_all(gone.map(|i| i.pool.shutdown())).await;
    }
}
