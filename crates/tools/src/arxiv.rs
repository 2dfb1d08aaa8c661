//! `arxiv_search {query, max_results?, sort_by?}`: the arXiv API, parsed from Atom.

use std::time::Duration;

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde::{Deserialize, Serialize};
use toolmesh_core::{CallContext, CallError};

use crate::{
    ToolsError,
    http::{client, excerpt, provider_failing, read_limited, unreachable},
    native::{Failure, NativeTool, answer_from_provider, bounded, schema_for, tool_success},
};

const ATOM: &str = "http://www.w3.org/2005/Atom";
const OPENSEARCH: &str = "http://a9.com/-/spec/opensearch/1.1/";
const ARXIV: &str = "http://arxiv.org/schemas/atom";
/// Largest feed read; 50 entries with long abstracts stay far below.
const MAX_FEED_BYTES: u64 = 8 * 1024 * 1024;

/// Where `arxiv_search` sends its queries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArxivConfig {
    /// The API query endpoint; default `http://export.arxiv.org/api/query`.
    pub base_url: String,
    /// Budget of one query (`"30s"` or seconds); default 30 s.
    #[serde(with = "toolmesh_core::duration")]
    pub timeout: Duration,
}

impl ArxivConfig {
    /// Default of [`base_url`](Self::base_url).
    pub const DEFAULT_BASE_URL: &'static str = "http://export.arxiv.org/api/query";
}

impl Default for ArxivConfig {
    fn default() -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// `arxiv_search {query, max_results?, sort_by?}`: searches arXiv and returns the
/// entries (id, title, authors, summary, dates, categories, abs and pdf links).
///
/// Plain words are searched in all fields and must all match (`all:w1 AND all:w2`); a
/// query containing `:` is passed through as arXiv query syntax (`ti:transformer AND
/// au:vaswani`). An Atom body that does not parse, or an arXiv error entry, is a tool
/// error; arXiv out of reach, timing out or answering 429/5xx is a call error, so a
/// service listing it natively falls back to its MCP instances.
#[derive(Debug, Clone)]
pub struct ArxivSearch {
    config: ArxivConfig,
    base: url::Url,
    client: reqwest::Client,
}

impl ArxivSearch {
    /// `arxiv_search` against `config.base_url`.
    pub fn new(config: ArxivConfig) -> Result<Self, ToolsError> {
        let base = url::Url::parse(&config.base_url).map_err(|e| ToolsError::Config {
            field: "arxiv.base_url",
            reason: format!("`{}` is not a URL: {e}", config.base_url),
        })?;
        let client = client("arxiv_search", config.timeout)?;
        Ok(Self {
            config,
            base,
            client,
        })
    }
}

/// Order of the results.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema)]
enum SortBy {
    /// Best match first (default).
    #[default]
    #[serde(rename = "relevance")]
    Relevance,
    /// Most recently updated first.
    #[serde(rename = "lastUpdatedDate")]
    LastUpdatedDate,
    /// Most recently submitted first.
    #[serde(rename = "submittedDate")]
    SubmittedDate,
}

impl SortBy {
    fn as_str(self) -> &'static str {
        match self {
            SortBy::Relevance => "relevance",
            SortBy::LastUpdatedDate => "lastUpdatedDate",
            SortBy::SubmittedDate => "submittedDate",
        }
    }
}

/// Arguments of `arxiv_search`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// Words to find (all must match), or arXiv query syntax such as
    /// "ti:attention AND au:vaswani" or "cat:cs.LG AND abs:diffusion".
    query: String,
    /// Number of entries, 1-50; default 5.
    #[serde(default)]
    max_results: Option<u32>,
    /// "relevance" (default), "lastUpdatedDate" or "submittedDate" (newest first).
    #[serde(default)]
    sort_by: SortBy,
}

impl NativeTool for ArxivSearch {
    fn definition(&self) -> Tool {
        Tool::new(
            "arxiv_search",
            "Search arXiv papers. Returns id, title, authors, abstract, publication dates, categories \
             and links to the abstract page and PDF. Plain words must all match; arXiv syntax \
             (ti:, au:, abs:, cat:, AND/OR/ANDNOT) is passed through.",
            schema_for::<SearchArgs>(),
        )
        .with_title("arXiv search")
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
        let work = answer_from_provider("arxiv_search", arguments, |args| self.search(args));
        bounded("arxiv_search", ctx, work).await?
    }
}

impl ArxivSearch {
    async fn search(&self, args: SearchArgs) -> Result<CallToolResult, Failure> {
        let query = args.query.trim();
        if query.is_empty() {
            return Err(Failure::Tool(
                "the query is empty; pass words like \"graph neural networks\"".to_owned(),
            ));
        }
        let max_results = args.max_results.unwrap_or(5);
        if !(1..=50).contains(&max_results) {
            return Err(Failure::Tool(format!(
                "max_results must be between 1 and 50, got {max_results}"
            )));
        }
        let search_query = to_search_query(query);
        let mut url = self.base.clone();
        url.query_pairs_mut()
            .append_pair("search_query", &search_query)
            .append_pair("start", "0")
            .append_pair("max_results", &max_results.to_string())
            .append_pair("sortBy", args.sort_by.as_str())
            .append_pair("sortOrder", "descending");
        let what = format!("arXiv ({})", self.base);
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable("arxiv_search", &e, &what, self.config.timeout))?;
        let status = response.status();
        let (body, truncated) = read_limited(&mut response, MAX_FEED_BYTES)
            .await
            .map_err(|e| unreachable("arxiv_search", &e, &what, self.config.timeout))?;
        if let Some(failing) = provider_failing("arxiv_search", status, &what, &body) {
            return Err(failing);
        }
        let body = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(Failure::Tool(format!(
                "{what} answered HTTP {status}: {}; try again later",
                excerpt(body.trim(), 500)
            )));
        }
        if truncated {
            return Err(Failure::Tool(format!(
                "{what} sent a feed over {MAX_FEED_BYTES} bytes; ask for fewer results"
            )));
        }
        let feed = parse_feed(&body).map_err(|reason| {
            Failure::Tool(format!(
                "{what} answered with something that is not a valid arXiv Atom feed: {reason}"
            ))
        })?;
        Ok(render(query, &search_query, &feed))
    }
}

/// Plain words become `all:` terms joined with AND; arXiv syntax passes through.
fn to_search_query(query: &str) -> String {
    if query.contains(':') {
        return query.to_owned();
    }
    query
        .split_whitespace()
        .map(|word| format!("all:{word}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// One paper.
#[derive(Debug, Serialize)]
struct Entry {
    id: String,
    arxiv_id: String,
    title: String,
    authors: Vec<String>,
    summary: String,
    published: String,
    updated: String,
    categories: Vec<String>,
    primary_category: Option<String>,
    doi: Option<String>,
    links: Links,
}

#[derive(Debug, Default, Serialize)]
struct Links {
    abs: Option<String>,
    pdf: Option<String>,
}

#[derive(Debug)]
struct Feed {
    total_results: Option<u64>,
    entries: Vec<Entry>,
}

fn parse_feed(xml: &str) -> Result<Feed, String> {
    let document = roxmltree::Document::parse(xml).map_err(|e| format!("malformed XML: {e}"))?;
    let root = document.root_element();
    if root.tag_name().name() != "feed" || root.tag_name().namespace() != Some(ATOM) {
        return Err(format!(
            "the root element is <{}>, not an Atom <feed>",
            root.tag_name().name()
        ));
    }
    let total_results = child(root, OPENSEARCH, "totalResults").and_then(|t| t.parse().ok());
    let mut entries = Vec::new();
    for node in root.children().filter(|n| n.has_tag_name((ATOM, "entry"))) {
        let id = child(node, ATOM, "id").unwrap_or_default();
        if id.contains("/api/errors") {
            return Err(format!(
                "arXiv reported an error: {}; check the query syntax",
                child(node, ATOM, "summary").unwrap_or_else(|| "no detail".to_owned())
            ));
        }
        if id.is_empty() {
            return Err("an entry has no <id>".to_owned());
        }
        let mut links = Links::default();
        for link in node.children().filter(|n| n.has_tag_name((ATOM, "link"))) {
            let Some(href) = link.attribute("href") else {
                continue;
            };
            if link.attribute("title") == Some("pdf") {
                links.pdf = Some(href.to_owned());
            } else if link.attribute("rel") == Some("alternate") {
                links.abs = Some(href.to_owned());
            }
        }
        let arxiv_id = id
            .rsplit_once("/abs/")
            .map_or_else(|| id.clone(), |(_, tail)| tail.to_owned());
        entries.push(Entry {
            arxiv_id,
            title: child(node, ATOM, "title").unwrap_or_default(),
            authors: node
                .children()
                .filter(|n| n.has_tag_name((ATOM, "author")))
                .filter_map(|author| child(author, ATOM, "name"))
                .collect(),
            summary: child(node, ATOM, "summary").unwrap_or_default(),
            published: child(node, ATOM, "published").unwrap_or_default(),
            updated: child(node, ATOM, "updated").unwrap_or_default(),
            categories: node
                .children()
                .filter(|n| n.has_tag_name((ATOM, "category")))
                .filter_map(|c| c.attribute("term").map(str::to_owned))
                .collect(),
            primary_category: node
                .children()
                .find(|n| n.has_tag_name((ARXIV, "primary_category")))
                .and_then(|c| c.attribute("term").map(str::to_owned)),
            doi: child(node, ARXIV, "doi"),
            links,
            id,
        });
    }
    Ok(Feed {
        total_results,
        entries,
    })
}

/// The whitespace-normalized text of the first child `namespace:name`.
fn child(node: roxmltree::Node<'_, '_>, namespace: &str, name: &str) -> Option<String> {
    node.children()
        .find(|n| n.has_tag_name((namespace, name)))
        .map(|n| {
            n.descendants()
                .filter(roxmltree::Node::is_text)
                .filter_map(|t| t.text())
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
}

fn render(query: &str, search_query: &str, feed: &Feed) -> CallToolResult {
    let mut text = match feed.total_results {
        Some(total) => format!(
            "{} of {total} arXiv results for `{query}`\n",
            feed.entries.len()
        ),
        None => format!("{} arXiv results for `{query}`\n", feed.entries.len()),
    };
    if feed.entries.is_empty() {
        text.push_str("No paper matched; try fewer or broader words.\n");
    }
    for (i, entry) in feed.entries.iter().enumerate() {
        text.push_str(&format!(
            "\n{}. {} [{}]\n   Authors: {}\n   Published: {} (updated {})\n",
            i + 1,
            entry.title,
            entry.arxiv_id,
            entry.authors.join(", "),
            entry.published,
            entry.updated
        ));
        if let Some(abs) = &entry.links.abs {
            text.push_str(&format!("   Abstract page: {abs}\n"));
        }
        if let Some(pdf) = &entry.links.pdf {
            text.push_str(&format!("   PDF: {pdf}\n"));
        }
        text.push_str(&format!("   Summary: {}\n", excerpt(&entry.summary, 600)));
    }
    tool_success(
        text,
        serde_json::json!({
            "query": query,
            "search_query": search_query,
            "total_results": feed.total_results,
            "entries": feed.entries,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_become_all_terms() {
        assert_eq!(
            to_search_query("graph  networks"),
            "all:graph AND all:networks"
        );
        assert_eq!(
            to_search_query("ti:attention AND au:vaswani"),
            "ti:attention AND au:vaswani"
        );
    }

    #[test]
    fn non_atom_documents_are_refused() {
        assert!(
            parse_feed("<html><body>hi</body></html>")
                .unwrap_err()
                .contains("<html>")
        );
        assert!(
            parse_feed("<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry>")
                .unwrap_err()
                .contains("malformed")
        );
    }
}
