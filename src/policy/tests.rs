//! Table-driven tests of the engine: every field, globs with and without
//! `/`, priority order, deny-wins, default deny and each built-in; plus a
//! property check that adding a deny never turns a deny into an allow.

use super::*;
use crate::model::Action::{self, *};

fn who(username: &str, roles: &[&str], account_type: AccountType) -> Principal {
    Principal {
        subject: format!("sub-{username}"),
        username: username.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        account_type,
        scope: None,
    }
}

fn rule(id: i64, effect: Effect) -> Rule {
    Rule {
        id,
        priority: 10,
        description: format!("rule {id}"),
        effect,
        actions: vec![],
        repositories: vec![],
        subjects: vec![],
        usernames: vec![],
        roles: vec![],
        account_types: vec![],
        enabled: true,
    }
}

fn system(name: &str) -> Principal {
    who(name, &[], AccountType::System)
}

#[track_caller]
fn check(rules: &[Rule], p: &Principal, action: Action, repo: Option<&str>, allowed: bool, deciders: &[i64]) {
    let d = evaluate(rules, &Query { who: p, action, repository: repo });
    assert_eq!(d.allowed, allowed, "{action:?} {repo:?} by {}: {d:?}", p.username);
    let ids: Vec<i64> = d.rules.iter().map(|r| r.id).collect();
    assert_eq!(ids, deciders, "deciding rules");
}

#[test]
fn builtins() {
    let admin = who("root", &["admin"], AccountType::System);
    let human = who("alice", &[], AccountType::Human);
    let robot = system("ci");
    // admin: everything, anywhere.
    for a in [VersionCheck, Pull, Push, Delete, Catalog] {
        check(&[], &admin, a, Some("any/repo"), true, if a == VersionCheck { &[-3, -1] } else { &[-1] });
    }
    // humans: pull/push/delete/catalog, and the version check.
    for a in [Pull, Push, Delete] {
        check(&[], &human, a, Some("x"), true, &[-2]);
    }
    check(&[], &human, Catalog, None, true, &[-2]);
    check(&[], &human, VersionCheck, None, true, &[-3]);
    // system accounts: only the version check, until a rule grants more.
    check(&[], &robot, VersionCheck, None, true, &[-3]);
    for a in [Pull, Push, Delete, Catalog] {
        check(&[], &robot, a, Some("x"), false, &[]);
    }
}

#[test]
fn each_field_must_match() {
    let robot = system("ci");
    let base = Rule { actions: vec![Push], ..rule(1, Effect::Allow) };
    check(std::slice::from_ref(&base), &robot, Push, Some("a"), true, &[1]);
    check(std::slice::from_ref(&base), &robot, Pull, Some("a"), false, &[]);
    let cases: Vec<(Rule, bool)> = vec![
        (Rule { usernames: vec!["ci".into()], ..base.clone() }, true),
        (Rule { usernames: vec!["other".into(), "ci".into()], ..base.clone() }, true),
        (Rule { usernames: vec!["other".into()], ..base.clone() }, false),
        (Rule { subjects: vec!["sub-ci".into()], ..base.clone() }, true),
        (Rule { subjects: vec!["sub-x".into()], ..base.clone() }, false),
        (Rule { roles: vec!["builder".into()], ..base.clone() }, false),
        (Rule { account_types: vec![AccountType::System], ..base.clone() }, true),
        (Rule { account_types: vec![AccountType::Human], ..base.clone() }, false),
        (Rule { repositories: vec!["a".into()], ..base.clone() }, true),
        (Rule { repositories: vec!["b".into(), "a".into()], ..base.clone() }, true),
        (Rule { repositories: vec!["b".into()], ..base.clone() }, false),
        // All populated fields are ANDed.
        (Rule { usernames: vec!["ci".into()], repositories: vec!["b".into()], ..base.clone() }, false),
        (Rule { enabled: false, ..base.clone() }, false),
    ];
    for (r, allowed) in cases {
        let d =
            evaluate(std::slice::from_ref(&r), &Query { who: &robot, action: Push, repository: Some("a") });
        assert_eq!(d.allowed, allowed, "{r:?}");
    }
    let builder = who("b", &["builder", "x"], AccountType::System);
    let r = Rule { roles: vec!["builder".into()], ..base.clone() };
    check(&[r], &builder, Push, Some("a"), true, &[1]);
    // A rule scoped to repositories does not match repository-less actions.
    let r = Rule { actions: vec![], repositories: vec!["*".into()], ..rule(2, Effect::Allow) };
    check(&[r], &robot, Catalog, None, false, &[]);
}

#[test]
fn globs_follow_path_match() {
    let robot = system("ci");
    let cases = [
        ("*", "app", true),
        ("*", "team/app", false),
        ("team/*", "team/app", true),
        ("team/*", "team/sub/app", false),
        ("team/*/*", "team/sub/app", true),
        ("team/**", "team/sub/app", false), // path.Match has no recursive **
        ("team/?pp", "team/app", true),
        ("team/?pp", "team//pp", false),
        ("team/[a-c]pp", "team/bpp", true),
        ("team/[^a-c]pp", "team/bpp", false),
        ("team/[^a-c]pp", "team/zpp", true),
        ("*/app", "team/app", true),
        ("*/app", "a/team/app", false),
        ("team/app", "team/app", true),
        ("team/app", "team/app2", false),
    ];
    for (glob, repo, want) in cases {
        let r = Rule { repositories: vec![glob.into()], actions: vec![Pull], ..rule(1, Effect::Allow) };
        let d = evaluate(&[r], &Query { who: &robot, action: Pull, repository: Some(repo) });
        assert_eq!(d.allowed, want, "{glob} vs {repo}");
    }
    assert!(Rule { repositories: vec!["[".into()], ..rule(1, Effect::Allow) }.validate().is_err());
    assert!(Rule { repositories: vec!["".into()], ..rule(1, Effect::Allow) }.validate().is_err());
    assert!(Rule { repositories: vec!["a/*".into()], ..rule(1, Effect::Allow) }.validate().is_ok());
}

#[test]
fn deny_wins_at_any_priority_and_order_is_by_priority() {
    let human = who("alice", &[], AccountType::Human);
    let admin = who("root", &["admin"], AccountType::Human);
    let deny = Rule { priority: 1000, repositories: vec!["secret/*".into()], ..rule(7, Effect::Deny) };
    let allow_high =
        Rule { priority: -1000, repositories: vec!["secret/*".into()], ..rule(8, Effect::Allow) };
    check(&[deny.clone(), allow_high.clone()], &human, Pull, Some("secret/x"), false, &[7]);
    // Deny beats even the built-in admin allow.
    check(std::slice::from_ref(&deny), &admin, Push, Some("secret/x"), false, &[7]);
    check(std::slice::from_ref(&deny), &admin, Push, Some("public/x"), true, &[-2, -1]);
    // Deciders are listed by priority, then id.
    let a = Rule { priority: 5, ..rule(20, Effect::Deny) };
    let b = Rule { priority: 1, ..rule(30, Effect::Deny) };
    let c = Rule { priority: 5, ..rule(10, Effect::Deny) };
    check(&[a, b, c], &human, Pull, Some("x"), false, &[30, 10, 20]);
}

#[test]
fn adding_a_deny_never_allows_more() {
    // Enumerate small rule sets over a few values and check monotonicity.
    let principals = [
        who("alice", &[], AccountType::Human),
        who("ci", &["builder"], AccountType::System),
        who("root", &["admin"], AccountType::System),
    ];
    let repos = [None, Some("a"), Some("team/a"), Some("team/b/c")];
    let actions = [VersionCheck, Pull, Push, Delete, Catalog];
    let mut candidates = Vec::new();
    let mut id = 1;
    for effect in [Effect::Allow, Effect::Deny] {
        for repos_field in [vec![], vec!["*".to_string()], vec!["team/*".to_string()]] {
            for actions_field in [vec![], vec![Pull], vec![Push, Delete]] {
                for who_field in [0, 1, 2] {
                    let mut r = Rule {
                        repositories: repos_field.clone(),
                        actions: actions_field.clone(),
                        ..rule(id, effect)
                    };
                    match who_field {
                        1 => r.roles = vec!["builder".into()],
                        2 => r.account_types = vec![AccountType::Human],
                        _ => {}
                    }
                    candidates.push(r);
                    id += 1;
                }
            }
        }
    }
    let denies: Vec<&Rule> = candidates.iter().filter(|r| r.effect == Effect::Deny).collect();
    // Base sets: each single candidate and each pair of allows.
    let allows: Vec<&Rule> = candidates.iter().filter(|r| r.effect == Effect::Allow).collect();
    let mut bases: Vec<Vec<Rule>> = vec![vec![]];
    for a in &allows {
        bases.push(vec![(*a).clone()]);
    }
    for w in allows.windows(2) {
        bases.push(vec![w[0].clone(), w[1].clone()]);
    }
    let mut checked = 0;
    for base in &bases {
        let before = PolicySet::new(base.clone());
        for d in &denies {
            let mut with = base.clone();
            with.push((*d).clone());
            let after = PolicySet::new(with);
            for p in &principals {
                for repo in repos {
                    for a in actions {
                        let q = Query { who: p, action: a, repository: repo };
                        assert_eq!(after.is_allowed(&q), after.evaluate(&q).allowed, "fast path agrees");
                        if !before.evaluate(&q).allowed {
                            assert!(!after.evaluate(&q).allowed, "deny {d:?} turned a deny into an allow");
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "checked {checked} cases");
}

#[test]
fn rules_round_trip_json_and_reject_unknown_fields() {
    let r: Rule = serde_json::from_str(
        r#"{"priority":5,"effect":"deny","actions":["pull","push"],"repositories":["a/*"],"account_types":["system"]}"#,
    )
    .unwrap();
    assert_eq!(r.effect, Effect::Deny);
    assert!(r.enabled, "enabled by default");
    assert_eq!(r.actions, vec![Pull, Push]);
    let back: Rule = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    assert!(serde_json::from_str::<Rule>(r#"{"effect":"allow","colour":"red"}"#).is_err());
    assert!(serde_json::from_str::<Rule>(r#"{"effect":"maybe"}"#).is_err());
    assert!(serde_json::from_str::<Rule>(r#"{"effect":"allow","actions":["fly"]}"#).is_err());
}
