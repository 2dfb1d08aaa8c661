//! The HTTP leg under async-openai: a tower service that keeps what async-openai drops
//! from a failed response (the status and `Retry-After`), so retries can honour it.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use async_openai::{error::OpenAIError, middleware::HttpRequestFactory};
use futures::future::BoxFuture;

/// A non-2xx answer from an LLM endpoint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("HTTP {status}: {message}")]
pub(crate) struct HttpFailure {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    /// The OpenAI error's `message`, or the body.
    pub(crate) message: String,
    /// The OpenAI error's `code` and `type` (`insufficient_quota`, `invalid_api_key`).
    pub(crate) codes: Vec<String>,
}

impl HttpFailure {
    /// Whether the error's code or type is `code`.
    pub(crate) fn is(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c == code)
    }
}

impl HttpFailure {
    fn parse(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let error = json.as_ref().and_then(|j| j.get("error"));
        let text = |key: &str| {
            error
                .and_then(|e| e.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let message = text("message").unwrap_or_else(|| {
            let body = String::from_utf8_lossy(body);
            let body = body.trim();
            if body.is_empty() {
                "no message".to_owned()
            } else {
                body.chars().take(500).collect()
            }
        });
        Self {
            status,
            retry_after,
            message,
            codes: [text("code"), text("type")].into_iter().flatten().collect(),
        }
    }
}

/// `Retry-After` as seconds (an HTTP date is treated as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

/// Sends async-openai's requests on a shared reqwest client; failed answers become
/// [`HttpFailure`] (boxed in [`OpenAIError::Boxed`]).
#[derive(Clone)]
pub(crate) struct StatusAware {
    pub(crate) http: reqwest::Client,
}

impl tower::Service<HttpRequestFactory> for StatusAware {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let http = self.http.clone();
        Box::pin(async move {
            let request = request.build().await?;
            let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let wait = retry_after(response.headers());
            let body = response.bytes().await.unwrap_or_default();
            Err(OpenAIError::Boxed(Box::new(HttpFailure::parse(
                status.as_u16(),
                wait,
                &body,
            ))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_openai_error_body_and_falls_back_to_the_text() {
        let f = HttpFailure::parse(
            429,
            None,
            br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(f.message, "slow down");
        assert!(f.is("rate_limit_exceeded") && f.is("requests"));
        let f = HttpFailure::parse(502, None, b"bad gateway");
        assert_eq!(f.message, "bad gateway");
        assert!(f.codes.is_empty());
    }

    #[test]
    fn retry_after_is_seconds_and_bounded() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(reqwest::header::RETRY_AFTER, "1e30".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3600)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
