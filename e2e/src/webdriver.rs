//! A minimal WebDriver client for the browser test: `chromedriver` as a child process,
//! headless Debian Chromium behind it, W3C WebDriver JSON over HTTP with reqwest.
//!
//! Only what the test needs: navigate, find elements, type, click, run a script, take a
//! screenshot, read the browser console. Chromedriver runs in its own process group and
//! the whole group (chromedriver and every Chromium process it started) is killed on
//! drop, so a failing test leaves no browser behind.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The key W3C WebDriver uses for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Chromium and chromedriver are, if both are installed.
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

impl Tools {
    /// Finds Chromium (`$CHROMIUM_BIN`, `/usr/bin/chromium`, or `chromium` on PATH) and
    /// chromedriver (`$CHROMEDRIVER_BIN` or on PATH); `Err` says what is missing.
    pub fn find() -> Result<Tools, String> {
        let chromium = std::env::var_os("CHROMIUM_BIN")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.exists()))
            .or_else(|| on_path("chromium"));
        let chromedriver = std::env::var_os("CHROMEDRIVER_BIN")
            .map(PathBuf::from)
            .or_else(|| on_path("chromedriver"));
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Ok(Tools {
                chromium,
                chromedriver,
            }),
            (c, d) => Err(format!(
                "headless browser not available: chromium {}, chromedriver {} \
                 (install with `apt-get install chromium chromium-driver`; .ci/run does)",
                if c.is_some() { "found" } else { "missing" },
                if d.is_some() { "found" } else { "missing" },
            )),
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// One chromedriver process with one browser session.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: Child,
    profile: TempDir,
}

/// A found element.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session with a
    /// fresh profile and a `width`×`height` window.
    pub async fn start(tools: &Tools, width: u32, height: u32) -> Browser {
        let port = testkit::free_port();
        let driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.chromedriver.display()));
        let profile = tempfile::tempdir().expect("profile dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            http,
            session: String::new(),
            driver,
            profile,
        };

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = browser.http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser.profile.path().display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": tools.chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let r = browser
            .call("POST", &format!("{base}/session"), Some(caps))
            .await;
        let id = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {r}"));
        browser.session = format!("{base}/session/{id}");
        browser
    }

    /// One WebDriver command; returns its `value`, panics on a WebDriver error.
    async fn call(&self, method: &str, url: &str, body: Option<Value>) -> Value {
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {url}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "webdriver {method} {url}: {status} {}",
            v["value"]
        );
        v["value"].clone()
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("{}{path}", self.session), body)
            .await
    }

    /// Opens `url` (returns once the page has loaded).
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// The first element matching the CSS `selector`, if any.
    pub async fn find(&self, selector: &str) -> Option<Element<'_>> {
        let body = json!({ "using": "css selector", "value": selector });
        let r = self.cmd("POST", "/elements", Some(body)).await;
        let id = r.as_array()?.first()?[ELEMENT_KEY].as_str()?.to_owned();
        Some(Element { browser: self, id })
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.cmd("POST", "/execute/sync", Some(body)).await
    }

    /// A PNG of the viewport, written to `path` (parent folders created).
    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 screenshot"))
            .expect("decode screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Browser console entries since the last call, as `LEVEL message` lines.
    pub async fn console(&self) -> Vec<String> {
        let r = self
            .cmd("POST", "/se/log", Some(json!({ "type": "browser" })))
            .await;
        r.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            self.http.delete(&self.session).send(),
        )
        .await;
        self.kill();
    }

    fn kill(&mut self) {
        // The whole process group: chromedriver and the browser it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    /// Types `text` into the element (a user's keystrokes).
    pub async fn send_keys(&self, text: &str) {
        let body = json!({ "text": text });
        self.browser
            .cmd("POST", &self.path("/value"), Some(body))
            .await;
    }

    /// Clears an input.
    pub async fn clear(&self) {
        self.browser.cmd("POST", &self.path("/clear"), None).await;
    }

    /// Clicks the element.
    pub async fn click(&self) {
        self.browser.cmd("POST", &self.path("/click"), None).await;
    }

    /// Its rendered text.
    pub async fn text(&self) -> String {
        let v = self.browser.cmd("GET", &self.path("/text"), None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute, if present.
    pub async fn attribute(&self, name: &str) -> Option<String> {
        let v = self
            .browser
            .cmd("GET", &self.path(&format!("/attribute/{name}")), None)
            .await;
        v.as_str().map(str::to_owned)
    }
}
