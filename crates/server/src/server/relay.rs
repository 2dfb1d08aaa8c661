//! One client call's relay: what upstream servers send about the call (progress, logs,
//! sampling and elicitation requests) handed to the client that made it.

// Logging and sampling are deprecated by SEP-2577; 2025-11-25 clients still use them.
#![allow(deprecated)]

use std::{
    collections::{HashSet, VecDeque},
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::{StreamExt, stream::FuturesUnordered};
use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        ClientResult, LoggingLevel, LoggingMessageNotificationParam, NotificationMetaObject,
        ProgressNotificationParam, ProgressToken, ServerRequest,
    },
};
use tokio::sync::{Notify, oneshot};
use toolmesh_core::{BoxFuture, Relay};

/// What one client asked of the gateway for itself: the lowest log level it wants and
/// the resources it follows.
#[derive(Debug, Default)]
pub(crate) struct ClientState {
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<HashSet<String>>,
}

impl ClientState {
    pub(crate) fn follow(&self, uri: &str, yes: bool) {
        let mut subscriptions = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        if yes {
            subscriptions.insert(uri.to_owned());
        } else {
            subscriptions.remove(uri);
        }
    }

    pub(crate) fn follows(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(uri)
    }

    pub(crate) fn set_log_level(&self, level: LoggingLevel) {
        *self.log_level.lock().unwrap_or_else(|p| p.into_inner()) = Some(level);
    }

    /// Whether a message at `level` goes to the client: all do until it sets a level.
    pub(crate) fn wants(&self, level: LoggingLevel) -> bool {
        let wanted = *self.log_level.lock().unwrap_or_else(|p| p.into_inner());
        wanted.is_none_or(|wanted| rank(level) >= rank(wanted))
    }
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

type Answer = oneshot::Sender<Result<ClientResult, ErrorData>>;

enum Outbound {
    Progress(ProgressNotificationParam),
    Log(LoggingMessageNotificationParam),
    Request(ServerRequest, Answer),
}

/// Messages held for one call's client at most; past that the oldest goes.
const QUEUE_CAPACITY: usize = 256;

/// Counter of relayed messages dropped because their client was slower than its server.
pub(crate) const DROPPED_METRIC: &str = "toolmesh_relay_dropped_total";

/// What waits to go to one call's client: bounded, dropping the oldest (a dropped
/// request is refused upstream when its answer channel closes).
#[derive(Default)]
struct Queue {
    messages: Mutex<VecDeque<Outbound>>,
    ready: Notify,
    /// The call has answered: what arrives now is sent by a drain task.
    closed: AtomicBool,
    /// A drain task runs (at most one per call).
    draining: AtomicBool,
}

impl Queue {
    fn messages(&self) -> std::sync::MutexGuard<'_, VecDeque<Outbound>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, message: Outbound) {
        let mut messages = self.messages();
        if messages.len() >= QUEUE_CAPACITY {
            messages.pop_front();
            metrics::counter!(DROPPED_METRIC).increment(1);
        }
        messages.push_back(message);
        drop(messages);
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Outbound> {
        self.messages().pop_front()
    }

    /// The next message; waits for one.
    async fn next(&self) -> Outbound {
        loop {
            if let Some(message) = self.pop() {
                return message;
            }
            // `notify_one` keeps a permit when nobody waits: no wake-up is lost.
            self.ready.notified().await;
        }
    }
}

/// The [`Relay`] a call carries down to the upstream session.
struct ClientRelay {
    queue: Arc<Queue>,
    /// For logs that arrive after the call answered (see `toolmesh_transport`'s linger).
    downstream: Arc<Downstream>,
}

impl Relay for ClientRelay {
    fn progress(&self, progress: ProgressNotificationParam) {
        if !self.queue.closed.load(Ordering::Acquire) {
            self.queue.push(Outbound::Progress(progress));
        }
    }

    fn log(&self, message: LoggingMessageNotificationParam) {
        self.queue.push(Outbound::Log(message));
        if self.queue.closed.load(Ordering::Acquire) {
            // The call has answered; logs go on the session's own stream anyway.
            drain_late(self.queue.clone(), self.downstream.clone());
        }
    }

    fn request(
        &self,
        request: ServerRequest,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        if self.queue.closed.load(Ordering::Acquire) {
            return Box::pin(std::future::ready(Err(call_over())));
        }
        let (answer, answered) = oneshot::channel();
        self.queue.push(Outbound::Request(request, answer));
        Box::pin(async move { answered.await.unwrap_or_else(|_| Err(call_over())) })
    }
}

/// Sends what is queued after the call answered, in one task per call at a time.
fn drain_late(queue: Arc<Queue>, downstream: Arc<Downstream>) {
    if queue.draining.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async move {
        loop {
            while let Some(message) = queue.pop() {
                downstream.notify(message).await;
            }
            queue.draining.store(false, Ordering::Release);
            // A message pushed after the last pop but before the flag cleared is ours.
            if queue.messages().is_empty() || queue.draining.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    });
}

fn call_over() -> ErrorData {
    ErrorData::invalid_request("the client's call this request belongs to has ended", None)
}

/// The client side of one call: the peer, its progress token and its preferences.
pub(crate) struct Downstream {
    pub(crate) peer: Peer<RoleServer>,
    pub(crate) progress_token: Option<ProgressToken>,
    pub(crate) client: Arc<ClientState>,
}

/// Closes the queue when the call ends, however it ends.
struct Close<'a>(&'a Queue);

impl Drop for Close<'_> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
    }
}

/// Runs `call` with a relay, forwarding what arrives on it to the client meanwhile.
///
/// Forwarding happens in the calling task on purpose: rmcp sends a request made from
/// within a request handler on that request's response stream, which is where the
/// client expects sampling and elicitation that belong to its call.
pub(crate) async fn relayed<T, F>(
    downstream: Downstream,
    call: impl FnOnce(Arc<dyn Relay>) -> F,
) -> T
where
    F: Future<Output = T>,
{
    let downstream = Arc::new(downstream);
    let queue = Arc::new(Queue::default());
    let relay = ClientRelay {
        queue: queue.clone(),
        downstream: downstream.clone(),
    };
    let _close = Close(&queue);
    // Boxed: the routed call is a deep future, and debug builds poll it on small stacks.
    let mut call = Box::pin(call(Arc::new(relay)));
    let mut asking = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            message = queue.next() => match message {
                Outbound::Request(request, answer) => {
                    let peer = downstream.peer.clone();
                    asking.push(async move {
                        let _ = answer.send(peer.send_request(request).await.map_err(|e| {
                            ErrorData::internal_error(format!("the client did not answer: {e}"), None)
                        }));
                    });
                }
                other => downstream.notify(other).await,
            },
            Some(()) = asking.next(), if !asking.is_empty() => {}
            out = &mut call => {
                queue.closed.store(true, Ordering::Release);
                // What the server sent before its answer reaches the client before ours.
                while let Some(message) = queue.pop() {
                    downstream.notify(message).await;
                }
                return out;
            }
        }
    }
}

/// The `_meta` naming the client's progress token, which ties a relayed log to its call.
pub(crate) fn token_meta(token: Option<&ProgressToken>) -> Option<NotificationMetaObject> {
    token.map(|token| {
        let mut meta = NotificationMetaObject::new();
        meta.insert(
            "progressToken".to_owned(),
            serde_json::to_value(token).unwrap_or_default(),
        );
        meta
    })
}

impl Downstream {
    async fn notify(&self, message: Outbound) {
        let sent = match message {
            Outbound::Progress(mut progress) => {
                let Some(token) = &self.progress_token else {
                    return;
                };
                progress.progress_token = token.clone();
                self.peer.notify_progress(progress).await
            }
            Outbound::Log(mut log) if self.client.wants(log.level) => {
                // The upstream names its own request; the client knows its own token.
                log.meta = token_meta(self.progress_token.as_ref());
                self.peer.notify_logging_message(log).await
            }
            // A request dropped here is refused upstream: its answer channel closes.
            Outbound::Log(_) | Outbound::Request(..) => return,
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "could not relay a server message to the client");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> Outbound {
        Outbound::Log(LoggingMessageNotificationParam::new(
            LoggingLevel::Info,
            serde_json::json!(n),
        ))
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let queue = Queue::default();
        metrics::with_local_recorder(&recorder, || {
            for n in 0..QUEUE_CAPACITY + 3 {
                queue.push(log(n));
            }
        });
        let kept: Vec<serde_json::Value> = std::iter::from_fn(|| queue.pop())
            .map(|m| match m {
                Outbound::Log(l) => l.data,
                _ => serde_json::Value::Null,
            })
            .collect();
        assert_eq!(kept.len(), QUEUE_CAPACITY);
        assert_eq!(kept[0], serde_json::json!(3), "the three oldest went");
        assert_eq!(
            kept[QUEUE_CAPACITY - 1],
            serde_json::json!(QUEUE_CAPACITY + 2)
        );
        let rendered = handle.render();
        assert!(
            rendered.contains(&format!("{DROPPED_METRIC} 3")),
            "{rendered}"
        );
    }
}
