//! `tools/call` posted straight on an established streamable-HTTP session — the upstream
//! leg of the gateway's data plane. rmcp owns the session (handshake, its id, the
//! standalone stream, re-initialising after a 404, every other method); a call here is
//! one POST with that session's headers, without rmcp's worker task and channels: on
//! hyper's keep-alive pool for `http://` upstreams ([`wire`]), else by rmcp's own
//! reqwest client code. Only the answer's envelope is parsed until it is known to be the
//! call's result.
//!
//! The call's SSE stream also carries what the server says about the call: progress and
//! logs go to the call's relay, requests (sampling, elicitation, roots) are asked of the
//! relay and answered with a POST, other notifications reach the session's subscribers.
//! A session the server no longer knows (404) sent nothing to run: the call goes the
//! rmcp way, which starts a new session.

// Roots: deprecated by SEP-2577; 2025-11-25 servers still ask.
#![allow(deprecated)]

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use futures::StreamExt;
use http::{HeaderName, HeaderValue};
use rmcp::{
    ErrorData,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResult, ClientJsonRpcMessage,
        ClientRequest, ClientResult, JsonRpcMessage, ListRootsResult, NumberOrString,
        ProgressToken, RequestId, ServerJsonRpcMessage, ServerNotification, ServerRequest,
    },
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    },
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;
use toolmesh_core::{BoxFuture, Relay};

use crate::session::ServerEvent;

mod wire;

/// A call's SSE stream, as rmcp's client code hands it over.
type Events = futures::stream::BoxStream<'static, Result<sse_stream::Sse, SseError>>;

/// Longest reconnect wait a server's `retry` field may ask for.
const MAX_SERVER_RETRY: Duration = Duration::from_secs(5);

/// Whether calls may take the direct leg (`toolmesh serve --no-fast-path` turns it off).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the direct upstream leg on or off for the whole process.
pub fn set_direct_calls(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What the session's POSTs carry, as rmcp last sent them.
#[derive(Debug)]
pub(crate) struct Attached {
    uri: Arc<str>,
    session: Arc<str>,
    auth: Option<String>,
    headers: HashMap<HeaderName, HeaderValue>,
    /// The same POST for hyper's pool; `None`: rmcp's reqwest code posts.
    prepared: Option<wire::Prepared>,
}

/// The session rmcp established, noted from its POSTs; `None` until it has one.
#[derive(Debug, Default)]
pub(crate) struct Upstream {
    attached: ArcSwapOption<Attached>,
    next_id: AtomicU64,
}

impl Upstream {
    /// Notes a POST rmcp makes in `session` (only when the session id changed: a new
    /// session after a 404, or the first one).
    pub(crate) fn note(
        &self,
        uri: &Arc<str>,
        session: &Arc<str>,
        auth: &Option<String>,
        headers: &HashMap<HeaderName, HeaderValue>,
    ) {
        if self
            .attached
            .load()
            .as_ref()
            .is_some_and(|a| a.session == *session)
        {
            return;
        }
        self.attached.store(Some(Arc::new(Attached {
            prepared: wire::Prepared::new(uri, session, auth.as_deref(), headers),
            uri: uri.clone(),
            session: session.clone(),
            auth: auth.clone(),
            headers: headers.clone(),
        })));
    }

    pub(crate) fn attached(&self) -> Option<Arc<Attached>> {
        self.attached.load_full()
    }

    /// An id rmcp never uses (its own are numbers).
    pub(crate) fn request_id(&self) -> RequestId {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        NumberOrString::String(format!("toolmesh-{n}").into())
    }
}

/// How a direct call ended.
pub(crate) enum Outcome {
    /// The server's answer: its result, or the JSON-RPC error it gave.
    Answered(Result<CallToolResult, ErrorData>),
    /// Nothing was run (the server no longer knows the session, or nothing was sent):
    /// go the rmcp way.
    NotSent,
    /// The POST or its stream failed.
    Failed(StreamableHttpError<reqwest::Error>),
    /// The stream ended without an answer.
    NoAnswer,
}

/// What a direct call reports to besides its caller.
pub(crate) struct Listeners<'a> {
    pub(crate) relay: Option<&'a Arc<dyn Relay>>,
    pub(crate) events: &'a broadcast::Sender<ServerEvent>,
}

/// Only what tells an answer from the rest.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    id: Option<RequestId>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorData>,
    #[serde(default, borrow)]
    method: Option<&'a str>,
}

/// Posts `tools/call` with `params` as request `id` in `attached`'s session.
pub(crate) async fn call(
    client: &reqwest::Client,
    attached: &Arc<Attached>,
    id: RequestId,
    params: CallToolRequestParams,
    listeners: Listeners<'_>,
    event_limit: usize,
) -> Outcome {
    let message = ClientJsonRpcMessage::request(
        ClientRequest::CallToolRequest(CallToolRequest::new(params)),
        id.clone(),
    );
    let posted = match &attached.prepared {
        Some(prepared) => match serde_json::to_vec(&message) {
            Ok(body) => wire::post(prepared, body, event_limit).await,
            // Nothing was sent: rmcp's path says what is wrong with the message.
            Err(_) => return Outcome::NotSent,
        },
        // Boxed: HTTPS or proxied upstreams only; inline, reqwest's future (2 KB) would
        // size every direct call's.
        None => {
            let post: BoxFuture<'_, _> = Box::pin(client.post_message_with_max_sse_event_size(
                attached.uri.clone(),
                message,
                Some(attached.session.clone()),
                attached.auth.clone(),
                attached.headers.clone(),
                event_limit,
            ));
            post.await
        }
    };
    match posted {
        Ok(StreamableHttpPostResponse::Sse(stream, _)) => {
            read_answer(stream, client, attached, &id, &listeners, event_limit).await
        }
        Ok(StreamableHttpPostResponse::Json(message, _)) => match message {
            JsonRpcMessage::Response(response) if response.id == id => {
                Outcome::Answered(call_result(response.result))
            }
            JsonRpcMessage::Error(error) => Outcome::Answered(Err(error.error)),
            _ => Outcome::NoAnswer,
        },
        Ok(_) => Outcome::NoAnswer,
        Err(StreamableHttpError::SessionExpired) => Outcome::NotSent,
        Err(e) => Outcome::Failed(e),
    }
}

/// Reads the call's SSE stream until the answer to `id`, handing everything else to
/// `listeners`. A stream that breaks first is resumed from its last event id, as rmcp's
/// path does (SSE resumability); without an id nothing can be resumed.
async fn read_answer(
    mut stream: Events,
    client: &reqwest::Client,
    attached: &Arc<Attached>,
    id: &RequestId,
    listeners: &Listeners<'_>,
    event_limit: usize,
) -> Outcome {
    let mut last_event: Option<String> = None;
    let mut server_retry: Option<Duration> = None;
    let mut attempt = 0;
    loop {
        let broken = loop {
            let event = match stream.next().await {
                None => break None,
                Some(Err(e)) => break Some(StreamableHttpError::Sse(e)),
                Some(Ok(event)) => event,
            };
            if let Some(event_id) = &event.id {
                last_event = Some(event_id.clone());
            }
            if let Some(ms) = event.retry {
                server_retry = Some(Duration::from_millis(ms).min(MAX_SERVER_RETRY));
            }
            let Some(data) = event.data.as_deref().filter(|d| !d.trim().is_empty()) else {
                continue;
            };
            let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(data) else {
                tracing::debug!("ignored an SSE event that is not JSON-RPC");
                continue;
            };
            if envelope.method.is_some() {
                match serde_json::from_str::<ServerJsonRpcMessage>(data) {
                    Ok(message) => heard(client, attached, message, listeners),
                    Err(e) => tracing::debug!("ignored a server message that does not parse: {e}"),
                }
            } else if envelope.id.as_ref() == Some(id) {
                return Outcome::Answered(envelope.answer());
            }
        };
        // The call was sent: however resuming goes, a failure is the broken stream's.
        let lost = |broken: Option<StreamableHttpError<reqwest::Error>>| match broken {
            Some(e) => Outcome::Failed(e),
            None => Outcome::NoAnswer,
        };
        let (Some(resume_from), Some(delay)) = (&last_event, super::reconnect_delay(attempt))
        else {
            return lost(broken);
        };
        attempt += 1;
        tracing::debug!(attempt, event = %resume_from, "resuming the call's stream");
        tokio::time::sleep(server_retry.unwrap_or(delay)).await;
        stream = match client
            .get_stream_with_max_sse_event_size(
                attached.uri.clone(),
                Some(attached.session.clone()),
                Some(resume_from.clone()),
                attached.auth.clone(),
                attached.headers.clone(),
                event_limit,
            )
            .await
        {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "could not resume the call's stream");
                return lost(broken);
            }
        };
    }
}

impl Envelope<'_> {
    /// The call's result or error, from a response.
    fn answer(self) -> Result<CallToolResult, ErrorData> {
        match (self.result, self.error) {
            (Some(result), _) => {
                serde_json::from_str::<CallToolResult>(result.get()).map_err(|e| {
                    ErrorData::internal_error(
                        format!("the server's tools/call result does not parse: {e}"),
                        None,
                    )
                })
            }
            (None, Some(error)) => Err(error),
            (None, None) => Err(ErrorData::internal_error(
                "the server answered without a result or an error",
                None,
            )),
        }
    }
}

fn call_result(result: rmcp::model::ServerResult) -> Result<CallToolResult, ErrorData> {
    match result {
        rmcp::model::ServerResult::CallToolResult(result) => Ok(result),
        _ => Err(ErrorData::internal_error(
            "the server answered tools/call with another result type",
            None,
        )),
    }
}

/// A notification or request the server sent on the call's stream.
fn heard(
    client: &reqwest::Client,
    attached: &Arc<Attached>,
    message: ServerJsonRpcMessage,
    listeners: &Listeners<'_>,
) {
    match message {
        JsonRpcMessage::Notification(notification) => {
            if let Some(relay) = listeners.relay {
                match &notification.notification {
                    ServerNotification::ProgressNotification(n) => relay.progress(n.params.clone()),
                    ServerNotification::LoggingMessageNotification(n) => {
                        relay.log(n.params.clone());
                    }
                    _ => {}
                }
            }
            if let Some(event) = ServerEvent::from_notification(notification.notification) {
                let _ = listeners.events.send(event);
            }
        }
        JsonRpcMessage::Request(request) => {
            let answer = ask(listeners.relay.cloned(), request.request);
            let reply = Reply {
                client: client.clone(),
                attached: attached.clone(),
            };
            let id = request.id;
            tokio::spawn(async move {
                let message = match answer.await {
                    Ok(result) => ClientJsonRpcMessage::response(result, id),
                    Err(error) => ClientJsonRpcMessage::error(error, Some(id)),
                };
                reply.send(message).await;
            });
        }
        _ => {}
    }
}

/// The answer to a server request: the relay's, as the rmcp path gives it.
fn ask(
    relay: Option<Arc<dyn Relay>>,
    request: ServerRequest,
) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
    match (relay, request) {
        (Some(relay), request) => relay.request(request),
        // No client to ask: no roots, as when roots are not supported.
        (None, ServerRequest::ListRootsRequest(_)) => Box::pin(std::future::ready(Ok(
            ClientResult::ListRootsResult(ListRootsResult::default()),
        ))),
        (None, _) => Box::pin(std::future::ready(Err(ErrorData::invalid_request(
            "toolmesh has no client to ask for this call",
            None,
        )))),
    }
}

/// Posts a client answer in the session.
struct Reply {
    client: reqwest::Client,
    attached: Arc<Attached>,
}

impl Reply {
    async fn send(self, message: ClientJsonRpcMessage) {
        if let Err(error) = self
            .client
            .post_message(
                self.attached.uri.clone(),
                message,
                Some(self.attached.session.clone()),
                self.attached.auth.clone(),
                self.attached.headers.clone(),
            )
            .await
        {
            tracing::debug!(%error, "could not answer the server's request");
        }
    }
}

/// The progress token a relayed call carries, derived from its id.
pub(crate) fn progress_token(id: &RequestId) -> ProgressToken {
    ProgressToken(id.clone())
}
