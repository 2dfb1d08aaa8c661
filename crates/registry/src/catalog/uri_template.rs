//! Whether a URI fits a resource template (RFC 6570, as MCP servers use it).

/// `true` when `uri` can be produced by expanding `template`: the literal parts match in
/// order and every `{expression}` stands for at least one character. `{+x}`/`{#x}`
/// may span `/`; plain `{x}` does not.
pub(crate) fn matches(template: &str, uri: &str) -> bool {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return false;
        };
        parts.push(Part::Literal(&rest[..open]));
        let expression = &rest[open + 1..open + close];
        parts.push(Part::Variable {
            reserved: expression.starts_with(['+', '#', '/']),
        });
        rest = &rest[open + close + 1..];
    }
    parts.push(Part::Literal(rest));
    fits(&parts, uri)
}

#[derive(Clone, Copy)]
enum Part<'a> {
    Literal(&'a str),
    Variable { reserved: bool },
}

fn fits(parts: &[Part<'_>], uri: &str) -> bool {
    match parts.split_first() {
        None => uri.is_empty(),
        Some((Part::Literal(text), rest)) => {
            uri.strip_prefix(text).is_some_and(|tail| fits(rest, tail))
        }
        Some((Part::Variable { reserved }, rest)) => {
            // Try every non-empty span; templates are short, so this stays cheap.
            let limit = if *reserved {
                uri.len()
            } else {
                uri.find('/').unwrap_or(uri.len())
            };
            (1..=limit)
                .filter(|end| uri.is_char_boundary(*end))
                .any(|end| fits(rest, &uri[end..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

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
    }
}
