//! Whether a URI fits a resource template (RFC 6570, as MCP servers use it).
//!
//! A template compiles once, with the catalog, to an anchored regular expression; the
//! `regex` crate matches in time linear in the URI, so a hostile URI of megabytes costs
//! one pass, never a backtracking search.

use regex::Regex;

/// A compiled resource template: the literal parts match in order and every
/// `{expression}` stands for at least one character. `{+x}`/`{#x}`/`{/x}` may span `/`;
/// plain `{x}` does not.
#[derive(Debug, Clone)]
pub(crate) struct UriTemplate(Regex);

impl UriTemplate {
    /// Compiles `template`; `None` when it is malformed (an unclosed `{`), so that no
    /// URI fits it.
    pub(crate) fn compile(template: &str) -> Option<Self> {
        let mut pattern = String::from("(?s)^");
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let close = open + rest[open..].find('}')?;
            pattern.push_str(&regex::escape(&rest[..open]));
            let reserved = rest[open + 1..close].starts_with(['+', '#', '/']);
            pattern.push_str(if reserved { ".+" } else { "[^/]+" });
            rest = &rest[close + 1..];
        }
        pattern.push_str(&regex::escape(rest));
        pattern.push('$');
        Regex::new(&pattern).ok().map(Self)
    }

    /// `true` when `uri` can be produced by expanding the template.
    pub(crate) fn matches(&self, uri: &str) -> bool {
        self.0.is_match(uri)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::UriTemplate;

    fn matches(template: &str, uri: &str) -> bool {
        UriTemplate::compile(template).is_some_and(|t| t.matches(uri))
    }

    #[test]
    fn literal_parts_and_variables() {
        assert!(matches(
            "test://template/{id}/data",
            "test://template/42/data"
        ));
        assert!(!matches(
            "test://template/{id}/data",
            "test://template//data"
        ));
        assert!(!matches(
            "test://template/{id}/data",
            "test://template/4/2/data"
        ));
        assert!(matches("file:///{+path}", "file:///a/b/c.txt"));
        assert!(matches("users://{user}", "users://ada"));
        assert!(!matches("users://{user}", "groups://ada"));
        assert!(!matches("broken://{x", "broken://{x"));
        assert!(matches("exact://uri", "exact://uri"));
        assert!(!matches("exact://uri", "exact://uri/more"));
        // Regex syntax in a template is literal text.
        assert!(matches("q://a.b/{x}", "q://a.b/1"));
        assert!(!matches("q://a.b/{x}", "q://aXb/1"));
    }

    /// Many adjacent variables over a long URI that almost fits: a backtracking matcher
    /// tries every split of 4 MiB among ten variables (beyond any time a test can wait);
    /// the compiled template answers in one linear pass.
    #[test]
    fn a_hostile_uri_is_matched_in_one_pass() {
        let template = "h://{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}{+i}{+j}/end";
        let uri = format!("h://{}", "x".repeat(4 * 1024 * 1024));
        assert!(!matches(template, &uri));
        let fitting = format!("{uri}/end");
        assert!(matches(template, &fitting));
    }
}
