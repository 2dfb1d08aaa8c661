//! [`InstancePool`]: the supervised sessions of one instance, behind its breaker and bulkhead.

mod slot;
mod supervisor;

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::{
    sync::{Notify, broadcast},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use toolmesh_core::{
    BoxFuture, CallContext, CallError, CallToolResult, InstanceId, JsonObject, Phase,
    duration::deadline_after,
};
use toolmesh_resilience::{Bulkhead, CircuitBreaker};
use toolmesh_transport::{Endpoint, ServerEvent, Session};

use crate::{
    Health, HealthStatus, InstanceConfig, PoolSnapshot, health::HealthTracker, metrics::PoolMetrics,
};
use slot::{Freed, Lease, Slot};

/// What happened in a pool, for logs, reports and alert hooks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A session was opened (a process spawned or a connection made).
    SessionOpened {
        /// The instance.
        instance: InstanceId,
        /// Process id of a stdio session.
        pid: Option<u32>,
    },
    /// A session was closed: dead, idle or failing.
    SessionClosed {
        /// The instance.
        instance: InstanceId,
        /// Why.
        reason: Arc<str>,
    },
    /// Connecting failed; the next attempt waits `retry_in`.
    ConnectFailed {
        /// The instance.
        instance: InstanceId,
        /// The error.
        error: CallError,
        /// Backoff before the next attempt.
        retry_in: Duration,
    },
    /// The server said its tools (or resources, or prompts) changed: list them again.
    ListChanged {
        /// The instance.
        instance: InstanceId,
    },
    /// A resource a caller subscribed to changed.
    ResourceUpdated {
        /// The instance.
        instance: InstanceId,
        /// The resource.
        uri: String,
    },
    /// The instance's health changed.
    HealthChanged {
        /// The instance.
        instance: InstanceId,
        /// New status.
        status: HealthStatus,
        /// Why.
        reason: Arc<str>,
    },
}

/// Reconnect backoff state.
struct ConnectState {
    backoff: Option<ExponentialBackoff>,
    retry_at: Option<Instant>,
    last_error: Option<CallError>,
}

pub(crate) struct Shared {
    id: InstanceId,
    label: Arc<str>,
    endpoint: Endpoint,
    config: InstanceConfig,
    epoch: Instant,
    slots: ArcSwap<Vec<Arc<Slot>>>,
    /// Serializes opening sessions, so a burst of calls spawns one process, not fifty.
    opening: tokio::sync::Mutex<()>,
    freed: Arc<Freed>,
    breaker: CircuitBreaker,
    bulkhead: Bulkhead,
    health: Mutex<HealthTracker>,
    /// Mirrors of the health tracker and connect state, for the router's hot path.
    unhealthy: AtomicBool,
    connect_failing: AtomicBool,
    connect: Mutex<ConnectState>,
    metrics: PoolMetrics,
    accepting: AtomicBool,
    in_flight: AtomicUsize,
    drained: Notify,
    wake: Arc<Notify>,
    stop: CancellationToken,
    events: broadcast::Sender<PoolEvent>,
}

/// The sessions of one MCP server instance: opened on demand up to `max_sessions`, the
/// least loaded chosen per call, dead ones replaced with backoff, idle ones closed, health
/// checked; calls pass the instance's circuit breaker and bulkhead. Cheap to clone.
#[derive(Clone)]
pub struct InstancePool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePool")
            .field("instance", &self.shared.id)
            .field("sessions", &self.shared.slots.load().len())
            .finish()
    }
}

/// Counts a call in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

impl InstancePool {
    /// Validates `config`, opens `min_sessions` (a failure there is not an error: the
    /// supervisor keeps trying and health says why) and starts supervising.
    pub async fn start(
        id: InstanceId,
        mut endpoint: Endpoint,
        config: InstanceConfig,
    ) -> Result<Self, CallError> {
        if endpoint.name.is_none() {
            endpoint.name = Some(id.to_string());
        }
        let label: Arc<str> = endpoint.label().into();
        config.validate().map_err(|e| CallError::InvalidRequest {
            reason: format!("instance {label}: {e}"),
        })?;
        endpoint.validate().map_err(|e| CallError::InvalidRequest {
            reason: format!("endpoint {label}: {e}"),
        })?;
        let hc = &config.health_check;
        let shared = Arc::new(Shared {
            breaker: CircuitBreaker::new(label.clone(), config.circuit_breaker.clone()),
            bulkhead: Bulkhead::new(label.clone(), config.bulkhead.clone()),
            health: Mutex::new(HealthTracker::new(
                hc.failure_threshold,
                hc.success_threshold,
            )),
            unhealthy: AtomicBool::new(false),
            connect_failing: AtomicBool::new(false),
            connect: Mutex::new(ConnectState {
                backoff: None,
                retry_at: None,
                last_error: None,
            }),
            metrics: PoolMetrics::new(label.clone()),
            id,
            label,
            endpoint,
            config,
            epoch: Instant::now(),
            slots: ArcSwap::from_pointee(Vec::new()),
            opening: tokio::sync::Mutex::new(()),
            freed: Arc::new(Freed::default()),
            accepting: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
            drained: Notify::new(),
            wake: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            events: broadcast::channel(32).0,
        });
        shared.replenish().await;
        tokio::spawn(supervisor::run(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    /// The instance.
    pub fn id(&self) -> &InstanceId {
        &self.shared.id
    }

    /// The endpoint as named in errors.
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// The configuration in force.
    pub fn config(&self) -> &InstanceConfig {
        &self.shared.config
    }

    /// The instance's circuit breaker (for pickers that skip open instances).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.shared.breaker
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Subscribes to pool events.
    pub fn events(&self) -> broadcast::Receiver<PoolEvent> {
        self.shared.events.subscribe()
    }

    /// Calls a tool on a pooled session.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        self.run(ctx, |session| async move {
            session.call_tool(tool, arguments, ctx).await
        })
        .await
    }

    /// Runs `op` on a pooled session under the breaker, the bulkhead and the deadline of
    /// `ctx`; the outcome feeds the breaker and the metrics.
    pub async fn run<T, F, Fut>(&self, ctx: &CallContext, op: F) -> Result<T, CallError>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let s = &*self.shared;
        let result = s.run(ctx, op).await;
        if let Err(e) = &result {
            s.metrics.error(e.kind());
        }
        result
    }

    /// Whether calls should be routed here, and why.
    pub fn health(&self) -> Health {
        self.shared.health()
    }

    /// `health().is_usable()` without building the report: a few atomic loads.
    pub fn is_usable(&self) -> bool {
        let s = &*self.shared;
        s.breaker.state() != toolmesh_resilience::BreakerState::Open
            && !s.unhealthy.load(Ordering::Relaxed)
            && !(s.connect_failing.load(Ordering::Relaxed) && s.live_count() == 0)
    }

    /// Current figures.
    pub fn snapshot(&self) -> PoolSnapshot {
        self.shared.snapshot()
    }

    /// Closes every session now; the supervisor opens `min_sessions` again (with backoff).
    pub fn recycle(&self) {
        for slot in self.shared.slots.load().iter() {
            self.shared.retire(slot, "recycled on request");
        }
    }

    /// Stops taking calls, waits for in-flight ones up to `drain_timeout`, then closes
    /// every session (stdio children are killed and reaped before this returns).
    pub async fn shutdown(&self) {
        let s = &*self.shared;
        s.accepting.store(false, Ordering::Release);
        let deadline = deadline_after(s.config.pool.drain_timeout);
        loop {
            let drained = s.drained.notified();
            if s.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            tokio::select! {
                () = drained => {}
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(instance = %s.label, in_flight = s.in_flight.load(Ordering::Relaxed), "drain timeout; closing anyway");
                    break;
                }
            }
        }
        s.stop.cancel();
        let slots = s.slots.swap(Arc::new(Vec::new()));
        for slot in slots.iter() {
            slot.session.close(Duration::from_secs(2)).await;
            s.metrics.session_destroyed();
        }
    }
}

impl Shared {
    fn event(&self, event: PoolEvent) {
        let _ = self.events.send(event);
    }

    fn live_count(&self) -> usize {
        self.slots.load().iter().filter(|s| s.is_alive()).count()
    }

    async fn run<T, F, Fut>(&self, ctx: &CallContext, op: F) -> Result<T, CallError>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(CallError::Closed {
                target: self.label.clone(),
                phase: Phase::BeforeSend,
                reason: "the instance pool is shutting down".into(),
            });
        }
        let admission = self.breaker.admit()?;
        let _permit = self.bulkhead.acquire(ctx.deadline).await?;
        let _flight = InFlight::new(self);
        let lease = match self.acquire(ctx).await {
            Ok(lease) => lease,
            Err(e) => {
                if e.is_instance_failure() {
                    admission.failure();
                }
                return Err(e);
            }
        };
        // Boxed: rare, and would otherwise size every call's future.
        if self.config.pool.validate_on_acquire
            && let Err(e) = (Box::pin(lease.slot.session.ping(ctx)) as BoxFuture<'_, _>).await
        {
            self.retire(&lease.slot, "failed validation ping");
            admission.failure();
            return Err(CallError::Closed {
                target: self.label.clone(),
                phase: Phase::BeforeSend,
                reason: format!("the session failed its validation ping: {e}"),
            });
        }
        let result = op(lease.slot.session.clone()).await;
        match &result {
            Ok(_) => admission.success(),
            Err(e) => {
                if e.is_instance_failure() {
                    admission.failure();
                }
                // A refused connection mid-session means the server went away: its
                // session state is gone with it, so a new session is needed.
                if !lease.slot.is_alive()
                    || matches!(
                        e.kind(),
                        toolmesh_core::ErrorKind::Closed | toolmesh_core::ErrorKind::Connect
                    )
                {
                    self.retire(&lease.slot, "the session closed during a call");
                }
            }
        }
        result
    }

    /// The least-loaded live session with room, if any.
    fn try_lease(&self) -> Option<Lease> {
        let slots = self.slots.load();
        let mut best: Option<&Arc<Slot>> = None;
        let mut dead = false;
        for slot in slots.iter() {
            if !slot.is_alive() {
                dead = true;
                continue;
            }
            if best.is_none_or(|b| slot.outstanding() < b.outstanding()) {
                best = Some(slot);
            }
        }
        if dead {
            self.wake.notify_one();
        }
        let best = best.filter(|b| b.outstanding() < self.config.pool.max_requests_per_session)?;
        Some(Lease::new(best.clone(), self.freed.clone()))
    }

    async fn acquire(&self, ctx: &CallContext) -> Result<Lease, CallError> {
        if let Some(lease) = self.try_lease() {
            self.metrics.acquired(Duration::ZERO);
            return Ok(lease);
        }
        // Boxed: waiting may open a session, whose future is many times the size of
        // the rest of a call's and would be laid out inline in every call's.
        let waiting: BoxFuture<'_, _> = Box::pin(self.wait_for_lease(ctx, Instant::now()));
        waiting.await
    }

    /// [`acquire`](Self::acquire) when no session has room now: waits for one to free,
    /// opening sessions up to `max_sessions`.
    async fn wait_for_lease(
        &self,
        ctx: &CallContext,
        started: Instant,
    ) -> Result<Lease, CallError> {
        let wait_until = started
            .checked_add(self.config.pool.acquire_timeout)
            .map_or(ctx.deadline, |until| ctx.deadline.min(until));
        let _waiting = self.freed.wait();
        loop {
            let freed = self.freed.notify().notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(lease) = self.try_lease() {
                self.metrics.acquired(started.elapsed());
                return Ok(lease);
            }
            let live = self.live_count();
            if live < self.config.pool.max_sessions {
                match self.grow(wait_until).await {
                    Ok(Some(lease)) => {
                        self.metrics.acquired(started.elapsed());
                        return Ok(lease);
                    }
                    Ok(None) => continue,
                    // With sessions still up, wait for one of them instead.
                    Err(e) if live == 0 => return Err(e),
                    Err(_) => {}
                }
            }
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep_until(wait_until) => {
                    return Err(CallError::PoolExhausted {
                        target: self.label.clone(),
                        waited: started.elapsed(),
                    });
                }
            }
        }
    }

    /// Opens one more session for a waiting call, unless another call did meanwhile.
    async fn grow(&self, wait_until: Instant) -> Result<Option<Lease>, CallError> {
        let Ok(_opening) = tokio::time::timeout_at(wait_until, self.opening.lock()).await else {
            return Ok(None);
        };
        if let Some(lease) = self.try_lease() {
            return Ok(Some(lease));
        }
        if self.live_count() >= self.config.pool.max_sessions {
            return Ok(None);
        }
        let slot = match tokio::time::timeout_at(wait_until, self.open()).await {
            Ok(slot) => slot?,
            Err(_) => {
                return Err(CallError::Connect {
                    target: self.label.clone(),
                    reason: "no session could be opened before the call's deadline".into(),
                });
            }
        };
        Ok(Some(Lease::new(slot, self.freed.clone())))
    }

    /// Opens a session, honouring the reconnect backoff. Callers hold `opening`.
    async fn open(&self) -> Result<Arc<Slot>, CallError> {
        if let Some(e) = self.backing_off() {
            return Err(e);
        }
        match Session::connect(&self.endpoint).await {
            Ok(session) => {
                if let Ok(mut c) = self.connect.lock() {
                    *c = ConnectState {
                        backoff: None,
                        retry_at: None,
                        last_error: None,
                    };
                }
                self.connect_failing.store(false, Ordering::Relaxed);
                let pid = session.pid();
                self.forward_list_changes(&session);
                let slot = Arc::new(Slot::new(session, self.epoch));
                self.slots.rcu(|slots| {
                    let mut next = Vec::with_capacity(slots.len() + 1);
                    next.extend(slots.iter().cloned());
                    next.push(slot.clone());
                    next
                });
                self.metrics.session_created();
                self.event(PoolEvent::SessionOpened {
                    instance: self.id.clone(),
                    pid,
                });
                self.freed.wake();
                Ok(slot)
            }
            Err(error) => {
                let retry_in = self.connect_failed(&error);
                tracing::warn!(instance = %self.label, "connect failed, next attempt in {retry_in:?}: {error}");
                self.event(PoolEvent::ConnectFailed {
                    instance: self.id.clone(),
                    error: error.clone(),
                    retry_in,
                });
                Err(error)
            }
        }
    }

    fn connect_failed(&self, error: &CallError) -> Duration {
        let Ok(mut c) = self.connect.lock() else {
            return self.config.pool.reconnect.max_backoff;
        };
        let backoff = c.backoff.get_or_insert_with(|| {
            ExponentialBuilder::default()
                .with_min_delay(self.config.pool.reconnect.initial_backoff)
                .with_max_delay(self.config.pool.reconnect.max_backoff)
                .with_jitter()
                .without_max_times()
                .build()
        });
        let delay = backoff
            .next()
            .unwrap_or(self.config.pool.reconnect.max_backoff);
        c.retry_at = Some(deadline_after(delay));
        c.last_error = Some(error.clone());
        self.connect_failing.store(true, Ordering::Relaxed);
        delay
    }

    /// The error to give while a reconnect backoff runs.
    fn backing_off(&self) -> Option<CallError> {
        let c = self.connect.lock().ok()?;
        let retry_at = c.retry_at?;
        let now = Instant::now();
        if retry_at <= now {
            return None;
        }
        let last = c
            .last_error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        Some(CallError::Connect {
            target: self.label.clone(),
            reason: format!(
                "instance unavailable, next reconnect attempt in {}ms; last error: {last}",
                (retry_at - now).as_millis()
            ),
        })
    }

    /// Turns the session's list-changed and resource-updated notifications into pool events.
    fn forward_list_changes(&self, session: &Session) {
        let mut events = session.events();
        let (tx, instance, stop) = (self.events.clone(), self.id.clone(), self.stop.clone());
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = events.recv() => event,
                    () = stop.cancelled() => return,
                };
                match event {
                    Ok(ServerEvent::ToolsChanged | ServerEvent::ResourcesChanged | ServerEvent::PromptsChanged)
                    // Missed events may have included a change: assume one.
                    | Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(PoolEvent::ListChanged { instance: instance.clone() });
                    }
                    Ok(ServerEvent::ResourceUpdated { uri }) => {
                        let _ = tx.send(PoolEvent::ResourceUpdated { instance: instance.clone(), uri });
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Removes `slot` from the pool and closes its session.
    fn retire(&self, slot: &Arc<Slot>, reason: &str) {
        let mut removed = false;
        self.slots.rcu(|slots| {
            removed = slots.iter().any(|s| Arc::ptr_eq(s, slot));
            slots
                .iter()
                .filter(|s| !Arc::ptr_eq(s, slot))
                .cloned()
                .collect::<Vec<_>>()
        });
        if !removed {
            return;
        }
        self.metrics.session_destroyed();
        tracing::debug!(instance = %self.label, "closing a session: {reason}");
        self.event(PoolEvent::SessionClosed {
            instance: self.id.clone(),
            reason: reason.into(),
        });
        let session = slot.session.clone();
        tokio::spawn(async move { session.close(Duration::from_secs(2)).await });
        self.wake.notify_one();
    }

    /// Opens sessions until `min_sessions` are live (stops at the first failure).
    async fn replenish(&self) {
        while self.live_count() < self.config.pool.min_sessions && !self.stop.is_cancelled() {
            let _opening = self.opening.lock().await;
            if self.live_count() >= self.config.pool.min_sessions {
                break;
            }
            if self.open().await.is_err() {
                break;
            }
        }
    }

    fn health(&self) -> Health {
        if self.breaker.state() == toolmesh_resilience::BreakerState::Open {
            let stats = self.breaker.stats();
            return Health {
                status: HealthStatus::Unhealthy,
                reason: format!(
                    "circuit breaker open ({} consecutive failures, tripped {} times)",
                    stats.consecutive_failures, stats.trips
                )
                .into(),
                since: stats.since_last_transition.unwrap_or_default(),
            };
        }
        if self.live_count() == 0
            && let Some(e) = self.connect.lock().ok().and_then(|c| c.last_error.clone())
        {
            return Health {
                status: HealthStatus::Unhealthy,
                reason: format!("no live session; last connect failed: {e}").into(),
                since: Duration::ZERO,
            };
        }
        self.health
            .lock()
            .map(|h| h.health())
            .unwrap_or_else(|_| Health {
                status: HealthStatus::Unknown,
                reason: "health state unavailable".into(),
                since: Duration::ZERO,
            })
    }

    fn snapshot(&self) -> PoolSnapshot {
        let slots = self.slots.load();
        let live: Vec<_> = slots.iter().filter(|s| s.is_alive()).collect();
        let active = live.iter().filter(|s| s.outstanding() > 0).count();
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let capacity = live.len() * self.config.pool.max_requests_per_session;
        PoolSnapshot {
            instance: self.label.clone(),
            sessions: live.len(),
            sessions_active: active,
            sessions_idle: live.len() - active,
            in_flight,
            utilization: if capacity == 0 {
                0.0
            } else {
                in_flight as f64 / capacity as f64
            },
            pids: live.iter().filter_map(|s| s.session.pid()).collect(),
            health: self.health(),
            breaker: self.breaker.stats(),
            counts: self.metrics.counts(),
        }
    }
}
