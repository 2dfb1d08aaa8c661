//! The one place that decides which path serves a `tools/call`: the fast path, or
//! rmcp's `StreamableHttpService` (the fallback for anything the fast path does not
//! serve exactly as rmcp would). Each decision is counted in
//! `toolmesh_gateway_calls_total{path, reason}`.

use axum::http::{HeaderMap, header, request::Parts};
use rmcp::model::{CallToolRequestParams, ProgressToken, ProtocolVersion};
use serde_json::value::RawValue;
use toolmesh_core::DEPTH_META_KEY;

use super::{
    FastPath,
    envelope::{self, Envelope, Kind},
};
use crate::{Caller, CatalogServer, server::FastCall};

/// Counter of `tools/call` requests by the path that served them.
const CALLS_METRIC: &str = "toolmesh_gateway_calls_total";

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// SEP-2243 headers: rmcp checks them against the body.
const STANDARD_HEADERS: [&str; 2] = ["mcp-method", "mcp-name"];

/// What to do with one POST to `/mcp`.
pub(super) enum Decision {
    /// Serve this call on the fast path.
    Fast(Box<Eligible>),
    /// The client answered a request the fast path relayed to it.
    Answer {
        id: String,
        outcome: Result<Box<RawValue>, Box<RawValue>>,
    },
    /// The client cancelled a call the fast path serves.
    Cancel { session: String, id: String },
    /// Hand the request to rmcp.
    Rmcp,
}

/// A call the fast path serves, with what it needs to answer.
pub(super) struct Eligible {
    pub(super) server: CatalogServer,
    pub(super) session: String,
    pub(super) client: crate::server::Client,
    /// The request id as the client wrote it (the key of a cancellation).
    pub(super) raw_id: String,
    pub(super) progress_token: Option<ProgressToken>,
    pub(super) call: FastCall,
}

/// Why a `tools/call` went to rmcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fallback {
    /// The fast path is switched off.
    Disabled,
    /// No `Mcp-Session-Id`: stateless serving, or a 2026-07-28 client.
    NoSession,
    /// A session rmcp does not know (it answers 404), or one not initialized yet.
    UnknownSession,
    /// Headers rmcp validates against the body: `MCP-Protocol-Version` from
    /// 2026-07-28 on, SEP-2243 `Mcp-Method`/`Mcp-Name`.
    Version,
    /// Not `Content-Type: application/json`, or an `Accept` that is not plainly
    /// both JSON and SSE.
    Media,
    /// Params, id or `_meta` the fast path does not relay (input responses, request
    /// state, per-request protocol metadata, …).
    Shape,
}

impl Fallback {
    fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::NoSession => "no_session",
            Self::UnknownSession => "unknown_session",
            Self::Version => "version",
            Self::Media => "media",
            Self::Shape => "shape",
        }
    }
}

/// Decides for one POST body.
pub(super) async fn decide(fast: &FastPath, parts: &Parts, body: &[u8]) -> Decision {
    let Some(envelope) = Envelope::parse(body) else {
        return Decision::Rmcp;
    };
    match envelope.kind() {
        Some(Kind::Request {
            method: "tools/call",
            id,
            params,
        }) => match eligible(fast, parts, id, params).await {
            Ok(eligible) => {
                metrics::counter!(CALLS_METRIC, "path" => "fast", "reason" => "eligible")
                    .increment(1);
                Decision::Fast(Box::new(eligible))
            }
            Err(fallback) => {
                metrics::counter!(CALLS_METRIC, "path" => "rmcp", "reason" => fallback.as_str())
                    .increment(1);
                Decision::Rmcp
            }
        },
        Some(Kind::Response { id, outcome }) if fast.asked_by_us(id.get()) => Decision::Answer {
            id: id.get().to_owned(),
            outcome: match outcome {
                Ok(result) => Ok(result.to_owned()),
                Err(error) => Err(error.to_owned()),
            },
        },
        Some(Kind::Notification {
            method: "notifications/cancelled",
            params: Some(params),
        }) => cancellation(fast, &parts.headers, params).map_or(Decision::Rmcp, |(session, id)| {
            Decision::Cancel { session, id }
        }),
        _ => Decision::Rmcp,
    }
}

/// The session and request id of a cancellation naming a call the fast path serves.
fn cancellation(
    fast: &FastPath,
    headers: &HeaderMap,
    params: &RawValue,
) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Cancelled<'a> {
        #[serde(rename = "requestId", borrow)]
        request_id: &'a RawValue,
    }
    let session = headers.get(SESSION_HEADER)?.to_str().ok()?;
    let cancelled: Cancelled<'_> = serde_json::from_str(params.get()).ok()?;
    let id = cancelled.request_id.get();
    fast.serves(session, id)
        .then(|| (session.to_owned(), id.to_owned()))
}

async fn eligible(
    fast: &FastPath,
    parts: &Parts,
    id: &RawValue,
    params: Option<&RawValue>,
) -> Result<Eligible, Fallback> {
    if !fast.enabled() {
        return Err(Fallback::Disabled);
    }
    let headers = &parts.headers;
    let session = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(Fallback::NoSession)?;
    plain_version(headers)?;
    plain_media(headers)?;
    let params = envelope::call_params(params).ok_or(Fallback::Shape)?;
    let request_id = envelope::request_id(id).ok_or(Fallback::Shape)?;
    let (depth, progress_token) = plain_params(&params)?;
    let server = fast.server().ok_or(Fallback::UnknownSession)?;
    if !fast.rmcp_knows(session).await {
        return Err(Fallback::UnknownSession);
    }
    let client = server
        .session_client(session)
        .ok_or(Fallback::UnknownSession)?;
    Ok(Eligible {
        session: session.to_owned(),
        client,
        raw_id: id.get().to_owned(),
        progress_token,
        call: FastCall {
            name: params.name.into_owned(),
            arguments: params.arguments,
            depth,
            request_id,
            caller: parts.extensions.get::<Caller>().cloned(),
        },
        server,
    })
}

/// Versions whose requests rmcp checks no further than [`super::super::requests`] does.
fn plain_version(headers: &HeaderMap) -> Result<(), Fallback> {
    if STANDARD_HEADERS.iter().any(|h| headers.contains_key(*h)) {
        return Err(Fallback::Version);
    }
    match headers.get(VERSION_HEADER).map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(version)) if version < ProtocolVersion::STANDARD_HEADERS.as_str() => Ok(()),
        Some(_) => Err(Fallback::Version),
    }
}

/// A JSON body, and an `Accept` naming JSON and SSE without weights.
fn plain_media(headers: &HeaderMap) -> Result<(), Fallback> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    let mut accepts = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    let (mut sse, mut json_ok, mut weighted) = (false, false, false);
    for accept in accepts.by_ref() {
        weighted |= accept.contains(';');
        sse |= accept.eq_ignore_ascii_case("text/event-stream");
        json_ok |= accept.eq_ignore_ascii_case("application/json");
    }
    if json && sse && json_ok && !weighted {
        Ok(())
    } else {
        Err(Fallback::Media)
    }
}

/// The depth and progress token of params the fast path relays exactly: no input
/// responses or request state, and no `_meta` beyond those two.
fn plain_params(params: &CallToolRequestParams) -> Result<(u32, Option<ProgressToken>), Fallback> {
    if params.input_responses.is_some() || params.request_state.is_some() {
        return Err(Fallback::Shape);
    }
    let Some(meta) = &params.meta else {
        return Ok((0, None));
    };
    let mut depth = 0;
    for (key, value) in meta.0.0.iter() {
        match key.as_str() {
            "progressToken" => {}
            DEPTH_META_KEY => {
                depth = value
                    .as_u64()
                    .map_or(0, |d| u32::try_from(d).unwrap_or(u32::MAX));
            }
            _ => return Err(Fallback::Shape),
        }
    }
    let token = match meta.0.0.get("progressToken") {
        None => None,
        Some(_) => Some(meta.get_progress_token().ok_or(Fallback::Shape)?),
    };
    Ok((depth, token))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn media_must_be_plain_json_and_sse() {
        let ok = [
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        assert_eq!(plain_media(&headers(&ok)), Ok(()));
        for bad in [
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ][..],
            &[
                ("content-type", "text/plain"),
                ("accept", "application/json, text/event-stream"),
            ],
            &[
                ("content-type", "application/json"),
                ("accept", "application/json;q=0, text/event-stream"),
            ],
        ] {
            assert_eq!(plain_media(&headers(bad)), Err(Fallback::Media), "{bad:?}");
        }
    }

    #[test]
    fn newer_versions_and_standard_headers_go_to_rmcp() {
        assert_eq!(plain_version(&headers(&[])), Ok(()));
        assert_eq!(
            plain_version(&headers(&[("mcp-protocol-version", "2025-11-25")])),
            Ok(())
        );
        assert_eq!(
            plain_version(&headers(&[("mcp-protocol-version", "2026-07-28")])),
            Err(Fallback::Version)
        );
        assert_eq!(
            plain_version(&headers(&[("mcp-method", "tools/call")])),
            Err(Fallback::Version)
        );
    }

    #[test]
    fn only_known_meta_is_relayed() {
        let parse = |v: serde_json::Value| -> CallToolRequestParams {
            serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
        };
        let plain = parse(serde_json::json!({"name": "t", "_meta": {"progressToken": 3}}));
        assert_eq!(
            plain_params(&plain),
            Ok((
                0,
                Some(ProgressToken(rmcp::model::NumberOrString::Number(3)))
            ))
        );
        let nested = parse(serde_json::json!({"name": "t", "_meta": {DEPTH_META_KEY: 2}}));
        assert_eq!(plain_params(&nested), Ok((2, None)));
        let other = parse(serde_json::json!({"name": "t", "_meta": {"io.x/y": 1}}));
        assert_eq!(plain_params(&other), Err(Fallback::Shape));
        let state = parse(serde_json::json!({"name": "t", "requestState": "s"}));
        assert_eq!(plain_params(&state), Err(Fallback::Shape));
    }
}
