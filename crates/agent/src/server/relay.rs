//! One client call's relay: what upstream servers send about the call (progress, logs,
//! sampling and elicitation requests) handed to the client that made it.

// Logging and sampling are deprecated by SEP-2577; 2025-11-25 clients still use them.
#![allow(deprecated)]

use std::{
    collections::HashSet,
    future::Future,
    sync::{Arc, Mutex},
};

use futures::{StreamExt, stream::FuturesUnordered};
use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        ClientResult, LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam,
        ProgressToken, ServerRequest,
    },
};
use tokio::sync::{mpsc, oneshot};
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
    fn wants(&self, level: LoggingLevel) -> bool {
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

/// The [`Relay`] a call carries down to the upstream session.
struct ClientRelay {
    tx: mpsc::UnboundedSender<Outbound>,
    /// For logs that arrive after the call answered (see `toolmesh_transport`'s linger).
    downstream: Arc<Downstream>,
}

impl Relay for ClientRelay {
    fn progress(&self, progress: ProgressNotificationParam) {
        let _ = self.tx.send(Outbound::Progress(progress));
    }

    fn log(&self, message: LoggingMessageNotificationParam) {
        if let Err(mpsc::error::SendError(late)) = self.tx.send(Outbound::Log(message)) {
            // The call has answered; logs go on the session's own stream anyway.
            let downstream = self.downstream.clone();
            tokio::spawn(async move { downstream.notify(late).await });
        }
    }

    fn request(
        &self,
        request: ServerRequest,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let (answer, answered) = oneshot::channel();
        let sent = self.tx.send(Outbound::Request(request, answer));
        Box::pin(async move {
            if sent.is_err() {
                return Err(call_over());
            }
            answered.await.unwrap_or_else(|_| Err(call_over()))
        })
    }
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
    let (tx, mut rx) = mpsc::unbounded_channel();
    let relay = ClientRelay {
        tx,
        downstream: downstream.clone(),
    };
    // Boxed: the routed call is a deep future, and debug builds poll it on small stacks.
    let mut call = Box::pin(call(Arc::new(relay)));
    let mut asking = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some(message) = rx.recv() => match message {
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
                // What the server sent before its answer reaches the client before ours.
                while let Ok(message) = rx.try_recv() {
                    if !matches!(message, Outbound::Request(..)) {
                        downstream.notify(message).await;
                    }
                }
                return out;
            }
        }
    }
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
            Outbound::Log(log) if self.client.wants(log.level) => {
                self.peer.notify_logging_message(log).await
            }
            Outbound::Log(_) | Outbound::Request(..) => return,
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "could not relay a server message to the client");
        }
    }
}
