//! A small W3C WebDriver client over `reqwest`, driving Debian's headless `chromium` through
//! `chromedriver`: enough for the chart page's test (navigate, run a script, click, type, move the mouse,
//! screenshot).
//!
//! [`Browser::start`] returns `None` (after a loud message) when chromium or chromedriver is not
//! installed, unless the environment variable `CI` is set: then a missing browser fails the test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::free_local_addr;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The W3C key under which an element reference is returned.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one headless chromium session; both end when dropped.
pub struct Browser {
    driver: Child,
    driver_addr: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless chromium with a fresh profile and a `width` x `height` window.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        if let Some(missing) = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .find(|path| !Path::new(path).exists())
        {
            let message = format!(
                "{missing} is not installed: `apt-get install -y chromium chromium-driver` to run the browser test"
            );
            assert!(std::env::var_os("CI").is_none(), "{message}");
            eprintln!("\n!!!!! SKIPPED: {message} !!!!!\n");
            return None;
        }
        let driver_addr = free_local_addr();
        let port = driver_addr.rsplit(':').next().expect("host:port");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let profile = tempfile::tempdir().expect("a profile dir");
        let mut browser = Browser {
            driver,
            driver_addr,
            session: String::new(),
            http,
            _profile: profile,
        };
        browser.wait_until_ready().await;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let created = browser.command("POST", "/session", capabilities).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {created}"))
            .to_string();
        Some(browser)
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = format!("http://{}/status", self.driver_addr);
            if let Ok(response) = self.http.get(&url).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One WebDriver command; returns its `value`, panics with the driver's error otherwise.
    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("http://{}{path}", self.driver_addr);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("WebDriver {method} {path}: {err}"));
        let status = response.status();
        let reply: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "WebDriver {method} {path} failed ({status}): {reply}"
        );
        reply["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.command("POST", &self.session_path("/url"), json!({ "url": url }))
            .await;
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn execute(&self, script: &str) -> Value {
        let body = json!({ "script": script, "args": [] });
        self.command("POST", &self.session_path("/execute/sync"), body)
            .await
    }

    /// Runs the element command `action` (`click`, `clear`, `value`) on the first element matching the
    /// CSS `selector`.
    async fn on_element(&self, selector: &str, action: &str, body: Value) {
        let find = json!({ "using": "css selector", "value": selector });
        let element = self
            .command("POST", &self.session_path("/element"), find)
            .await;
        let id = element[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element for `{selector}`: {element}"));
        let path = self.session_path(&format!("/element/{id}/{action}"));
        self.command("POST", &path, body).await;
    }

    /// Clicks the first element matching the CSS `selector`, as a user would.
    pub async fn click(&self, selector: &str) {
        self.on_element(selector, "click", json!({})).await;
    }

    /// Empties the input matching `selector` and types `text` into it, key by key.
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.on_element(selector, "clear", json!({})).await;
        self.on_element(selector, "value", json!({ "text": text }))
            .await;
    }

    /// Moves the mouse to (`x`, `y`) in the viewport, as a user hovering there.
    pub async fn move_pointer(&self, x: i64, y: i64) {
        let move_to =
            json!({"type": "pointerMove", "duration": 0, "origin": "viewport", "x": x, "y": y});
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [move_to],
        }]});
        self.command("POST", &self.session_path("/actions"), actions)
            .await;
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = self
            .command("GET", &self.session_path("/screenshot"), Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 screenshot"))
            .expect("screenshot decodes")
    }

    /// Ends the session with a blocking `DELETE` (usable from `Drop`, even while a test panics), so
    /// chromium exits with it.
    fn delete_session(&self) {
        if self.session.is_empty() {
            return;
        }
        let Ok(mut stream) = TcpStream::connect(&self.driver_addr) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session, self.driver_addr
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.delete_session();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
