//! The UI's routes: read the query or form, call the service, render a
//! page, or redirect after a change (POST, then a 303 to a GET).

use super::{html, page, redirect, Session};
use crate::app::Ctx;
use crate::error::{Error, What};
use crate::http::Request;
use crate::model::{Action, Reference, RepoName};
use crate::policy::{AccountType, Effect, Rule};
use crate::service;
use crate::templates::pages::{self, AuditFilters, ExplainForm, RuleForm};
use crate::templates::Page;

type R = Result<crate::http::Response, Error>;

/// Repositories per page.
const PAGE: usize = 50;
/// Tags per repository page.
const TAG_PAGE: usize = 100;
/// Audit rows per page.
const AUDIT_PAGE: usize = 100;

pub(super) fn field<'f>(form: &'f [(String, String)], name: &str) -> Option<&'f str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn all(form: &[(String, String)], name: &str) -> Vec<String> {
    form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

/// The confirmation a redirect asks the next page to show; a fixed text
/// per key, so nothing from the URL is echoed.
fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "gc" => "Garbage collection started.",
        "tag_deleted" => "Tag deleted.",
        "repo_deleted" => "Repository deleted. Its blobs go at the next garbage collection.",
        "rule_saved" => "Rule saved.",
        "rule_deleted" => "Rule deleted.",
        "user_added" => "User added.",
        "user_changed" => "User updated; their sessions have ended.",
        _ => return None,
    })
}

pub(super) fn route(
    ctx: &Ctx,
    req: &Request,
    s: &Session,
    method: &str,
    path: &str,
    form: &[(String, String)],
) -> R {
    let query = req.query();
    let q = |k: &str| field(&query, k).unwrap_or("").to_string();
    let p = Page { notice: notice(field(&query, "done")), ..page(ctx, s) };
    match (method, path) {
        ("GET", "/ui/") => {
            let status = service::admin::status(ctx)?;
            let activity = if p.admin { Some(service::browse::activity(ctx, 14)?) } else { None };
            Ok(html(200, pages::dashboard(&p, &status, activity.as_ref())))
        }
        ("POST", "/ui/gc") => match service::admin::gc_trigger(ctx) {
            Ok(_) | Err(Error::Busy(_)) => Ok(redirect("/ui/?done=gc")),
            Err(e) => Err(e),
        },
        ("POST", "/ui/logout") => super::logout(ctx, s),
        ("GET", "/ui/repos") => {
            let needle = q("q");
            let last = field(&query, "last").filter(|l| !l.is_empty());
            let list = service::browse::repositories(ctx, needle.trim(), PAGE, last)?;
            if req.header("HX-Request").is_some() {
                Ok(html(200, pages::repo_list_fragment(&needle, &list)))
            } else {
                Ok(html(200, pages::repositories(&p, &needle, &list)))
            }
        }
        ("GET", "/ui/repo") => {
            let name = repo(&q("name"))?;
            let last = field(&query, "last").filter(|l| !l.is_empty());
            Ok(html(200, pages::repository(&p, &service::browse::repository(ctx, &name, TAG_PAGE, last)?)))
        }
        ("GET", "/ui/repo/delete") => {
            service::access::require_admin(ctx)?;
            let name = repo(&q("name"))?;
            Ok(html(200, pages::confirm_delete_repository(&p, name.as_str())))
        }
        ("POST", "/ui/repo/delete") => {
            let name = repo(field(form, "name").unwrap_or(""))?;
            service::admin::delete_repository(ctx, &name)?;
            Ok(redirect("/ui/repos?done=repo_deleted"))
        }
        ("POST", "/ui/tag/delete") => {
            let name = repo(field(form, "repo").unwrap_or(""))?;
            service::admin::delete_tag(ctx, &name, field(form, "tag").unwrap_or(""))?;
            Ok(redirect(&format!("/ui/repo?name={}&done=tag_deleted", crate::templates::q(name.as_str()))))
        }
        ("GET", "/ui/manifest") => {
            let name = repo(&q("repo"))?;
            let reference = Reference::parse(&q("ref")).map_err(Error::BadRequest)?;
            let view = service::browse::manifest(ctx, &name, &reference)?;
            Ok(html(200, pages::manifest(&p, name.as_str(), &view, &host(ctx, req))))
        }
        ("GET", "/ui/policy") => policy_page(ctx, &p, &query, None, 200),
        ("POST", "/ui/policy") => save_rule(ctx, &p, form),
        ("POST", "/ui/policy/toggle") => {
            let id = number(field(form, "id"))?;
            service::policy::set_enabled(ctx, id, field(form, "enabled") == Some("true"))?;
            Ok(redirect("/ui/policy?done=rule_saved"))
        }
        ("POST", "/ui/policy/delete") => {
            service::policy::delete(ctx, number(field(form, "id"))?)?;
            Ok(redirect("/ui/policy?done=rule_deleted"))
        }
        ("GET", "/ui/audit") => audit_page(ctx, &p, &query),
        ("GET", "/ui/users") => Ok(html(200, pages::users(&p, &service::users::list(ctx)?, ""))),
        ("POST", "/ui/users") => add_user(ctx, &p, form),
        ("POST", "/ui/users/state") => {
            let name = field(form, "username").unwrap_or("");
            service::users::set_disabled(ctx, name, field(form, "disabled") == Some("true"))?;
            Ok(redirect("/ui/users?done=user_changed"))
        }
        ("POST", "/ui/users/password") => {
            let name = field(form, "username").unwrap_or("");
            let password = crate::model::Password::new(field(form, "password").unwrap_or(""));
            match service::users::set_password(ctx, name, &password) {
                Ok(()) => Ok(redirect("/ui/users?done=user_changed")),
                Err(Error::BadRequest(m)) => {
                    let p = Page { error: Some(&m), notice: None, ..p };
                    Ok(html(400, pages::users(&p, &service::users::list(ctx)?, "")))
                }
                Err(e) => Err(e),
            }
        }
        _ => Err(Error::NotFound(What::Route)),
    }
}

fn repo(s: &str) -> Result<RepoName, Error> {
    RepoName::parse(s).map_err(Error::InvalidName)
}

fn number(s: Option<&str>) -> Result<i64, Error> {
    s.and_then(|v| v.trim().parse().ok()).ok_or_else(|| Error::BadRequest("a number was expected".into()))
}

/// Where clients reach this registry, for the `docker pull` line.
fn host(ctx: &Ctx, req: &Request) -> String {
    let external = &ctx.app.config.server.external_url;
    if !external.is_empty() {
        let h = external.split_once("://").map_or(external.as_str(), |(_, h)| h);
        return h.trim_end_matches('/').to_string();
    }
    req.local_addr.map_or_else(|| "localhost".into(), |a| a.to_string())
}

fn policy_page(
    ctx: &Ctx,
    p: &Page,
    query: &[(String, String)],
    form: Option<(&RuleForm, &str)>,
    status: u16,
) -> R {
    let rules = service::policy::list(ctx)?;
    let editing = match form {
        Some((f, _)) => f.clone(),
        None => match field(query, "edit").and_then(|v| v.parse::<i64>().ok()) {
            Some(id) => RuleForm::from_rule(&service::policy::get(ctx, id)?),
            None => RuleForm {
                priority: "100".into(),
                effect: "allow".into(),
                enabled: true,
                ..Default::default()
            },
        },
    };
    let mut explain = ExplainForm::default();
    if field(query, "explain").is_some() {
        let get = |k: &str| field(query, k).unwrap_or("").to_string();
        explain = ExplainForm {
            username: get("username"),
            roles: get("roles"),
            account_type: get("account_type"),
            action: get("action"),
            repository: get("repository"),
            decision: None,
        };
        let action: Action = serde_json::from_value(serde_json::Value::String(explain.action.clone()))
            .map_err(|_| Error::BadRequest(format!("unknown action {:?}", explain.action)))?;
        let repo = match explain.repository.trim() {
            "" => None,
            r => Some(repo(r)?),
        };
        let who = crate::model::Principal {
            subject: explain.username.clone(),
            username: explain.username.clone(),
            roles: list(&explain.roles),
            account_type: if explain.account_type == "system" {
                AccountType::System
            } else {
                AccountType::Human
            },
            scope: None,
        };
        explain.decision = Some(service::policy::explain(ctx, &who, action, repo.as_ref())?);
    }
    let p = Page { error: form.map(|(_, e)| e), ..*p };
    Ok(html(status, pages::policy(&p, &rules, &editing, &explain)))
}

fn save_rule(ctx: &Ctx, p: &Page, form: &[(String, String)]) -> R {
    let f = RuleForm {
        id: field(form, "id").and_then(|v| v.parse().ok()),
        description: field(form, "description").unwrap_or("").to_string(),
        priority: field(form, "priority").unwrap_or("").to_string(),
        effect: field(form, "effect").unwrap_or("").to_string(),
        actions: all(form, "actions"),
        repositories: field(form, "repositories").unwrap_or("").to_string(),
        usernames: field(form, "usernames").unwrap_or("").to_string(),
        roles: field(form, "roles").unwrap_or("").to_string(),
        account_types: all(form, "account_types"),
        enabled: field(form, "enabled") == Some("true"),
    };
    let rule = (|| -> Result<Rule, String> {
        let actions = f
            .actions
            .iter()
            .map(|a| {
                serde_json::from_value(serde_json::Value::String(a.clone()))
                    .map_err(|_| format!("unknown action {a:?}"))
            })
            .collect::<Result<Vec<Action>, String>>()?;
        let account_types = f
            .account_types
            .iter()
            .map(|a| {
                serde_json::from_value(serde_json::Value::String(a.clone()))
                    .map_err(|_| format!("unknown account type {a:?}"))
            })
            .collect::<Result<Vec<AccountType>, String>>()?;
        Ok(Rule {
            id: f.id.unwrap_or(0),
            priority: f.priority.trim().parse().map_err(|_| "priority must be a whole number".to_string())?,
            description: f.description.trim().to_string(),
            effect: match f.effect.as_str() {
                "allow" => Effect::Allow,
                "deny" => Effect::Deny,
                other => return Err(format!("effect must be allow or deny, not {other:?}")),
            },
            actions,
            repositories: list(&f.repositories),
            subjects: Vec::new(),
            usernames: list(&f.usernames),
            roles: list(&f.roles),
            account_types,
            enabled: f.enabled,
        })
    })();
    let saved = match rule {
        Err(msg) => Err(Error::BadRequest(msg)),
        Ok(rule) => match f.id {
            Some(id) => service::policy::update(ctx, id, &rule).map(drop),
            None => service::policy::create(ctx, &rule).map(drop),
        },
    };
    match saved {
        Ok(()) => Ok(redirect("/ui/policy?done=rule_saved")),
        // The form comes back as typed, with the reason beside it.
        Err(Error::BadRequest(msg)) => policy_page(ctx, p, &[], Some((&f, &msg)), 400),
        Err(e) => Err(e),
    }
}

/// `YYYY-MM-DD` as Unix seconds (UTC midnight).
fn day(s: &str, what: &str) -> Result<Option<i64>, Error> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || Error::BadRequest(format!("{what} must be a date like 2026-11-30"));
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let (y, m, d): (i64, i64, i64) =
        (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok(Some((era * 146_097 + doe - 719_468) * 86400))
}

fn audit_page(ctx: &Ctx, p: &Page, query: &[(String, String)]) -> R {
    let get = |k: &str| field(query, k).unwrap_or("").trim().to_string();
    let f = AuditFilters {
        event_type: get("type"),
        actor: get("actor"),
        repository: get("repo"),
        since: get("since"),
        until: get("until"),
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let filter = (|| {
        Ok::<_, Error>(service::audit::Filter {
            since: day(&f.since, "since")?,
            until: day(&f.until, "until")?,
            event_type: opt(&f.event_type),
            actor: opt(&f.actor),
            repository: opt(&f.repository),
            after_id: field(query, "after").and_then(|a| a.parse().ok()),
            limit: AUDIT_PAGE,
        })
    })();
    let filter = match filter {
        Ok(filter) => filter,
        Err(Error::BadRequest(msg)) => {
            service::access::require_admin(ctx)?;
            let p = Page { error: Some(&msg), ..*p };
            return Ok(html(400, pages::audit(&p, &f, &[], None, None)));
        }
        Err(e) => return Err(e),
    };
    let rows = service::audit::query(ctx, &filter)?;
    let next = (rows.len() == AUDIT_PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let verification = match field(query, "verify") {
        Some(_) => Some(service::audit::verify(ctx)?),
        None => None,
    };
    Ok(html(200, pages::audit(p, &f, &rows, next, verification.as_ref())))
}

fn add_user(ctx: &Ctx, p: &Page, form: &[(String, String)]) -> R {
    let username = field(form, "username").unwrap_or("").trim().to_string();
    let password = crate::model::Password::new(field(form, "password").unwrap_or(""));
    let roles = list(field(form, "roles").unwrap_or(""));
    let kind = if field(form, "system") == Some("true") { AccountType::System } else { AccountType::Human };
    match service::users::add(ctx, &username, &password, &roles, kind) {
        Ok(()) => Ok(redirect("/ui/users?done=user_added")),
        Err(Error::BadRequest(msg)) => {
            let p = Page { error: Some(&msg), notice: None, ..*p };
            let shown: String = username.chars().take(64).collect();
            Ok(html(400, pages::users(&p, &service::users::list(ctx)?, &shown)))
        }
        Err(e) => Err(e),
    }
}
