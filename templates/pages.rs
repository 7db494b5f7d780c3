//! One function per page (and per htmx fragment).

use super::{bytes, fragment, layout, q, time, Page};
use crate::audit::Verification;
use crate::model::Action;
use crate::policy::{AccountType, Decision, Effect, Rule};
use crate::service::admin::{RepoPage, Status};
use crate::service::audit::AuditRow;
use crate::service::browse::{Activity, ManifestView, RepoView};
use crate::service::users::UserInfo;
use horrorshow::{html, owned_html, RenderOnce};

/// A hidden CSRF field: every form that changes state carries one.
fn csrf<'a>(p: &Page<'a>) -> impl RenderOnce + 'a {
    let token = p.csrf;
    owned_html! { input(type="hidden", name="csrf", value=token); }
}

pub fn login(p: &Page, username: &str) -> String {
    layout(
        p,
        "Log in",
        html! {
            form(class="login", method="post", action="/ui/login") {
                : csrf(p);
                label(for="username") : "Username";
                input(type="text", id="username", name="username", value=username, autocomplete="username", required, autofocus);
                label(for="password") : "Password";
                input(type="password", id="password", name="password", autocomplete="current-password", required);
                p { button(type="submit", id="login") : "Log in"; }
            }
        },
    )
}

/// A page that only says something (errors, confirmations).
pub fn message(p: &Page, title: &str) -> String {
    layout(p, title, html! { p { a(href="/ui/") : "Back to the dashboard"; } })
}

pub fn dashboard(p: &Page, s: &Status, activity: Option<&Activity>) -> String {
    let c = &s.counts;
    let saved = c.logical_bytes - c.storage_bytes;
    layout(
        p,
        "Dashboard",
        html! {
            div(class="cards", id="counts") {
                div(class="card") { b : c.repositories; : "repositories"; }
                div(class="card") { b : c.manifests; : "manifests"; }
                div(class="card") { b : c.tags; : "tags"; }
                div(class="card") { b : c.blobs; : "blobs"; }
                div(class="card") { b : bytes(c.storage_bytes); : "stored"; }
                div(class="card") { b : bytes(saved.max(0)); : "saved by deduplication"; }
            }
            h2 : "Garbage collection";
            // While a collection runs, htmx refreshes this part every second.
            div(id="gc", hx-get?=s.gc.running.then_some("/ui/"), hx-trigger?=s.gc.running.then_some("every 1s"),
                hx-select?=s.gc.running.then_some("#gc"), hx-target?=s.gc.running.then_some("this"),
                hx-swap?=s.gc.running.then_some("outerHTML")) {
                p(id="gc-status") {
                    : if s.gc.running { "Running. " } else { "Idle. " };
                    @ if let Some(l) = &s.gc.last {
                        : format_args!(
                            "Last run {} finished {}: {} blobs ({}) and {} manifests removed, {} errors.",
                            l.run_id, time(l.finished_at), l.blobs_removed, bytes(l.bytes_freed as i64),
                            l.manifests_removed, l.errors.len()
                        );
                    } else {
                        : "No collection has run since the registry started.";
                    }
                }
                @ if p.admin {
                    form(method="post", action="/ui/gc", hx-post="/ui/gc", hx-target="#gc", hx-select="#gc", hx-swap="outerHTML") {
                        : csrf(p);
                        button(type="submit", id="run-gc") : "Run GC now";
                    }
                }
            }
            @ if let Some(a) = activity {
                h2 : "Pushes and pulls per day";
                : chart(a);
                h2 : "Recent pushes";
                table(id="recent-pushes") {
                    tr { th : "Time"; th : "Repository"; th : "Reference"; th : "By"; }
                    @ for r in &a.recent_pushes {
                        tr {
                            td : time(r.time);
                            td { a(href=format!("/ui/repo?name={}", q(r.repository.as_deref().unwrap_or("")))) : r.repository.as_deref().unwrap_or("-"); }
                            td(class="mono") : r.reference.as_deref().unwrap_or("-");
                            td : r.actor.as_deref().unwrap_or("-");
                        }
                    }
                }
            }
        },
    )
}

/// Pushes and pulls per day as an inline SVG bar chart, drawn here.
fn chart(a: &Activity) -> impl RenderOnce + '_ {
    const W: i64 = 640;
    const H: i64 = 160;
    const BASE: i64 = 140;
    let days = a.pushes_per_day.len().max(1) as i64;
    let max = a.pushes_per_day.iter().chain(&a.pulls_per_day).map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let slot = W / days;
    let bar = (slot / 2 - 2).max(1);
    let height = move |n: i64| n * (BASE - 10) / max;
    owned_html! {
        div(class="legend") {
            span(class="push") : "■ pushes";
            span(class="pull") : "■ pulls";
            span : format_args!("(most in a day: {max})");
        }
        svg(class="chart", id="activity-chart", xmlns="http://www.w3.org/2000/svg", viewBox=format!("0 0 {W} {H}"), width=W, height=H, role="img") {
            title : "Pushes and pulls per day";
            @ for (i, ((day, pushes), (_, pulls))) in a.pushes_per_day.iter().zip(&a.pulls_per_day).enumerate() {
                rect(class="push", x=i as i64 * slot + 1, y=BASE - height(*pushes), width=bar, height=height(*pushes)) {
                    title : format_args!("{}: {pushes} pushes", &time(day * 86400)[..10]);
                }
                rect(class="pull", x=i as i64 * slot + 1 + bar + 1, y=BASE - height(*pulls), width=bar, height=height(*pulls)) {
                    title : format_args!("{}: {pulls} pulls", &time(day * 86400)[..10]);
                }
                @ if i == 0 || i as i64 == days - 1 {
                    text(x=i as i64 * slot + 1, y=H - 4) : &time(day * 86400)[5..10];
                }
            }
        }
    }
}

/// The repository list, with search as you type (htmx swaps `#repo-list`).
pub fn repositories(p: &Page, needle: &str, page: &RepoPage) -> String {
    layout(
        p,
        "Repositories",
        html! {
            form(method="get", action="/ui/repos", role="search") {
                label(for="q") : "Search";
                input(type="search", id="q", name="q", value=needle, placeholder="name contains…",
                      hx-get="/ui/repos", hx-trigger="input changed delay:250ms, search",
                      hx-target="#repo-list", hx-swap="outerHTML", hx-push-url="true");
                noscript { button(type="submit") : "Search"; }
            }
            : repo_list(needle, page);
        },
    )
}

/// The `#repo-list` fragment.
pub fn repo_list_fragment(needle: &str, page: &RepoPage) -> String {
    fragment(repo_list(needle, page))
}

fn repo_list<'a>(needle: &'a str, page: &'a RepoPage) -> impl RenderOnce + 'a {
    owned_html! {
        div(id="repo-list") {
            @ if page.repositories.is_empty() {
                p(class="notice") : "No repositories match.";
            } else {
                table {
                    tr { th : "Name"; th(class="num") : "Tags"; th(class="num") : "Manifests"; th(class="num") : "Size"; }
                    @ for r in &page.repositories {
                        tr {
                            td { a(href=format!("/ui/repo?name={}", q(&r.name))) : &r.name; }
                            td(class="num") : r.tags;
                            td(class="num") : r.manifests;
                            td(class="num") : bytes(r.size_bytes);
                        }
                    }
                }
            }
            @ if let Some(next) = &page.next {
                p(class="pager") {
                    a(id="next-page", href=format!("/ui/repos?q={}&last={}", q(needle), q(next))) : "Next page →";
                }
            }
        }
    }
}

pub fn repository(p: &Page, d: &RepoView) -> String {
    let name = &d.summary.name;
    layout(
        p,
        name,
        html! {
            p {
                : format_args!("{} tags, {} manifests, {}.", d.summary.tags, d.summary.manifests, bytes(d.summary.size_bytes));
            }
            table(id="tags") {
                tr { th : "Tag"; th : "Digest"; th : "Media type"; th(class="num") : "Size"; th : "Pushed"; @ if p.admin { th : ""; } }
                @ for t in &d.tags {
                    tr {
                        td(class="mono") : &t.name;
                        td(class="mono") { a(href=format!("/ui/manifest?repo={}&ref={}", q(name), q(&t.digest))) : &t.digest; }
                        td(class="mono") : &t.media_type;
                        td(class="num") : bytes(t.size);
                        td : time(t.updated_at);
                        @ if p.admin {
                            td {
                                form(class="inline", method="post", action="/ui/tag/delete") {
                                    : csrf(p);
                                    input(type="hidden", name="repo", value=name);
                                    input(type="hidden", name="tag", value=&t.name);
                                    button(class="danger", type="submit", title=format!("Delete tag {}", t.name)) : "Delete tag";
                                }
                            }
                        }
                    }
                }
            }
            @ if let Some(next) = &d.next {
                p(class="pager") {
                    a(id="next-page", href=format!("/ui/repo?name={}&last={}", q(name), q(next))) : "More tags →";
                }
            }
            @ if p.admin {
                p { a(id="delete-repo", href=format!("/ui/repo/delete?name={}", q(name))) : "Delete this repository…"; }
            }
        },
    )
}

/// The confirm step of a repository's deletion.
pub fn confirm_delete_repository(p: &Page, name: &str) -> String {
    layout(
        p,
        "Delete repository",
        html! {
            p { : "Delete "; code : name; : " with all its tags and manifests? Blobs nothing else uses go at the next garbage collection."; }
            form(method="post", action="/ui/repo/delete") {
                : csrf(p);
                input(type="hidden", name="name", value=name);
                button(class="danger", type="submit", id="confirm-delete") : "Delete repository";
                : " ";
                a(href=format!("/ui/repo?name={}", q(name))) : "Cancel";
            }
        },
    )
}

pub fn manifest(p: &Page, repo: &str, v: &ManifestView, host: &str) -> String {
    let d = &v.detail;
    let pull = format!("docker pull {host}/{repo}@{}", d.digest);
    let text = |x: &serde_json::Value, k: &str| x.get(k).and_then(|s| s.as_str()).unwrap_or("").to_string();
    let size = |x: &serde_json::Value| x.get("size").and_then(|s| s.as_i64()).unwrap_or(0);
    layout(
        p,
        &format!("{repo}@{}", &d.digest),
        html! {
            table(id="manifest-summary") {
                tr { th : "Repository"; td { a(href=format!("/ui/repo?name={}", q(repo))) : repo; } }
                tr { th : "Digest"; td(class="mono") : &d.digest; }
                tr { th : "Media type"; td(class="mono") : &d.media_type; }
                @ if let Some(t) = &d.artifact_type { tr { th : "Artifact type"; td(class="mono") : t; } }
                tr { th : "Size"; td : bytes(d.size as i64); }
                tr { th : "Tags"; td(class="mono") : d.tags.join(", "); }
                tr { th : "Pull"; td { input(type="text", id="pull-line", readonly, value=&pull); } }
            }
            @ if let Some(c) = &v.image_config {
                h2 : "Configuration";
                table(id="image-config") {
                    tr { th : "Platform"; td : format_args!("{}/{}", c.os, c.architecture); }
                    tr { th : "Created"; td : &c.created; }
                    tr { th : "Entrypoint"; td(class="mono") : c.entrypoint.join(" "); }
                    tr { th : "Command"; td(class="mono") : c.cmd.join(" "); }
                    @ for (k, val) in &c.labels {
                        tr { th { : "Label "; code : k; } td : val; }
                    }
                }
            }
            @ if !d.layers.is_empty() {
                h2 : "Layers";
                table(id="layers") {
                    tr { th : "Digest"; th : "Media type"; th(class="num") : "Size"; }
                    @ for l in &d.layers {
                        tr { td(class="mono") : text(l, "digest"); td(class="mono") : text(l, "mediaType"); td(class="num") : bytes(size(l)); }
                    }
                }
            }
            @ if !d.manifests.is_empty() {
                h2 : "Platforms";
                table(id="platforms") {
                    tr { th : "Platform"; th : "Manifest"; }
                    @ for m in &d.manifests {
                        tr {
                            td : m.get("platform").map(|pl| format!("{}/{}{}", text(pl, "os"), text(pl, "architecture"),
                                    pl.get("variant").and_then(|v| v.as_str()).map(|v| format!("/{v}")).unwrap_or_default()))
                                .unwrap_or_else(|| "-".into());
                            td(class="mono") { a(href=format!("/ui/manifest?repo={}&ref={}", q(repo), q(&text(m, "digest")))) : text(m, "digest"); }
                        }
                    }
                }
            }
            h2 : "Referrers";
            @ if d.referrers.is_empty() {
                p(id="referrers") : "No signatures, SBOMs or other artifacts refer to this manifest.";
            } else {
                table(id="referrers") {
                    tr { th : "Artifact type"; th : "Manifest"; }
                    @ for r in &d.referrers {
                        tr {
                            td(class="mono") : text(r, "artifactType");
                            td(class="mono") { a(href=format!("/ui/manifest?repo={}&ref={}", q(repo), q(&text(r, "digest")))) : text(r, "digest"); }
                        }
                    }
                }
            }
            @ if let Some(serde_json::Value::Object(ann)) = &d.annotations {
                h2 : "Annotations";
                table(id="annotations") {
                    @ for (k, val) in ann {
                        tr { th(class="mono") : k; td : val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string()); }
                    }
                }
            }
        },
    )
}

/// What the policy page's form holds (a rule being created or edited,
/// as the user typed it).
#[derive(Default, Clone)]
pub struct RuleForm {
    pub id: Option<i64>,
    pub description: String,
    pub priority: String,
    pub effect: String,
    pub actions: Vec<String>,
    pub repositories: String,
    pub usernames: String,
    pub roles: String,
    pub account_types: Vec<String>,
    pub enabled: bool,
}

impl RuleForm {
    pub fn from_rule(r: &Rule) -> RuleForm {
        RuleForm {
            id: Some(r.id),
            description: r.description.clone(),
            priority: r.priority.to_string(),
            effect: effect_str(r.effect).into(),
            actions: r.actions.iter().map(|a| a.as_str().to_string()).collect(),
            repositories: r.repositories.join(", "),
            usernames: r.usernames.join(", "),
            roles: r.roles.join(", "),
            account_types: r.account_types.iter().map(|a| a.as_str().to_string()).collect(),
            enabled: r.enabled,
        }
    }
}

fn effect_str(e: Effect) -> &'static str {
    match e {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    }
}

const ACTIONS: [Action; 5] =
    [Action::Pull, Action::Push, Action::Delete, Action::Catalog, Action::VersionCheck];

/// What the explain form holds, and its answer.
#[derive(Default)]
pub struct ExplainForm {
    pub username: String,
    pub roles: String,
    pub account_type: String,
    pub action: String,
    pub repository: String,
    pub decision: Option<Decision>,
}

pub fn policy(p: &Page, rules: &[Rule], form: &RuleForm, explain: &ExplainForm) -> String {
    layout(
        p,
        "Policy",
        html! {
            p : "Rules in priority order. A matching deny wins over any allow; with no match, access is denied.";
            table(id="rules") {
                tr { th : "ID"; th(class="num") : "Priority"; th : "Effect"; th : "Actions"; th : "Repositories"; th : "Who"; th : "Description"; th : "State"; th : ""; }
                @ for r in rules {
                    tr(id=format!("rule-{}", r.id)) {
                        td : r.id;
                        td(class="num") : r.priority;
                        td : effect_str(r.effect);
                        td : r.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
                        td(class="mono") : r.repositories.join(", ");
                        td : who(r);
                        td : &r.description;
                        td : if r.enabled { "enabled" } else { "disabled" };
                        td {
                            a(href=format!("/ui/policy?edit={}", r.id)) : "Edit";
                            : " ";
                            form(class="inline", method="post", action="/ui/policy/toggle") {
                                : csrf(p);
                                input(type="hidden", name="id", value=r.id);
                                input(type="hidden", name="enabled", value=if r.enabled { "false" } else { "true" });
                                button(class="plain", type="submit") : if r.enabled { "Disable" } else { "Enable" };
                            }
                            form(class="inline", method="post", action="/ui/policy/delete") {
                                : csrf(p);
                                input(type="hidden", name="id", value=r.id);
                                button(class="danger", type="submit") : "Delete";
                            }
                        }
                    }
                }
            }
            h2 : if form.id.is_some() { "Edit rule" } else { "New rule" };
            form(method="post", action="/ui/policy", id="rule-form") {
                : csrf(p);
                @ if let Some(id) = form.id { input(type="hidden", name="id", value=id); }
                label(for="description") : "Description";
                input(type="text", id="description", name="description", value=&form.description);
                label(for="priority") : "Priority (lower first)";
                input(type="number", id="priority", name="priority", value=&form.priority);
                label(for="effect") : "Effect";
                select(id="effect", name="effect") {
                    option(value="allow", selected?=form.effect != "deny") : "allow";
                    option(value="deny", selected?=form.effect == "deny") : "deny";
                }
                label : "Actions (none: any)";
                @ for a in ACTIONS {
                    input(type="checkbox", id=format!("action-{}", a.as_str()), name="actions", value=a.as_str(), checked?=form.actions.iter().any(|x| x == a.as_str()));
                    label(class="inline", for=format!("action-{}", a.as_str())) : a.as_str();
                }
                label(for="repositories") : "Repositories (globs, comma separated; empty: any)";
                input(type="text", id="repositories", name="repositories", value=&form.repositories);
                label(for="usernames") : "Usernames (comma separated; empty: anyone)";
                input(type="text", id="usernames", name="usernames", value=&form.usernames);
                label(for="roles") : "Roles (comma separated; empty: any)";
                input(type="text", id="roles", name="roles", value=&form.roles);
                label : "Account types (none: any)";
                @ for t in ["human", "system"] {
                    input(type="checkbox", id=format!("account-{t}"), name="account_types", value=t, checked?=form.account_types.iter().any(|x| x == t));
                    label(class="inline", for=format!("account-{t}")) : t;
                }
                label {
                    input(type="checkbox", name="enabled", value="true", checked?=form.enabled);
                    : " enabled";
                }
                p { button(type="submit", id="save-rule") : if form.id.is_some() { "Save rule" } else { "Create rule" }; }
            }
            h2 : "Explain a decision";
            form(method="get", action="/ui/policy", id="explain-form") {
                input(type="hidden", name="explain", value="1");
                label(for="ex-username") : "User";
                input(type="text", id="ex-username", name="username", value=&explain.username, required);
                label(for="ex-roles") : "Roles (comma separated)";
                input(type="text", id="ex-roles", name="roles", value=&explain.roles);
                label(for="ex-account") : "Account type";
                select(id="ex-account", name="account_type") {
                    option(value="human", selected?=explain.account_type != "system") : "human";
                    option(value="system", selected?=explain.account_type == "system") : "system";
                }
                label(for="ex-action") : "Action";
                select(id="ex-action", name="action") {
                    @ for a in ACTIONS {
                        option(value=a.as_str(), selected?=explain.action == a.as_str()) : a.as_str();
                    }
                }
                label(for="ex-repo") : "Repository";
                input(type="text", id="ex-repo", name="repository", value=&explain.repository);
                p { button(type="submit", id="explain") : "Explain"; }
            }
            @ if let Some(d) = &explain.decision {
                div(id="decision", class=if d.allowed { "notice" } else { "error" }) {
                    b : if d.allowed { "ALLOWED" } else { "DENIED" };
                    : format_args!(" — {}", d.reason);
                    @ if !d.rules.is_empty() {
                        ul {
                            @ for r in &d.rules {
                                li : format_args!("rule {} ({}, priority {}{}): {}", r.id, effect_str(r.effect), r.priority,
                                    if r.builtin { ", built in" } else { "" }, r.description);
                            }
                        }
                    }
                }
            }
        },
    )
}

fn who(r: &Rule) -> String {
    let mut parts = Vec::new();
    if !r.usernames.is_empty() {
        parts.push(format!("users {}", r.usernames.join(", ")));
    }
    if !r.roles.is_empty() {
        parts.push(format!("roles {}", r.roles.join(", ")));
    }
    if !r.account_types.is_empty() {
        parts.push(r.account_types.iter().map(|a: &AccountType| a.as_str()).collect::<Vec<_>>().join(", "));
    }
    if parts.is_empty() {
        "anyone".into()
    } else {
        parts.join("; ")
    }
}

/// The audit page's filters, as typed.
#[derive(Default)]
pub struct AuditFilters {
    pub event_type: String,
    pub actor: String,
    pub repository: String,
    pub since: String,
    pub until: String,
}

pub fn audit(
    p: &Page,
    f: &AuditFilters,
    rows: &[AuditRow],
    next: Option<i64>,
    v: Option<&Verification>,
) -> String {
    let filters = format!(
        "type={}&actor={}&repo={}&since={}&until={}",
        q(&f.event_type),
        q(&f.actor),
        q(&f.repository),
        q(&f.since),
        q(&f.until)
    );
    layout(
        p,
        "Audit log",
        html! {
            @ if let Some(v) = v {
                div(id="verification", class=if v.first_broken.is_none() { "notice" } else { "error" }) {
                    @ if let Some(id) = v.first_broken {
                        : format_args!("The hash chain is broken at row {id}: {}", v.reason.as_deref().unwrap_or(""));
                    } else {
                        : format_args!("The hash chain holds: {} rows verified.", v.rows);
                    }
                }
            } else {
                p { a(href=format!("/ui/audit?verify=1&{filters}"), id="verify") : "Verify the hash chain"; }
            }
            form(method="get", action="/ui/audit", id="audit-filters") {
                label(for="type") : "Event type";
                input(type="text", id="type", name="type", value=&f.event_type, placeholder="push, pull, denied, login_failed…");
                label(for="actor") : "Actor";
                input(type="text", id="actor", name="actor", value=&f.actor);
                label(for="repo") : "Repository";
                input(type="text", id="repo", name="repo", value=&f.repository);
                label(for="since") : "Since (YYYY-MM-DD)";
                input(type="text", id="since", name="since", value=&f.since);
                label(for="until") : "Until (YYYY-MM-DD, exclusive)";
                input(type="text", id="until", name="until", value=&f.until);
                p { button(type="submit", id="filter") : "Filter"; }
            }
            table(id="audit-rows") {
                tr { th : "ID"; th : "Time"; th : "Event"; th : "Actor"; th : "Peer"; th : "Repository"; th : "Reference"; th : "Outcome"; }
                @ for r in rows {
                    tr {
                        td : r.id;
                        td : time(r.time);
                        td : &r.event_type;
                        td : r.actor.as_deref().unwrap_or("-");
                        td(class="mono") : r.peer.as_deref().unwrap_or("-");
                        td : r.repository.as_deref().unwrap_or("-");
                        td(class="mono") : r.reference.as_deref().unwrap_or("-");
                        td : &r.outcome;
                    }
                }
            }
            @ if let Some(after) = next {
                p(class="pager") { a(id="next-page", href=format!("/ui/audit?{filters}&after={after}")) : "Next page →"; }
            }
        },
    )
}

pub fn users(p: &Page, users: &[UserInfo], new_username: &str) -> String {
    layout(
        p,
        "Users",
        html! {
            table(id="users") {
                tr { th : "User"; th : "Roles"; th : "Account"; th : "State"; th : "Created"; th : ""; }
                @ for u in users {
                    tr(id=format!("user-{}", u.username)) {
                        td : &u.username;
                        td : u.roles.join(", ");
                        td : &u.account_type;
                        td : if u.disabled { "disabled" } else { "enabled" };
                        td : time(u.created_at);
                        td {
                            form(class="inline", method="post", action="/ui/users/state") {
                                : csrf(p);
                                input(type="hidden", name="username", value=&u.username);
                                input(type="hidden", name="disabled", value=if u.disabled { "false" } else { "true" });
                                button(class=if u.disabled { "plain" } else { "danger" }, type="submit") : if u.disabled { "Enable" } else { "Disable" };
                            }
                            form(class="inline", method="post", action="/ui/users/password") {
                                : csrf(p);
                                input(type="hidden", name="username", value=&u.username);
                                input(type="password", name="password", placeholder="new password", autocomplete="new-password", aria-label=format!("New password for {}", u.username));
                                button(class="plain", type="submit") : "Reset password";
                            }
                        }
                    }
                }
            }
            h2 : "Add a user";
            form(method="post", action="/ui/users", id="add-user") {
                : csrf(p);
                label(for="new-username") : "Username";
                input(type="text", id="new-username", name="username", value=new_username, required);
                label(for="new-password") : "Password (at least 8 characters)";
                input(type="password", id="new-password", name="password", autocomplete="new-password", required);
                label(for="new-roles") : "Roles (comma separated)";
                input(type="text", id="new-roles", name="roles");
                label {
                    input(type="checkbox", name="system", value="true");
                    : " machine account (CI, robots)";
                }
                p { button(type="submit", id="add-user-button") : "Add user"; }
            }
        },
    )
}
