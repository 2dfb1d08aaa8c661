//! The protected-resource metadata (RFC 9728) that tells an MCP client where to get a
//! token for this server, and the challenge of a 401 that points to it.

use axum::{
    body::Bytes,
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// The well-known path of the document (RFC 9728 §3).
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The document, served as is, and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    document: Bytes,
    /// Its absolute URL, quoted in every challenge.
    pub(crate) url: String,
    /// The paths it is served at: the well-known path, and with the resource's path
    /// appended (RFC 9728 §3.1) when it has one.
    pub(crate) paths: Vec<String>,
}

impl Metadata {
    pub(crate) fn new(
        resource: &str,
        authorization_servers: &[String],
        scopes_supported: &[String],
    ) -> Result<Self, String> {
        let uri: Uri = resource
            .parse()
            .map_err(|_| format!("the resource `{resource}` is not a URL"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(format!(
                "the resource `{resource}` must be an absolute URL such as https://mesh.example.com/mcp"
            ));
        };
        if !matches!(scheme, "http" | "https") || resource.contains('#') {
            return Err(format!(
                "the resource `{resource}` must be an http(s) URL without a fragment (RFC 8707)"
            ));
        }
        let path = uri.path().trim_end_matches('/');
        let mut paths = vec![WELL_KNOWN.to_owned()];
        if !path.is_empty() {
            paths.push(format!("{WELL_KNOWN}{path}"));
        }
        let url = format!(
            "{scheme}://{authority}{}",
            paths.last().map_or(WELL_KNOWN, String::as_str)
        );
        let document = json!({
            "resource": resource,
            "authorization_servers": authorization_servers,
            "scopes_supported": scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": "toolmesh",
        });
        Ok(Self {
            document: Bytes::from(document.to_string()),
            url,
            paths,
        })
    }

    /// The document as a response; any origin may read it (browser-based clients).
    pub(crate) fn response(&self) -> Response {
        (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=3600"),
                ),
            ],
            self.document.clone(),
        )
            .into_response()
    }
}

/// A `WWW-Authenticate: Bearer …` value (RFC 6750 §3, RFC 9728 §5.1).
pub(crate) fn challenge(
    metadata_url: &str,
    error: Option<&str>,
    description: Option<&str>,
    scope: &[String],
) -> HeaderValue {
    let mut value = format!("Bearer resource_metadata=\"{}\"", quoted(metadata_url));
    if let Some(error) = error {
        value.push_str(&format!(", error=\"{}\"", quoted(error)));
    }
    if let Some(description) = description {
        value.push_str(&format!(", error_description=\"{}\"", quoted(description)));
    }
    if !scope.is_empty() {
        value.push_str(&format!(", scope=\"{}\"", quoted(&scope.join(" "))));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// Text fit for a quoted-string: visible ASCII, without `"` and `\`.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_document_sits_at_the_resource_path() {
        let meta =
            Metadata::new("https://mesh.example.com/mcp", &["https://idp".into()], &[]).unwrap();
        assert_eq!(
            meta.url,
            "https://mesh.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(meta.paths.len(), 2);
        let root = Metadata::new("http://127.0.0.1:9/", &[], &[]).unwrap();
        assert_eq!(
            root.url,
            "http://127.0.0.1:9/.well-known/oauth-protected-resource"
        );
        assert!(Metadata::new("/mcp", &[], &[]).is_err());
        assert!(Metadata::new("ftp://h/mcp", &[], &[]).is_err());
    }

    #[test]
    fn challenges_quote_safely() {
        let value = challenge(
            "http://h/x",
            Some("invalid_token"),
            Some("bad \"x\"\n"),
            &["a".into(), "b".into()],
        );
        assert_eq!(
            value.to_str().unwrap(),
            "Bearer resource_metadata=\"http://h/x\", error=\"invalid_token\", \
             error_description=\"bad 'x'?\", scope=\"a b\""
        );
    }
}
