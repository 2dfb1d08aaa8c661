//! Narrowing a large tool selection to the tools relevant to the conversation: BM25 over
//! each tool's name, description and argument names.

use std::collections::HashMap;

/// BM25's usual constants.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// A BM25 index over tool documents, built once per catalog snapshot.
#[derive(Debug)]
pub struct Index {
    /// Per tool: term → count.
    docs: Vec<HashMap<String, u32>>,
    lengths: Vec<f64>,
    average: f64,
    /// Term → number of tools containing it.
    frequency: HashMap<String, u32>,
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

impl Index {
    /// Indexes one document per tool (its name, description and argument names).
    pub fn new<'a>(documents: impl IntoIterator<Item = &'a str>) -> Self {
        let mut docs = Vec::new();
        let mut frequency: HashMap<String, u32> = HashMap::new();
        for text in documents {
            let mut counts: HashMap<String, u32> = HashMap::new();
            for term in terms(text) {
                *counts.entry(term).or_default() += 1;
            }
            for term in counts.keys() {
                *frequency.entry(term.clone()).or_default() += 1;
            }
            docs.push(counts);
        }
        let lengths: Vec<f64> = docs
            .iter()
            .map(|d| f64::from(d.values().sum::<u32>()))
            .collect();
        let average = if lengths.is_empty() {
            1.0
        } else {
            (lengths.iter().sum::<f64>() / lengths.len() as f64).max(1.0)
        };
        Self {
            docs,
            lengths,
            average,
            frequency,
        }
    }

    /// The `k` best documents for `query`, best first (ties keep catalog order).
    pub fn top(&self, query: &str, k: usize) -> Vec<usize> {
        let n = self.docs.len() as f64;
        let mut query_terms = terms(query);
        query_terms.sort();
        query_terms.dedup();
        let weights: Vec<(&str, f64)> = query_terms
            .iter()
            .filter_map(|t| {
                let df = f64::from(*self.frequency.get(t)?);
                Some((t.as_str(), ((n - df + 0.5) / (df + 0.5) + 1.0).ln()))
            })
            .collect();
        let mut scored: Vec<(f64, usize)> = self
            .docs
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let norm = K1 * (1.0 - B + B * self.lengths[i] / self.average);
                let score = weights
                    .iter()
                    .filter_map(|(t, idf)| {
                        let tf = f64::from(*doc.get(*t)?);
                        Some(idf * tf * (K1 + 1.0) / (tf + norm))
                    })
                    .sum::<f64>();
                (score, i)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, i)| i).collect()
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
