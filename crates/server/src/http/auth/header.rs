//! Where a client's credentials are read from: `Authorization: Bearer TOKEN` or
//! `X-API-Key: KEY`, never the query string. Every parser takes raw bytes from the
//! network and only ever answers `Ok` or `Err`.

use axum::http::{HeaderMap, header};

/// The header carrying an API key on its own.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";
static API_KEY_NAME: header::HeaderName = header::HeaderName::from_static(API_KEY_HEADER);

/// Query parameters that carry a credential (RFC 6750 §2.3 names `access_token`).
const TOKEN_PARAMETERS: &[&str] = &["access_token", "token", "api_key", "apikey", "key"];

/// A credential as the client presented it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    /// `Authorization: Bearer TOKEN`: an API key or a JWT.
    Bearer(&'a str),
    /// `X-API-Key: KEY`.
    ApiKey(&'a str),
}

impl<'a> Presented<'a> {
    pub(crate) fn secret(&self) -> &'a str {
        match self {
            Self::Bearer(secret) | Self::ApiKey(secret) => secret,
        }
    }
}

/// Why the credential headers cannot be read; the text is safe to send back (it never
/// quotes the credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// The one credential in `headers`, `None` when there is none.
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Option<Presented<'_>>, Malformed> {
    // Typed names: a `&str` name is parsed again on every lookup.
    let authorization = single(headers, &header::AUTHORIZATION)?;
    let api_key = single(headers, &API_KEY_NAME)?;
    match (authorization, api_key) {
        (None, None) => Ok(None),
        (Some(value), None) => parse_authorization(value).map(|t| Some(Presented::Bearer(t))),
        (None, Some(value)) => parse_api_key(value).map(|k| Some(Presented::ApiKey(k))),
        (Some(_), Some(_)) => Err(Malformed(
            "both Authorization and X-API-Key are set; send one credential",
        )),
    }
}

/// The value of `name` when it appears once.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &header::HeaderName,
) -> Result<Option<&'a [u8]>, Malformed> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Malformed(
            "a credential header appears more than once; send it once",
        ));
    }
    Ok(Some(first.as_bytes()))
}

/// The token of `Bearer TOKEN` (scheme case-insensitive, RFC 6750 §2.1).
pub(crate) fn parse_authorization(value: &[u8]) -> Result<&str, Malformed> {
    let text = std::str::from_utf8(value)
        .map_err(|_| Malformed("the Authorization header is not text"))?
        .trim();
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Malformed(
            "the Authorization scheme is not Bearer; send `Authorization: Bearer TOKEN`",
        ));
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(Malformed(
            "the Authorization header has no token after Bearer",
        ));
    }
    if !is_b64token(token) {
        return Err(Malformed(
            "the bearer token has characters a token cannot have (RFC 6750 b64token)",
        ));
    }
    Ok(token)
}

/// The key of `X-API-Key: KEY`: visible ASCII without spaces.
pub(crate) fn parse_api_key(value: &[u8]) -> Result<&str, Malformed> {
    let text = std::str::from_utf8(value)
        .map_err(|_| Malformed("the X-API-Key header is not text"))?
        .trim();
    if text.is_empty() {
        return Err(Malformed("the X-API-Key header is empty"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Malformed(
            "the X-API-Key header has spaces or characters a key cannot have",
        ));
    }
    Ok(text)
}

/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Whether the query string carries a credential, which toolmesh refuses: URLs end up
/// in logs, proxies and browser history (RFC 6750 §2.3, MCP authorization spec).
pub(crate) fn query_carries_token(query: Option<&str>) -> bool {
    let Some(query) = query else {
        return false;
    };
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        TOKEN_PARAMETERS
            .iter()
            .any(|known| name.eq_ignore_ascii_case(known))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn bearer_and_api_key_are_read() {
        assert_eq!(
            credentials(&headers(&[("authorization", "Bearer abc.def-ghi_~+/==")])),
            Ok(Some(Presented::Bearer("abc.def-ghi_~+/==")))
        );
        assert_eq!(
            credentials(&headers(&[("authorization", "bearer  tm_x")])),
            Ok(Some(Presented::Bearer("tm_x")))
        );
        assert_eq!(
            credentials(&headers(&[("x-api-key", " tm_key ")])),
            Ok(Some(Presented::ApiKey("tm_key")))
        );
        assert_eq!(credentials(&headers(&[])), Ok(None));
    }

    #[test]
    fn malformed_credentials_are_refused() {
        for value in [
            "Basic dXNlcjpwdw==",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer =",
            "tm_key",
        ] {
            assert!(
                credentials(&headers(&[("authorization", value)])).is_err(),
                "{value}"
            );
        }
        assert!(credentials(&headers(&[("x-api-key", "a b")])).is_err());
        assert!(
            credentials(&headers(&[
                ("authorization", "Bearer a"),
                ("x-api-key", "b")
            ]))
            .is_err()
        );
        assert!(
            credentials(&headers(&[
                ("authorization", "Bearer a"),
                ("authorization", "Bearer b")
            ]))
            .is_err()
        );
    }

    #[test]
    fn tokens_in_the_query_are_noticed() {
        assert!(query_carries_token(Some("access_token=abc")));
        assert!(query_carries_token(Some("a=1&API_KEY=x")));
        assert!(query_carries_token(Some("token")));
        assert!(!query_carries_token(Some("detail=full&tokens=3")));
        assert!(!query_carries_token(None));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_authorization(&bytes);
            let _ = parse_api_key(&bytes);
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = query_carries_token(Some(text));
            }
        }

        #[test]
        fn a_parsed_token_is_part_of_the_header(value in "[ -~]{0,80}") {
            if let Ok(token) = parse_authorization(value.as_bytes()) {
                prop_assert!(value.contains(token));
                prop_assert!(!token.is_empty() && !token.contains(' '));
            }
            if let Ok(key) = parse_api_key(value.as_bytes()) {
                prop_assert!(value.contains(key));
                prop_assert!(!key.is_empty() && !key.contains(' '));
            }
        }

        #[test]
        fn any_header_values_give_an_answer(
            authorization in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..100)),
            api_key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..100)),
        ) {
            let mut map = HeaderMap::new();
            if let Some(value) = authorization.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
                map.insert(header::AUTHORIZATION, value);
            }
            if let Some(value) = api_key.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
                map.insert(API_KEY_HEADER, value);
            }
            let _ = credentials(&map);
        }
    }
}
