//! `web_search {query, max_results?}` through a SearXNG-compatible JSON API.

use std::time::Duration;

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde::{Deserialize, Serialize};
use toolmesh_core::{CallContext, CallError};

use crate::{
    ToolsError,
    http::{client, excerpt, provider_failing, read_limited, unreachable},
    native::{Failure, NativeTool, answer_from_provider, bounded, schema_for, tool_success},
};

/// Largest answer read from the provider.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;
/// Upper bound of `max_results`.
const MAX_RESULTS: usize = 20;

/// The search provider: a SearXNG instance or anything answering
/// `GET {base_url}/search?q=...&format=json` with `{"results": [{"title", "url", "content"}]}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSearchConfig {
    /// Base URL of the provider, e.g. `http://127.0.0.1:8888` (`/search` is appended).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <api_key>` when set.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Budget of one search (`"30s"` or seconds); default 30 s.
    #[serde(default = "default_timeout", with = "toolmesh_core::duration")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl WebSearchConfig {
    /// A provider at `base_url`, without API key.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            timeout: default_timeout(),
        }
    }
}

impl std::fmt::Debug for WebSearchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSearchConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `web_search {query, max_results?}`: title, URL and snippet of the top results.
#[derive(Debug, Clone)]
pub struct WebSearch {
    config: WebSearchConfig,
    endpoint: url::Url,
    client: reqwest::Client,
}

impl WebSearch {
    /// `web_search` through the provider of `config`.
    pub fn new(config: WebSearchConfig) -> Result<Self, ToolsError> {
        let base = config.base_url.trim_end_matches('/');
        let endpoint =
            url::Url::parse(&format!("{base}/search")).map_err(|e| ToolsError::Config {
                field: "web_search.base_url",
                reason: format!("`{}` is not a URL: {e}", config.base_url),
            })?;
        let client = client("web_search", config.timeout)?;
        Ok(Self {
            config,
            endpoint,
            client,
        })
    }
}

/// Arguments of `web_search`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// What to search the web for.
    query: String,
    /// Number of results, 1-20; default 5.
    #[serde(default)]
    max_results: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<Hit>,
}

#[derive(Debug, Deserialize, Serialize)]
struct Hit {
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    content: String,
}

impl NativeTool for WebSearch {
    fn definition(&self) -> Tool {
        Tool::new(
            "web_search",
            "Search the web. Returns the title, URL and a snippet of the top results; use http_fetch \
             to read a result.",
            schema_for::<SearchArgs>(),
        )
        .with_title("Web search")
        .with_annotations(
            ToolAnnotations::new()
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(true),
        )
    }

    async fn call(
        &self,
        arguments: JsonObject,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        let work = answer_from_provider("web_search", arguments, |args| self.search(args));
        bounded("web_search", ctx, work).await?
    }
}

impl WebSearch {
    async fn search(&self, args: SearchArgs) -> Result<CallToolResult, Failure> {
        let query = args.query.trim();
        if query.is_empty() {
            return Err(Failure::Tool(
                "the query is empty; pass what to search for".to_owned(),
            ));
        }
        let max = args.max_results.unwrap_or(5);
        if !(1..=MAX_RESULTS).contains(&max) {
            return Err(Failure::Tool(format!(
                "max_results must be between 1 and {MAX_RESULTS}, got {max}"
            )));
        }
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("q", query)
            .append_pair("format", "json");
        let mut request = self.client.get(url);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let what = "the search provider";
        let mut response = request
            .send()
            .await
            .map_err(|e| unreachable("web_search", &e, what, self.config.timeout))?;
        let status = response.status();
        let (body, truncated) = read_limited(&mut response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| unreachable("web_search", &e, what, self.config.timeout))?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Failure::Tool(format!(
                "{what} refused the request (HTTP {status}); the operator should check `web_search.api_key`"
            )));
        }
        if let Some(failing) = provider_failing("web_search", status, what, &body) {
            return Err(failing);
        }
        if !status.is_success() {
            return Err(Failure::Tool(format!(
                "{what} answered HTTP {status}: {}; try again later",
                excerpt(String::from_utf8_lossy(&body).trim(), 500)
            )));
        }
        if truncated {
            return Err(Failure::Tool(format!(
                "{what} sent more than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            Failure::Tool(format!(
                "{what} did not answer with SearXNG JSON ({e}); is JSON output (`format=json`) enabled on it?"
            ))
        })?;
        let hits: Vec<Hit> = answer.results.into_iter().take(max).collect();
        let mut text = format!("{} results for `{query}`\n", hits.len());
        if hits.is_empty() {
            text.push_str("Nothing found; try other words.\n");
        }
        for (i, hit) in hits.iter().enumerate() {
            text.push_str(&format!(
                "\n{}. {}\n   {}\n   {}\n",
                i + 1,
                hit.title,
                hit.url,
                excerpt(&hit.content, 400)
            ));
        }
        Ok(tool_success(
            text,
            serde_json::json!({ "query": query, "results": hits }),
        ))
    }
}
