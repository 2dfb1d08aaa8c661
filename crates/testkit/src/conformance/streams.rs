//! A session manager that lets a tool close its own SSE stream mid-call (SEP-1699).
//!
//! rmcp's [`LocalSessionManager`] can close one request's SSE stream
//! ([`LocalSessionHandle::close_sse_stream`]) but keeps which HTTP stream carries which
//! JSON-RPC request to itself. [`ReconnectingSessions`] wraps it, notes the stream of
//! every `test_reconnection` call as the stream is opened, and tells that call when the
//! client has come back with `Last-Event-ID`, so the tool answers only after the
//! reconnection instead of racing it.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ClientRequest, RequestId, ServerJsonRpcMessage},
    transport::{
        WorkerTransport,
        streamable_http_server::{
            SessionId, SessionManager,
            session::{
                ServerSseMessage,
                local::{
                    LocalSessionHandle, LocalSessionManager, LocalSessionManagerError,
                    LocalSessionWorker,
                },
            },
        },
    },
};
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;

/// Name of the tool whose stream is closed mid-call.
pub(super) const RECONNECTION_TOOL: &str = "test_reconnection";

/// [`LocalSessionManager`] plus the bookkeeping `test_reconnection` needs.
#[derive(Debug)]
pub(crate) struct ReconnectingSessions {
    local: LocalSessionManager,
    /// How long clients are told to wait before reconnecting.
    retry: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The HTTP stream of each open `test_reconnection` call.
    calls: HashMap<(SessionId, RequestId), u64>,
    /// Bumped on every resumed stream of a session.
    resumed: HashMap<SessionId, watch::Sender<u64>>,
}

impl ReconnectingSessions {
    /// Sessions whose streams open with a priming event carrying `retry`.
    pub(crate) fn new(retry: Duration) -> Self {
        let mut local = LocalSessionManager::default();
        local.session_config.sse_retry = Some(retry);
        Self {
            local,
            retry,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave these maps half-written: keep using them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn handle(&self, id: &SessionId) -> Result<LocalSessionHandle, LocalSessionManagerError> {
        self.local
            .sessions
            .read()
            .await
            .get(id)
            .cloned()
            .ok_or_else(|| LocalSessionManagerError::SessionNotFound(id.clone()))
    }

    /// Closes the SSE stream carrying request `request` of `session` (after a priming
    /// event with the retry interval) and returns a receiver that changes once the
    /// client has resumed a stream of that session.
    pub(crate) async fn close_call_stream(
        &self,
        session: &SessionId,
        request: &RequestId,
    ) -> Result<watch::Receiver<u64>, String> {
        let key = (session.clone(), request.clone());
        let (stream, resumed) = {
            let mut state = self.state();
            let stream = state.calls.remove(&key);
            let resumed = state
                .resumed
                .entry(session.clone())
                .or_insert_with(|| watch::channel(0).0)
                .subscribe();
            (stream, resumed)
        };
        let stream =
            stream.ok_or_else(|| format!("no open SSE stream is known for request {request}"))?;
        let handle = self.handle(session).await.map_err(|e| e.to_string())?;
        handle
            .close_sse_stream(stream, Some(self.retry))
            .await
            .map_err(|e| format!("cannot close the SSE stream: {e}"))?;
        Ok(resumed)
    }
}

/// The request id of a `tools/call` of [`RECONNECTION_TOOL`].
fn reconnection_call(message: &ClientJsonRpcMessage) -> Option<RequestId> {
    match message {
        ClientJsonRpcMessage::Request(request) => match &request.request {
            ClientRequest::CallToolRequest(call) if call.params.name == RECONNECTION_TOOL => {
                Some(request.id.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

impl SessionManager for ReconnectingSessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.local.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.local.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.local.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        {
            let mut state = self.state();
            state.calls.retain(|(session, _), _| session != id);
            state.resumed.remove(id);
        }
        self.local.close_session(id).await
    }

    /// What [`LocalSessionManager`] does, noting the stream of a reconnection call.
    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let handle = self.handle(id).await?;
        let receiver = handle.establish_request_wise_channel().await?;
        if let (Some(request), Some(stream)) =
            (reconnection_call(&message), receiver.http_request_id)
        {
            self.state().calls.insert((id.clone(), request), stream);
        }
        handle
            .push_message(message, receiver.http_request_id)
            .await?;
        Ok(ReceiverStream::new(receiver.inner))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.local.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.create_standalone_stream(id).await
    }

    /// What [`LocalSessionManager`] does, then tells waiting reconnection calls.
    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.local.resume(id, last_event_id).await?;
        if let Some(resumed) = self.state().resumed.get(id) {
            resumed.send_modify(|count| *count += 1);
        }
        Ok(stream)
    }
}
