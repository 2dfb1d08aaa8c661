//! [`AcceptDefaults`]: a relay that answers form elicitations as a user who accepts the
//! form as the server pre-filled it (SEP-1034 defaults).

use rmcp::{
    ErrorData,
    model::{ClientResult, ElicitResult, ElicitationAction, ServerRequest},
};
use serde_json::{Map, Value};
use toolmesh_core::{BoxFuture, Relay};

/// Accepts every form elicitation with the `default` of each field that has one;
/// refuses other requests (sampling, roots) as the [`Relay`] default does.
#[derive(Debug, Default)]
pub(super) struct AcceptDefaults;

impl Relay for AcceptDefaults {
    fn request(
        &self,
        request: ServerRequest,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let answer = match request {
            ServerRequest::ElicitRequest(elicit) => serde_json::to_value(&elicit.params)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))
                .map(|params| {
                    let content = defaults(&params["requestedSchema"]);
                    ClientResult::ElicitResult(
                        ElicitResult::new(ElicitationAction::Accept).with_content(content),
                    )
                }),
            _ => Err(ErrorData::invalid_request(
                "the conformance client answers only form elicitations",
                None,
            )),
        };
        Box::pin(std::future::ready(answer))
    }
}

/// `{field: default}` for every property of `schema` that declares a default.
fn defaults(schema: &Value) -> Value {
    let fields = schema["properties"].as_object().map(|properties| {
        properties
            .iter()
            .filter_map(|(name, field)| Some((name.clone(), field.get("default")?.clone())))
            .collect::<Map<String, Value>>()
    });
    Value::Object(fields.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::defaults;

    #[test]
    fn takes_every_declared_default() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": { "type": "string", "default": "John Doe" },
                "age": { "type": "integer", "default": 30 },
                "note": { "type": "string" }
            }
        });
        assert_eq!(defaults(&schema), json!({ "name": "John Doe", "age": 30 }));
        assert_eq!(defaults(&json!({})), json!({}));
    }
}
