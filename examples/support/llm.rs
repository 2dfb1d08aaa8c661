//! The model the agent examples ask: a real endpoint when `OPENAI_BASE_URL` is set, else
//! the testkit's scripted OpenAI-compatible server playing `script`.

use toolmesh::{Llm, LlmEndpoint};
use toolmesh_testkit::{Reply, ScriptedLlm};

/// The model, and the scripted server behind it (keep it alive while the agent runs).
pub(crate) async fn scripted_or_env(
    script: impl IntoIterator<Item = Reply>,
) -> anyhow::Result<(Llm, Option<ScriptedLlm>)> {
    if std::env::var("OPENAI_BASE_URL").is_ok() {
        return Ok((Llm::from_env()?, None));
    }
    let scripted = ScriptedLlm::start(script).await?;
    let llm = Llm::new([LlmEndpoint::new(scripted.base_url(), None)])?.with_model("scripted");
    Ok((llm, Some(scripted)))
}
