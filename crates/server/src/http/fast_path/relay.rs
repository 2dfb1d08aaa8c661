//! Serving one fast-path call: the call runs through the catalog server's router
//! while what its upstream sends about it is relayed as the rmcp path relays it —
//! progress and server-to-client requests on this request's SSE stream, logs on the
//! session's own stream (through rmcp's peer) — and the answer ends the stream.
//!
//! A call that streams nothing before its answer (the common case) is answered in one
//! body from the request's own task; the first progress or request turns the answer
//! into a stream fed by a task of its own.

// Logging and sampling are deprecated by SEP-2577; 2025-11-25 clients still use them.
#![allow(deprecated)]

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    body::{Body, Bytes},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        CallToolResult, ClientResult, JsonRpcError, JsonRpcMessage, JsonRpcNotification,
        JsonRpcRequest, JsonRpcResponse, JsonRpcVersion2_0, LoggingMessageNotificationParam,
        ProgressNotification, ProgressNotificationParam, ProgressToken, RequestId,
        ServerJsonRpcMessage, ServerNotification, ServerRequest, ServerResult,
    },
};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use toolmesh_core::{BoxFuture, Relay};

use super::{Asked, FastPath, decide::Eligible};
use crate::server::ClientState;

/// Messages held for one call at most; past that new ones are dropped (and counted).
const QUEUE_CAPACITY: usize = 256;

type Answer = oneshot::Sender<Result<ClientResult, ErrorData>>;

/// Boxed, so that the queue's first block, allocated with every call, is small (~1 KB
/// rather than ~8 KB); most calls send nothing through it.
enum Outbound {
    Progress(Box<ProgressNotificationParam>),
    Log(Box<LoggingMessageNotificationParam>),
    Request(Box<(ServerRequest, Answer)>),
}

/// The client side of one call.
struct Downstream {
    peer: Peer<RoleServer>,
    client: Arc<ClientState>,
    progress_token: Option<ProgressToken>,
}

impl Downstream {
    /// A log goes on the session's stream, as on the rmcp path, naming the client's token.
    async fn log(&self, mut log: LoggingMessageNotificationParam) {
        if !self.client.wants(log.level) {
            return;
        }
        log.meta = crate::server::relay::token_meta(self.progress_token.as_ref());
        if let Err(error) = self.peer.notify_logging_message(log).await {
            tracing::debug!(%error, "could not relay a log message to the client");
        }
    }

    /// The SSE event of a progress notification under the client's token, if it gave one.
    fn progress(&self, mut progress: ProgressNotificationParam) -> Option<Bytes> {
        progress.progress_token = self.progress_token.clone()?;
        let message: ServerJsonRpcMessage = JsonRpcMessage::Notification(JsonRpcNotification {
            jsonrpc: JsonRpcVersion2_0,
            notification: ServerNotification::ProgressNotification(ProgressNotification::new(
                progress,
            )),
        });
        Some(event(&message))
    }
}

/// The [`Relay`] the call carries down to the upstream session.
struct FastRelay {
    queue: mpsc::Sender<Outbound>,
    /// The call has answered.
    closed: Arc<AtomicBool>,
    downstream: Arc<Downstream>,
}

impl FastRelay {
    fn push(&self, message: Outbound) {
        if self.queue.try_send(message).is_err() {
            metrics::counter!(crate::server::DROPPED_METRIC).increment(1);
        }
    }
}

impl Relay for FastRelay {
    fn progress(&self, progress: ProgressNotificationParam) {
        if !self.closed.load(Ordering::Acquire) {
            self.push(Outbound::Progress(Box::new(progress)));
        }
    }

    fn log(&self, message: LoggingMessageNotificationParam) {
        if self.closed.load(Ordering::Acquire) {
            // The call has answered; logs go on the session's own stream anyway.
            let downstream = self.downstream.clone();
            tokio::spawn(async move { downstream.log(message).await });
        } else {
            self.push(Outbound::Log(Box::new(message)));
        }
    }

    fn request(
        &self,
        request: ServerRequest,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        if self.closed.load(Ordering::Acquire) {
            return Box::pin(std::future::ready(Err(call_over())));
        }
        let (answer, answered) = oneshot::channel();
        self.push(Outbound::Request(Box::new((request, answer))));
        Box::pin(async move { answered.await.unwrap_or_else(|_| Err(call_over())) })
    }
}

fn call_over() -> ErrorData {
    ErrorData::invalid_request("the client's call this request belongs to has ended", None)
}

/// Forgets a call when it ends, however it ends.
struct Serving {
    fast: FastPath,
    key: (String, String),
    /// Requests relayed to the client, by id as JSON text.
    asked: Vec<String>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.fast.0.calls.remove(&self.key);
        for key in &self.asked {
            self.fast.0.asked.remove(key);
        }
    }
}

/// Serves one eligible call.
pub(super) async fn serve(fast: FastPath, eligible: Eligible) -> Response {
    let Eligible {
        server,
        session,
        client: (peer, client),
        raw_id,
        progress_token,
        call,
    } = eligible;
    let id = call.request_id.clone();
    let cancel = tokio_util::sync::CancellationToken::new();
    let key = (session.clone(), raw_id);
    fast.0.calls.insert(key.clone(), cancel.clone());
    let mut serving = Serving {
        fast: fast.clone(),
        key,
        asked: Vec::new(),
    };
    let (queue, mut messages) = mpsc::channel(QUEUE_CAPACITY);
    let closed = Arc::new(AtomicBool::new(false));
    let downstream = Arc::new(Downstream {
        peer,
        client,
        progress_token,
    });
    let relay = Arc::new(FastRelay {
        queue,
        closed: closed.clone(),
        downstream: downstream.clone(),
    });
    let cancelled = cancel.clone();
    let mut answer = routed(server, call, cancel, relay);

    // Until the call streams something, its answer is awaited here.
    let first = loop {
        tokio::select! {
            biased;
            Some(message) = messages.recv() => match message {
                Outbound::Log(log) => downstream.log(*log).await,
                other => break other,
            },
            out = &mut answer => {
                closed.store(true, Ordering::Release);
                let mut body = Vec::new();
                while let Ok(message) = messages.try_recv() {
                    match message {
                        Outbound::Log(log) => downstream.log(*log).await,
                        Outbound::Progress(p) => body.extend(downstream.progress(*p).unwrap_or_default()),
                        // Refused: its answer channel closes.
                        Outbound::Request(..) => {}
                    }
                }
                if !cancelled.is_cancelled() {
                    body.extend_from_slice(&answer_event(id, out));
                }
                drop(serving);
                return sse(Body::from(body));
            }
        }
    };

    // Streaming from here on, in a task of its own; the client leaving ends the call.
    let (events, body) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let mut next = Some(first);
        loop {
            if let Some(message) = next.take() {
                let event = match message {
                    Outbound::Log(log) => {
                        downstream.log(*log).await;
                        None
                    }
                    Outbound::Progress(progress) => downstream.progress(*progress),
                    Outbound::Request(asked) => {
                        let (request, answer) = *asked;
                        let (ask, key) = fast.ask_id();
                        fast.0.asked.insert(
                            key.clone(),
                            Asked {
                                session: session.clone(),
                                answer,
                            },
                        );
                        serving.asked.push(key);
                        let message: ServerJsonRpcMessage =
                            JsonRpcMessage::Request(JsonRpcRequest::new(ask, request));
                        Some(event(&message))
                    }
                };
                if let Some(event) = event
                    && events.send(event).await.is_err()
                {
                    return;
                }
            }
            tokio::select! {
                biased;
                Some(message) = messages.recv() => next = Some(message),
                out = &mut answer => {
                    closed.store(true, Ordering::Release);
                    while let Ok(message) = messages.try_recv() {
                        let event = match message {
                            Outbound::Log(log) => {
                                downstream.log(*log).await;
                                None
                            }
                            Outbound::Progress(p) => downstream.progress(*p),
                            Outbound::Request(..) => None,
                        };
                        if let Some(event) = event {
                            let _ = events.send(event).await;
                        }
                    }
                    if !cancelled.is_cancelled() {
                        let _ = events.send(answer_event(id, out)).await;
                    }
                    return;
                }
                () = events.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(body, |mut body| async move {
        body.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), body))
    });
    sse(Body::from_stream(stream))
}

/// The routed call, boxed. A plain function, not inline in [`serve`]: the routed call's
/// future is large (~25 KB: router, failover, transport) and, built inside an async fn,
/// was laid out a second time in that fn's own future (28 KB per call in flight; 2.8 KB
/// now).
fn routed(
    server: crate::CatalogServer,
    call: crate::server::FastCall,
    cancel: tokio_util::sync::CancellationToken,
    relay: Arc<FastRelay>,
) -> BoxFuture<'static, Result<CallToolResult, ErrorData>> {
    Box::pin(async move { server.fast_call(call, cancel, relay).await })
}

/// The client's answer to a relayed request, as the relay hands it upstream.
pub(super) fn client_answer(
    outcome: Result<Box<RawValue>, Box<RawValue>>,
) -> Result<ClientResult, ErrorData> {
    match outcome {
        Ok(result) => serde_json::from_str::<ClientResult>(result.get()).map_err(|e| {
            ErrorData::internal_error(format!("the client's answer is not a result: {e}"), None)
        }),
        Err(error) => Err(
            serde_json::from_str::<ErrorData>(error.get()).unwrap_or_else(|e| {
                ErrorData::internal_error(format!("the client's error is not an error: {e}"), None)
            }),
        ),
    }
}

fn answer_event(id: RequestId, out: Result<CallToolResult, ErrorData>) -> Bytes {
    let message: ServerJsonRpcMessage = match out {
        Ok(result) => JsonRpcMessage::Response(JsonRpcResponse {
            jsonrpc: JsonRpcVersion2_0,
            id,
            result: ServerResult::CallToolResult(result),
        }),
        Err(error) => JsonRpcMessage::Error(JsonRpcError {
            jsonrpc: JsonRpcVersion2_0,
            id: Some(id),
            error,
        }),
    };
    event(&message)
}

/// One SSE event carrying `message`.
fn event(message: &ServerJsonRpcMessage) -> Bytes {
    let mut event = Vec::with_capacity(256);
    event.extend_from_slice(b"data: ");
    if let Err(error) = serde_json::to_writer(&mut event, message) {
        // Our own types: cannot fail short of a bug; say so rather than send junk.
        tracing::error!(%error, "could not serialize a message for the client");
        return Bytes::new();
    }
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

fn sse(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // As rmcp's streams: proxies must not hold back progress events.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}
