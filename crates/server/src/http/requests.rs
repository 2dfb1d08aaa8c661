//! What `/mcp` checks before the MCP service sees a request, answered as the MCP
//! transport and JSON-RPC specs ask:
//!
//! - an unsupported `MCP-Protocol-Version` header: `400`;
//! - a body over the limit: `413`, whether it declares its length or streams it;
//! - a body that is not one JSON-RPC message: `400` with a JSON-RPC error, `-32700`
//!   (parse error) or `-32600` (invalid request, batches included), where the MCP
//!   service would answer `415`.

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use rmcp::model::{ClientJsonRpcMessage, ErrorCode, ErrorData, ProtocolVersion};
use serde_json::{Value, json};

const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";

/// The checks above, then `next` with a POST's body read in full (at most `max_body`
/// bytes).
pub(super) async fn check(
    max_body: usize,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    if let Some(refusal) = unsupported_version(request.headers()) {
        return refusal;
    }
    if request.method() != Method::POST {
        return next(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match read_body(&parts.headers, body, max_body).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    let json = is_json(&parts.headers);
    let response = next(Request::from_parts(parts, Body::from(bytes.clone()))).await;
    // The MCP service answers 415 to a JSON body it cannot parse as a message.
    if json && response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return not_a_message(&bytes);
    }
    response
}

/// `400` when the request names a protocol version this server does not speak.
fn unsupported_version(headers: &HeaderMap) -> Option<Response> {
    let value = headers.get(PROTOCOL_VERSION_HEADER)?;
    let text = value.to_str().unwrap_or("(not text)");
    if ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .any(|known| known.as_str() == text)
    {
        return None;
    }
    let supported: Vec<&str> = ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .map(ProtocolVersion::as_str)
        .collect();
    let error = ErrorData::new(
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION,
        format!(
            "unsupported MCP-Protocol-Version `{text}`; this server speaks {}",
            supported.join(", ")
        ),
        Some(json!({ "requested": text, "supported": supported })),
    );
    Some(json_rpc_error(Value::Null, error))
}

/// The whole body, or the refusal to send: `413` past `max` bytes.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large(max));
    }
    let mut collected = Vec::with_capacity(declared.map_or(0, |d| d as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("Bad Request: could not read the request body: {e}\n"),
            )
                .into_response()
        })?;
        if chunk.len() > max - collected.len() {
            discard_rest(stream, max).await;
            return Err(too_large(max));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// Reads and drops what remains of a refused body (at most `max` more bytes, for at most
/// a second): a connection closed with unread data is reset, and the client would see
/// the reset instead of the `413`.
async fn discard_rest(mut stream: axum::body::BodyDataStream, max: usize) {
    let drain = async {
        let mut dropped = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            dropped = dropped.saturating_add(chunk.len());
            if dropped > max {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

fn too_large(max: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Payload Too Large: the request body exceeds the gateway's limit of {max} bytes\n"),
    )
        .into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The JSON-RPC error for a body that is not one client message.
fn not_a_message(bytes: &[u8]) -> Response {
    let value = match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value,
        Err(e) => {
            let error = ErrorData::new(
                ErrorCode::PARSE_ERROR,
                format!("parse error: the request body is not JSON: {e}"),
                None,
            );
            return json_rpc_error(Value::Null, error);
        }
    };
    if value.is_array() {
        let error = ErrorData::new(
            ErrorCode::INVALID_REQUEST,
            "invalid request: JSON-RPC batches are not supported; send one message per request",
            None,
        );
        return json_rpc_error(Value::Null, error);
    }
    let why = serde_json::from_value::<ClientJsonRpcMessage>(value.clone())
        .err()
        .map_or_else(|| "not a client message".to_owned(), |e| e.to_string());
    let id = match value.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    };
    let error = ErrorData::new(
        ErrorCode::INVALID_REQUEST,
        format!("invalid request: not a JSON-RPC 2.0 message MCP knows: {why}"),
        None,
    );
    json_rpc_error(id, error)
}

fn json_rpc_error(id: Value, error: ErrorData) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": error });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}
