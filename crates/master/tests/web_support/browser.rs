//! Headless Chromium over WebDriver (chromedriver + fantoccini) for the
//! browser tests: the UI (`web_browser.rs`), script extensions
//! (`web_ext_browser.rs`) and, included by path from the swarmer crate,
//! the scale form against real local workers (`scale_browser.rs`).
//!
//! [`tools`] is `None` when Chromium or chromedriver is missing. Outside CI
//! the test then passes with a message; in CI (`CI=true`) it fails, so a
//! green CI run always means the UI was driven in a real browser.
//! SWARMER_CHROMIUM and SWARMER_CHROMEDRIVER override the paths.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

fn tool_path(env: &str, default: &str) -> PathBuf {
    PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_string()))
}

fn chromium_path() -> PathBuf {
    tool_path("SWARMER_CHROMIUM", "/usr/bin/chromium")
}

fn chromedriver_path() -> PathBuf {
    tool_path("SWARMER_CHROMEDRIVER", "/usr/bin/chromedriver")
}

/// (chromium, chromedriver), when both are installed.
pub fn tools() -> Option<(PathBuf, PathBuf)> {
    let (chromium, chromedriver) = (chromium_path(), chromedriver_path());
    (chromium.exists() && chromedriver.exists()).then_some((chromium, chromedriver))
}

/// chromedriver on a free loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_driver(chromedriver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port}");
}

pub async fn open_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--no-first-run",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// Polls a JavaScript expression until it is truthy; returns its value.
pub async fn until(browser: &Client, what: &str, expression: &str) -> Value {
    let script = format!("return ({expression});");
    for _ in 0..150 {
        let value = browser.execute(&script, vec![]).await.expect("script runs");
        let truthy = !matches!(&value, Value::Null | Value::Bool(false))
            && value != json!(0)
            && value != json!("");
        if truthy {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = browser
        .execute(
            "return ['#toast', '#run-error', '#scale-note', '.ext-error', '.ext-result'].map(s => document.querySelector(s)?.textContent).join(' | ')",
            vec![],
        )
        .await
        .unwrap_or_default();
    panic!("timed out waiting for {what} ({expression}); the page said: {page}");
}

/// Runs a statement in the page.
pub async fn run_js(browser: &Client, statement: &str) {
    browser
        .execute(statement, vec![])
        .await
        .expect("script runs");
}

pub async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

pub async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

pub async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// CI systems (GitHub Actions, GitLab, most others) set `CI=true`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Runs a browser test: `drive(chromium, chromedriver, profile)` with a
/// fresh profile directory, within `limit`. Without Chromium or
/// chromedriver the test passes with a message saying how to install them,
/// except in CI, where it fails with that message.
pub async fn in_chromium<F, Fut>(label: &str, limit: Duration, drive: F)
where
    F: FnOnce(PathBuf, PathBuf, PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some((chromium, chromedriver)) = tools() else {
        let missing = format!(
            "{} or {} is missing (apt-get install -y chromium chromium-driver, \
             or set SWARMER_CHROMIUM and SWARMER_CHROMEDRIVER)",
            chromium_path().display(),
            chromedriver_path().display()
        );
        if in_ci() {
            panic!("CI=true but the browser test {label:?} cannot run: {missing}");
        }
        eprintln!("skipping the browser test {label:?}: {missing}");
        return;
    };
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let outcome = tokio::time::timeout(limit, drive(chromium, chromedriver, profile.clone())).await;
    let _ = std::fs::remove_dir_all(&profile);
    outcome.expect("the browser test finished in time");
}
