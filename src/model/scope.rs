//! Token scopes: what a token obtained at `/v2/token` may be used for, in
//! the Docker token protocol's terms (`repository:NAME:pull,push`,
//! `registry:catalog:*`).
//!
//! Invariant: a granted `Scope` only ever narrows what policy allows its
//! user; a principal without one has the user's full authority.

use super::{Action, RepoName};
use serde::{Deserialize, Serialize};

/// One resource and the actions granted on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `repository:<name>` or `registry:catalog`.
    pub resource: String,
    /// `pull`, `push`, `delete` (a repository) or `*` (the catalog).
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope(pub Vec<Grant>);

/// Most scope entries one token request may name.
pub const MAX_REQUESTED: usize = 64;

impl Scope {
    /// Parses requested scope strings; entries that are not understood are
    /// skipped (the Docker protocol grants what it can), duplicates merged.
    pub fn parse_requested<'a>(items: impl Iterator<Item = &'a str>) -> Result<Scope, String> {
        let mut grants: Vec<Grant> = Vec::new();
        for item in items.flat_map(|s| s.split(' ')).filter(|s| !s.is_empty()) {
            if grants.len() >= MAX_REQUESTED {
                return Err(format!("more than {MAX_REQUESTED} scope entries"));
            }
            let Some((kind, rest)) = item.split_once(':') else { continue };
            let Some((name, actions)) = rest.rsplit_once(':') else { continue };
            let resource = match kind {
                "repository" => match RepoName::parse(name) {
                    Ok(n) => format!("repository:{n}"),
                    Err(_) => continue,
                },
                "registry" if name == "catalog" => "registry:catalog".to_string(),
                _ => continue,
            };
            let wanted: Vec<String> = actions
                .split(',')
                .flat_map(|a| match (a, kind) {
                    ("*", "repository") => vec!["pull", "push", "delete"],
                    ("*", _) => vec!["*"],
                    ("pull" | "push" | "delete", "repository") => vec![a],
                    _ => vec![],
                })
                .map(str::to_string)
                .collect();
            match grants.iter_mut().find(|g| g.resource == resource) {
                Some(g) => g.actions.extend(wanted),
                None => grants.push(Grant { resource, actions: wanted }),
            }
        }
        for g in &mut grants {
            g.actions.sort();
            g.actions.dedup();
        }
        Ok(Scope(grants))
    }

    /// Keeps only the actions `allowed` says yes to; drops empty grants.
    pub fn narrow(self, allowed: impl Fn(Action, Option<&RepoName>) -> bool) -> Scope {
        let grants = self
            .0
            .into_iter()
            .filter_map(|mut g| {
                let repo = g.resource.strip_prefix("repository:").and_then(|n| RepoName::parse(n).ok());
                g.actions.retain(|a| match (a.as_str(), &repo) {
                    ("*", None) => allowed(Action::Catalog, None),
                    (a, Some(r)) => action(a).is_some_and(|act| allowed(act, Some(r))),
                    _ => false,
                });
                (!g.actions.is_empty()).then_some(g)
            })
            .collect();
        Scope(grants)
    }

    /// Whether the scope covers `action` (on `repo`).
    pub fn allows(&self, action: Action, repo: Option<&RepoName>) -> bool {
        match (action, repo) {
            (Action::VersionCheck, _) => true,
            (Action::Catalog, _) => self.0.iter().any(|g| g.resource == "registry:catalog"),
            (_, Some(r)) => self.0.iter().any(|g| {
                g.resource.strip_prefix("repository:") == Some(r.as_str())
                    && g.actions.iter().any(|a| a == action.as_str())
            }),
            (_, None) => false,
        }
    }

    /// The scope string a client should ask for to do `action` on `repo`.
    pub fn needed(action: Action, repo: Option<&RepoName>) -> Option<String> {
        match (action, repo) {
            (Action::Catalog, _) => Some("registry:catalog:*".into()),
            (Action::VersionCheck, _) | (_, None) => None,
            (a, Some(r)) => Some(format!("repository:{r}:{}", a.as_str())),
        }
    }
}

fn action(a: &str) -> Option<Action> {
    match a {
        "pull" => Some(Action::Pull),
        "push" => Some(Action::Push),
        "delete" => Some(Action::Delete),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_scopes_are_parsed_merged_and_narrowed() {
        let s = Scope::parse_requested(
            [
                "repository:a/b:pull,push",
                "repository:a/b:delete registry:catalog:*",
                "repository:Bad:pull",
                "nonsense",
                "repository:c:*",
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(s.0.len(), 3, "{s:?}");
        let a = RepoName::parse("a/b").unwrap();
        let c = RepoName::parse("c").unwrap();
        assert!(
            s.allows(Action::Push, Some(&a))
                && s.allows(Action::Delete, Some(&c))
                && s.allows(Action::Catalog, None)
        );
        // Policy allows pulls only.
        let n = s.narrow(|act, _| act == Action::Pull);
        assert!(n.allows(Action::Pull, Some(&a)) && !n.allows(Action::Push, Some(&a)));
        assert!(
            !n.allows(Action::Catalog, None)
                && !n.allows(Action::Pull, Some(&RepoName::parse("other").unwrap()))
        );
        assert!(n.allows(Action::VersionCheck, None));
        assert_eq!(Scope::needed(Action::Push, Some(&a)).as_deref(), Some("repository:a/b:push"));
        let many: Vec<String> = (0..100).map(|i| format!("repository:r{i}:pull")).collect();
        assert!(Scope::parse_requested(many.iter().map(String::as_str)).is_err());
    }
}
