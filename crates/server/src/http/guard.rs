//! The `Host`/`Origin` rule of `/mcp` and `/status` (DNS-rebinding and cross-origin
//! protection): the `Host` must be an allowed name (loopback, or one given with
//! `--allow-host`), and so must the host of an `Origin` when a browser sends one. A
//! refusal says how to allow the name.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, Uri, header, uri::Authority},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// One allowed name, with the port it must come with when it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

/// The names `Host` and `Origin` may carry.
#[derive(Debug, Clone)]
pub(super) struct AllowedHosts(Arc<[Allowed]>);

impl AllowedHosts {
    /// From entries such as `localhost`, `::1` or `mesh.internal:8443`.
    pub(super) fn new(entries: &[String]) -> Self {
        let allowed = entries
            .iter()
            .filter_map(|entry| {
                let entry = entry.trim();
                if entry.is_empty() {
                    return None;
                }
                Some(match Authority::try_from(entry) {
                    Ok(authority) => Allowed {
                        host: normalize(authority.host()),
                        port: authority.port_u16(),
                    },
                    // A bare IPv6 address (`::1`) is no authority.
                    Err(_) => Allowed {
                        host: normalize(entry),
                        port: None,
                    },
                })
            })
            .collect();
        Self(allowed)
    }

    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = normalize(host);
        self.0
            .iter()
            .any(|allowed| allowed.host == host && allowed.port.is_none_or(|p| port == Some(p)))
    }

    /// `Err` with the answer to send when `headers` break the rule.
    pub(super) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        // HTTP/2 carries the host in `:authority`, which may leave no `Host` header.
        let host = match headers.get(header::HOST) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|text| Authority::try_from(text).ok()),
            None => uri.authority().cloned(),
        };
        let Some(host) = host else {
            return Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                message: "Bad Request: the Host header is missing or malformed\n".to_owned(),
            });
        };
        if !self.allows(host.host(), host.port_u16()) {
            tracing::warn!(host = %host, "refused a request for a host not allowed (possible DNS rebinding)");
            return Err(forbidden(&format!(
                "Forbidden: Host `{host}` is not allowed here (DNS-rebinding protection). If \
                 clients reach the gateway by this name, start it with \
                 `toolmesh serve --allow-host {}`.\n",
                host.host()
            )));
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin_text = origin.to_str().unwrap_or("(not text)");
        let parsed = origin_text
            .parse::<Uri>()
            .ok()
            .and_then(|uri| Some((uri.authority()?.clone(), default_port(uri.scheme_str()?))));
        let Some((authority, default)) = parsed else {
            return Err(forbidden(&format!(
                "Forbidden: Origin `{origin_text}` is not allowed here (cross-origin protection): \
                 only pages served from an allowed host may call the gateway.\n"
            )));
        };
        if self.allows(authority.host(), authority.port_u16().or(default)) {
            return Ok(());
        }
        tracing::warn!(origin = origin_text, "refused a cross-origin request");
        Err(forbidden(&format!(
            "Forbidden: Origin `{origin_text}` is not allowed here (cross-origin protection). If \
             browser clients are served from this host, start the gateway with \
             `toolmesh serve --allow-host {}`.\n",
            authority.host()
        )))
    }
}

/// [`AllowedHosts::check`], then `next`.
pub(super) async fn guard(
    hosts: &AllowedHosts,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    match hosts.check(request.uri(), request.headers()) {
        Ok(()) => next(request).await,
        Err(refusal) => (refusal.status, refusal.message).into_response(),
    }
}

/// [`guard`] as a middleware layer.
pub(super) async fn layer(
    State(hosts): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    guard(&hosts, request, async |request| next.run(request).await).await
}

/// Why a request is not served, and the answer's status.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    message: String,
}

fn forbidden(message: &str) -> Refusal {
    Refusal {
        status: StatusCode::FORBIDDEN,
        message: message.to_owned(),
    }
}

fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn hosts() -> AllowedHosts {
        AllowedHosts::new(&[
            "localhost".into(),
            "127.0.0.1".into(),
            "::1".into(),
            "mesh.internal:8443".into(),
        ])
    }

    fn check(host: &str, origin: Option<&str>) -> Result<(), StatusCode> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        hosts()
            .check(&Uri::from_static("/status"), &headers)
            .map_err(|r| r.status)
    }

    #[test]
    fn loopback_and_allowed_names_pass() {
        assert_eq!(check("localhost:8383", None), Ok(()));
        assert_eq!(check("127.0.0.1:1", None), Ok(()));
        assert_eq!(check("[::1]:8383", None), Ok(()));
        assert_eq!(check("MESH.internal:8443", None), Ok(()));
        assert_eq!(
            check("localhost:8383", Some("http://localhost:6274")),
            Ok(())
        );
        assert_eq!(
            check("mesh.internal:8443", Some("https://mesh.internal:8443")),
            Ok(())
        );
    }

    #[test]
    fn other_names_and_origins_are_refused() {
        assert_eq!(check("evil.example", None), Err(StatusCode::FORBIDDEN));
        assert_eq!(check("mesh.internal:80", None), Err(StatusCode::FORBIDDEN));
        assert_eq!(
            check("localhost", Some("https://evil.example")),
            Err(StatusCode::FORBIDDEN)
        );
        // https://mesh.internal means port 443, not the allowed 8443.
        assert_eq!(
            check("localhost", Some("https://mesh.internal")),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(check("localhost", Some("null")), Err(StatusCode::FORBIDDEN));
        assert_eq!(check("bad host", None), Err(StatusCode::BAD_REQUEST));
    }
}
