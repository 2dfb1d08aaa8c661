//! The one error type of configuration loading.

use std::path::PathBuf;

/// Why a configuration could not be loaded.
///
/// Every message names where the problem is (`origin`: the file, or the environment
/// variable), the key path inside it (`servers.search.timeout`) and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file name does not tell the format.
    #[error(
        "{}: unknown configuration format: name the file *.yaml, *.yml, *.toml or *.json",
        path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The text is not valid YAML, TOML or JSON.
    #[error("{origin}: {message}")]
    Parse {
        /// The file or text source.
        origin: String,
        /// The parser's message, with line and column when known.
        message: String,
    },
    /// `${VAR}` names a variable that is not set, and gives no default.
    #[error(
        "{origin}: {key}: environment variable `{var}` is not set; export {var}=... or write ${{{var}:-default}} to give a default"
    )]
    UndefinedVariable {
        /// The file or text source.
        origin: String,
        /// Key path of the string value (`servers.search.auth.token`).
        key: String,
        /// The variable.
        var: String,
    },
    /// A key that the configuration does not know (often a typo).
    #[error("{origin}: {}", unknown_key(key, unknown, expected))]
    UnknownKey {
        /// The file or environment variable.
        origin: String,
        /// Key path of the map holding the unknown key; empty at the top level.
        key: String,
        /// The unknown key itself.
        unknown: String,
        /// The keys allowed there.
        expected: Vec<String>,
    },
    /// A value of the wrong type or form, or a server definition that cannot work.
    #[error("{origin}: {}{message}", at(key))]
    Invalid {
        /// The file or environment variable.
        origin: String,
        /// Key path of the value; empty for the whole document.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The configuration files cannot be watched for changes
    /// ([`ConfigWatcher`](super::ConfigWatcher)).
    #[error("{}cannot watch the configuration for changes: {message}", file(path))]
    Watch {
        /// The file or directory; empty when there is none.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn file(path: &std::path::Path) -> String {
    if path.as_os_str().is_empty() {
        String::new()
    } else {
        format!("{}: ", path.display())
    }
}

fn at(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

fn unknown_key(key: &str, unknown: &str, expected: &[String]) -> String {
    let mut text = if key.is_empty() {
        format!("unknown top-level key `{unknown}`")
    } else {
        format!("{key}: unknown key `{unknown}`")
    };
    match expected {
        [] => {}
        [only] => text.push_str(&format!("; expected `{only}`")),
        _ => text.push_str(&format!("; expected one of {}", expected.join(", "))),
    }
    if let Some(near) = closest(unknown, expected) {
        text.push_str(&format!(" (did you mean `{near}`?)"));
    }
    text
}

/// The expected key closest to `word` if it is a plausible typo of it.
fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_keys_only() {
        let keys: Vec<String> = ["url", "command", "args", "timeout"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest("urll", &keys), Some("url"));
        assert_eq!(closest("comand", &keys), Some("command"));
        assert_eq!(closest("Timeout", &keys), Some("timeout"));
        assert_eq!(closest("banana", &keys), None);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
