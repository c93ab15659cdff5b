//! The web pages in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`, Debian's `chromium-driver`; `scripts/setup` installs both). Loads a
//! neuron page of a small index and checks that its SVG graph holds the graph's
//! activating tokens, types a query into the search box and follows a result, and (with
//! the default model) runs a prompt in the prompt box. Screenshots go to
//! `target/serve-screenshots/` (or the folder `N2G_SCREENSHOTS` names).
//!
//! Without Chromium the test fails under `scripts/test` (which sets
//! `N2G_REQUIRE_BROWSER`) and under CI (`CI` set); run alone elsewhere, it is skipped
//! with a loud message.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use n2g_index::serve::{App, Limits, Server};
use n2g_index::{Index, LoadOptions, Model};

mod common;
#[path = "common/http.rs"]
mod http;

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The W3C WebDriver endpoint that opens a browser; its answer names it by `ID_KEY`.
const OPEN: &str = "/session";
const ID_KEY: &str = "sessionId";

/// A chromedriver process driving one browser window (W3C WebDriver).
struct Browser {
    driver: Child,
    addr: SocketAddr,
    window_id: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let t = Instant::now();
        while http::request(addr, "GET", "/status", None).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--window-size=1280,2200".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let mut b = Browser {
            driver,
            addr,
            window_id: String::new(),
            _profile: profile,
        };
        let v = b.call("POST", OPEN, Some(caps));
        b.window_id = v[ID_KEY].as_str().expect("a WebDriver id").to_string();
        b
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let r = http::request(self.addr, method, path, body.as_deref().map(str::as_bytes))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v = r.json();
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    /// A WebDriver command on this browser.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("{OPEN}/{}{path}", self.window_id), body)
    }

    fn go(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.command("GET", "/url", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The first element matching `css`, waiting up to 10 s for it.
    fn find(&self, css: &str) -> String {
        let t = Instant::now();
        loop {
            let body = json!({"using": "css selector", "value": css}).to_string();
            let path = format!("{OPEN}/{}/element", self.window_id);
            let r = http::request(self.addr, "POST", &path, Some(body.as_bytes())).unwrap();
            if r.status == 200 {
                return r.json()["value"][ELEMENT].as_str().unwrap().to_string();
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no element {css}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn script(&self, code: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": code, "args": []})),
        )
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.command("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let dir = std::env::var_os("N2G_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| common::root().join("target/serve-screenshots"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.window_id.is_empty() {
            let path = format!("{OPEN}/{}", self.window_id);
            let _ = http::request(self.addr, "DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Whether the browser is here; skips (or, under CI, fails) when it is not.
fn browser_present() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(DRIVER).exists() {
        return true;
    }
    let required = ["CI", "N2G_REQUIRE_BROWSER"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    assert!(
        !required,
        "{CHROMIUM} or {DRIVER} is missing: scripts/setup installs chromium and chromium-driver"
    );
    eprintln!(
        "\n*** SKIPPED the browser test: no {CHROMIUM} or {DRIVER} \
         (apt-get install chromium chromium-driver; scripts/test requires them) ***\n"
    );
    false
}

/// A token as the graph picture labels it: space `␣`, newline `↵`, tab `⇥`.
fn label(token: &str) -> String {
    token
        .replace(' ', "␣")
        .replace('\n', "↵")
        .replace('\t', "⇥")
}

#[test]
fn a_browser_reads_a_neuron_searches_and_follows_a_result() {
    if !browser_present() {
        return;
    }
    // Layer 3: its graphs have context tokens as well as activating ones.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    let out = common::bin()
        .args(["build", "--corpus", common::SMALL_CORPUS])
        .args(["--layers", "3", "--neurons", "0-15", "--quiet", "--index"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model_path = common::root().join("data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let model = model_path
        .exists()
        .then(|| Model::load(&model_path, &LoadOptions::default()).unwrap());
    let app = App::new(Index::open(&dir).unwrap(), model, Limits::default()).unwrap();
    let with_model = app.has_model();
    let server = Server::start(app, "127.0.0.1:0".parse().unwrap(), false).unwrap();
    let base = format!("http://{}", server.addr());

    // The neuron with the most activating and context tokens, from the API.
    let tokens_of = |v: &Value, kind: &str| -> Vec<String> {
        v["graph"][kind]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| t["token"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (neuron, tokens, context) = (0..16)
        .map(|n| {
            let v = http::get(server.addr(), &format!("/api/neuron/3:{n}")).json();
            let tokens = tokens_of(&v, "activating");
            let context = tokens_of(&v, "context");
            (format!("3:{n}"), tokens, context)
        })
        .max_by_key(|(_, t, c)| t.len().min(40) + c.len())
        .unwrap();
    assert!(!tokens.is_empty(), "some neuron has a graph");
    assert!(!context.is_empty(), "some neuron has context");

    let browser = Browser::start();
    browser.go(&format!("{base}/neuron/{neuron}"));
    browser.find("svg.n2g-graph");
    let drawn = browser.script(
        "return Array.from(document.querySelectorAll('svg.n2g-graph g.node.activating text')).map(t => t.textContent);",
    );
    let drawn: Vec<String> = serde_json::from_value(drawn).unwrap();
    let mut expected: Vec<String> = tokens.iter().take(40).map(|t| label(t)).collect();
    let mut got = drawn.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "the picture's activating tokens");
    // Every context token of the graph is drawn (once per distance), and nothing else.
    let drawn = browser.script(
        "return Array.from(document.querySelectorAll('svg.n2g-graph g.node.context text')).map(t => t.textContent);",
    );
    let drawn: std::collections::BTreeSet<String> = serde_json::from_value(drawn).unwrap();
    let context: std::collections::BTreeSet<String> = context.iter().map(|t| label(t)).collect();
    assert_eq!(drawn, context, "the picture's context tokens");
    let shot = browser.screenshot("neuron.png");
    eprintln!("screenshot: {}", shot.display());
    browser.script("document.getElementById('examples').scrollIntoView();");
    browser.screenshot("neuron-examples.png");

    if with_model {
        let text = browser.find("#predict textarea");
        browser.command(
            "POST",
            &format!("/element/{text}/value"),
            Some(json!({"text": "The capital of France is Paris. It is a city."})),
        );
        let run = browser.find("#predict button");
        browser.command("POST", &format!("/element/{run}/click"), Some(json!({})));
        browser.find("#prediction table");
        let rows =
            browser.script("return document.querySelectorAll('#prediction tbody tr').length;");
        assert!(rows.as_u64().unwrap() >= 8, "one row per token: {rows}");
        browser.script("document.getElementById('prompt').scrollIntoView();");
        browser.screenshot("prompt.png");
    }

    browser.go(&base);
    let input = browser.find("form.search.big input[name=q]");
    browser.command(
        "POST",
        &format!("/element/{input}/value"),
        Some(json!({"text": "layer:3"})),
    );
    browser.screenshot("home.png");
    let submit = browser.find("form.search.big button");
    browser.command("POST", &format!("/element/{submit}/click"), Some(json!({})));
    let first = browser.find("table.results a.neuron");
    assert!(
        browser.url().contains("/search?q=layer%3A3"),
        "{}",
        browser.url()
    );
    browser.screenshot("search.png");
    let name =
        browser.script("return document.querySelector('table.results a.neuron').textContent;");
    let name = name.as_str().unwrap().to_string();
    browser.command("POST", &format!("/element/{first}/click"), Some(json!({})));
    browser.find("svg.n2g-histogram");
    assert!(
        browser.url().ends_with(&format!("/neuron/{name}")),
        "{}",
        browser.url()
    );
    let h1 = browser.script("return document.querySelector('h1').textContent;");
    assert_eq!(h1.as_str(), Some(format!("neuron {name}").as_str()));
    drop(browser);
    server.stop().unwrap();
}
