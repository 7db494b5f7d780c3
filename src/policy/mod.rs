//! The policy engine: rules in, decision out.  Pure: no IO, no clock, no
//! global state, so it can be tested exhaustively and explained exactly.
//!
//! Semantics (R-POL-2): every enabled rule that matches is collected (all of
//! a rule's populated fields must match; an empty field matches anything; a
//! list field matches when any element does); any matching deny decides,
//! else any matching allow decides, else the default is deny.  The decision
//! names the rules that made it.  Repository globs follow Go's `path.Match`:
//! `*` and `?` never cross `/`.

use crate::model::Action;
pub use crate::model::{AccountType, Principal};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub description: String,
    pub effect: Effect,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub repositories: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub usernames: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub account_types: Vec<AccountType>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

impl Rule {
    /// Checks what the engine cannot evaluate: malformed globs, silly sizes.
    pub fn validate(&self) -> Result<(), String> {
        if self.description.len() > 1000 {
            return Err("description is longer than 1000 characters".into());
        }
        for g in &self.repositories {
            if g.is_empty() {
                return Err("a repository glob is empty".into());
            }
            compile(g).map_err(|e| format!("repository glob {g:?} is invalid: {e}"))?;
        }
        let lists = [&self.subjects, &self.usernames, &self.roles];
        if lists.iter().any(|l| l.iter().any(|s| s.is_empty())) {
            return Err("subjects, usernames and roles must not contain empty strings".into());
        }
        Ok(())
    }
}

/// One authorization question.
pub struct Query<'a> {
    pub who: &'a Principal,
    pub action: Action,
    pub repository: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decider {
    pub id: i64,
    pub priority: i64,
    pub effect: Effect,
    pub description: String,
    pub builtin: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The rules that decided: the matching denies, else the matching allows;
    /// empty for the default deny.
    pub rules: Vec<Decider>,
    pub reason: String,
}

/// Built-in rules, always merged in (R-POL-3); negative ids mark them.
pub fn builtin_rules() -> Vec<Rule> {
    let base = |id, description: &str| Rule {
        id,
        priority: 1_000_000,
        description: description.into(),
        effect: Effect::Allow,
        actions: vec![],
        repositories: vec![],
        subjects: vec![],
        usernames: vec![],
        roles: vec![],
        account_types: vec![],
        enabled: true,
    };
    vec![
        Rule { roles: vec!["admin".into()], ..base(-1, "built-in: the admin role may do everything") },
        Rule {
            account_types: vec![AccountType::Human],
            actions: vec![Action::Pull, Action::Push, Action::Delete, Action::Catalog],
            ..base(-2, "built-in: human accounts may pull, push, delete and list")
        },
        Rule {
            actions: vec![Action::VersionCheck],
            ..base(-3, "built-in: every authenticated caller may check the API version")
        },
    ]
}

struct Compiled {
    rule: Rule,
    globs: Vec<glob::Pattern>,
}

/// A rule set ready to evaluate: built-ins merged, disabled rules dropped,
/// globs compiled, sorted by priority (then id).
pub struct PolicySet {
    rules: Vec<Compiled>,
}

/// Go's `path.Match` in glob-crate syntax: runs of `*` are one `*` (the
/// glob crate's `**` would cross `/`), and `[^` negation is `[!`.
fn compile(g: &str) -> Result<glob::Pattern, glob::PatternError> {
    let mut s = String::with_capacity(g.len());
    let mut prev_star = false;
    for c in g.chars() {
        if c == '*' && prev_star {
            continue;
        }
        prev_star = c == '*';
        s.push(c);
    }
    glob::Pattern::new(&s.replace("[^", "[!"))
}

const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl PolicySet {
    /// Invalid rules are skipped (they were validated on the way in; a
    /// hand-edited row must not open anything).
    pub fn new(rules: Vec<Rule>) -> PolicySet {
        let mut compiled: Vec<Compiled> = rules
            .into_iter()
            .chain(builtin_rules())
            .filter(|r| r.enabled)
            .filter_map(|rule| {
                let globs = rule.repositories.iter().map(|g| compile(g)).collect::<Result<Vec<_>, _>>();
                match globs {
                    Ok(globs) => Some(Compiled { rule, globs }),
                    Err(e) => {
                        log::warn!("policy rule skipped id={} err={e}", rule.id);
                        None
                    }
                }
            })
            .collect();
        compiled.sort_by_key(|c| (c.rule.priority, c.rule.id));
        PolicySet { rules: compiled }
    }

    /// The decision alone, without building the explanation (the hot path).
    pub fn is_allowed(&self, q: &Query) -> bool {
        let mut allowed = false;
        for c in &self.rules {
            if matches(c, q) {
                match c.rule.effect {
                    Effect::Deny => return false,
                    Effect::Allow => allowed = true,
                }
            }
        }
        allowed
    }

    pub fn evaluate(&self, q: &Query) -> Decision {
        let matching: Vec<&Rule> = self.rules.iter().filter(|c| matches(c, q)).map(|c| &c.rule).collect();
        let decider = |r: &Rule| Decider {
            id: r.id,
            priority: r.priority,
            effect: r.effect,
            description: r.description.clone(),
            builtin: r.id < 0,
        };
        let denies: Vec<Decider> =
            matching.iter().filter(|r| r.effect == Effect::Deny).map(|r| decider(r)).collect();
        if !denies.is_empty() {
            return Decision { allowed: false, reason: "denied by rule".into(), rules: denies };
        }
        let allows: Vec<Decider> = matching.iter().map(|r| decider(r)).collect();
        if !allows.is_empty() {
            return Decision { allowed: true, reason: "allowed by rule".into(), rules: allows };
        }
        Decision { allowed: false, reason: "no rule allows this (default deny)".into(), rules: vec![] }
    }
}

fn matches(c: &Compiled, q: &Query) -> bool {
    let r = &c.rule;
    let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    (r.actions.is_empty() || r.actions.contains(&q.action))
        && (c.globs.is_empty()
            || q.repository.is_some_and(|repo| c.globs.iter().any(|g| g.matches_with(repo, MATCH))))
        && any(&r.subjects, &q.who.subject)
        && any(&r.usernames, &q.who.username)
        && (r.roles.is_empty() || r.roles.iter().any(|role| q.who.roles.contains(role)))
        && (r.account_types.is_empty() || r.account_types.contains(&q.who.account_type))
}

/// Stateless evaluation of a rule list (built-ins merged).
pub fn evaluate(rules: &[Rule], q: &Query) -> Decision {
    PolicySet::new(rules.to_vec()).evaluate(q)
}

#[cfg(test)]
mod tests;

/// The rule set in force, shared by every thread: swapped whole when rules
/// change, so a decision never sees half an update.
pub struct PolicyEngine {
    set: parking_lot::RwLock<std::sync::Arc<PolicySet>>,
}

impl PolicyEngine {
    pub fn new(rules: Vec<Rule>) -> PolicyEngine {
        PolicyEngine { set: parking_lot::RwLock::new(std::sync::Arc::new(PolicySet::new(rules))) }
    }

    /// Puts a new rule set in force.
    pub fn replace(&self, rules: Vec<Rule>) {
        let set = std::sync::Arc::new(PolicySet::new(rules));
        *self.set.write() = set;
    }

    pub fn decide(&self, who: &Principal, action: Action, repo: Option<&str>) -> Decision {
        let set = self.set.read().clone();
        set.evaluate(&Query { who, action, repository: repo })
    }

    pub fn is_allowed(&self, who: &Principal, action: Action, repo: Option<&str>) -> bool {
        self.set.read().is_allowed(&Query { who, action, repository: repo })
    }
}
