//! Narrowing a large tool selection to the tools relevant to the conversation: BM25 over
//! each tool's name, description and argument names.

use std::collections::HashMap;

use toolmesh_core::Tool;

/// BM25's usual constants.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// A BM25 index over tool documents, built once per catalog snapshot: postings per
/// term, so a ranking touches only the tools that share a word with the query.
#[derive(Debug)]
pub struct Index {
    /// Term → (tool, count of the term in it).
    postings: HashMap<String, Vec<(u32, u32)>>,
    /// Per tool: its number of terms.
    lengths: Vec<f64>,
    average: f64,
}

/// Lowercase words of `text`; `snake_case`, `kebab-case` and `camelCase` split apart.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = c.is_lowercase() || c.is_numeric();
            word.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out.retain(|w| w.len() > 1);
    out
}

/// The document indexed for `tool` offered as `name`: the name, the description and the
/// argument names.
pub fn document(name: &str, tool: &Tool) -> String {
    let arguments = tool
        .input_schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{name} {} {arguments}",
        tool.description.as_deref().unwrap_or_default()
    )
}

impl Index {
    /// Indexes one document per tool (its name, description and argument names).
    pub fn new<'a>(documents: impl IntoIterator<Item = &'a str>) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut lengths = Vec::new();
        for (doc, text) in documents.into_iter().enumerate() {
            let words = terms(text);
            lengths.push(words.len() as f64);
            let mut counts: HashMap<String, u32> = HashMap::new();
            for word in words {
                *counts.entry(word).or_default() += 1;
            }
            for (word, count) in counts {
                postings.entry(word).or_default().push((doc as u32, count));
            }
        }
        let average = if lengths.is_empty() {
            1.0
        } else {
            (lengths.iter().sum::<f64>() / lengths.len() as f64).max(1.0)
        };
        Self {
            postings,
            lengths,
            average,
        }
    }

    /// The `k` best documents for `query`, best first (ties keep catalog order).
    pub fn top(&self, query: &str, k: usize) -> Vec<usize> {
        let n = self.lengths.len();
        let mut scores = vec![0.0f64; n];
        let mut query_terms = terms(query);
        query_terms.sort();
        query_terms.dedup();
        for term in &query_terms {
            let Some(postings) = self.postings.get(term) else {
                continue;
            };
            let df = postings.len() as f64;
            let idf = ((n as f64 - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(doc, tf) in postings {
                let doc = doc as usize;
                let tf = f64::from(tf);
                let norm = K1 * (1.0 - B + B * self.lengths[doc] / self.average);
                scores[doc] += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        let better = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
        let k = k.min(n);
        if k < n {
            order.select_nth_unstable_by(k, better);
            order.truncate(k);
        }
        order.sort_by(better);
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_names_and_sentences() {
        assert_eq!(
            terms("search__arxivSearch: Find papers-by_author"),
            [
                "search", "arxiv", "search", "find", "papers", "by", "author"
            ]
        );
    }

    #[test]
    fn the_matching_tool_ranks_first() {
        let index = Index::new([
            "time_now current date and time in a time zone",
            "arxiv_search search arXiv for scientific papers query",
            "calculator evaluate an arithmetic expression",
            "http_fetch fetch a web page url",
        ]);
        assert_eq!(index.top("find recent papers on transformers", 1), [1]);
        assert_eq!(index.top("what is 2 + 3? evaluate the expression", 1), [2]);
        assert_eq!(index.top("fetch https://example.com page", 2)[0], 3);
        assert_eq!(index.top("", 2), [0, 1], "no signal keeps catalog order");
    }
}
