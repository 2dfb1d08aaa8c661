//! [`ScriptedLlm`]: an OpenAI-compatible chat-completions server over real
//! HTTP that answers from a script, for testing code that talks to a model.

mod script;
mod wire;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{
        IntoResponse, Json, Response,
        sse::{Event, Sse},
    },
    routing::post,
};
use serde_json::Value;
use tokio::{net::TcpListener, sync::watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use script::{Answer, Failure, Script};
pub use script::{Reply, ScriptedCall};
use wire::{Message, Meta, StreamShape};

/// The path the server answers on, below the base URL's `/v1`.
const PATH: &str = "/v1/chat/completions";
/// Request bodies up to this size are accepted (agents send whole tool catalogs).
const BODY_LIMIT: usize = 64 << 20;

/// A running scripted chat-completions server on `127.0.0.1`, stopped on drop.
///
/// Each `POST /v1/chat/completions` takes the next [`Reply`] of the script and
/// answers in the OpenAI wire format: a `chat.completion` body, or with
/// `"stream": true` server-sent `chat.completion.chunk` events ending in
/// `data: [DONE]`. Bodies that are not JSON are recorded as a JSON string.
#[derive(Debug)]
pub struct ScriptedLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: DropGuard,
}

/// Options for [`ScriptedLlm`]; start it with [`ScriptedLlmBuilder::start`].
#[derive(Debug, Clone, Default)]
pub struct ScriptedLlmBuilder {
    api_key: Option<String>,
    omit_stream_index: bool,
}

impl ScriptedLlmBuilder {
    /// Require `Authorization: Bearer <key>`; other requests get a 401 OpenAI
    /// error with code `invalid_api_key` (they are recorded but take no reply).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Leave `index` out of the stream chunks of a reply with a single tool
    /// call, as some OpenAI-compatible servers do.
    #[must_use]
    pub fn omit_stream_index(mut self, omit: bool) -> Self {
        self.omit_stream_index = omit;
        self
    }

    /// Listen on `127.0.0.1:0` and serve `script`.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start(
        self,
        script: impl IntoIterator<Item = Reply>,
    ) -> anyhow::Result<ScriptedLlm> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("scripted LLM: cannot bind a port on 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .context("scripted LLM: cannot read the bound address")?;
        let shared = Arc::new(Shared {
            options: self,
            state: Mutex::new(Recorded {
                script: Script::new(script),
                requests: Vec::new(),
            }),
            received: watch::Sender::new(0),
        });
        let router = Router::new()
            .route(PATH, post(chat_completions))
            .fallback(unknown_route)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(Arc::clone(&shared));
        let stop = CancellationToken::new();
        let serve =
            axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move {
            if let Err(error) = serve.await {
                tracing::warn!(%error, %addr, "scripted LLM server failed");
            }
        });
        Ok(ScriptedLlm {
            addr,
            shared,
            _stop: stop.drop_guard(),
        })
    }
}

impl ScriptedLlm {
    /// Start a server without an API key that serves `script`.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start(script: impl IntoIterator<Item = Reply>) -> anyhow::Result<Self> {
        Self::builder().start(script).await
    }

    /// Options before starting.
    pub fn builder() -> ScriptedLlmBuilder {
        ScriptedLlmBuilder::default()
    }

    /// A builder that requires `Authorization: Bearer <key>`.
    pub fn with_api_key(key: impl Into<String>) -> ScriptedLlmBuilder {
        Self::builder().api_key(key)
    }

    /// A builder whose single-tool-call stream chunks carry no `index` when `omit` is true.
    pub fn omit_stream_index(omit: bool) -> ScriptedLlmBuilder {
        Self::builder().omit_stream_index(omit)
    }

    /// `http://127.0.0.1:PORT/v1`, the base URL an OpenAI client is given.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Append `reply` to the script.
    pub fn push(&self, reply: Reply) {
        self.shared.lock().script.push(reply);
    }

    /// Drops the replies no request has taken yet (for a run whose last request may or
    /// may not have been made), returning how many; [`push`](Self::push) the next ones.
    pub fn discard_pending(&self) -> usize {
        self.shared.lock().script.discard()
    }

    /// The request bodies received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.lock().requests.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        *self.shared.received.borrow()
    }

    /// Wait until at least `n` requests were received.
    ///
    /// # Errors
    ///
    /// When fewer than `n` arrived within `timeout`; the error says how many did.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let mut received = self.shared.received.subscribe();
        let waited = tokio::time::timeout(timeout, received.wait_for(|&got| got >= n))
            .await
            .map(|arrived| arrived.is_ok());
        match waited {
            Ok(true) => Ok(()),
            // The sender lives in `self.shared`, so it cannot be gone.
            Ok(false) => bail!("scripted LLM at {} stopped", self.base_url()),
            Err(_) => bail!(
                "scripted LLM at {}: {} of {n} requests arrived within {timeout:?}",
                self.base_url(),
                self.request_count()
            ),
        }
    }
}

/// State the handler and the [`ScriptedLlm`] handle share.
#[derive(Debug)]
struct Shared {
    options: ScriptedLlmBuilder,
    state: Mutex<Recorded>,
    /// The number of requests received, for [`ScriptedLlm::wait_for_requests`].
    received: watch::Sender<usize>,
}

#[derive(Debug)]
struct Recorded {
    script: Script,
    requests: Vec<Value>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record `request` and take its answer from the script, unless the key
    /// is wrong or the body is not a JSON object. Returns the request's number too.
    fn take(
        &self,
        request: &Value,
        headers: &HeaderMap,
    ) -> (usize, Result<(Duration, Answer), Failure>) {
        let authorized = self.authorized(headers);
        let mut state = self.lock();
        state.requests.push(request.clone());
        let seq = state.requests.len();
        self.received.send_replace(seq);
        let next = match authorized {
            Err(message) => Err(Failure::new(401, message.to_owned())),
            Ok(()) if !request.is_object() => Err(Failure::new(
                400,
                format!("scripted LLM: the request body is not a JSON object: {request}"),
            )),
            Ok(()) => Ok(state.script.next(request)),
        };
        (seq, next)
    }

    /// Whether `headers` carry the required key (always, when none is required).
    fn authorized(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let Some(key) = &self.options.api_key else {
            return Ok(());
        };
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match sent {
            Some(sent) if sent == key => Ok(()),
            Some(_) => Err("scripted LLM: incorrect API key provided"),
            None => Err("scripted LLM: no API key provided (send `Authorization: Bearer <key>`)"),
        }
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let (seq, next) = shared.take(&request, &headers);
    let (delay, answer) = match next {
        Ok(next) => next,
        Err(failure) => return error_response(&failure),
    };
    tokio::time::sleep(delay).await;
    let message = match &answer {
        Answer::Text(text) => Message::Text(text),
        Answer::ToolCalls(calls) => Message::ToolCalls(calls),
        Answer::Failure(failure) => return error_response(failure),
    };
    let meta = Meta {
        id: format!("chatcmpl-scripted-{seq}"),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
        model: request["model"].as_str().unwrap_or("scripted").to_owned(),
        usage: wire::usage(body.len(), message),
    };
    if request["stream"] != Value::Bool(true) {
        return Json(wire::completion(&meta, message)).into_response();
    }
    let shape = StreamShape {
        omit_single_index: shared.options.omit_stream_index,
        include_usage: request["stream_options"]["include_usage"] == Value::Bool(true),
    };
    let events = wire::chunks(&meta, message, shape)
        .into_iter()
        .map(|chunk| Event::default().data(chunk.to_string()))
        .chain([Event::default().data("[DONE]")])
        .map(Ok::<_, Infallible>);
    Sse::new(futures::stream::iter(events)).into_response()
}

/// Any other method or path: a 404 that says what is served.
async fn unknown_route(method: Method, uri: Uri) -> Response {
    let message = format!("scripted LLM serves POST {PATH} only, not {method} {uri}");
    error_response(&Failure::new(404, message))
}

/// An OpenAI error response; a status outside 100..=999 becomes a 500.
fn error_response(failure: &Failure) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = status.as_u16();
    let error_type = failure
        .error_type
        .as_deref()
        .unwrap_or(wire::default_error_type(code));
    let body = wire::error_body(&failure.message, error_type, wire::error_code(code));
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = failure.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
