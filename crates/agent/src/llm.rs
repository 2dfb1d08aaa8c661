//! The model side: OpenAI-compatible chat completions (async-openai) over several
//! endpoints, each behind its own circuit breaker. 429, 5xx and connection failures are
//! retried with backoff (honouring `Retry-After`) and fail over to the next endpoint;
//! 400/401/403/404 and `insufficient_quota` fail at once with the server's message.

mod http;
mod stream;

use std::{sync::Arc, time::Duration};

use async_openai::{
    Client, config::OpenAIConfig, error::OpenAIError, types::chat::CreateChatCompletionResponse,
};
use backon::BackoffBuilder;
use tokio::time::Instant;
use toolmesh_resilience::{BreakerConfig, CircuitBreaker};

use crate::LlmError;
use http::{HttpFailure, StatusAware};

/// Where the model is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmEndpoint {
    /// Base URL of the OpenAI-compatible API, e.g. `https://api.openai.com/v1` or
    /// `http://localhost:11434/v1`.
    pub base_url: String,
    /// Bearer key; `None` sends none (local servers).
    pub api_key: Option<String>,
}

impl LlmEndpoint {
    /// An endpoint at `base_url` with an optional key.
    pub fn new(base_url: impl Into<String>, api_key: Option<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
        }
    }

    /// `OPENAI_BASE_URL` (default `https://api.openai.com/v1`) and `OPENAI_API_KEY`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self::new(
            var("OPENAI_BASE_URL").unwrap_or_else(|| Self::OPENAI.to_owned()),
            var("OPENAI_API_KEY"),
        )
    }

    /// OpenAI's own API.
    pub const OPENAI: &str = "https://api.openai.com/v1";
}

/// How the model is asked again after a retryable failure.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRetry {
    /// Requests per model call, across endpoints (1 = no retry).
    pub max_attempts: u32,
    /// First backoff delay (doubles per round, with jitter).
    pub min_delay: Duration,
    /// Longest backoff delay (a longer `Retry-After` is honoured up to the deadline).
    pub max_delay: Duration,
}

impl Default for LlmRetry {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// A model answer and how it was obtained.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The chat completion.
    pub response: CreateChatCompletionResponse,
    /// The endpoint that answered.
    pub endpoint: String,
    /// Requests made.
    pub attempts: u32,
    /// Failures before the answer, in words.
    pub tried: Vec<String>,
}

struct Endpoint {
    url: String,
    client: Client<OpenAIConfig>,
    breaker: CircuitBreaker,
}

/// A replicated OpenAI-compatible model service. Cheap to clone.
#[derive(Clone)]
pub struct Llm {
    endpoints: Arc<[Endpoint]>,
    model: Option<String>,
    retry: LlmRetry,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field(
                "endpoints",
                &self.endpoints.iter().map(|e| &e.url).collect::<Vec<_>>(),
            )
            .field("model", &self.model)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Llm {
    /// A model served by `endpoints`, tried in order (the first healthy one serves).
    ///
    /// # Errors
    ///
    /// [`LlmError::Invalid`] without endpoints, with a base URL that is not http(s), or
    /// when the HTTP client cannot start.
    pub fn new(endpoints: impl IntoIterator<Item = LlmEndpoint>) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LlmError::Invalid(format!("cannot start the HTTP client: {e}")))?;
        let endpoints = endpoints
            .into_iter()
            .map(|e| {
                let url = e.base_url.trim_end_matches('/').to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(LlmError::Invalid(format!(
                        "LLM base URL `{url}` must start with http:// or https:// (e.g. http://localhost:11434/v1)"
                    )));
                }
                let mut config = OpenAIConfig::new().with_api_base(&url);
                // async-openai sends `Bearer ` even without a key; an empty one is harmless.
                config = config.with_api_key(e.api_key.unwrap_or_default());
                let client =
                    Client::with_config(config).with_http_service(StatusAware { http: http.clone() });
                let breaker = CircuitBreaker::new(
                    format!("llm {url}"),
                    BreakerConfig {
                        failure_threshold: 3,
                        recovery_timeout: Duration::from_secs(30),
                        ..BreakerConfig::default()
                    },
                );
                Ok(Endpoint {
                    url,
                    client,
                    breaker,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(LlmError::Invalid(
                "no LLM endpoint: set llm.base_url (or llm.endpoints) or OPENAI_BASE_URL".into(),
            ));
        }
        Ok(Self {
            endpoints: endpoints.into(),
            model: None,
            retry: LlmRetry::default(),
        })
    }

    /// One endpoint from the environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`) and the
    /// model from `TOOLMESH_MODEL` when set.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn from_env() -> Result<Self, LlmError> {
        let llm = Self::new([LlmEndpoint::from_env()])?;
        Ok(match Self::model_from_env() {
            Some(model) => llm.with_model(model),
            None => llm,
        })
    }

    /// `TOOLMESH_MODEL`, when set and not blank.
    pub fn model_from_env() -> Option<String> {
        std::env::var("TOOLMESH_MODEL")
            .ok()
            .filter(|m| !m.trim().is_empty())
    }

    /// Sets the model asked.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the retry schedule.
    pub fn with_retry(mut self, retry: LlmRetry) -> Self {
        self.retry = retry;
        self
    }

    /// The model asked, when set.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The endpoints' base URLs, in order.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|e| e.url.as_str())
    }

    /// Asks the model, retrying and failing over until `deadline`.
    ///
    /// # Errors
    ///
    /// See [`LlmError`]: every variant says which endpoint and why.
    pub async fn complete(
        &self,
        request: &(impl serde::Serialize + Sync),
        deadline: Instant,
    ) -> Result<Completion, LlmError> {
        self.ask(request, deadline, None).await
    }

    /// Asks the model with `stream: true`, handing each piece of text to `on_text` as it
    /// arrives; the completion is the same one [`complete`](Self::complete) would give.
    /// A stream that breaks after text was shown is not retried (the text would repeat).
    ///
    /// # Errors
    ///
    /// As [`complete`](Self::complete).
    pub async fn complete_streaming(
        &self,
        request: &(impl serde::Serialize + Sync),
        deadline: Instant,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, LlmError> {
        self.ask(request, deadline, Some(on_text)).await
    }

    async fn ask(
        &self,
        request: &(impl serde::Serialize + Sync),
        deadline: Instant,
        mut on_text: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> Result<Completion, LlmError> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_jitter()
            .without_max_times()
            .build();
        let started = Instant::now();
        let n = self.endpoints.len();
        let mut tried = Vec::new();
        let mut next = 0;
        for attempt in 1..=self.retry.max_attempts.max(1) {
            let Some((at, admission)) = (0..n)
                .map(|k| (next + k) % n)
                .find_map(|i| self.endpoints[i].breaker.admit().ok().map(|a| (i, a)))
            else {
                if tried.is_empty() {
                    tried.push("every endpoint's circuit breaker is open".to_owned());
                }
                break;
            };
            let endpoint = &self.endpoints[at];
            let chat = endpoint.client.chat();
            let mut shown = false;
            let sent = async {
                match on_text.as_deref_mut() {
                    None => {
                        chat.create_byot::<_, CreateChatCompletionResponse>(request)
                            .await
                    }
                    Some(sink) => streamed(&chat, request, sink, &mut shown).await,
                }
            };
            let outcome = match tokio::time::timeout_at(deadline, sent).await {
                Err(_) => {
                    admission.failure();
                    return Err(LlmError::Timeout(started.elapsed()));
                }
                Ok(outcome) => outcome,
            };
            match outcome {
                Ok(response) => {
                    admission.success();
                    count(&endpoint.url, "ok");
                    return Ok(Completion {
                        response,
                        endpoint: endpoint.url.clone(),
                        attempts: attempt,
                        tried,
                    });
                }
                Err(e) => {
                    let failure = classify(&endpoint.url, e);
                    match failure {
                        Failure::Fatal(e) => {
                            // The server is up and said no: not the endpoint's fault.
                            admission.success();
                            count(&endpoint.url, "rejected");
                            return Err(e);
                        }
                        Failure::Retry { reason, .. } if shown => {
                            admission.failure();
                            count(&endpoint.url, "broken_stream");
                            return Err(LlmError::Exhausted {
                                attempts: attempt,
                                last: format!(
                                    "{}: the stream broke after its text was shown: {reason}",
                                    endpoint.url
                                ),
                            });
                        }
                        Failure::Retry { reason, wait } => {
                            admission.failure();
                            count(&endpoint.url, "retried");
                            tracing::debug!(endpoint = %endpoint.url, %reason, "LLM request failed; retrying");
                            tried.push(format!("{}: {reason}", endpoint.url));
                            next = (at + 1) % n;
                            // Another endpoint is tried at once; a full round backs off.
                            if (attempt as usize).is_multiple_of(n) || wait.is_some() {
                                let backoff = delays.next().unwrap_or(self.retry.max_delay);
                                let pause = pause(wait, backoff);
                                if Instant::now() + pause >= deadline {
                                    break;
                                }
                                tokio::time::sleep(pause).await;
                            }
                        }
                    }
                }
            }
        }
        Err(exhausted(tried))
    }
}

/// One streamed request, added up; `shown` turns true once text reached `sink`.
async fn streamed(
    chat: &async_openai::Chat<'_, OpenAIConfig>,
    request: &(impl serde::Serialize + Sync),
    sink: &mut (dyn FnMut(&str) + Send),
    shown: &mut bool,
) -> Result<CreateChatCompletionResponse, OpenAIError> {
    use futures::StreamExt;
    #[derive(serde::Serialize)]
    struct Streamed<'a, R> {
        #[serde(flatten)]
        request: &'a R,
        stream: bool,
        stream_options: async_openai::types::chat::ChatCompletionStreamOptions,
    }
    let request = Streamed {
        request,
        stream: true,
        stream_options: async_openai::types::chat::ChatCompletionStreamOptions {
            include_usage: Some(true),
            ..Default::default()
        },
    };
    let mut chunks = chat
        .create_stream_byot::<_, stream::Chunk>(&request)
        .await?;
    let mut sum = stream::Accumulator::default();
    while let Some(chunk) = chunks.next().await {
        if let Some(text) = sum.add(chunk?) {
            *shown = true;
            sink(&text);
        }
    }
    Ok(sum.finish())
}

/// How long to wait before asking again: the server's `Retry-After` when it gave one
/// longer than the backoff.
fn pause(retry_after: Option<Duration>, backoff: Duration) -> Duration {
    retry_after.map_or(backoff, |w| w.max(backoff))
}

fn exhausted(tried: Vec<String>) -> LlmError {
    let attempts = tried.len() as u32;
    let last = tried.into_iter().last().unwrap_or_default();
    if let Some((url, reason)) = last.split_once(": ")
        && reason.starts_with("connection")
    {
        return LlmError::Unreachable {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
    }
    LlmError::Exhausted { attempts, last }
}

fn count(endpoint: &str, outcome: &'static str) {
    metrics::counter!(
        "toolmesh_agent_llm_requests_total",
        "endpoint" => endpoint.to_owned(),
        "outcome" => outcome
    )
    .increment(1);
}

enum Failure {
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    Fatal(LlmError),
}

fn classify(url: &str, error: OpenAIError) -> Failure {
    let retry = |reason: String| Failure::Retry { reason, wait: None };
    match error {
        OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpFailure>() {
            Ok(f) => classify_status(url, *f),
            Err(other) => retry(other.to_string()),
        },
        OpenAIError::ApiError(api) => classify_status(
            url,
            HttpFailure {
                status: api.status_code.as_u16(),
                retry_after: None,
                message: api.api_error.message.clone(),
                codes: [api.api_error.code.clone(), api.api_error.r#type.clone()]
                    .into_iter()
                    .flatten()
                    .collect(),
            },
        ),
        OpenAIError::Reqwest(e) if e.is_connect() => {
            retry(format!("connection failed ({})", root_cause(&e)))
        }
        OpenAIError::Reqwest(e) if e.is_timeout() => retry("connection timed out".into()),
        OpenAIError::Reqwest(e) => retry(root_cause(&e)),
        OpenAIError::JSONDeserialize(e, _) => Failure::Fatal(LlmError::Malformed {
            url: url.to_owned(),
            reason: e.to_string(),
        }),
        OpenAIError::StreamError(e) => retry(e.to_string()),
        other => Failure::Fatal(LlmError::Invalid(other.to_string())),
    }
}

fn classify_status(url: &str, f: HttpFailure) -> Failure {
    let quota = f.is("insufficient_quota");
    match f.status {
        401 => Failure::Fatal(LlmError::Unauthorized {
            url: url.to_owned(),
            message: f.message,
        }),
        429 if !quota => Failure::Retry {
            wait: f.retry_after,
            reason: format!("HTTP 429: {}", f.message),
        },
        408 | 500..=599 => Failure::Retry {
            wait: f.retry_after,
            reason: format!("HTTP {}: {}", f.status, f.message),
        },
        status => Failure::Fatal(LlmError::Rejected {
            url: url.to_owned(),
            status,
            message: f.message,
        }),
    }
}

/// The innermost cause: reqwest's own text says only "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_over_a_shorter_backoff() {
        let ms = Duration::from_millis;
        assert_eq!(
            pause(Some(Duration::from_secs(1)), ms(20)),
            Duration::from_secs(1)
        );
        assert_eq!(pause(Some(ms(5)), ms(20)), ms(20));
        assert_eq!(pause(None, ms(20)), ms(20));
    }
}
