//! The web server in-process over real HTTP: every page and API route on a small index,
//! every error status, the limits, path traversal, a reindex while serving, and a
//! graceful stop. API answers are validated against `schema/` and compared with the
//! CLI's `--json` output for the same request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use boon::{Compiler, Schemas};
use serde_json::Value;

use n2g_index::serve::{App, Limits, Server};
use n2g_index::{Index, LoadOptions, Model};

mod common;
#[path = "common/http.rs"]
mod http;
use http::{get, post, request};

/// A 16-neuron index of layer 0, built once for the whole file, and a copy of it that
/// the CLI reads (so that a CLI run never waits for a server of another test).
fn dirs() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap().keep();
        let index = tmp.join("index");
        let out = common::small_build(&index, "0-15", &[]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copy = tmp.join("cli-index");
        copy_dir(&index, &copy);
        (index, copy)
    })
}

/// The index the servers of this file serve.
fn index_dir() -> &'static Path {
    &dirs().0
}

/// The CLI's stdout for `args` on (a copy of) the test index.
fn cli_stdout(args: &[&str]) -> Vec<u8> {
    let out = common::bin()
        .args(args)
        .arg("--index")
        .arg(&dirs().1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn start(dir: &Path, model: Option<Model>, limits: Limits) -> Server {
    let app = App::new(Index::open(dir).unwrap(), model, limits).unwrap();
    Server::start(app, "127.0.0.1:0".parse().unwrap(), false).unwrap()
}

/// The CLI's stdout for `args` on the test index, as JSON.
fn cli_json(args: &[&str]) -> Value {
    serde_json::from_slice(&cli_stdout(args)).unwrap()
}

fn validate(schema: &str, doc: &Value) {
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    let path = common::root().join("schema").join(schema);
    let id = compiler
        .compile(path.to_str().unwrap(), &mut schemas)
        .unwrap();
    schemas
        .validate(doc, id)
        .unwrap_or_else(|e| panic!("{schema}: {e}"));
}

/// An error answer: the status, and a JSON `{"error": "..."}` body.
fn assert_api_error(r: &http::Response, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    let message = body["error"]
        .as_str()
        .expect("an error message")
        .to_string();
    assert!(!message.is_empty());
    message
}

#[test]
fn api_routes_answer_the_cli_objects() {
    let server = start(index_dir(), None, Limits::default());
    let addr = server.addr();

    let info = get(addr, "/api/info");
    assert_eq!(info.status, 200);
    assert!(info
        .header("content-type")
        .unwrap()
        .contains("application/json"));
    let info = info.json();
    validate("info.schema.json", &info);
    assert_eq!(info["neurons"], 16);

    let query = get(addr, "/api/query?q=layer%3A0&limit=5").json();
    validate("query-result.schema.json", &query);
    let hits = query.as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 5);
    assert!(hits.iter().all(|h| h["layer"] == 0));
    assert_eq!(
        query,
        cli_json(&["query", "layer:0", "--limit", "5", "--json"])
    );

    let neuron = get(addr, "/api/neuron/0:3").json();
    validate("show.schema.json", &neuron);
    assert_eq!(neuron["neuron"], "0:3");
    assert_eq!(neuron, cli_json(&["show", "0:3", "--json"]));
    let few = get(addr, "/api/neuron/0:3?examples=2").json();
    assert_eq!(few["examples"].as_array().map(Vec::len), Some(2));

    let similar = get(addr, "/api/similar/0:3?top=3").json();
    validate("similar-result.schema.json", &similar);
    assert!(similar.as_array().unwrap().len() <= 3);
    assert_eq!(
        similar,
        cli_json(&["similar", "0:3", "--top", "3", "--json"])
    );
    server.stop().unwrap();
}

#[test]
fn pages_render_and_link() {
    let server = start(index_dir(), None, Limits::default());
    let addr = server.addr();
    let home = get(addr, "/");
    assert_eq!(home.status, 200);
    assert!(home
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let home = home.text();
    assert!(home.contains("<form class=\"search big\" action=\"/search\""));
    assert!(
        home.contains("href=\"/search?q=layer:0\""),
        "per-layer row links its layer"
    );

    let search = get(addr, "/search?q=layer%3A0").text();
    assert!(search.contains("href=\"/neuron/0:"), "{search}");

    let page = get(addr, "/neuron/0:3");
    assert_eq!(page.status, 200);
    assert!(
        page.body.len() <= 150_000,
        "page is {} bytes",
        page.body.len()
    );
    let page = page.text();
    // The page's picture is the one `show --format svg` writes.
    let svg = String::from_utf8(cli_stdout(&["show", "0:3", "--format", "svg"])).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(
        page.contains(svg.trim_end()),
        "the page holds the CLI's SVG"
    );
    assert!(page.contains("class=\"n2g-histogram\""));
    assert!(page.contains("rel=\"next\" href=\"/neuron/0:4\""));
    assert!(page.contains("rel=\"prev\" href=\"/neuron/0:2\""));
    assert!(
        !page.contains("id=\"predict\""),
        "no prompt box without a model"
    );
    let first = get(addr, "/neuron/0:0").text();
    assert!(!first.contains("rel=\"prev\""));

    let css = get(addr, "/assets/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(get(addr, "/assets/app.js").status, 200);
    let jump = get(addr, "/neuron?id=0%3A5");
    assert_eq!(jump.status, 303);
    assert_eq!(jump.header("location"), Some("/neuron/0:5"));
    server.stop().unwrap();
}

#[test]
fn bad_requests_get_clear_errors() {
    let limits = Limits {
        query_bytes: 100,
        page_size: 50,
        body_bytes: 1024,
        ..Limits::default()
    };
    let server = start(index_dir(), None, limits);
    let addr = server.addr();
    // Neurons out of range: 404; not a neuron: 400.
    assert_api_error(&get(addr, "/api/neuron/0:9999"), 404);
    assert_api_error(&get(addr, "/api/neuron/7:0"), 404);
    assert_api_error(&get(addr, "/api/similar/0:9999"), 404);
    assert_api_error(&get(addr, "/api/neuron/abc"), 400);
    // Queries: missing, unparsable (with the parser's position), too long.
    assert_api_error(&get(addr, "/api/query"), 400);
    let bad = get(addr, "/api/query?q=token%3A%22x");
    assert_api_error(&bad, 400);
    assert!(bad.json()["position"].is_u64(), "{}", bad.text());
    let long = format!("/api/query?q={}", "a".repeat(101));
    assert!(assert_api_error(&get(addr, &long), 400).contains("at most 100"));
    // Page size and other numbers.
    assert_api_error(&get(addr, "/api/query?q=layer%3A0&limit=0"), 400);
    assert!(assert_api_error(&get(addr, "/api/query?q=layer%3A0&limit=51"), 400).contains("50"));
    assert_api_error(&get(addr, "/api/query?q=layer%3A0&limit=ten"), 400);
    assert_api_error(&get(addr, "/api/similar/0:3?top=0"), 400);
    assert_api_error(&get(addr, "/api/similar/0:3?threshold=2"), 400);
    assert_api_error(&get(addr, "/api/neuron/0:3?examples=-1"), 400);
    // Prediction: body too large, not JSON, wrong method, no model.
    let big = vec![b'x'; 4096];
    assert_api_error(&post(addr, "/api/predict", &big), 413);
    assert_api_error(&post(addr, "/api/predict", b"{\"neuron\": 3}"), 400);
    assert_api_error(&get(addr, "/api/predict"), 405);
    assert_api_error(
        &post(
            addr,
            "/api/predict",
            br#"{"neuron": "0:3", "text": "hello"}"#,
        ),
        503,
    );
    assert_api_error(&get(addr, "/api/nothing"), 404);
    // Pages answer with readable HTML pages.
    for (path, status) in [
        ("/neuron/0:9999", 404),
        ("/neuron/zz", 400),
        ("/no/such/page", 404),
        ("/search?q=layer%3A0&page=3", 400),
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, status, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(
            r.text().contains(&format!("<h1>{status} ")),
            "{path}: {}",
            r.text()
        );
    }
    // A query error is shown where it was typed.
    let page = get(addr, "/search?q=token%3A%22x");
    assert_eq!(page.status, 400);
    assert!(
        page.text().contains("<pre class=\"query\">token:<mark"),
        "{}",
        page.text()
    );
    server.stop().unwrap();
}

#[test]
fn no_file_outside_the_assets_is_served() {
    let server = start(index_dir(), None, Limits::default());
    let addr = server.addr();
    for path in [
        "/assets/../Cargo.toml",
        "/assets/..%2FCargo.toml",
        "/assets/%2e%2e%2fCargo.toml",
        "/assets/..%5c..%5cCargo.toml",
        "/assets/style.css/../../Cargo.toml",
        "/../../../../etc/passwd",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/assets//etc/passwd",
        "/assets/",
        "/Cargo.toml",
        "/src/lib.rs",
    ] {
        let r = request(addr, "GET", path, None).unwrap();
        assert!(
            r.status == 404 || r.status == 400,
            "{path}: {} {}",
            r.status,
            r.text()
        );
        let text = r.text();
        assert!(
            !text.contains("[package]") && !text.contains("root:"),
            "{path}"
        );
    }
    server.stop().unwrap();
}

#[test]
fn a_deadline_cuts_slow_requests_and_a_broken_index_is_a_500() {
    let server = start(
        index_dir(),
        None,
        Limits {
            deadline: Duration::from_nanos(1),
            ..Limits::default()
        },
    );
    let r = get(server.addr(), "/api/query?q=layer%3A0");
    assert!(assert_api_error(&r, 503).contains("limit"));
    server.stop().unwrap();

    // A copy of the index whose search folder goes away while serving.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("index");
    copy_dir(index_dir(), &copy);
    let server = start(&copy, None, Limits::default());
    assert_eq!(get(server.addr(), "/api/query?q=layer%3A0").status, 200);
    std::fs::rename(copy.join("search"), tmp.path().join("gone")).unwrap();
    assert_api_error(&get(server.addr(), "/api/query?q=layer%3A0"), 500);
    let page = get(server.addr(), "/search?q=layer%3A0");
    assert_eq!(page.status, 500);
    assert!(page.text().contains("<h1>500 "));
    server.stop().unwrap();
}

#[test]
fn a_reindex_while_serving_is_refused_or_seen_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("index");
    copy_dir(index_dir(), &copy);
    let other = tmp.path().join("other");
    let out = common::small_build(&other, "0-3", &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = start(&copy, None, Limits::default());
    let layer0 = || get(server.addr(), "/api/query?q=layer%3A0&limit=50");
    let neurons = |r: http::Response| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text());
        let mut n: Vec<String> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["neuron"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let before = neurons(layer0());
    assert!(before.len() > 4, "{before:?}");
    // A reindex by another process either is refused while the server reads the
    // index, or writes a new generation that the server then reads whole.
    let out = common::bin()
        .args(["reindex", "--index"])
        .arg(&copy)
        .output()
        .unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("in use"), "{stderr}");
    }
    assert_eq!(neurons(layer0()), before);
    // A new generation switched in under the server (as a reindex does: written beside
    // the live one, then `CURRENT` replaced atomically) is read whole: here the
    // generation of a 4-neuron index.
    let live = std::fs::read_to_string(other.join("search/CURRENT")).unwrap();
    let search = copy.join("search");
    copy_dir(
        &other.join("search").join(live.trim()),
        &search.join(live.trim()),
    );
    std::fs::write(search.join("CURRENT.tmp"), &live).unwrap();
    std::fs::rename(search.join("CURRENT.tmp"), search.join("CURRENT")).unwrap();
    let after = neurons(layer0());
    assert!(!after.is_empty());
    let four = ["0:0", "0:1", "0:2", "0:3"];
    assert!(
        after.iter().all(|n| four.contains(&n.as_str())),
        "{after:?}"
    );
    server.stop().unwrap();
}

#[test]
fn stopping_lets_requests_in_flight_finish() {
    let server = start(index_dir(), None, Limits::default());
    let addr: SocketAddr = server.addr();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut complete = 0;
                loop {
                    match request(addr, "GET", "/api/neuron/0:3", None) {
                        Ok(r) => {
                            assert_eq!(r.status, 200);
                            assert_eq!(r.json()["neuron"], "0:3");
                            complete += 1;
                        }
                        // Refused or reset once the server has stopped.
                        Err(_) => return complete,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    server.stop().unwrap();
    let done: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(done > 0);
    assert!(request(addr, "GET", "/api/info", None).is_err());
}

#[test]
fn predictions_run_the_model() {
    let path = common::root().join("data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !path.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the default model is missing in CI"
        );
        eprintln!(
            "skipped: no model at {} (scripts/setup fetches it)",
            path.display()
        );
        return;
    }
    let model = Model::load(&path, &LoadOptions::default()).unwrap();
    let limits = Limits {
        prompt_tokens: 16,
        ..Limits::default()
    };
    let server = start(index_dir(), Some(model), limits);
    let addr = server.addr();
    let text = "The capital of France is Paris.";
    let body = serde_json::json!({"neuron": "0:3", "text": text}).to_string();
    let r = post(addr, "/api/predict", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let view = r.json();
    validate("predict.schema.json", &view);
    assert_eq!(
        view,
        cli_json(&["predict", "0:3", "--text", text, "--json"])
    );
    let long = serde_json::json!({"neuron": "0:3", "text": "word ".repeat(40)}).to_string();
    assert!(assert_api_error(&post(addr, "/api/predict", long.as_bytes()), 400).contains("16"));
    let unknown = serde_json::json!({"neuron": "0:999", "text": "hi"}).to_string();
    assert_api_error(&post(addr, "/api/predict", unknown.as_bytes()), 404);
    let page = get(addr, "/neuron/0:3").text();
    assert!(page.contains("<form id=\"predict\" data-neuron=\"0:3\""));
    server.stop().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `n2g-index serve` as a process: it says where it listens, answers, and on SIGTERM
/// finishes the request in flight and exits with success.
#[cfg(unix)]
#[test]
fn the_serve_command_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("index");
    copy_dir(index_dir(), &copy);
    let mut child = common::bin()
        .args(["serve", "--bind", "127.0.0.1:0", "--index"])
        .arg(&copy)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr: SocketAddr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no address printed"
        );
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    assert!(addr.ip().is_loopback());
    assert_eq!(get(addr, "/api/info").json()["neurons"], 16);
    // A request in flight when the signal comes is answered.
    let slow = std::thread::spawn(move || request(addr, "GET", "/api/neuron/0:3", None));
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    if let Ok(r) = slow.join().unwrap() {
        assert_eq!(r.status, 200);
    }
    assert!(request(addr, "GET", "/api/info", None).is_err());
}
