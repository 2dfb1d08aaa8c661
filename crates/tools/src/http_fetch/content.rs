//! Turning a response body into text a model can read.

use scraper::{Html, Node};

/// How a body was rendered.
#[derive(Debug)]
pub(super) struct Rendered {
    /// `html`, `json`, `text` or `binary`.
    pub(super) kind: &'static str,
    /// The `<title>` of an HTML page.
    pub(super) title: Option<String>,
    /// Text for the model; empty for binary content.
    pub(super) text: String,
}

/// Renders `body` according to its media type (`None` when the server sent none).
pub(super) fn render(media_type: Option<&str>, body: &[u8]) -> Rendered {
    let media = media_type.unwrap_or_default();
    let is_html = media == "text/html" || media == "application/xhtml+xml";
    let is_json = media == "application/json" || media.ends_with("+json");
    let is_text = media.starts_with("text/")
        || media.ends_with("+xml")
        || matches!(
            media,
            "application/xml"
                | "application/javascript"
                | "application/x-yaml"
                | "application/yaml"
                | "application/toml"
                | "application/x-www-form-urlencoded"
        );
    if is_html {
        let (title, text) = html_to_text(&String::from_utf8_lossy(body));
        return Rendered {
            kind: "html",
            title,
            text,
        };
    }
    if is_json {
        let text = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| serde_json::to_string_pretty(&value).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        return Rendered {
            kind: "json",
            title: None,
            text,
        };
    }
    // Without a media type, valid UTF-8 without NUL bytes is taken as text.
    let sniffed_text = media_type.is_none()
        && !body.contains(&0)
        && std::str::from_utf8(body).is_ok_or_cut_at_end();
    if is_text || sniffed_text {
        return Rendered {
            kind: "text",
            title: None,
            text: String::from_utf8_lossy(body).into_owned(),
        };
    }
    Rendered {
        kind: "binary",
        title: None,
        text: String::new(),
    }
}

trait Utf8Check {
    fn is_ok_or_cut_at_end(&self) -> bool;
}

impl Utf8Check for Result<&str, std::str::Utf8Error> {
    /// Valid UTF-8, or valid up to a character cut by the size limit.
    fn is_ok_or_cut_at_end(&self) -> bool {
        match self {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }
}

/// Elements whose text is never shown.
const HIDDEN: &[&str] = &[
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object",
];

/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "pre",
    "blockquote",
    "figure",
    "figcaption",
    "hr",
    "form",
    "address",
    "details",
    "summary",
];

/// The title and the visible text of an HTML document.
pub(super) fn html_to_text(html: &str) -> (Option<String>, String) {
    let document = Html::parse_document(html);
    let title = document
        .tree
        .root()
        .descendants()
        .find(|n| n.value().as_element().is_some_and(|e| e.name() == "title"))
        .map(|n| {
            let text: String = n
                .descendants()
                .filter_map(|t| t.value().as_text().map(|t| t.to_string()))
                .collect();
            collapse(&text)
        })
        .filter(|t| !t.is_empty());
    let mut out = String::new();
    // Explicit stack: deeply nested documents must not overflow the call stack.
    enum Step<'a> {
        Visit(ego_tree::NodeRef<'a, Node>),
        Newline,
    }
    let mut stack = vec![Step::Visit(document.tree.root())];
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::Newline => {
                out.push('\n');
                continue;
            }
            Step::Visit(node) => node,
        };
        match node.value() {
            Node::Text(text) => {
                out.push_str(text);
            }
            Node::Element(element) => {
                let name = element.name();
                if HIDDEN.contains(&name) {
                    continue;
                }
                let block = BLOCKS.contains(&name);
                if block {
                    stack.push(Step::Newline);
                }
                stack.extend(node.children().rev().map(Step::Visit));
                if block {
                    stack.push(Step::Newline);
                }
            }
            _ => stack.extend(node.children().rev().map(Step::Visit)),
        }
    }
    // One line per block of text; whitespace inside a line collapsed.
    let text = out
        .lines()
        .map(collapse)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    (title, text)
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_text_skips_scripts_and_keeps_blocks() {
        let (title, text) = html_to_text(
            "<html><head><title> The  Title </title><style>p{}</style></head>\
             <body><h1>Heading</h1><script>alert(1)</script><p>First <b>bold</b> para.</p>\
             <ul><li>one</li><li>two</li></ul></body></html>",
        );
        assert_eq!(title.as_deref(), Some("The Title"));
        assert!(text.contains("Heading"), "{text}");
        assert!(text.contains("First bold para."), "{text}");
        assert!(text.contains("one\n"), "{text}");
        assert!(!text.contains("alert"), "{text}");
        assert!(!text.contains("p{}"), "{text}");
    }

    #[test]
    fn json_is_pretty_and_binary_is_not_shown() {
        let rendered = render(Some("application/json"), br#"{"a":[1,2]}"#);
        assert_eq!(rendered.kind, "json");
        assert!(rendered.text.contains("\n  \"a\""), "{}", rendered.text);
        assert_eq!(render(Some("image/png"), &[0x89, b'P', 0]).kind, "binary");
        assert_eq!(render(None, b"plain").kind, "text");
    }
}
