//! Qualified tool names and their LLM-safe rendering.
//!
//! MCP allows tool names of 1–128 characters from `A-Z a-z 0-9 _ - . /`. LLM
//! function-calling APIs accept only `^[A-Za-z0-9_-]{1,64}$`. [`ToolNaming`] renders a
//! [`ToolName`] as `namespace{sep}tool` when that fits, and otherwise as a shortened form
//! ending in a hash of the full name; [`NameTable`] maps rendered names back.

use std::{collections::HashMap, fmt, sync::Arc};

use sha2::{Digest, Sha256};

/// A name that breaks the naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The namespace is empty or uses characters outside `A-Z a-z 0-9 _ -`.
    #[error(
        "invalid namespace `{0}`: use 1-64 characters from A-Z a-z 0-9 _ - (e.g. `search` or `web-tools`)"
    )]
    Namespace(String),
    /// The tool name breaks the MCP tool-name rules.
    #[error(
        "invalid tool name `{0}`: MCP tool names are 1-128 characters from A-Z a-z 0-9 _ - . /"
    )]
    Tool(String),
    /// The separator is empty, too long or uses unsafe characters.
    #[error("invalid separator `{0}`: use 1-8 characters from A-Z a-z 0-9 _ -")]
    Separator(String),
    /// Two different tools render to the same name.
    #[error("tools `{first}` and `{second}` both render as `{rendered}`; rename one namespace")]
    Collision {
        /// Rendered name both map to.
        rendered: String,
        /// The tool already in the table.
        first: String,
        /// The tool that was refused.
        second: String,
    },
}

/// A tool of a namespace: what an agent or gateway client sees.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ToolName {
    namespace: Arc<str>,
    tool: Arc<str>,
}

fn is_llm_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_mcp_tool_char(c: char) -> bool {
    is_llm_safe(c) || c == '.' || c == '/'
}

impl ToolName {
    /// Validates and builds a name.
    pub fn new(namespace: &str, tool: &str) -> Result<Self, NameError> {
        if namespace.is_empty() || namespace.len() > 64 || !namespace.chars().all(is_llm_safe) {
            return Err(NameError::Namespace(namespace.to_owned()));
        }
        if tool.is_empty() || tool.len() > 128 || !tool.chars().all(is_mcp_tool_char) {
            return Err(NameError::Tool(tool.to_owned()));
        }
        Ok(Self {
            namespace: namespace.into(),
            tool: tool.into(),
        })
    }

    /// The namespace (by default the server's name).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The tool's name on its server.
    pub fn tool(&self) -> &str {
        &self.tool
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.tool)
    }
}

impl fmt::Debug for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToolName({self})")
    }
}

/// How qualified names are rendered for clients and LLMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolNaming {
    separator: Arc<str>,
}

impl Default for ToolNaming {
    fn default() -> Self {
        Self {
            separator: Self::DEFAULT_SEPARATOR.into(),
        }
    }
}

impl ToolNaming {
    /// Separator used unless configured otherwise.
    pub const DEFAULT_SEPARATOR: &'static str = "__";
    /// Longest rendered name LLM function-calling APIs accept.
    pub const MAX_LEN: usize = 64;
    const HASH_LEN: usize = 8;

    /// A naming with a custom separator.
    pub fn new(separator: &str) -> Result<Self, NameError> {
        if separator.is_empty() || separator.len() > 8 || !separator.chars().all(is_llm_safe) {
            return Err(NameError::Separator(separator.to_owned()));
        }
        Ok(Self {
            separator: separator.into(),
        })
    }

    /// The separator between namespace and tool.
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// Renders `name` as `^[A-Za-z0-9_-]{1,64}$`, deterministically.
    ///
    /// The plain form `namespace{sep}tool` is used when it is LLM-safe, fits and parses
    /// back unambiguously; otherwise a readable prefix plus `_` and a hash of the full name.
    pub fn render(&self, name: &ToolName) -> String {
        let plain = format!("{}{}{}", name.namespace, self.separator, name.tool);
        if self.parse_plain(&plain).as_ref() == Some(name) {
            return plain;
        }
        let hash = Sha256::digest(format!("{}\0{}", name.namespace, name.tool).as_bytes());
        let hash: String = hash
            .iter()
            .take(Self::HASH_LEN / 2)
            .map(|b| format!("{b:02x}"))
            .collect();
        let keep = Self::MAX_LEN - Self::HASH_LEN - 1;
        let prefix: String = plain
            .chars()
            .map(|c| if is_llm_safe(c) { c } else { '_' })
            .take(keep)
            .collect();
        format!("{prefix}_{hash}")
    }

    /// Parses a plain rendered name (no hash). Hashed names need a [`NameTable`].
    pub fn parse_plain(&self, rendered: &str) -> Option<ToolName> {
        if rendered.len() > Self::MAX_LEN || !rendered.chars().all(is_llm_safe) {
            return None;
        }
        let (namespace, tool) = rendered.split_once(&*self.separator)?;
        ToolName::new(namespace, tool).ok()
    }
}

/// Rendered name → [`ToolName`], refusing collisions.
#[derive(Debug, Clone, Default)]
pub struct NameTable {
    naming: ToolNaming,
    by_rendered: HashMap<String, ToolName>,
}

impl NameTable {
    /// An empty table rendering with `naming`.
    pub fn new(naming: ToolNaming) -> Self {
        Self {
            naming,
            by_rendered: HashMap::new(),
        }
    }

    /// Adds `name` and returns its rendered form; a different name with the same rendering
    /// is an error, never a silent overwrite.
    pub fn insert(&mut self, name: ToolName) -> Result<String, NameError> {
        let rendered = self.naming.render(&name);
        match self.by_rendered.get(&rendered) {
            Some(existing) if existing != &name => Err(NameError::Collision {
                rendered,
                first: existing.to_string(),
                second: name.to_string(),
            }),
            _ => {
                self.by_rendered.insert(rendered.clone(), name);
                Ok(rendered)
            }
        }
    }

    /// Looks a rendered name up.
    pub fn resolve(&self, rendered: &str) -> Option<&ToolName> {
        self.by_rendered.get(rendered)
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.by_rendered.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_rendered.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn llm_safe(s: &str) -> bool {
        (1..=64).contains(&s.len()) && s.chars().all(is_llm_safe)
    }

    #[test]
    fn plain_names_round_trip() -> Result<(), NameError> {
        let naming = ToolNaming::default();
        let name = ToolName::new("search", "web_search")?;
        assert_eq!(naming.render(&name), "search__web_search");
        assert_eq!(naming.parse_plain("search__web_search"), Some(name));
        Ok(())
    }

    #[test]
    fn rejects_bad_names() {
        assert!(matches!(
            ToolName::new("", "x"),
            Err(NameError::Namespace(_))
        ));
        assert!(matches!(
            ToolName::new("a b", "x"),
            Err(NameError::Namespace(_))
        ));
        assert!(matches!(
            ToolName::new("a", "has space"),
            Err(NameError::Tool(_))
        ));
        assert!(matches!(
            ToolName::new("a", &"x".repeat(129)),
            Err(NameError::Tool(_))
        ));
        assert!(ToolNaming::new("").is_err());
        assert!(ToolNaming::new("::").is_err());
    }

    #[test]
    fn dotted_and_ambiguous_names_are_hashed_and_reversible() -> Result<(), NameError> {
        let mut table = NameTable::default();
        let dotted = ToolName::new("fs", "files.read")?;
        // `a_` + `__` + `b` would parse back as (`a`, `_b`).
        let ambiguous = ToolName::new("a_", "b")?;
        let long = ToolName::new("namespace", &"t".repeat(100))?;
        for name in [dotted, ambiguous, long] {
            let rendered = table.insert(name.clone())?;
            assert!(llm_safe(&rendered), "{rendered}");
            assert_ne!(rendered, format!("{}__{}", name.namespace(), name.tool()));
            assert_eq!(table.resolve(&rendered), Some(&name));
        }
        Ok(())
    }

    #[test]
    fn custom_separator() -> Result<(), NameError> {
        let naming = ToolNaming::new("-")?;
        let name = ToolName::new("math", "add")?;
        assert_eq!(naming.render(&name), "math-add");
        // The namespace contains the separator, so the plain form would be ambiguous.
        let tricky = ToolName::new("my-ns", "add")?;
        assert_ne!(naming.render(&tricky), "my-ns-add");
        Ok(())
    }

    proptest! {
        #[test]
        fn rendering_is_safe_deterministic_and_injective(
            ns1 in "[A-Za-z0-9_-]{1,40}", t1 in "[A-Za-z0-9_./-]{1,128}",
            ns2 in "[A-Za-z0-9_-]{1,40}", t2 in "[A-Za-z0-9_./-]{1,128}",
        ) {
            let naming = ToolNaming::default();
            let a = ToolName::new(&ns1, &t1).unwrap();
            let b = ToolName::new(&ns2, &t2).unwrap();
            let (ra, rb) = (naming.render(&a), naming.render(&b));
            prop_assert!(llm_safe(&ra));
            prop_assert_eq!(&ra, &naming.render(&a));
            if a != b {
                prop_assert_ne!(ra, rb);
            }
        }
    }
}
