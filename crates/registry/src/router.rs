//! The call path: resolve → cache → pick → admit → call → classify → fail over → degrade →
//! report. Admission (breaker, bulkhead) and the call itself happen in each instance's pool.

mod flight;
mod metrics;
mod reads;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use serde::Serialize;
use tokio::time::Instant;
use toolmesh_core::{
    BoxFuture, CallContext, CallError, CallToolResult, ErrorKind, InstanceId, JsonObject, Phase,
    ServerId, ToolCall,
};
use toolmesh_resilience::hedge;
use tracing::Instrument;

use crate::{
    CatalogEntry, MeshEvent, NativeBackend, Registry, Strategy,
    registry::{
        CacheKey,
        service::{Instance, Service},
    },
    strategy::Candidate,
};

pub(crate) use flight::Flights;
pub(crate) use metrics::CallLabels;

/// What the router did for one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallMeta {
    /// The service that served it.
    pub service: Option<ServerId>,
    /// The instance that answered (none for a cache hit).
    pub instance: Option<InstanceId>,
    /// Instances called.
    pub attempts: u32,
    /// Attempts after the first.
    pub failovers: u32,
    /// Time from call to answer.
    pub latency: Duration,
    /// The service's strategy.
    pub strategy: Option<Strategy>,
    /// Instances that could have served it.
    pub alternatives: usize,
    /// How long ago the service's tools were listed.
    pub discovery_age: Option<Duration>,
    /// Answered from the cache.
    pub cache_hit: bool,
    /// A stale cached answer given because every instance failed.
    pub degraded: bool,
    /// What failed before the answer, one entry per failed attempt.
    pub tried: Vec<FailedAttempt>,
}

/// One attempt that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedAttempt {
    /// Where (none when no instance was tried, e.g. an exhausted retry budget).
    pub instance: Option<InstanceId>,
    /// The failure class.
    pub kind: ErrorKind,
    /// Whether the request may have reached the server.
    pub phase: Phase,
    /// The error, in words.
    pub error: String,
}

impl FailedAttempt {
    fn new(instance: &InstanceId, e: &CallError) -> Self {
        Self {
            instance: Some(instance.clone()),
            kind: e.kind(),
            phase: e.phase(),
            error: e.to_string(),
        }
    }
}

/// Where a call would go, without making it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteDecision {
    /// The service.
    pub service: ServerId,
    /// The tool's name on its server.
    pub tool: String,
    /// Instances in the order they would be tried.
    pub order: Vec<InstanceId>,
    /// How many of them are healthy with a closed breaker.
    pub usable: usize,
}

/// A tool result and how it was obtained.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The server's answer (`is_error: true` is an answer too).
    pub result: CallToolResult,
    /// Routing metadata.
    pub meta: CallMeta,
}

impl Registry {
    /// Calls a catalog tool (`namespace__tool` or `namespace/tool`), failing over between
    /// instances within the deadline of `ctx` without ever repeating a call that may have
    /// run unless the tool is idempotent or read-only.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<Routed, CallError> {
        let audit = self.inner.audit.load_full();
        let recorded = audit.as_ref().map(|a| a.arguments(arguments.as_ref()));
        let started = Instant::now();
        let outcome = self.admit_and_route(tool, arguments, ctx).await;
        let latency = started.elapsed();
        if let (Some(audit), Some(recorded)) = (audit, recorded) {
            audit.record(tool, ctx, recorded, &outcome, latency);
        }
        self.baseline(tool, &outcome, latency);
        outcome
    }

    /// Folds a call into its tool's baseline; reports what departs from it.
    fn baseline(&self, tool: &str, outcome: &Result<Routed, CallError>, latency: Duration) {
        let failed = match outcome {
            Ok(_) => false,
            // The caller's mistakes and refusals say nothing about the tool.
            Err(e) => !matches!(
                e.kind(),
                ErrorKind::Denied
                    | ErrorKind::RateLimited
                    | ErrorKind::ToolNotFound
                    | ErrorKind::InvalidRequest
                    | ErrorKind::Cancelled
            ),
        };
        for anomaly in self.inner.anomalies.observe(tool, latency, failed) {
            tracing::warn!(
                tool = %anomaly.tool,
                kind = anomaly.kind,
                value = anomaly.value,
                baseline = anomaly.baseline,
                "anomaly: {} of `{}` far from its baseline",
                anomaly.kind,
                anomaly.tool
            );
            ::metrics::counter!("toolmesh_anomalies_total", "tool" => anomaly.tool.clone(), "kind" => anomaly.kind)
                .increment(1);
            self.inner.event(crate::MeshEvent::Anomaly {
                tool: anomaly.tool,
                kind: anomaly.kind,
                value: anomaly.value,
                baseline: anomaly.baseline,
            });
        }
    }

    /// Whether the caller of `ctx` may call `tool`, checked before anything else about the
    /// call is looked at (its arguments, say); a refusal is counted and audited like a
    /// refused call. An unknown tool passes: the call itself reports it.
    ///
    /// # Errors
    ///
    /// [`CallError::Denied`] naming the missing grant.
    pub fn authorize(
        &self,
        tool: &str,
        arguments: Option<&JsonObject>,
        ctx: &CallContext,
    ) -> Result<(), CallError> {
        // Nothing to look up on the hot path without a policy or without roles.
        if ctx.roles.is_none() || self.inner.policy.load().is_none() {
            return Ok(());
        }
        let Some(entry) = self.catalog().resolve(tool).cloned() else {
            return Ok(());
        };
        let admitted = self.admit(ctx, &entry.rendered, entry.name.tool());
        if let (Err(refused), Some(audit)) = (&admitted, self.inner.audit.load_full()) {
            let outcome = Err(refused.clone());
            audit.record(
                tool,
                ctx,
                audit.arguments(arguments),
                &outcome,
                Duration::ZERO,
            );
        }
        admitted
    }

    /// [`call`](Self::call) without the audit.
    async fn admit_and_route(
        &self,
        tool: &str,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<Routed, CallError> {
        let started = Instant::now();
        let state = self.inner.state.load();
        let Some(entry) = state.catalog.resolve(tool).cloned() else {
            return Err(CallError::ToolNotFound {
                tool: tool.to_owned(),
                hint: state.catalog.hint(tool),
            });
        };
        let Some(service) = state.service(&entry.service).cloned() else {
            return Err(CallError::ToolNotFound {
                tool: tool.to_owned(),
                hint: "; its service was just removed".into(),
            });
        };
        drop(state);
        // Admission: refused calls never reach an instance.
        self.admit(ctx, &entry.rendered, entry.name.tool())?;
        if let Some(limits) = &*self.inner.limits.load() {
            limits.check(ctx, &entry.rendered, entry.name.tool())?;
        }
        if let Some(limiter) = &self.inner.per_tool {
            limiter.check(&entry.rendered)?;
        }
        if let (Some(limiter), Some(principal)) = (&self.inner.per_principal, &ctx.principal) {
            limiter.check_key(principal)?;
        }
        let budget = entry.policy.timeout.unwrap_or(service.spec.timeout);
        let ctx = ctx.capped(budget);
        let cacheable = entry
            .policy
            .cache_ttl
            .filter(|_| entry.idempotent || entry.read_only);
        // The cached path boxed: it is rarer, and inline it would size every call's future.
        let mut routed = match cacheable {
            Some(ttl) => {
                let cached: BoxFuture<'_, _> =
                    Box::pin(self.cached(&entry, &service, arguments, &ctx, ttl, budget));
                cached.await
            }
            None => self.dispatch(&entry, &service, arguments, &ctx).await,
        }?;
        routed.meta.latency = started.elapsed();
        routed.meta.discovery_age = service.discovery_age();
        routed.meta.strategy = Some(service.spec.strategy);
        Ok(routed)
    }

    /// Resolves `tool` and orders its instances as a call would, without calling.
    pub fn route(&self, tool: &str) -> Result<RouteDecision, CallError> {
        let state = self.inner.state.load();
        let entry = state
            .catalog
            .resolve(tool)
            .ok_or_else(|| CallError::ToolNotFound {
                tool: tool.to_owned(),
                hint: state.catalog.hint(tool),
            })?;
        let service = state
            .service(&entry.service)
            .ok_or_else(|| CallError::ToolNotFound {
                tool: tool.to_owned(),
                hint: "; its service was just removed".into(),
            })?;
        let (order, usable) = Self::candidates(service, entry.name.tool(), &[]);
        Ok(RouteDecision {
            service: service.spec.id.clone(),
            tool: entry.name.tool().to_owned(),
            order: order.iter().map(|i| i.spec.id.clone()).collect(),
            usable,
        })
    }

    /// Runs `calls` concurrently, at most `concurrency` at a time; results keep the order.
    pub async fn call_many(
        &self,
        calls: Vec<(String, Option<JsonObject>)>,
        ctx: &CallContext,
        concurrency: usize,
    ) -> Vec<Result<Routed, CallError>> {
        futures::stream::iter(calls)
            .map(|(tool, args)| async move { self.call(&tool, args, ctx).await })
            .buffered(concurrency.max(1))
            .collect()
            .await
    }

    /// A cacheable call: answered from the cache, or by the one fetch shared by every
    /// caller that misses meanwhile (see [`flight`]). Each caller waits for it under its
    /// own deadline and cancellation.
    async fn cached(
        &self,
        entry: &Arc<CatalogEntry>,
        service: &Arc<Service>,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
        ttl: Duration,
        budget: Duration,
    ) -> Result<Routed, CallError> {
        let key = (
            entry.rendered.clone(),
            serde_json::to_string(&arguments).unwrap_or_default(),
        );
        let meta = std::sync::Mutex::new(None);
        let fetch = || async {
            let flight = self.inner.flights.join(&key, &entry.rendered, || {
                self.shared_fetch(entry, service, arguments.clone(), ctx, budget, &key)
            });
            let (result, shared_meta) = flight.await?;
            if let Ok(mut m) = meta.lock() {
                *m = Some(shared_meta);
            }
            Ok::<_, CallError>(result)
        };
        let started = Instant::now();
        let target = || -> Arc<str> { entry.rendered.as_str().into() };
        let fetched = tokio::select! {
            biased;
            fetched = self.inner.cache.get_or_fetch(key.clone(), ttl, fetch) => {
                fetched.map_err(Arc::unwrap_or_clone)?
            }
            () = ctx.cancelled() => {
                return Err(CallError::Cancelled { target: target(), phase: Phase::AfterSend });
            }
            () = tokio::time::sleep_until(ctx.deadline) => {
                return Err(CallError::Timeout {
                    target: target(),
                    after: ctx.deadline.saturating_duration_since(started),
                    phase: Phase::AfterSend,
                });
            }
        };
        if fetched.value.is_error == Some(true) {
            // A tool error is an answer, not one worth keeping.
            self.inner.cache.invalidate(&key).await;
        }
        let mut meta = meta.into_inner().ok().flatten().unwrap_or_default();
        meta.service = Some(service.spec.id.clone());
        meta.cache_hit = fetched.hit;
        meta.degraded = fetched.stale;
        Ok(Routed {
            result: fetched.value,
            meta,
        })
    }

    /// The fetch of a cached call, owned by no caller: the longest deadline a caller can
    /// have (the tool's timeout from now), no cancellation and no client relay.
    fn shared_fetch(
        &self,
        entry: &Arc<CatalogEntry>,
        service: &Arc<Service>,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
        budget: Duration,
        key: &CacheKey,
    ) -> BoxFuture<'static, flight::Fetched> {
        let mut own = CallContext::with_timeout(budget);
        own.principal = ctx.principal.clone();
        own.idempotent = ctx.idempotent;
        own.capabilities = ctx.capabilities.clone();
        let (registry, entry, service, key) =
            (self.clone(), entry.clone(), service.clone(), key.clone());
        Box::pin(async move {
            let out = registry
                .dispatch(&entry, &service, arguments, &own)
                .await
                .map(|routed| (routed.result, routed.meta));
            registry.inner.flights.landed(&key);
            out
        })
    }

    /// Usable instances of the best tiers first, ordered by the strategy; then the rest
    /// (unhealthy or breaker open) as a last resort. An empty `tool` means any instance.
    /// `wanted` are the capabilities the call asks for (`capability_match` scores them).
    fn candidates(service: &Service, tool: &str, wanted: &[String]) -> (Vec<Arc<Instance>>, usize) {
        let wanted: &[String] = match service.picker.strategy() {
            Strategy::CapabilityMatch => wanted,
            _ => &[],
        };
        let offered: Vec<&Arc<Instance>> = service
            .instances
            .iter()
            .filter(|i| i.is_enabled() && (tool.is_empty() || i.offers(tool)))
            .collect();
        let usable = |i: &Instance| i.pool.is_usable();
        let mut order = Vec::with_capacity(offered.len());
        let mut rest = Vec::new();
        let mut tier_start = 0;
        while tier_start < offered.len() {
            let priority = offered[tier_start].spec.priority;
            let tier_end = offered[tier_start..]
                .iter()
                .position(|i| i.spec.priority != priority)
                .map_or(offered.len(), |n| tier_start + n);
            let (good, bad): (Vec<_>, Vec<_>) = offered[tier_start..tier_end]
                .iter()
                .copied()
                .partition(|i| usable(i));
            let candidates: Vec<Candidate<'_>> = good
                .iter()
                .map(|i| Candidate {
                    weight: i.spec.weight,
                    load: &i.load,
                    capability_score: if wanted.is_empty() {
                        0
                    } else {
                        i.capability_score(&service.spec, wanted)
                    },
                })
                .collect();
            order.extend(
                service
                    .picker
                    .order(&candidates)
                    .into_iter()
                    .map(|k| good[k].clone()),
            );
            rest.extend(bad.into_iter().cloned());
            tier_start = tier_end;
        }
        let usable_count = order.len();
        order.extend(rest);
        (order, usable_count)
    }

    async fn dispatch(
        &self,
        entry: &Arc<CatalogEntry>,
        service: &Arc<Service>,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<Routed, CallError> {
        let tool = entry.name.tool();
        let (order, usable) = Self::candidates(service, tool, ctx.requested_capabilities());
        let native = service.native_for(tool);
        let max_attempts =
            1 + service.spec.max_failover_attempts as usize + usize::from(native.is_some());
        let safe = ctx.idempotent.unwrap_or(entry.idempotent);
        self.inner.budget.record_request();
        let mut meta = CallMeta {
            service: Some(service.spec.id.clone()),
            alternatives: usable + usize::from(native.is_some()),
            ..CallMeta::default()
        };
        if let Some(delay) = entry
            .policy
            .hedge_after
            .filter(|_| entry.read_only && order.len() > 1 && native.is_none_or(|n| !n.prefer))
        {
            // Boxed, as the cached path: not every call's size.
            let hedged: BoxFuture<'_, _> =
                Box::pin(self.hedged(entry, &order, arguments, ctx, delay, max_attempts, meta));
            return hedged.await;
        }
        // Native first when preferred (or the only way), else as the last resort.
        let native_first = native.filter(|n| n.prefer || order.is_empty());
        let native_last = native.filter(|_| native_first.is_none());
        let targets: Vec<Target<'_>> = native_first
            .map(Target::Native)
            .into_iter()
            .chain(order.into_iter().map(Target::Instance))
            .chain(native_last.map(Target::Native))
            .collect();
        if targets.is_empty() {
            return Err(CallError::Exhausted {
                tool: entry.rendered.clone(),
                tried: vec![format!(
                    "no enabled instance of `{}` offers it",
                    service.spec.id
                )],
                phase: Phase::BeforeSend,
            });
        }
        let mut phase = Phase::BeforeSend;
        for (n, target) in targets.iter().take(max_attempts).enumerate() {
            if n > 0 && !self.inner.budget.try_retry() {
                meta.tried.push(FailedAttempt {
                    instance: None,
                    kind: ErrorKind::Exhausted,
                    phase: Phase::BeforeSend,
                    error: "retry budget exhausted: no further failover".into(),
                });
                break;
            }
            meta.attempts += 1;
            let outcome = match target {
                Target::Native(native) => {
                    let native: BoxFuture<'_, _> = Box::pin(call_native(
                        native,
                        &service.native_labels,
                        entry,
                        arguments.clone(),
                        ctx,
                    ));
                    native.await
                }
                Target::Instance(instance) => attempt(instance, tool, arguments.clone(), ctx).await,
            };
            match outcome {
                Ok(result) => {
                    meta.instance = Some(target.id());
                    meta.failovers = meta.attempts - 1;
                    return Ok(Routed { result, meta });
                }
                Err(e) => {
                    if e.phase() == Phase::AfterSend {
                        phase = Phase::AfterSend;
                    }
                    meta.tried.push(FailedAttempt::new(&target.id(), &e));
                    let may_retry = e.is_retryable()
                        && (e.phase() == Phase::BeforeSend || safe)
                        && !ctx.remaining().is_zero()
                        && !ctx.cancel.as_ref().is_some_and(|c| c.is_cancelled());
                    if !may_retry {
                        // One attempt: its own error is the clearest answer.
                        return Err(if meta.attempts == 1 {
                            e
                        } else {
                            exhausted(entry, meta, phase)
                        });
                    }
                    self.inner.event(MeshEvent::Failover {
                        tool: entry.rendered.clone(),
                        from: target.id(),
                        error: e.to_string(),
                    });
                }
            }
        }
        Err(exhausted(entry, meta, phase))
    }

    /// Read-only tools: a second instance starts if the first has not answered by `delay`;
    /// the first success wins and the others are cancelled.
    #[allow(clippy::too_many_arguments)]
    async fn hedged(
        &self,
        entry: &Arc<CatalogEntry>,
        order: &[Arc<Instance>],
        arguments: Option<JsonObject>,
        ctx: &CallContext,
        delay: Duration,
        max_attempts: usize,
        mut meta: CallMeta,
    ) -> Result<Routed, CallError> {
        let tool = entry.name.tool();
        let tries = std::sync::atomic::AtomicU32::new(0);
        let outcome = hedge(delay, max_attempts.min(order.len()), |n| {
            let instance = order[n].clone();
            let arguments = arguments.clone();
            tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                attempt(&instance, tool, arguments, ctx)
                    .await
                    .map(|result| (instance.spec.id.clone(), result))
                    .map_err(|e| FailedAttempt::new(&instance.spec.id, &e))
            }
        })
        .await;
        meta.attempts = tries.load(std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok((instance, result)) => {
                meta.failovers = meta.attempts.saturating_sub(1);
                meta.instance = Some(instance);
                Ok(Routed { result, meta })
            }
            Err(last) => {
                meta.tried.push(last);
                Err(exhausted(entry, meta, Phase::AfterSend))
            }
        }
    }
}

/// Where one attempt goes.
enum Target<'a> {
    Native(&'a NativeBackend),
    Instance(Arc<Instance>),
}

impl Target<'_> {
    fn id(&self) -> InstanceId {
        match self {
            Target::Native(_) => InstanceId::new(NATIVE_INSTANCE),
            Target::Instance(i) => i.spec.id.clone(),
        }
    }
}

/// The instance id reported for calls served in-process.
pub const NATIVE_INSTANCE: &str = "native";

/// One call on the native backend, bounded by the deadline whatever the tool does.
async fn call_native(
    native: &NativeBackend,
    labels: &CallLabels,
    entry: &CatalogEntry,
    arguments: Option<JsonObject>,
    ctx: &CallContext,
) -> Result<CallToolResult, CallError> {
    let started = Instant::now();
    let call = ToolCall {
        name: entry.name.clone(),
        arguments,
    };
    let outcome = tokio::time::timeout_at(ctx.deadline, native.invoker.invoke_dyn(call, ctx)).await;
    let outcome = outcome.unwrap_or_else(|_| {
        Err(CallError::Timeout {
            target: format!("native `{}`", entry.rendered).into(),
            after: ctx.deadline.saturating_duration_since(started),
            phase: Phase::AfterSend,
        })
    });
    labels.count(entry.name.tool(), &outcome);
    outcome
}

fn exhausted(entry: &CatalogEntry, meta: CallMeta, phase: Phase) -> CallError {
    CallError::Exhausted {
        tool: entry.rendered.clone(),
        tried: meta
            .tried
            .into_iter()
            .map(|t| match t.instance {
                Some(instance) => format!("{instance}: {}", t.error),
                None => t.error,
            })
            .collect(),
        phase,
    }
}

/// One call on one instance, feeding its load stats and the call metrics.
async fn attempt(
    instance: &Instance,
    tool: &str,
    arguments: Option<JsonObject>,
    ctx: &CallContext,
) -> Result<CallToolResult, CallError> {
    let in_flight = instance.load.begin();
    let started = Instant::now();
    let span = tracing::debug_span!("attempt", instance = %instance.spec.id, tool);
    let out = instance
        .pool
        .call(tool, arguments, ctx)
        .instrument(span)
        .await;
    let took = started.elapsed();
    in_flight.finish(took, out.is_ok());
    instance.labels.count(tool, &out);
    instance.duration.record(took.as_secs_f64());
    out
}
