//! Streamable HTTP: one shared, pooled reqwest client with TCP_NODELAY.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use rmcp::transport::{
    StreamableHttpClientTransport, common::client_side_sse::SseRetryPolicy,
    streamable_http_client::StreamableHttpClientTransportConfig,
};

use crate::{Endpoint, EndpointError};

pub(crate) mod direct;
mod standalone;

pub(crate) use standalone::StandaloneStream;

/// Ordinary POSTs one session may have in flight (rmcp's default is 16).
pub(crate) const MAX_CONCURRENT_POSTS: usize = 256;

/// The HTTP client could not be built; most often TLS could not be initialised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot create the HTTP client ({0}); check the system's TLS setup (root certificates, crypto provider)"
)]
pub struct ClientError(String);

/// The process-wide client: keep-alive pooling plus TCP_NODELAY, without which a pooled
/// connection stalls ~40 ms per call on Nagle + delayed ACK.
pub fn shared_client() -> Result<reqwest::Client, ClientError> {
    static CLIENT: OnceLock<Result<reqwest::Client, ClientError>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            build(
                reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(256),
            )
        })
        .clone()
}

fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, ClientError> {
    builder.build().map_err(|e| ClientError(e.to_string()))
}

/// Reconnects a broken SSE stream a few times, then gives up so in-flight calls fail.
///
/// rmcp's default retries forever, which leaves a call to a dead server hanging; the pool
/// above reconnects whole sessions, so failing fast here is what lets calls fail over.
#[derive(Debug)]
struct BoundedRetry;

impl SseRetryPolicy for BoundedRetry {
    fn retry(&self, attempt: usize) -> Option<Duration> {
        reconnect_delay(attempt)
    }
}

/// rmcp's transport config for `endpoint`.
pub(crate) fn config(
    endpoint: &Endpoint,
    url: &str,
) -> Result<StreamableHttpClientTransportConfig, EndpointError> {
    let mut headers = HashMap::new();
    for (name, value) in &endpoint.headers {
        let invalid = |what: &str| EndpointError {
            field: "headers",
            message: format!("{what} `{name}` is not valid in HTTP"),
        };
        headers.insert(
            http::HeaderName::try_from(name.as_str()).map_err(|_| invalid("header name"))?,
            http::HeaderValue::try_from(value.as_str())
                .map_err(|_| invalid("the value of header"))?,
        );
    }
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    config.retry_config = Arc::new(BoundedRetry);
    let mut config = config
        .max_concurrent_requests(MAX_CONCURRENT_POSTS)
        .custom_headers(headers)
        .reinit_on_expired_session(true);
    if let Some(token) = endpoint.bearer_token()? {
        config = config.auth_header(token);
    }
    Ok(config)
}

/// An rmcp transport with what [`standalone::Client`] notes about it.
pub(crate) struct Transport {
    pub(crate) rmcp: StreamableHttpClientTransport<standalone::Client>,
    /// The state of its standalone GET stream.
    pub(crate) standalone: Arc<StandaloneStream>,
    /// Its session, as the direct leg posts in it.
    pub(crate) upstream: Arc<direct::Upstream>,
}

/// The rmcp transport for `endpoint` on `client` (the shared one).
pub(crate) fn transport(
    client: reqwest::Client,
    endpoint: &Endpoint,
    url: &str,
) -> Result<Transport, EndpointError> {
    let standalone = Arc::new(StandaloneStream::default());
    let upstream = Arc::new(direct::Upstream::default());
    let client = standalone::Client {
        inner: client,
        standalone: standalone.clone(),
        upstream: upstream.clone(),
    };
    Ok(Transport {
        rmcp: StreamableHttpClientTransport::with_client(client, config(endpoint, url)?),
        standalone,
        upstream,
    })
}

/// The wait before reconnecting a broken SSE stream the `attempt`-th time (from 0);
/// `None`: give up.
pub(crate) fn reconnect_delay(attempt: usize) -> Option<Duration> {
    const DELAYS_MS: [u64; 3] = [100, 250, 500];
    DELAYS_MS.get(attempt).map(|ms| Duration::from_millis(*ms))
}

/// rmcp's SSE event limit, which the direct leg keeps too.
pub(crate) fn event_limit() -> usize {
    StreamableHttpClientTransportConfig::default().max_sse_event_size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_not_a_panic() {
        // No TLS version left to speak: the TLS setup fails, as a broken system's would.
        let builder = reqwest::Client::builder()
            .tls_version_min(reqwest::tls::Version::TLS_1_3)
            .tls_version_max(reqwest::tls::Version::TLS_1_2);
        let err = build(builder).unwrap_err();
        assert!(err.to_string().contains("TLS setup"), "{err}");
        assert!(shared_client().is_ok());
    }
}
