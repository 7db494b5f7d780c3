//! The web UI in a real headless Chromium against the real binary: log in,
//! visit every page, search, create, edit, explain, toggle and delete a
//! policy rule, delete a tag, run GC, filter the audit log, add a user, log
//! out — once with JavaScript on and once with it off — saving a screenshot
//! of each page (under `<target>/ui-screenshots/`), with no console errors
//! and no CSP violations.

use crate::support::*;

fn walk_every_page(javascript: bool) {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_on(&dir.path().join("data"), &[("MCR_GC_MIN_AGE", "0s")]);
    srv.push_image("team/app", "v1", 1);
    srv.push_image("team/app", "v2", 2);
    srv.push_image("team/lib", "latest", 3);
    let base = format!("http://{}", srv.host());
    let mut b = Chrome::start(javascript, if javascript { "js" } else { "nojs" });

    // Login: the dashboard sends us to the form.
    b.goto(&format!("{base}/ui/"));
    b.wait_url(|u| u.ends_with("/ui/login"));
    b.screenshot("login");
    b.fill("#username", "admin");
    b.fill("#password", "not the password");
    b.click("#login");
    b.wait_text("#error", |t| t.contains("Wrong username or password"));
    b.fill("#username", "admin");
    b.fill("#password", &srv.admin);
    b.click("#login");
    b.wait_url(|u| u.ends_with("/ui/"));
    assert_eq!(b.text("#whoami"), "admin");
    assert!(b.text("#counts").contains("repositories"));
    assert!(b.exists("#activity-chart rect"), "the activity chart is drawn");
    assert!(b.text("#recent-pushes").contains("team/app"));
    b.screenshot("dashboard");

    // Repositories, and the search (as you type with htmx, a form without).
    b.click("header a[href='/ui/repos']");
    b.wait_text("#repo-list", |t| t.contains("team/app") && t.contains("team/lib"));
    b.screenshot("repositories");
    if javascript {
        b.keys("#q", "lib");
        b.wait_text("#repo-list", |t| t.contains("team/lib") && !t.contains("team/app"));
    } else {
        b.fill("#q", "lib");
        b.keys("#q", "\u{E007}");
        b.wait_url(|u| u.contains("q=lib"));
        b.wait_text("#repo-list", |t| t.contains("team/lib") && !t.contains("team/app"));
    }
    b.screenshot("repositories-search");

    // A repository, a manifest, and deleting a tag.
    b.goto(&format!("{base}/ui/repo?name=team/app"));
    b.wait_text("#tags", |t| t.contains("v1") && t.contains("v2"));
    assert!(b.text("#tags").contains(" KiB"), "image sizes: {}", b.text("#tags"));
    b.screenshot("repository");
    b.click("#tags a[href^='/ui/manifest']");
    b.wait_url(|u| u.contains("/ui/manifest"));
    assert!(b.value("#pull-line").starts_with(&format!("docker pull {}/team/app@sha256:", srv.host())));
    assert!(b.text("#layers").contains("sha256:"));
    b.screenshot("manifest");
    b.goto(&format!("{base}/ui/repo?name=team/app"));
    b.click("#tags form[action='/ui/tag/delete'] button");
    b.wait_text("#notice", |t| t.contains("Tag deleted"));
    assert_eq!(b.text("#tags").matches("sha256:").count(), 1, "one tag left");
    b.screenshot("repository-after-tag-delete");
    // Deleting a repository takes a confirm step.
    b.goto(&format!("{base}/ui/repo?name=team/lib"));
    b.click("#delete-repo");
    b.wait_url(|u| u.contains("/ui/repo/delete"));
    b.screenshot("repository-delete-confirm");
    b.click("#confirm-delete");
    b.wait_text("#notice", |t| t.contains("Repository deleted"));
    assert!(!b.text("#repo-list").contains("team/lib"));

    // Garbage collection from the dashboard.
    b.goto(&format!("{base}/ui/"));
    b.click("#run-gc");
    if javascript {
        // The status refreshes itself while the collection runs.
        b.wait_text("#gc-status", |t| t.contains("Last run"));
    } else {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !b.text("#gc-status").contains("Last run") {
            assert!(std::time::Instant::now() < deadline, "the collection never finished");
            std::thread::sleep(std::time::Duration::from_millis(200));
            b.goto(&format!("{base}/ui/"));
        }
    }
    b.screenshot("dashboard-after-gc");

    // Policy: create, edit, explain, disable, delete.
    b.click("header a[href='/ui/policy']");
    b.wait_text("#rules", |t| t.contains("ID"));
    b.screenshot("policy");
    b.fill("#description", "no pushes by bob");
    b.fill("#priority", "10");
    b.click("#effect option[value='deny']");
    b.click("#action-push");
    b.fill("#repositories", "team/*");
    b.fill("#usernames", "bob");
    b.click("#save-rule");
    b.wait_text("#notice", |t| t.contains("Rule saved"));
    b.wait_text("#rules", |t| t.contains("no pushes by bob"));
    b.click("#rules a[href^='/ui/policy?edit=']");
    b.wait_url(|u| u.contains("edit="));
    assert_eq!(b.value("#description"), "no pushes by bob");
    b.fill("#description", "bob may not push to team");
    b.click("#save-rule");
    b.wait_text("#rules", |t| t.contains("bob may not push to team"));
    b.fill("#ex-username", "bob");
    b.click("#ex-action option[value='push']");
    b.fill("#ex-repo", "team/app");
    b.click("#explain");
    b.wait_text("#decision", |t| t.contains("DENIED") && t.contains("bob may not push to team"));
    b.screenshot("policy-explain");
    b.click("#rules form[action='/ui/policy/toggle'] button");
    b.wait_text("#rules", |t| t.contains("disabled"));
    b.click("#rules form[action='/ui/policy/delete'] button");
    b.wait_text("#notice", |t| t.contains("Rule deleted"));
    assert!(!b.text("#rules").contains("bob may not push"));

    // The audit log, filtered, and its chain verified.
    b.click("header a[href='/ui/audit']");
    b.fill("#type", "policy_create");
    b.click("#filter");
    b.wait_text("#audit-rows", |t| t.contains("policy_create") && !t.contains("push "));
    b.click("#verify");
    b.wait_text("#verification", |t| t.contains("hash chain holds"));
    b.screenshot("audit");

    // Users: add one.
    b.click("header a[href='/ui/users']");
    b.fill("#new-username", "carol");
    b.fill("#new-password", "carol-password-1");
    b.click("#add-user-button");
    b.wait_text("#notice", |t| t.contains("User added"));
    assert!(b.exists("#user-carol"));
    b.screenshot("users");

    // Log out: back to the login form, and the dashboard is closed again.
    b.click("#logout");
    b.wait_url(|u| u.ends_with("/ui/login"));
    b.goto(&format!("{base}/ui/"));
    b.wait_url(|u| u.ends_with("/ui/login"));
    // The one expected entry: the 401 answering the wrong password above.
    let (expected, errors): (Vec<String>, Vec<String>) = b.errors().into_iter().partition(|e| {
        e.ends_with(
            "/ui/login - Failed to load resource: the server responded with a status of 401 (Unauthorized)",
        )
    });
    assert_eq!(expected.len(), 1, "the wrong password's 401: {expected:?}");
    assert!(errors.is_empty(), "console errors or CSP violations: {errors:#?}");
}

#[test]
fn every_page_works_in_a_browser_with_javascript() {
    walk_every_page(true);
}

#[test]
fn every_page_works_in_a_browser_without_javascript() {
    walk_every_page(false);
}
