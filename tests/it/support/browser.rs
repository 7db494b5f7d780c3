//! A real headless Chromium driven through chromedriver's WebDriver API
//! (Debian's `chromium` and `chromium-driver`, installed by scripts/deps),
//! spoken directly over HTTP with ureq.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Chrome {
    driver: Child,
    base: String,
    agent: ureq::Agent,
    session: String,
    shots: PathBuf,
    shot: usize,
}

impl Chrome {
    /// A fresh browser; `javascript: false` turns scripts off for every page.
    pub fn start(javascript: bool, shots: &str) -> Chrome {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/deps test installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut prefs = json!({});
        if !javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--no-first-run"],
                "prefs": prefs,
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let mut chrome =
            Chrome { driver, base, agent, session: String::new(), shots: PathBuf::new(), shot: 0 };
        let v = chrome.call("POST", "/session", Some(caps));
        chrome.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        let root = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        chrome.shots = root.join("ui-screenshots").join(shots);
        let _ = std::fs::remove_dir_all(&chrome.shots);
        std::fs::create_dir_all(&chrome.shots).unwrap();
        chrome
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self.agent.post(&url).send_json(b.unwrap_or(json!({}))),
        }
        .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let v: Value = resp.into_body().read_json().unwrap_or(Value::Null);
        v["value"].clone()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None).as_str().unwrap_or_default().to_string()
    }

    /// The element matching `css`, waiting up to 20 s for it to appear.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.call(
                "POST",
                &self.s("/element"),
                Some(json!({ "using": "css selector", "value": css })),
            );
            if let Some(id) = v[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no element {css} on {}: {v}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn exists(&self, css: &str) -> bool {
        let v =
            self.call("POST", &self.s("/elements"), Some(json!({ "using": "css selector", "value": css })));
        v.as_array().is_some_and(|a| !a.is_empty())
    }

    pub fn click(&self, css: &str) {
        let id = self.find(css);
        let v = self.call("POST", &self.s(&format!("/element/{id}/click")), None);
        assert!(v.is_null() || v.get("error").is_none(), "click {css}: {v}");
    }

    pub fn fill(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &self.s(&format!("/element/{id}/clear")), None);
        self.call("POST", &self.s(&format!("/element/{id}/value")), Some(json!({ "text": text })));
    }

    /// Types without clearing first (keys such as Enter: "\u{E007}").
    pub fn keys(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &self.s(&format!("/element/{id}/value")), Some(json!({ "text": text })));
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &self.s(&format!("/element/{id}/text")), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn value(&self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &self.s(&format!("/element/{id}/property/value")), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits up to 20 s for `css`'s text to satisfy `ok`.
    pub fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = if self.exists(css) { self.text(css) } else { String::new() };
            if ok(&t) {
                return t;
            }
            assert!(Instant::now() < deadline, "{css} never became right on {}: {t:?}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_url(&self, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let u = self.url();
            if ok(&u) {
                return u;
            }
            assert!(Instant::now() < deadline, "the browser stayed at {u}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the page as a test artifact; returns its path.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot of {name}");
        self.shot += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.shot));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The console messages of level SEVERE so far (errors, CSP violations,
    /// failed loads).
    pub fn errors(&self) -> Vec<String> {
        let v = self.call("POST", &self.s("/se/log"), Some(json!({ "type": "browser" })));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every console message so far, for diagnosis.
    pub fn console(&self) -> Vec<String> {
        let v = self.call("POST", &self.s("/se/log"), Some(json!({ "type": "browser" })));
        v.as_array()
            .map(|a| a.iter().map(|e| format!("{} {}", e["level"], e["message"])).collect())
            .unwrap_or_default()
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.agent.delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
