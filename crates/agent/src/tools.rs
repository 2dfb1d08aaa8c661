//! Which catalog tools an agent offers its model, and under which names.

use std::{collections::HashSet, sync::Arc};

use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools, FunctionObject};
use toolmesh_registry::{Catalog, CatalogEntry};

use crate::AgentError;

/// A selection over the catalog by globs (`calculator`, `everything__*`); empty selects
/// every tool. A glob matches a tool's catalog name or its bare (upstream) name.
#[derive(Debug, Clone, Default)]
pub struct ToolSelection {
    patterns: Vec<glob::Pattern>,
}

impl ToolSelection {
    /// Every tool of the catalog.
    pub fn all() -> Self {
        Self::default()
    }

    /// The tools matching any of `globs`.
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] for a glob that does not parse.
    pub fn globs<I, S>(globs: I) -> Result<Self, AgentError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = globs
            .into_iter()
            .map(|g| {
                let g = g.as_ref();
                glob::Pattern::new(g)
                    .map_err(|e| AgentError::Config(format!("tool glob `{g}`: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether `entry` is selected.
    pub fn matches(&self, entry: &CatalogEntry) -> bool {
        self.patterns.is_empty()
            || self
                .patterns
                .iter()
                .any(|p| p.matches(&entry.rendered) || p.matches(entry.name.tool()))
    }

    /// The globs that select none of `names` (catalog or bare tool names).
    pub fn unmatched<'a>(&'a self, names: &[&str]) -> Vec<&'a str> {
        self.patterns
            .iter()
            .filter(|p| !names.iter().any(|n| p.matches(n)))
            .map(glob::Pattern::as_str)
            .collect()
    }
}

/// The selected tools of one catalog snapshot, as the model sees them.
pub(crate) struct Toolset {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) definitions: Vec<ChatCompletionTools>,
    /// The selected tools' catalog names, which are also the names the model sees.
    names: HashSet<String>,
    /// Over each definition's name, description and argument names, for narrowing.
    index: crate::narrow::Index,
}

impl Toolset {
    pub(crate) fn build(catalog: Arc<Catalog>, selection: &ToolSelection) -> Self {
        let mut definitions = Vec::new();
        let mut names = HashSet::new();
        let mut documents = Vec::new();
        for entry in catalog.entries().iter().filter(|e| selection.matches(e)) {
            let tool = &entry.tool;
            documents.push(crate::narrow::document(&entry.rendered, tool));
            definitions.push(ChatCompletionTools::Function(ChatCompletionTool {
                function: FunctionObject {
                    name: entry.rendered.clone(),
                    description: tool.description.as_ref().map(|d| d.to_string()),
                    parameters: Some(serde_json::Value::Object((*tool.input_schema).clone())),
                    strict: None,
                },
            }));
            names.insert(entry.rendered.clone());
        }
        Self {
            catalog,
            definitions,
            names,
            index: crate::narrow::Index::new(documents.iter().map(String::as_str)),
        }
    }

    /// The definitions to offer: all of them up to `max`, else the `max` most relevant to
    /// `query` plus every tool named in `keep` (tools the run has used), in catalog order.
    pub(crate) fn offered(
        &self,
        query: &str,
        max: usize,
        keep: &[&str],
    ) -> std::borrow::Cow<'_, [ChatCompletionTools]> {
        if self.definitions.len() <= max {
            return std::borrow::Cow::Borrowed(&self.definitions);
        }
        let mut chosen = vec![false; self.definitions.len()];
        for i in self.index.top(query, max) {
            chosen[i] = true;
        }
        for (i, definition) in self.definitions.iter().enumerate() {
            if let ChatCompletionTools::Function(f) = definition
                && keep.contains(&f.function.name.as_str())
            {
                chosen[i] = true;
            }
        }
        std::borrow::Cow::Owned(
            self.definitions
                .iter()
                .zip(chosen)
                .filter(|(_, yes)| *yes)
                .map(|(d, _)| d.clone())
                .collect(),
        )
    }

    /// The catalog name of the tool the model called `name`.
    pub(crate) fn resolve(&self, name: &str) -> Option<&str> {
        self.names.get(name).map(String::as_str)
    }

    /// Up to three offered names closest to `name`, for the model's next try.
    pub(crate) fn closest(&self, name: &str) -> Vec<&str> {
        closest(name, self.names.iter().map(String::as_str))
    }
}

/// Up to three of `names` closest to `name` (edit distance; containing one another counts
/// as close), best first: for "did you mean" hints.
pub fn closest<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .map(|k| (distance(&wanted, &k.to_ascii_lowercase()), k))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

/// `; did you mean a, b?` for the names of [`closest`]; empty when there are none.
pub fn did_you_mean<S: AsRef<str>>(close: &[S]) -> String {
    if close.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = close.iter().map(AsRef::as_ref).collect();
    format!("; did you mean {}?", names.join(", "))
}

/// Levenshtein distance, with a bonus when one name contains the other.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    let d = row[b.len()];
    let contains = |x: &[char], y: &[char]| y.windows(x.len().max(1)).any(|w| w == x);
    if !a.is_empty() && !b.is_empty() && (contains(&a, &b) || contains(&b, &a)) {
        d / 2
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_prefers_near_and_contained_names() {
        assert_eq!(distance("calculator", "calculator"), 0);
        assert!(distance("calculater", "calculator") < distance("calculater", "time_now"));
        assert!(distance("echo", "fixture__echo") < distance("echo", "fixture__add"));
    }
}
