//! `/v1` routing: paths parsed once into `Route`, then (method, route)
//! dispatched to the service.  Repository names contain `/`, so their
//! sub-resources are recognised from the right.

use super::{body, json, Error};
use crate::app::Ctx;
use crate::error::What;
use crate::http::{Request, Response};
use crate::model::{Action, Reference, Tag};
use crate::policy::{AccountType, Principal, Rule};
use crate::service::audit::Filter;
use crate::service::{self, parse_repo};
use serde::Deserialize;

enum Route {
    Status,
    Repositories,
    Repository(String),
    Tag(String, String),
    Manifest(String, String),
    Rules,
    Rule(String),
    RuleToggle(String, bool),
    Evaluate,
    Audit,
    AuditVerify,
    Gc,
    GcStatus,
    Reconcile,
    Snapshot,
    Users,
    UserPassword(String),
    UserToggle(String, bool),
}

fn parse(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v1/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    Some(match segs.as_slice() {
        ["status"] => Route::Status,
        ["repositories"] => Route::Repositories,
        ["repositories", name @ .., "tags", tag] if !name.is_empty() => {
            Route::Tag(name.join("/"), tag.to_string())
        }
        ["repositories", name @ .., "manifests", r] if !name.is_empty() => {
            Route::Manifest(name.join("/"), r.to_string())
        }
        ["repositories", name @ ..] if !name.is_empty() => Route::Repository(name.join("/")),
        ["policy", "rules"] => Route::Rules,
        ["policy", "rules", id] => Route::Rule(id.to_string()),
        ["policy", "rules", id, "enable"] => Route::RuleToggle(id.to_string(), true),
        ["policy", "rules", id, "disable"] => Route::RuleToggle(id.to_string(), false),
        ["policy", "evaluate"] => Route::Evaluate,
        ["audit"] => Route::Audit,
        ["audit", "verify"] => Route::AuditVerify,
        ["gc"] => Route::Gc,
        ["gc", "status"] => Route::GcStatus,
        ["gc", "reconcile"] => Route::Reconcile,
        ["snapshot"] => Route::Snapshot,
        ["users"] => Route::Users,
        ["users", name, "password"] => Route::UserPassword(name.to_string()),
        ["users", name, "disable"] => Route::UserToggle(name.to_string(), false),
        ["users", name, "enable"] => Route::UserToggle(name.to_string(), true),
        _ => return None,
    })
}

fn rule_id(s: &str) -> Result<i64, Error> {
    s.parse().map_err(|_| Error::BadRequest(format!("rule id {s:?} is not a number")))
}

fn query_num<T: std::str::FromStr>(q: &[(String, String)], key: &str) -> Result<Option<T>, Error> {
    match q.iter().find(|(k, _)| k == key) {
        Some((_, v)) => v.parse().map(Some).map_err(|_| Error::BadRequest(format!("{key} must be a number"))),
        None => Ok(None),
    }
}

fn query_str(q: &[(String, String)], key: &str) -> Option<String> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateBody {
    username: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default = "human")]
    account_type: AccountType,
    action: Action,
    #[serde(default)]
    repository: Option<String>,
}

fn human() -> AccountType {
    AccountType::Human
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default = "human")]
    account_type: AccountType,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

pub fn dispatch(ctx: &Ctx, req: &mut Request, method: &str, path: &str) -> Result<Response, Error> {
    let Some(route) = parse(path) else { return Err(Error::NotFound(What::Route)) };
    let q = req.query();
    match (method, route) {
        ("GET", Route::Status) => Ok(json(200, &service::admin::status(ctx)?)),
        ("GET", Route::Repositories) => {
            let n = query_num(&q, "n")?.unwrap_or(100);
            let last = query_str(&q, "last");
            Ok(json(200, &service::admin::list_repositories(ctx, n, last.as_deref())?))
        }
        ("GET", Route::Repository(name)) => {
            Ok(json(200, &service::admin::repository(ctx, &parse_repo(&name)?)?))
        }
        ("DELETE", Route::Repository(name)) => {
            service::admin::delete_repository(ctx, &parse_repo(&name)?)?;
            Ok(Response::new(204))
        }
        ("DELETE", Route::Tag(name, tag)) => {
            let tag = Tag::parse(&tag).map_err(Error::BadRequest)?;
            service::admin::delete_tag(ctx, &parse_repo(&name)?, tag.as_str())?;
            Ok(Response::new(204))
        }
        ("GET", Route::Manifest(name, r)) => {
            let reference = Reference::parse(&r).map_err(Error::BadRequest)?;
            Ok(json(200, &service::admin::manifest(ctx, &parse_repo(&name)?, &reference)?))
        }
        ("GET", Route::Rules) => Ok(json(200, &service::policy::list(ctx)?)),
        ("POST", Route::Rules) => {
            service::access::require_admin(ctx)?;
            let rule: Rule = body(req)?;
            Ok(json(201, &service::policy::create(ctx, &rule)?))
        }
        ("GET", Route::Rule(id)) => Ok(json(200, &service::policy::get(ctx, rule_id(&id)?)?)),
        ("PUT", Route::Rule(id)) => {
            service::access::require_admin(ctx)?;
            let id = rule_id(&id)?;
            let rule: Rule = body(req)?;
            Ok(json(200, &service::policy::update(ctx, id, &rule)?))
        }
        ("DELETE", Route::Rule(id)) => {
            service::policy::delete(ctx, rule_id(&id)?)?;
            Ok(Response::new(204))
        }
        ("POST", Route::RuleToggle(id, on)) => {
            Ok(json(200, &service::policy::set_enabled(ctx, rule_id(&id)?, on)?))
        }
        ("POST", Route::Evaluate) => {
            service::access::require_admin(ctx)?;
            let b: EvaluateBody = body(req)?;
            let repo = b.repository.as_deref().map(parse_repo).transpose()?;
            let who = Principal {
                subject: b.subject.unwrap_or_else(|| b.username.clone()),
                username: b.username,
                roles: b.roles,
                account_type: b.account_type,
                scope: None,
            };
            Ok(json(200, &service::policy::explain(ctx, &who, b.action, repo.as_ref())?))
        }
        ("GET", Route::Audit) => {
            let filter = Filter {
                since: query_num(&q, "since")?,
                until: query_num(&q, "until")?,
                event_type: query_str(&q, "type"),
                actor: query_str(&q, "actor"),
                repository: query_str(&q, "repository"),
                after_id: query_num(&q, "after")?,
                limit: query_num(&q, "limit")?.unwrap_or(100),
            };
            Ok(json(200, &serde_json::json!({ "events": service::audit::query(ctx, &filter)? })))
        }
        ("GET", Route::AuditVerify) => Ok(json(200, &service::audit::verify(ctx)?)),
        ("POST", Route::Gc) => {
            Ok(json(202, &serde_json::json!({ "run_id": service::admin::gc_trigger(ctx)? })))
        }
        ("GET", Route::GcStatus) => Ok(json(200, &service::admin::gc_status(ctx)?)),
        ("POST", Route::Reconcile) => Ok(json(200, &service::admin::reconcile(ctx)?)),
        ("POST", Route::Snapshot) => Ok(json(201, &service::admin::snapshot(ctx)?)),
        ("GET", Route::Users) => Ok(json(200, &service::users::list(ctx)?)),
        ("POST", Route::Users) => {
            // Refused before the body is read; the service checks again.
            service::access::require_admin(ctx)?;
            let u: NewUser = body(req)?;
            let p = crate::auth::Password::new(u.password);
            service::users::add(ctx, &u.username, &p, &u.roles, u.account_type)?;
            Ok(json(201, &serde_json::json!({ "username": u.username })))
        }
        ("POST", Route::UserPassword(name)) => {
            service::access::require_admin(ctx)?;
            let b: NewPassword = body(req)?;
            service::users::set_password(ctx, &name, &crate::auth::Password::new(b.password))?;
            Ok(Response::new(204))
        }
        ("POST", Route::UserToggle(name, enable)) => {
            service::users::set_disabled(ctx, &name, !enable)?;
            Ok(Response::new(204))
        }
        _ => Err(Error::MethodNotAllowed),
    }
}
