//! `http_fetch {url, max_bytes?}`: GET a public web page or API, as text.
//!
//! SSRF protection: the host is resolved first and every address it resolves to is
//! checked; loopback, private, link-local, unique-local, carrier-grade NAT, unspecified,
//! multicast and reserved addresses (also when embedded in IPv6: IPv4-mapped, NAT64,
//! 6to4) are refused unless the host or the address is in `allow_hosts`. The request
//! then goes to exactly the addresses that were checked: each hop uses a client whose
//! DNS is pinned to them (`resolve_to_addrs`) and whose resolver refuses every other
//! name, without proxies, so DNS rebinding cannot swap in another address. Redirects
//! are followed by hand, at most five, and every hop is checked the same way.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde::{Deserialize, Serialize};
use toolmesh_core::{CallContext, CallError};
use url::{Host, Url};

use crate::{
    ToolsError,
    http::{USER_AGENT, chain, excerpt, humanize, read_limited},
    native::{NativeTool, answer, bounded, schema_for, tool_error, tool_success},
};

mod content;
mod guard;

use guard::{AllowList, restricted_class};

/// Most redirects followed.
const MAX_REDIRECTS: usize = 5;

/// Limits of `http_fetch` and the non-public hosts it may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpFetchConfig {
    /// Budget of one fetch, redirects included (`"30s"`, `"1500ms"` or seconds); default 30 s.
    #[serde(with = "toolmesh_core::duration")]
    pub timeout: Duration,
    /// Most body bytes read; the rest is dropped and the answer says it was truncated.
    /// Callers may ask for less, not more. Default 1 MiB.
    pub max_bytes: u64,
    /// Hosts allowed although they resolve to non-public addresses: host names
    /// (`intranet.example`, `*.corp.example`), IP addresses (`127.0.0.1`) or networks
    /// (`10.0.0.0/8`). An address matches if the URL's host or the address itself is
    /// listed. Default: none.
    pub allow_hosts: Vec<String>,
}

impl HttpFetchConfig {
    /// Default of [`timeout`](Self::timeout).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default of [`max_bytes`](Self::max_bytes): 1 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;
}

impl Default for HttpFetchConfig {
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            allow_hosts: Vec::new(),
        }
    }
}

/// `http_fetch {url, max_bytes?}`: GET an http(s) URL and return its content as text.
///
/// HTML becomes its title and visible text, JSON is pretty-printed, other text is
/// returned as is, binary content is described but not returned.
///
/// SSRF protection: every address the host resolves to must be public (not loopback,
/// private, link-local, unique-local, carrier-grade NAT, unspecified, multicast or
/// reserved, also in IPv4-mapped, NAT64 and 6to4 form) unless the host or address is in
/// [`HttpFetchConfig::allow_hosts`]; the request goes only to the checked addresses
/// (pinned DNS, no proxy), and each of at most five redirects is checked the same way.
#[derive(Debug, Clone)]
pub struct HttpFetch {
    config: HttpFetchConfig,
    allow: AllowList,
}

impl HttpFetch {
    /// `http_fetch` with `config`; fails on a malformed `allow_hosts` entry.
    pub fn new(config: HttpFetchConfig) -> Result<Self, ToolsError> {
        if config.max_bytes == 0 {
            return Err(ToolsError::Config {
                field: "http_fetch.max_bytes",
                reason: "must be at least 1".to_owned(),
            });
        }
        let allow = AllowList::parse(&config.allow_hosts)?;
        Ok(Self { config, allow })
    }
}

/// Arguments of `http_fetch`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FetchArgs {
    /// The http:// or https:// URL to GET.
    url: String,
    /// Most body bytes to read (up to the configured limit); the rest is cut off.
    #[serde(default)]
    max_bytes: Option<u64>,
}

impl NativeTool for HttpFetch {
    fn definition(&self) -> Tool {
        Tool::new(
            "http_fetch",
            format!(
                "GET a public http(s) URL and return its content as text: HTML pages as title and visible \
                 text, JSON pretty-printed, other text as is. At most {} bytes are read (longer bodies are \
                 truncated); redirects are followed (at most {MAX_REDIRECTS}); private and local network \
                 addresses are refused.",
                self.config.max_bytes
            ),
            schema_for::<FetchArgs>(),
        )
        .with_title("Fetch URL")
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
        let work = answer("http_fetch", arguments, |args| self.fetch(args));
        bounded("http_fetch", ctx, work).await
    }
}

/// The addresses a hop may connect to, after checking.
struct Checked {
    /// The host name to pin, `None` for an IP literal.
    domain: Option<String>,
    addrs: Vec<SocketAddr>,
}

/// A resolver that refuses every name: only names pinned with `resolve_to_addrs`
/// (checked beforehand) can be reached.
struct NoDns;

impl reqwest::dns::Resolve for NoDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            Err(format!(
                "`{name}` was not resolved and checked by http_fetch; refusing to look it up"
            )
            .into())
        })
    }
}

impl HttpFetch {
    async fn fetch(&self, args: FetchArgs) -> Result<CallToolResult, String> {
        let limit = args
            .max_bytes
            .unwrap_or(self.config.max_bytes)
            .clamp(1, self.config.max_bytes);
        let deadline = toolmesh_core::duration::deadline_after(self.config.timeout);
        let timed_out = |url: &Url| {
            format!(
                "`{url}` did not answer within {} (the http_fetch timeout); try again later or another URL",
                humanize(self.config.timeout)
            )
        };
        let mut url = parse_url(&args.url)?;
        let mut redirects: Vec<String> = Vec::new();
        loop {
            let checked = tokio::time::timeout_at(deadline, self.check(&url))
                .await
                .map_err(|_| timed_out(&url))??;
            let client = pinned_client(&checked, self.config.timeout)?;
            let send = client
                .get(url.clone())
                .header(
                    reqwest::header::ACCEPT,
                    "text/html, application/json;q=0.9, text/*;q=0.8, */*;q=0.5",
                )
                .send();
            let mut response = tokio::time::timeout_at(deadline, send)
                .await
                .map_err(|_| timed_out(&url))?
                .map_err(|e| {
                    if e.is_timeout() {
                        timed_out(&url)
                    } else {
                        format!("cannot fetch `{url}`: {}", chain(&e))
                    }
                })?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                if redirects.len() == MAX_REDIRECTS {
                    return Err(format!(
                        "`{}` redirected more than {MAX_REDIRECTS} times (last hop: `{url}`); giving up",
                        args.url
                    ));
                }
                let location = location
                    .to_str()
                    .map_err(|_| format!("`{url}` redirected to a Location that is not text"))?;
                let next = url.join(location).map_err(|e| {
                    format!("`{url}` redirected to an invalid URL `{location}`: {e}")
                })?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(format!(
                        "`{url}` redirected to `{next}`, which is not http or https; not followed"
                    ));
                }
                redirects.push(url.to_string());
                url = next;
                continue;
            }

            let media_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase()
                });
            let (body, truncated) =
                tokio::time::timeout_at(deadline, read_limited(&mut response, limit))
                    .await
                    .map_err(|_| timed_out(&url))?
                    .map_err(|e| format!("reading the body of `{url}` failed: {}", chain(&e)))?;
            return Ok(respond(Response {
                requested: &args.url,
                url: &url,
                status,
                media_type: media_type.as_deref(),
                body: &body,
                truncated,
                limit,
                redirects,
            }));
        }
    }

    /// Resolves the host of `url` and checks every address.
    async fn check(&self, url: &Url) -> Result<Checked, String> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("`{url}` has no port and no default one"))?;
        let (domain, addrs) = match url.host() {
            None => return Err(format!("`{url}` has no host")),
            Some(Host::Ipv4(ip)) => (None, vec![SocketAddr::new(IpAddr::V4(ip), port)]),
            Some(Host::Ipv6(ip)) => (None, vec![SocketAddr::new(IpAddr::V6(ip), port)]),
            Some(Host::Domain(domain)) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((domain, port))
                    .await
                    .map_err(|e| format!("cannot resolve the host `{domain}`: {e}; check the URL"))?
                    .collect();
                if addrs.is_empty() {
                    return Err(format!(
                        "the host `{domain}` resolves to no address; check the URL"
                    ));
                }
                (Some(domain.to_owned()), addrs)
            }
        };
        let host_allowed = domain.as_deref().is_some_and(|d| self.allow.allows_host(d));
        for addr in &addrs {
            let ip = addr.ip();
            if let Some(class) = restricted_class(ip)
                && !host_allowed
                && !self.allow.allows_ip(ip)
            {
                let what = match &domain {
                    Some(domain) => format!("the host `{domain}` resolves to {ip}, {class}"),
                    None => format!("{ip} is {class}"),
                };
                return Err(format!(
                    "refused to fetch `{url}`: {what}. http_fetch only connects to public internet \
                     addresses; if this host must be reachable, the operator can add it to \
                     `http_fetch.allow_hosts`"
                ));
            }
        }
        Ok(Checked { domain, addrs })
    }
}

/// A client that can reach only the checked addresses of one hop.
fn pinned_client(checked: &Checked, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(NoDns))
        .timeout(timeout)
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    if let Some(domain) = &checked.domain {
        builder = builder.resolve_to_addrs(domain, &checked.addrs);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
}

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| {
        format!(
            "`{text}` is not a valid URL ({e}); give an absolute URL like https://example.com/page"
        )
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "`{text}` uses the `{other}` scheme; http_fetch only fetches http:// and https:// URLs"
        )),
    }
}

struct Response<'a> {
    requested: &'a str,
    url: &'a Url,
    status: reqwest::StatusCode,
    media_type: Option<&'a str>,
    body: &'a [u8],
    truncated: bool,
    limit: u64,
    redirects: Vec<String>,
}

fn respond(response: Response<'_>) -> CallToolResult {
    let rendered = content::render(response.media_type, response.body);
    let status = response.status;
    let media = response.media_type.unwrap_or("unknown");
    let mut text = format!(
        "URL: {}\nStatus: {}\nContent-Type: {media}\n",
        response.url, status
    );
    if let Some(title) = &rendered.title {
        text.push_str(&format!("Title: {title}\n"));
    }
    text.push('\n');
    if rendered.kind == "binary" {
        text.push_str(&format!(
            "[binary content ({media}), {} bytes received; not shown]",
            response.body.len()
        ));
    } else {
        text.push_str(&rendered.text);
    }
    if response.truncated {
        text.push_str(&format!(
            "\n\n[truncated: only the first {} bytes of the body were read]",
            response.limit
        ));
    }
    let structured = serde_json::json!({
        "url": response.requested,
        "final_url": response.url.as_str(),
        "status": status.as_u16(),
        "content_type": response.media_type,
        "kind": rendered.kind,
        "title": rendered.title,
        "text": rendered.text,
        "bytes": response.body.len(),
        "truncated": response.truncated,
        "redirects": response.redirects,
    });
    if status.is_client_error() || status.is_server_error() {
        let mut result = tool_error(format!(
            "`{}` answered HTTP {status}: {}",
            response.url,
            excerpt(&rendered.text, 2000)
        ));
        result.structured_content = Some(structured);
        return result;
    }
    tool_success(text, structured)
}
