//! The web UI's pages: horrorshow templates compiled into the binary, and
//! the stylesheet. Pure rendering: a page gets the values the `ui`
//! frontend fetched through `service` and returns HTML.
//!
//! Invariant: everything a user or an image can influence is inserted as
//! text or as an attribute value, which horrorshow escapes; nothing here
//! uses `Raw`. No inline script or style (the CSP forbids both): behaviour
//! comes from htmx attributes, looks from `style.css`, and every action is
//! a plain link or form that works without JavaScript.

pub mod pages;

use horrorshow::helper::doctype;
use horrorshow::{html, RenderOnce, Template};

/// The stylesheet, served at `/ui/static/style.css`.
pub const STYLE: &str = include_str!("style.css");

/// The icon, served at `/ui/static/favicon.svg`.
pub const FAVICON: &str = include_str!("favicon.svg");

/// What every page needs: who is logged in, the CSRF token for its forms,
/// and a message to show.
#[derive(Clone, Copy)]
pub struct Page<'a> {
    /// Empty when nobody is logged in.
    pub user: &'a str,
    pub admin: bool,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

/// htmx settings that keep it inside the CSP: no inline styles, no eval.
const HTMX_CONFIG: &str =
    r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;

/// A whole page: head, navigation, messages, then `body`.
pub fn layout(p: &Page, title: &str, body: impl RenderOnce) -> String {
    let hx_headers = format!(r#"{{"X-CSRF-Token":"{}"}}"#, p.csrf);
    html! {
        : doctype::HTML;
        html(lang="en") {
            head {
                meta(charset="utf-8");
                meta(name="viewport", content="width=device-width, initial-scale=1");
                meta(name="htmx-config", content=HTMX_CONFIG);
                title : format_args!("{title} · mcr");
                link(rel="stylesheet", href="/ui/static/style.css");
                link(rel="icon", href="/ui/static/favicon.svg", type="image/svg+xml");
                script(src="/ui/static/htmx.min.js", defer) {}
            }
            body(hx-headers=hx_headers) {
                header {
                    a(class="brand", href="/ui/") : "mcr";
                    @ if !p.user.is_empty() {
                        a(href="/ui/") : "Dashboard";
                        a(href="/ui/repos") : "Repositories";
                        @ if p.admin {
                            a(href="/ui/policy") : "Policy";
                            a(href="/ui/audit") : "Audit";
                            a(href="/ui/users") : "Users";
                        }
                        span(class="spacer") {}
                        span(id="whoami") : p.user;
                        form(method="post", action="/ui/logout") {
                            input(type="hidden", name="csrf", value=p.csrf);
                            button(class="plain", type="submit", id="logout") : "Log out";
                        }
                    }
                }
                main {
                    h1 : title;
                    @ if let Some(e) = p.error {
                        div(class="error", role="alert", id="error") : e;
                    }
                    @ if let Some(n) = p.notice {
                        div(class="notice", role="status", id="notice") : n;
                    }
                    : body;
                }
            }
        }
    }
    .into_string()
    .unwrap_or_default()
}

/// A fragment (an htmx swap target) on its own.
pub fn fragment(body: impl RenderOnce) -> String {
    html! { : body; }.into_string().unwrap_or_default()
}

/// Bytes for people: 1.5 MiB (negative counts as 0).
pub fn bytes(n: i64) -> String {
    crate::model::human_bytes(n.max(0))
}

/// A query-string value, percent-encoded.
pub fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Unix seconds as `2026-11-30 06:00:00Z`.
pub fn time(t: i64) -> String {
    crate::model::rfc3339(t).replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_users_write_is_escaped() {
        let p = Page {
            user: "<b>eve</b>",
            admin: false,
            csrf: "\"x",
            error: Some("<script>alert(1)</script>"),
            notice: None,
        };
        let html = layout(&p, "a<b", horrorshow::html! { p : "'\"<>&"; });
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>eve"), "{html}");
        assert!(html.contains("&lt;script&gt;") && html.contains("a&lt;b"), "{html}");
        assert!(html.contains("value=\"&quot;x\""), "attributes are escaped: {html}");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(q("a/b c&d"), "a%2Fb+c%26d");
    }
}
