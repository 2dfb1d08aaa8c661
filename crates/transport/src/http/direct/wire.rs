//! The direct leg's own POST for `http://` upstreams: the request's URI and headers are
//! built once per session and each call goes out on a hyper keep-alive pool
//! (TCP_NODELAY). reqwest parses the URL twice and runs its redirect and retry layers
//! for every request (~12 % of the gateway's instructions per relayed call); none of
//! that is needed for a POST whose target never changes. HTTPS upstreams, and any when
//! a proxy is configured in the environment, are posted by rmcp's reqwest code.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use rmcp::{
    model::{JsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_client::{StreamableHttpError, StreamableHttpPostResponse},
};

type Pool = Client<HttpConnector, Full<Bytes>>;

/// What rmcp's code returns for a POST; the direct leg reads both alike.
pub(crate) type Posted = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;

/// Largest non-streamed answer read (rmcp bounds its JSON answers alike).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut connector = HttpConnector::new();
        // Without it a pooled connection stalls ~40 ms per call on Nagle + delayed ACK.
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector)
    })
}

/// Whether reqwest would send plain-HTTP requests through a proxy (it reads these).
fn proxy_configured() -> bool {
    static PROXIED: OnceLock<bool> = OnceLock::new();
    *PROXIED.get_or_init(|| {
        ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    })
}

/// A session's POST, built once: where it goes and the headers rmcp's own POSTs carry.
#[derive(Debug)]
pub(crate) struct Prepared {
    uri: http::Uri,
    headers: HeaderMap,
}

impl Prepared {
    /// `None` when rmcp's reqwest code must post: not `http://`, or a proxy is set.
    pub(crate) fn new(
        uri: &str,
        session: &str,
        auth: Option<&str>,
        custom: &HashMap<HeaderName, HeaderValue>,
    ) -> Option<Self> {
        Self::unless_proxied(uri, session, auth, custom, proxy_configured())
    }

    fn unless_proxied(
        uri: &str,
        session: &str,
        auth: Option<&str>,
        custom: &HashMap<HeaderName, HeaderValue>,
        proxied: bool,
    ) -> Option<Self> {
        let uri: http::Uri = uri.parse().ok()?;
        if proxied || uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return None;
        }
        let mut headers = HeaderMap::with_capacity(4 + custom.len());
        for (name, value) in custom {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream, application/json"),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(token) = auth {
            let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        headers.insert(
            HeaderName::from_static("mcp-session-id"),
            HeaderValue::try_from(session).ok()?,
        );
        Some(Self { uri, headers })
    }
}

/// POSTs `body` (one JSON-RPC request) in the session: its answer as rmcp's code would
/// hand it over — an SSE stream, one JSON message, or the error, worded the same way.
pub(crate) async fn post(prepared: &Prepared, body: Vec<u8>, event_limit: usize) -> Posted {
    let mut request = http::Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = prepared.uri.clone();
    *request.headers_mut() = prepared.headers.clone();
    let response = pool().request(request).await.map_err(unsent_or_cut)?;
    let status = response.status();
    if status == StatusCode::NOT_FOUND {
        // The server no longer knows the session: it ran nothing.
        return Err(StreamableHttpError::SessionExpired);
    }
    if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
        return Ok(StreamableHttpPostResponse::Accepted);
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is = |mime: &str| {
        content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with(mime))
    };
    if status.is_success() && is("text/event-stream") {
        let events = sse_stream::SseStream::new(Bounded::new(response.into_body(), event_limit));
        return Ok(StreamableHttpPostResponse::Sse(events.boxed(), None));
    }
    let body = match Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(StreamableHttpError::ResponseBodyTooLarge {
                max_size: MAX_BODY_BYTES,
            });
        }
        Err(e) => return Err(StreamableHttpError::Io(std::io::Error::other(e))),
    };
    if is("application/json") {
        match serde_json::from_slice::<ServerJsonRpcMessage>(&body) {
            // A failure status may still carry the JSON-RPC error to pass on.
            Ok(message) if status.is_success() || matches!(message, JsonRpcMessage::Error(_)) => {
                return Ok(StreamableHttpPostResponse::Json(message, None));
            }
            Err(e) if status.is_success() => return Err(StreamableHttpError::Deserialize(e)),
            _ => {}
        }
    }
    if status.is_success() {
        return Err(StreamableHttpError::UnexpectedContentType(content_type));
    }
    Err(StreamableHttpError::UnexpectedServerResponse(
        format!("HTTP {status}: {}", String::from_utf8_lossy(&body)).into(),
    ))
}

/// A failed exchange, with the operating system's error kind where there is one: a
/// refused connection sent nothing (so the call may go elsewhere); anything else may
/// have reached the server.
fn unsent_or_cut(e: hyper_util::client::legacy::Error) -> StreamableHttpError<reqwest::Error> {
    let mut kind = std::io::ErrorKind::Other;
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            kind = io.kind();
            break;
        }
        cause = c.source();
    }
    StreamableHttpError::Io(std::io::Error::new(kind, e))
}

/// Why an SSE answer stopped being read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    #[error(transparent)]
    Body(#[from] hyper::Error),
    #[error("SSE event exceeded the maximum size of {0} bytes")]
    EventTooLarge(usize),
}

/// A response body whose SSE events may not exceed a size: the parser holds an event
/// whole until its blank line, so a server that never sends one is cut off.
pub(crate) struct Bounded<B> {
    inner: B,
    limit: EventLimit,
}

impl<B> Bounded<B> {
    fn new(inner: B, max: usize) -> Self {
        Self {
            inner,
            limit: EventLimit::new(max),
        }
    }
}

impl<B> Body for Bounded<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        if self.limit.exceeded {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref()
            && !self.limit.observe(data)
        {
            return Poll::Ready(Some(Err(StreamError::EventTooLarge(self.limit.max))));
        }
        Poll::Ready(Some(Ok(frame)))
    }
}

/// Bytes of the SSE event being received, reset by each blank line.
#[derive(Debug)]
struct EventLimit {
    max: usize,
    held: usize,
    at_line_start: bool,
    after_cr: bool,
    exceeded: bool,
}

impl EventLimit {
    fn new(max: usize) -> Self {
        Self {
            max,
            held: 0,
            at_line_start: true,
            after_cr: false,
            exceeded: false,
        }
    }

    /// `false` once the event being received has grown past the limit.
    fn observe(&mut self, chunk: &[u8]) -> bool {
        for &byte in chunk {
            match byte {
                // `\r\n` ends one line, not two.
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    if self.at_line_start {
                        self.held = 0;
                    }
                    self.at_line_start = true;
                    self.after_cr = byte == b'\r';
                }
                _ => {
                    self.at_line_start = false;
                    self.after_cr = false;
                    self.held += 1;
                    if self.held > self.max {
                        self.exceeded = true;
                        return false;
                    }
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(uri: &str, proxied: bool) -> Option<Prepared> {
        let custom = HashMap::from([(
            HeaderName::from_static("mcp-protocol-version"),
            HeaderValue::from_static("2025-11-25"),
        )]);
        Prepared::unless_proxied(uri, "s-1", Some("tok"), &custom, proxied)
    }

    #[test]
    fn only_plain_http_without_a_proxy_is_posted_here() {
        let p = prepared("http://127.0.0.1:9/mcp", false).expect("plain HTTP");
        assert_eq!(p.uri.path(), "/mcp");
        let header = |name: &str| p.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("mcp-session-id"), Some("s-1"));
        assert_eq!(header("mcp-protocol-version"), Some("2025-11-25"));
        assert_eq!(header("authorization"), Some("Bearer tok"));
        assert_eq!(
            header("accept"),
            Some("text/event-stream, application/json")
        );
        assert_eq!(header("content-type"), Some("application/json"));
        assert!(prepared("https://127.0.0.1:9/mcp", false).is_none());
        assert!(prepared("http://127.0.0.1:9/mcp", true).is_none());
        assert!(prepared("not a uri", false).is_none());
    }

    #[test]
    fn an_event_may_not_outgrow_the_limit_and_blank_lines_reset_it() {
        let mut limit = EventLimit::new(10);
        // Two events of 9 bytes each, split across chunks and line endings.
        assert!(limit.observe(b"data: 12"));
        assert!(limit.observe(b"3\r\n\r\n"));
        assert!(limit.observe(b"data: abc\n\n"));
        // `\r\n` is one line ending: the event goes on.
        assert!(limit.observe(b"data:\r\n"));
        assert!(!limit.observe(b"123456"));
        assert!(limit.exceeded);
    }
}
