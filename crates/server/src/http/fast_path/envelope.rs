//! The JSON-RPC envelope of one message: its members borrowed from the body, nothing
//! below them parsed. rmcp's model types are the schema of what is parsed further.

use std::borrow::Cow;

use rmcp::model::{CallToolRequestParams, RequestId};
use serde::Deserialize;
use serde_json::value::RawValue;

/// One JSON-RPC 2.0 message, as sent. Unknown members make it something else: the
/// fast path leaves it to rmcp.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// What a message is, as far as the fast path cares.
pub(super) enum Kind<'a> {
    /// A request: `method`, `id`, maybe `params`.
    Request {
        method: &'a str,
        id: &'a RawValue,
        params: Option<&'a RawValue>,
    },
    /// A notification: `method`, maybe `params`.
    Notification {
        method: &'a str,
        params: Option<&'a RawValue>,
    },
    /// The answer to a request of ours: `result` or `error`.
    Response {
        id: &'a RawValue,
        outcome: Result<&'a RawValue, &'a RawValue>,
    },
}

impl<'a> Envelope<'a> {
    /// The envelope of `body`, if it is one JSON-RPC 2.0 message.
    pub(super) fn parse(body: &'a [u8]) -> Option<Self> {
        let envelope: Self = serde_json::from_slice(body).ok()?;
        (envelope.jsonrpc == "2.0").then_some(envelope)
    }

    /// What it is; `None` for a shape JSON-RPC does not have.
    pub(super) fn kind(&self) -> Option<Kind<'_>> {
        match (
            self.method.as_deref(),
            self.id,
            self.params,
            self.result,
            self.error,
        ) {
            (Some(method), Some(id), params, None, None) => {
                Some(Kind::Request { method, id, params })
            }
            (Some(method), None, params, None, None) => Some(Kind::Notification { method, params }),
            (None, Some(id), None, Some(result), None) => Some(Kind::Response {
                id,
                outcome: Ok(result),
            }),
            (None, Some(id), None, None, Some(error)) => Some(Kind::Response {
                id,
                outcome: Err(error),
            }),
            _ => None,
        }
    }
}

/// A request id as rmcp types it (a string or an integer), if it is one.
pub(super) fn request_id(raw: &RawValue) -> Option<RequestId> {
    serde_json::from_str(raw.get()).ok()
}

/// `tools/call` parameters, as rmcp's model defines them.
pub(super) fn call_params(raw: Option<&RawValue>) -> Option<CallToolRequestParams> {
    serde_json::from_str(raw?.get()).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_a_request_with_its_params_untouched() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"hi"}}}"#;
        let envelope = Envelope::parse(body).unwrap();
        let Some(Kind::Request { method, id, params }) = envelope.kind() else {
            panic!("not a request");
        };
        assert_eq!(method, "tools/call");
        assert_eq!(request_id(id), Some(RequestId::Number(7)));
        let params = call_params(params).unwrap();
        assert_eq!(params.name, "fx__echo");
        assert_eq!(params.arguments.unwrap()["text"], "hi");
    }

    #[test]
    fn other_shapes_are_told_apart_or_refused() {
        let note =
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}}"#;
        assert!(matches!(
            Envelope::parse(note).unwrap().kind(),
            Some(Kind::Notification { .. })
        ));
        let answer = br#"{"jsonrpc":"2.0","id":"x","result":{}}"#;
        assert!(matches!(
            Envelope::parse(answer).unwrap().kind(),
            Some(Kind::Response { outcome: Ok(_), .. })
        ));
        for body in [
            &br#"{"jsonrpc":"1.0","id":1,"method":"tools/call"}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","extra":1}"#,
            br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call"}]"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"#,
            b"",
        ] {
            assert!(Envelope::parse(body).is_none(), "{body:?}");
        }
        let both = br#"{"jsonrpc":"2.0","id":1,"method":"x","result":{}}"#;
        assert!(Envelope::parse(both).unwrap().kind().is_none());
        assert!(request_id(&RawValue::from_string("1.5".into()).unwrap()).is_none());
        assert!(request_id(&RawValue::from_string("null".into()).unwrap()).is_none());
    }
}
