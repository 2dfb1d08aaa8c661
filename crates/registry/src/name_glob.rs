//! Globs over names (tools, prompts, resources, principals) for the policy and the rate
//! limits, which match one per rule on every call. The shapes configurations use — a
//! literal, `prefix*`, `*suffix`, `*part*`, `*` — match with plain string tests; any other
//! glob goes to the `glob` crate, whose semantics all shapes keep.

/// A compiled name glob.
#[derive(Debug, Clone)]
pub(crate) struct NameGlob {
    pattern: glob::Pattern,
    shape: Shape,
}

#[derive(Debug, Clone)]
enum Shape {
    Any,
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<str>),
    General,
}

impl NameGlob {
    /// Compiles `text`.
    ///
    /// # Errors
    ///
    /// What `glob` says of a pattern that does not parse.
    pub(crate) fn new(text: &str) -> Result<Self, glob::PatternError> {
        let pattern = glob::Pattern::new(text)?;
        let literal = |s: &str| !s.contains(['*', '?', '[', ']']);
        let inner = text.strip_prefix('*').unwrap_or(text);
        let inner = inner.strip_suffix('*').unwrap_or(inner);
        let (starts, ends) = (text.starts_with('*'), text.len() > 1 && text.ends_with('*'));
        let shape = if text.chars().all(|c| c == '*') && !text.is_empty() {
            Shape::Any
        } else if !literal(inner) {
            Shape::General
        } else {
            match (starts, ends) {
                (false, false) => Shape::Exact(inner.into()),
                (false, true) => Shape::Prefix(inner.into()),
                (true, false) => Shape::Suffix(inner.into()),
                (true, true) => Shape::Contains(inner.into()),
            }
        };
        Ok(Self { pattern, shape })
    }

    /// Whether `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        match &self.shape {
            Shape::Any => true,
            Shape::Exact(s) => name == &**s,
            Shape::Prefix(s) => name.starts_with(&**s),
            Shape::Suffix(s) => name.ends_with(&**s),
            Shape::Contains(s) => name.contains(&**s),
            Shape::General => self.pattern.matches(name),
        }
    }

    /// The glob as written.
    pub(crate) fn as_str(&self) -> &str {
        self.pattern.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GLOBS: &[&str] = &[
        "*",
        "**",
        "calculator",
        "fs__*",
        "*__read_*",
        "*_file",
        "*a*",
        "fs__r?ad",
        "[ab]*",
        "*x*y",
        "a**",
        "**b",
        "",
        "key:*",
        "*:ci",
        "*.*",
    ];

    #[test]
    fn every_shape_agrees_with_glob() {
        let names = [
            "",
            "*",
            "calculator",
            "fs__read_file",
            "fs__write_file",
            "a",
            "ab",
            "b",
            "key:ci",
            "cert:ci",
            "x.y",
            "xy",
            "fs__rEad",
            "fs__read",
        ];
        for glob in GLOBS {
            let ours = NameGlob::new(glob).ok();
            let theirs = glob::Pattern::new(glob).ok();
            assert_eq!(ours.is_some(), theirs.is_some(), "{glob} parses alike");
            for name in names {
                assert_eq!(
                    ours.as_ref().map(|g| g.matches(name)),
                    theirs.as_ref().map(|g| g.matches(name)),
                    "{glob} on {name:?}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn any_name_matches_as_glob_says(name in "[a-z_:*.?]{0,12}", pick in 0..GLOBS.len()) {
            let glob = GLOBS[pick];
            let ours = NameGlob::new(glob).map(|g| g.matches(&name)).ok();
            let theirs = glob::Pattern::new(glob).map(|g| g.matches(&name)).ok();
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn any_simple_glob_matches_as_glob_says(
            glob in "\\*?[a-z_]{0,6}\\*?",
            name in "[a-z_]{0,10}",
        ) {
            let ours = NameGlob::new(&glob).map(|g| g.matches(&name)).ok();
            let theirs = glob::Pattern::new(&glob).map(|g| g.matches(&name)).ok();
            prop_assert_eq!(ours, theirs);
        }
    }
}
