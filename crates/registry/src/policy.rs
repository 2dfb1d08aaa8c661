//! Who may use what: roles granting tools, prompts and resources by glob. The router
//! checks it while admitting a call, so it holds for the gateway's clients, exposed
//! agents, workflows and agents' own tool calls alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::name_glob::NameGlob;

/// What one role may use: names matching an `allow` glob and no `deny` glob.
///
/// Globs match a tool's catalog name (`fs__write_file`) or its own name (`write_file`);
/// `*` matches any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    /// Names this role may use.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Names it may not, whatever `allow` says.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A glob that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("role `{role}`: `{glob}` is not a valid glob: {reason}")]
pub struct PolicyError {
    /// The role.
    pub role: String,
    /// The glob.
    pub glob: String,
    /// What the parser said.
    pub reason: String,
}

#[derive(Debug)]
struct Role {
    allow: Vec<NameGlob>,
    deny: Vec<NameGlob>,
}

/// Roles and their grants, compiled.
#[derive(Debug, Default)]
pub struct Policy {
    roles: BTreeMap<String, Role>,
}

impl Policy {
    /// Compiles `roles`.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] naming the first glob that does not parse.
    pub fn new<'a>(
        roles: impl IntoIterator<Item = (&'a String, &'a RoleGrant)>,
    ) -> Result<Self, PolicyError> {
        let mut compiled = BTreeMap::new();
        for (name, grant) in roles {
            let patterns = |globs: &[String]| -> Result<Vec<NameGlob>, PolicyError> {
                globs
                    .iter()
                    .map(|g| {
                        NameGlob::new(g).map_err(|e| PolicyError {
                            role: name.clone(),
                            glob: g.clone(),
                            reason: e.to_string(),
                        })
                    })
                    .collect()
            };
            compiled.insert(
                name.clone(),
                Role {
                    allow: patterns(&grant.allow)?,
                    deny: patterns(&grant.deny)?,
                },
            );
        }
        Ok(Self { roles: compiled })
    }

    /// Whether a caller with `roles` may use `rendered` (its catalog name) whose own name
    /// is `bare`: some role allows it and none denies it. `Err` says why not.
    pub fn check(&self, roles: &[String], rendered: &str, bare: &str) -> Result<(), String> {
        let matches = |p: &NameGlob| p.matches(rendered) || p.matches(bare);
        for name in roles {
            if let Some(role) = self.roles.get(name)
                && let Some(deny) = role.deny.iter().find(|p| matches(p))
            {
                return Err(format!("role `{name}` denies it (`{}`)", deny.as_str()));
            }
        }
        let granted = roles.iter().any(|name| {
            self.roles
                .get(name)
                .is_some_and(|role| role.allow.iter().any(&matches))
        });
        if granted {
            Ok(())
        } else if roles.is_empty() {
            Err("the caller has no role".to_owned())
        } else {
            Err(format!(
                "no `allow` of role(s) {} matches it",
                roles
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let roles: BTreeMap<String, RoleGrant> = serde_json::from_value(serde_json::json!({
            "reader": { "allow": ["*__read_*", "calculator"], "deny": ["*__write_*"] },
            "writer": { "allow": ["*"] },
        }))
        .unwrap_or_default();
        Policy::new(&roles).unwrap_or_default()
    }

    #[test]
    fn allow_grants_deny_wins_and_unknown_roles_grant_nothing() {
        let p = policy();
        let reader = ["reader".to_owned()];
        assert!(p.check(&reader, "fs__read_file", "read_file").is_ok());
        assert!(p.check(&reader, "native__calculator", "calculator").is_ok());
        let denied = p
            .check(&reader, "fs__write_file", "write_file")
            .unwrap_err();
        assert!(denied.contains("role `reader` denies it"), "{denied}");
        let denied = p.check(&reader, "fs__delete", "delete").unwrap_err();
        assert!(denied.contains("no `allow`"), "{denied}");
        let both = ["writer".to_owned(), "reader".to_owned()];
        let denied = p.check(&both, "fs__write_file", "write_file").unwrap_err();
        assert!(denied.contains("denies"), "{denied}");
        assert!(
            p.check(&["guest".to_owned()], "fs__read_file", "read_file")
                .is_err()
        );
        assert!(p.check(&[], "fs__read_file", "read_file").is_err());
    }

    #[test]
    fn a_bad_glob_names_its_role() {
        let roles: BTreeMap<String, RoleGrant> = BTreeMap::from([(
            "r".to_owned(),
            RoleGrant {
                allow: vec!["[".into()],
                deny: vec![],
            },
        )]);
        let error = Policy::new(&roles).unwrap_err();
        assert_eq!((error.role.as_str(), error.glob.as_str()), ("r", "["));
    }
}
