//! The session's standalone GET stream, made part of connecting.
//!
//! rmcp opens the GET stream (where a server sends requests and notifications outside any
//! call) in a task of its own after the handshake, so a call sent right after `connect`
//! could reach the server first, and a notification sent before the stream is up is lost.
//! [`Client`] notes when that GET has been answered, and `Session::connect` waits for it.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    },
};
use sse_stream::Sse;
use tokio::sync::watch;

type Stream = BoxStream<'static, Result<Sse, SseError>>;
type HttpError = StreamableHttpError<reqwest::Error>;

/// Whether the standalone GET stream is expected, and whether it has been answered.
#[derive(Debug)]
pub(crate) struct StandaloneStream {
    /// A response carried a session id, so rmcp will open the stream.
    expected: AtomicBool,
    answered: watch::Sender<bool>,
}

impl Default for StandaloneStream {
    fn default() -> Self {
        Self {
            expected: AtomicBool::new(false),
            answered: watch::Sender::new(false),
        }
    }
}

impl StandaloneStream {
    /// Waits up to `limit` for the server to answer the GET, if one is coming.
    ///
    /// Returns whether the stream was answered (or none was expected).
    pub(crate) async fn settled(&self, limit: Duration) -> bool {
        if !self.expected.load(Ordering::Acquire) {
            return true;
        }
        let mut answered = self.answered.subscribe();
        tokio::time::timeout(limit, answered.wait_for(|done| *done))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn saw(&self, response: &StreamableHttpPostResponse) {
        let session = match response {
            StreamableHttpPostResponse::Json(_, session)
            | StreamableHttpPostResponse::Sse(_, session) => session.as_ref(),
            _ => None,
        };
        if session.is_some() {
            self.expected.store(true, Ordering::Release);
        }
    }
}

/// The shared reqwest client, reporting the standalone stream to [`StandaloneStream`]
/// and the session's POSTs to [`Upstream`](super::direct::Upstream).
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub(crate) inner: reqwest::Client,
    pub(crate) standalone: Arc<StandaloneStream>,
    /// Notes the session's POSTs for calls that take the direct leg.
    pub(crate) upstream: Arc<super::direct::Upstream>,
}

impl StreamableHttpClient for Client {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let limit = super::event_limit();
        self.post_message_with_max_sse_event_size(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limit,
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        if let Some(session) = &session_id {
            self.upstream
                .note(&uri, session, &auth_header, &custom_headers);
        }
        let response = self
            .inner
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await?;
        self.standalone.saw(&response);
        Ok(response)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        self.inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<Stream, HttpError> {
        let limit = super::event_limit();
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            limit,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<Stream, HttpError> {
        let standalone = session_id.is_some() && last_event_id.is_none();
        let stream = self
            .inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        if standalone {
            self.standalone.answered.send_replace(true);
        }
        stream
    }
}
