//! The `test_*` prompts and argument completion.

use rmcp::{
    ErrorData,
    model::{
        CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock, GetPromptResult,
        JsonObject, Prompt, PromptArgument, PromptMessage, Reference, ResourceContents, Role,
    },
};
use serde_json::Value;

use super::media::PNG_BASE64;

const SIMPLE: &str = "test_simple_prompt";
const WITH_ARGUMENTS: &str = "test_prompt_with_arguments";
const WITH_RESOURCE: &str = "test_prompt_with_embedded_resource";
const WITH_IMAGE: &str = "test_prompt_with_image";

/// What `completion/complete` offers for the arguments of [`WITH_ARGUMENTS`].
const ARGUMENT_VALUES: &[&str] = &["testValue1", "testValue2", "paris", "park", "party"];

/// Every prompt.
pub(super) fn list() -> Vec<Prompt> {
    let required = |name: &str, description: &str| {
        PromptArgument::new(name)
            .with_description(description)
            .with_required(true)
    };
    vec![
        titled(
            SIMPLE,
            "Simple Test Prompt",
            "A simple prompt without arguments",
            None,
        ),
        titled(
            WITH_ARGUMENTS,
            "Prompt With Arguments",
            "A prompt with required arguments",
            Some(vec![
                required("arg1", "First test argument"),
                required("arg2", "Second test argument"),
            ]),
        ),
        titled(
            WITH_RESOURCE,
            "Prompt With Embedded Resource",
            "A prompt that includes an embedded resource",
            Some(vec![required(
                "resourceUri",
                "URI of the resource to embed",
            )]),
        ),
        titled(
            WITH_IMAGE,
            "Prompt With Image",
            "A prompt that includes image content",
            None,
        ),
    ]
}

fn titled(
    name: &str,
    title: &str,
    description: &str,
    arguments: Option<Vec<PromptArgument>>,
) -> Prompt {
    let mut prompt = Prompt::new(name, Some(description), arguments);
    prompt.title = Some(title.to_owned());
    prompt
}

/// Renders prompt `name` with `arguments`; unknown prompts and missing arguments are
/// invalid-params errors.
pub(super) fn get(
    name: &str,
    arguments: Option<&JsonObject>,
) -> Result<GetPromptResult, ErrorData> {
    let argument = |key: &str| {
        arguments
            .and_then(|args| args.get(key))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ErrorData::invalid_params(format!("prompt {name} needs a string `{key}`"), None)
            })
    };
    let messages = match name {
        SIMPLE => vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )],
        WITH_ARGUMENTS => {
            let (arg1, arg2) = (argument("arg1")?, argument("arg2")?);
            vec![PromptMessage::new_text(
                Role::User,
                format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
            )]
        }
        WITH_RESOURCE => {
            let contents = ResourceContents::text(
                "Embedded resource content for testing.",
                argument("resourceUri")?,
            )
            .with_mime_type("text/plain");
            vec![
                PromptMessage::new(Role::User, ContentBlock::resource(contents)),
                PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
            ]
        }
        WITH_IMAGE => vec![
            PromptMessage::new(Role::User, ContentBlock::image(PNG_BASE64, "image/png")),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ],
        _ => {
            return Err(ErrorData::invalid_params(
                format!("no prompt named {name}"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(messages))
}

/// Completion of prompt arguments: the known values of [`WITH_ARGUMENTS`]'s arguments
/// that start with what was typed; nothing for anything else.
pub(super) fn complete(request: &CompleteRequestParams) -> Result<CompleteResult, ErrorData> {
    let values = match &request.r#ref {
        Reference::Prompt(prompt) if prompt.name == WITH_ARGUMENTS => ARGUMENT_VALUES
            .iter()
            .filter(|value| value.starts_with(&request.argument.value))
            .map(|value| (*value).to_owned())
            .collect(),
        _ => Vec::new(),
    };
    let completion = CompletionInfo::with_all_values(values)
        .map_err(|reason| ErrorData::internal_error(reason, None))?;
    Ok(CompleteResult::new(completion))
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ArgumentInfo, CompleteRequestParams, Reference};
    use serde_json::json;

    use super::{complete, get, list};

    #[test]
    fn prompts_render_their_arguments() -> anyhow::Result<()> {
        assert_eq!(list().len(), 4);
        let args = json!({ "arg1": "hello", "arg2": "world" });
        let result = get("test_prompt_with_arguments", args.as_object())?;
        let text = serde_json::to_string(&result)?;
        assert!(text.contains("arg1='hello', arg2='world'"), "{text}");
        assert!(get("test_prompt_with_arguments", None).is_err());
        assert!(get("nope", None).is_err());
        Ok(())
    }

    #[test]
    fn completion_filters_by_prefix() -> anyhow::Result<()> {
        let request = CompleteRequestParams::new(
            Reference::for_prompt("test_prompt_with_arguments"),
            ArgumentInfo::new("arg1", "par"),
        );
        let result = complete(&request)?;
        assert_eq!(result.completion.values, ["paris", "park", "party"]);
        Ok(())
    }
}
