//! A minimal Chrome DevTools Protocol client, enough to drive headless
//! Chromium through the dashboard: open a page, evaluate script in it, read
//! its performance entries, collect its console errors and take a
//! screenshot.
//!
//! Chromium is started with `--remote-debugging-port=0`; it writes the port
//! it picked to `<profile>/DevToolsActivePort`, `/json/list` names the page's
//! WebSocket, and commands go over that socket with increasing ids. One task
//! reads the socket: responses go to whoever sent the command, events update
//! the page's state (load count, console errors). Every wait has a deadline,
//! and the browser (its whole process group) and its profile are removed on
//! drop.

use std::collections::HashMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use futures::stream::SplitSink;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any one step may take before the test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(30);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// The browser to drive: `$CHROMIUM`, else `/usr/bin/chromium`, else
/// `chromium` or `chromium-browser` on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.is_file() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// What the page reported on its own console or threw.
#[derive(Debug, Clone)]
pub struct ConsoleEntry {
    pub level: String,
    pub text: String,
}

/// One resource the page loaded, from the Resource Timing API.
#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    pub transfer_bytes: u64,
    pub encoded_bytes: u64,
}

/// Paint and payload figures of the page as loaded.
#[derive(Debug, Clone)]
pub struct LoadMetrics {
    pub first_contentful_paint_ms: Option<f64>,
    /// The document itself, then every sub-resource.
    pub resources: Vec<Resource>,
}

impl LoadMetrics {
    /// Bytes of the bodies as sent (compressed, if they were).
    pub fn encoded_bytes(&self) -> u64 {
        self.resources.iter().map(|r| r.encoded_bytes).sum()
    }
    /// Bytes on the wire, headers included.
    pub fn transfer_bytes(&self) -> u64 {
        self.resources.iter().map(|r| r.transfer_bytes).sum()
    }
}

#[derive(Default)]
struct PageState {
    console: Vec<ConsoleEntry>,
}

/// A headless Chromium with one page, driven over the DevTools protocol.
pub struct Browser {
    child: Child,
    dir: PathBuf,
    sink: tokio::sync::Mutex<SplitSink<Socket, Message>>,
    next_id: AtomicU64,
    pending: Pending,
    loads: watch::Receiver<u64>,
    state: Arc<Mutex<PageState>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Browser {
    /// Starts `chromium` headless with a fresh profile and attaches to its page.
    pub async fn launch(chromium: &Path) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "osprey-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).context("failed to create the browser profile dir")?;
        let log = std::fs::File::create(dir.join("chromium.log")).context("failed to create the browser log")?;
        let child = Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--window-size=1440,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group, so that drop can end the renderers too.
            .process_group(0)
            .spawn()
            .with_context(|| format!("failed to start {}", chromium.display()))?;
        // From here on, drop cleans up whatever fails.
        let mut guard = Launching { child: Some(child), dir: dir.clone() };
        let port = wait_for_port(&profile, &mut guard).await?;
        let ws_url = page_socket(port).await?;
        let (socket, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(ws_url.as_str()))
            .await
            .context("timed out connecting to the page's DevTools socket")?
            .context("failed to connect to the page's DevTools socket")?;
        let (sink, stream) = socket.split();
        let pending: Pending = Arc::default();
        let state: Arc<Mutex<PageState>> = Arc::default();
        let (loads_tx, loads) = watch::channel(0u64);
        let reader = tokio::spawn(read_loop(stream, Arc::clone(&pending), Arc::clone(&state), loads_tx));
        let child = guard.child.take().ok_or_else(|| anyhow!("browser process lost"))?;
        let browser = Self {
            child,
            dir,
            sink: tokio::sync::Mutex::new(sink),
            next_id: AtomicU64::new(1),
            pending,
            loads,
            state,
            reader,
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({})).await?;
        }
        Ok(browser)
    }

    /// Sends one command and waits for its result.
    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        let sent = tokio::time::timeout(STEP, async { self.sink.lock().await.send(Message::text(msg)).await }).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.pending.lock().expect("pending lock").remove(&id);
            bail!("failed to send {method} to the browser: {sent:?}");
        }
        let reply = match tokio::time::timeout(STEP, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => bail!("the browser closed the connection before answering {method}"),
            Err(_) => {
                self.pending.lock().expect("pending lock").remove(&id);
                bail!("{method} got no answer within {STEP:?}")
            }
        };
        if let Some(err) = reply.get("error") {
            bail!("{method} failed: {err}");
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Opens `url` and waits for its `load` event.
    pub async fn navigate(&self, url: &str) -> anyhow::Result<()> {
        let mut loads = self.loads.clone();
        loads.borrow_and_update();
        let r = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(err) = r.get("errorText").and_then(Value::as_str) {
            bail!("navigating to {url} failed: {err}");
        }
        tokio::time::timeout(STEP, loads.changed())
            .await
            .with_context(|| format!("{url} did not finish loading within {STEP:?}"))?
            .context("browser connection closed while loading")?;
        Ok(())
    }

    /// Evaluates `expression` in the page (awaiting it if it is a promise) and
    /// returns its value as JSON.
    pub async fn evaluate(&self, expression: &str) -> anyhow::Result<Value> {
        let r = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            bail!("evaluating {expression:?} threw: {}", describe_exception(ex));
        }
        Ok(r.pointer("/result/value").cloned().unwrap_or(Value::Null))
    }

    /// Evaluates `expression` every 250 ms until it is truthy; returns that
    /// value, or fails after `timeout` with the last value seen.
    pub async fn wait_until(&self, expression: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.evaluate(expression).await?;
            if truthy(&v) {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                bail!("{expression:?} still {v} after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// First contentful paint and the bytes of everything the page loaded,
    /// except `exclude` (e.g. a stream that is still open).
    pub async fn load_metrics(&self, exclude: &str) -> anyhow::Result<LoadMetrics> {
        // Paint entries are recorded after the frame is presented, which may
        // be after `load`; give it a moment, but a page that never paints
        // content simply reports none.
        let painted = "performance.getEntriesByType('paint').some(e => e.name === 'first-contentful-paint')";
        let _ = self.wait_until(painted, Duration::from_secs(5)).await;
        let script = format!(
            r#"(() => {{
                const fcp = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
                const pick = e => ({{ name: e.name, transfer: e.transferSize, encoded: e.encodedBodySize }});
                const nav = performance.getEntriesByType('navigation').map(pick);
                const res = performance.getEntriesByType('resource').filter(e => !e.name.includes({exclude})).map(pick);
                return {{ fcp: fcp ? fcp.startTime : null, entries: nav.concat(res) }};
            }})()"#,
            exclude = Value::from(exclude)
        );
        let v = self.evaluate(&script).await?;
        let resources = v["entries"]
            .as_array()
            .ok_or_else(|| anyhow!("no performance entries: {v}"))?
            .iter()
            .map(|e| Resource {
                name: e["name"].as_str().unwrap_or_default().to_string(),
                transfer_bytes: e["transfer"].as_f64().unwrap_or(0.0) as u64,
                encoded_bytes: e["encoded"].as_f64().unwrap_or(0.0) as u64,
            })
            .collect();
        Ok(LoadMetrics { first_contentful_paint_ms: v["fcp"].as_f64(), resources })
    }

    /// Captures the whole page (not just the viewport) as a PNG at `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let m = self.call("Page.getLayoutMetrics", json!({})).await?;
        let size = m.get("cssContentSize").unwrap_or(&m["contentSize"]);
        let (w, h) = (size["width"].as_f64().unwrap_or(1440.0), size["height"].as_f64().unwrap_or(1000.0));
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": w.ceil(), "height": h.ceil(), "scale": 1 }
                }),
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().ok_or_else(|| anyhow!("no screenshot data"))?)
            .context("screenshot is not base64")?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("failed to write {}", path.display()))
    }

    /// Console errors, failed assertions, uncaught exceptions and browser
    /// log errors (CSP violations, failed loads) seen so far.
    pub fn errors(&self) -> Vec<ConsoleEntry> {
        self.state.lock().expect("state lock").console.iter().filter(|e| e.level == "error").cloned().collect()
    }

    /// Everything the page logged so far.
    pub fn console(&self) -> Vec<ConsoleEntry> {
        self.state.lock().expect("state lock").console.clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.reader.abort();
        end(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Owns the browser until it is attached, so an early error cleans up too.
struct Launching {
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for Launching {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            end(child);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Kills the browser's process group (renderers and helpers included) and reaps it.
fn end(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads the port Chromium chose from `DevToolsActivePort`.
async fn wait_for_port(profile: &Path, guard: &mut Launching) -> anyhow::Result<u16> {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + STEP;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(port) = text.lines().next().and_then(|l| l.trim().parse::<u16>().ok()) {
                return Ok(port);
            }
        }
        if let Some(child) = &mut guard.child {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("chromium exited ({status}) before listening: {}", log_tail(&guard.dir));
            }
        }
        if Instant::now() >= deadline {
            bail!("chromium wrote no DevToolsActivePort within {STEP:?}: {}", log_tail(&guard.dir));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("chromium.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The WebSocket of the browser's first page.
async fn page_socket(port: u16) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().timeout(STEP).build().context("http client")?;
    let deadline = Instant::now() + STEP;
    loop {
        let targets: Value = client
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await
            .context("failed to list the browser's targets")?
            .json()
            .await
            .context("the browser's target list is not JSON")?;
        let page = targets.as_array().into_iter().flatten().find(|t| t["type"] == "page");
        if let Some(url) = page.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
            return Ok(url.to_string());
        }
        if Instant::now() >= deadline {
            bail!("the browser has no page target: {targets}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Routes the socket's messages: answers to their callers, events to the page state.
async fn read_loop(
    mut stream: futures::stream::SplitStream<Socket>,
    pending: Pending,
    state: Arc<Mutex<PageState>>,
    loads: watch::Sender<u64>,
) {
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
        if let Some(id) = v.get("id").and_then(Value::as_u64) {
            if let Some(tx) = pending.lock().expect("pending lock").remove(&id) {
                let _ = tx.send(v);
            }
            continue;
        }
        let params = &v["params"];
        let entry = match v["method"].as_str().unwrap_or_default() {
            "Page.loadEventFired" => {
                loads.send_modify(|n| *n += 1);
                None
            }
            "Runtime.consoleAPICalled" => {
                let kind = params["type"].as_str().unwrap_or("log");
                let level = if matches!(kind, "error" | "assert") { "error" } else { kind };
                let text = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        a.get("value").map(Value::to_string).or_else(|| a["description"].as_str().map(String::from))
                    })
                    .map(Option::unwrap_or_default)
                    .collect::<Vec<_>>()
                    .join(" ");
                Some(ConsoleEntry { level: level.to_string(), text })
            }
            "Runtime.exceptionThrown" => {
                Some(ConsoleEntry { level: "error".into(), text: describe_exception(&params["exceptionDetails"]) })
            }
            "Log.entryAdded" => {
                let e = &params["entry"];
                Some(ConsoleEntry {
                    level: e["level"].as_str().unwrap_or("info").to_string(),
                    text: format!(
                        "{} ({})",
                        e["text"].as_str().unwrap_or_default(),
                        e["url"].as_str().unwrap_or_default()
                    ),
                })
            }
            _ => None,
        };
        if let Some(entry) = entry {
            state.lock().expect("state lock").console.push(entry);
        }
    }
}

fn describe_exception(ex: &Value) -> String {
    ex.pointer("/exception/description")
        .and_then(Value::as_str)
        .or_else(|| ex["text"].as_str())
        .unwrap_or("unknown exception")
        .to_string()
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
