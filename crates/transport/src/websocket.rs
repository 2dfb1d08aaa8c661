//! WebSocket: rmcp has no WebSocket transport, so bridge one. Each text (or binary) frame
//! carries one JSON-RPC message; the pair becomes rmcp's Sink/Stream transport.

use futures::{Sink, SinkExt, Stream, StreamExt, future};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use crate::{Endpoint, EndpointError};

/// Why a frame could not be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WsError {
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    #[error("cannot encode message: {0}")]
    Encode(#[from] serde_json::Error),
}

pub(crate) type WsSink = std::pin::Pin<Box<dyn Sink<ClientJsonRpcMessage, Error = WsError> + Send>>;
pub(crate) type WsStream = std::pin::Pin<Box<dyn Stream<Item = ServerJsonRpcMessage> + Send>>;

/// The handshake request: URL, custom headers and bearer token.
pub(crate) fn request(endpoint: &Endpoint, url: &str) -> Result<http::Request<()>, EndpointError> {
    let invalid = |message: String| EndpointError {
        field: "url",
        message,
    };
    let mut req = url
        .into_client_request()
        .map_err(|e| invalid(format!("`{url}` is not a valid WebSocket URL: {e}")))?;
    let headers = req.headers_mut();
    for (name, value) in &endpoint.headers {
        let bad = || EndpointError {
            field: "headers",
            message: format!("header `{name}` is not valid in HTTP"),
        };
        headers.insert(
            http::HeaderName::try_from(name.as_str()).map_err(|_| bad())?,
            http::HeaderValue::try_from(value.as_str()).map_err(|_| bad())?,
        );
    }
    if let Some(token) = endpoint.bearer_token()? {
        let value =
            http::HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| EndpointError {
                field: "auth.token",
                message: "the bearer token has characters HTTP headers do not allow".into(),
            })?;
        headers.insert(http::header::AUTHORIZATION, value);
    }
    Ok(req)
}

/// Connects and returns the Sink/Stream pair for rmcp.
pub(crate) async fn connect(
    req: http::Request<()>,
) -> Result<(WsSink, WsStream), tungstenite::Error> {
    let (ws, _response) = tokio_tungstenite::connect_async(req).await?;
    if let Err(e) = set_nodelay(ws.get_ref()) {
        tracing::debug!("cannot set TCP_NODELAY on websocket: {e}");
    }
    let (sink, stream) = ws.split();
    let sink = sink
        .sink_map_err(WsError::from)
        .with(|msg: ClientJsonRpcMessage| {
            future::ready(
                serde_json::to_string(&msg)
                    .map(|s| Message::Text(s.into()))
                    .map_err(WsError::from),
            )
        });
    let stream = stream
        // A transport error or a close frame ends the session.
        .take_while(|frame| future::ready(matches!(frame, Ok(m) if !m.is_close())))
        .filter_map(|frame| {
            future::ready(match frame {
                Ok(Message::Text(text)) => decode(text.as_bytes()),
                Ok(Message::Binary(bytes)) => decode(&bytes),
                _ => None,
            })
        });
    Ok((Box::pin(sink), Box::pin(stream)))
}

fn decode(bytes: &[u8]) -> Option<ServerJsonRpcMessage> {
    match serde_json::from_slice(bytes) {
        Ok(msg) => Some(msg),
        Err(e) => {
            tracing::warn!("dropping a websocket frame that is not JSON-RPC: {e}");
            None
        }
    }
}

fn set_nodelay(
    stream: &tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
) -> std::io::Result<()> {
    match stream {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s.set_nodelay(true),
        tokio_tungstenite::MaybeTlsStream::Rustls(s) => s.get_ref().0.set_nodelay(true),
        _ => Ok(()),
    }
}
