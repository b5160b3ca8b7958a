//! A small W3C WebDriver client over the suite's raw HTTP client, for the console's browser
//! tests: a real headless Chromium driven by Debian's `chromedriver`. Every wait has a deadline;
//! the driver and the browser go when the `Browser` is dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gs_test_support::http::Request;
use serde_json::{Value, json};

/// The W3C web element identifier key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    /// The page's requests to the daemon so far, one line each, for a failure's message
    /// (Chromium's network log, read from the driver as the failure is told).
    requests: std::sync::Mutex<Requests>,
}

/// The page's requests read from the network log so far, by Chromium's request id: Chromium
/// tells a request's parts in events that may come in any order.
#[derive(Default)]
struct Requests(std::collections::HashMap<String, Seen>);

#[derive(Default)]
struct Seen {
    at: f64,
    line: String,
    sent: Option<String>,
    answer: Option<String>,
}

/// One WebDriver request: `(status, JSON body)`.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut req = Request::new(method, path);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send(addr)?;
    let json = serde_json::from_slice(&res.body).unwrap_or(Value::Null);
    Ok((res.status, json))
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width`×`height` window.
    pub fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (Debian packages chromium and chromium-driver; scripts/test.sh installs them)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            requests: Default::default(),
        };
        crate::support::wait_until("chromedriver ready", Duration::from_secs(20), || {
            request(b.addr, "GET", "/status", None)
                .ok()
                .filter(|(_, v)| v["value"]["ready"] == true)
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // A command while a dialog is open fails and leaves the dialog for the test to
            // answer (the default dismisses it: `click_css`'s look at the page after a click
            // whose handler opens a confirm() once a request is answered would).
            "unhandledPromptBehavior": "ignore",
            "goog:loggingPrefs": {"performance": "ALL"},
            "goog:chromeOptions": {
                "perfLoggingPrefs": {"enableNetwork": true, "enablePage": false},
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}"), "--lang=en-US"]
            }
        }}});
        let v = b.raw("POST", "/session", Some(&caps));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        b
    }

    fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, v) = request(self.addr, method, path, body).expect("chromedriver answers");
        assert!(status < 300, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    /// A command that may meet an element the page has just replaced, or a page that is
    /// navigating (the console settles its route after the load WebDriver waited for): `None`
    /// then.
    fn try_cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Option<Value> {
        let path = format!("/session/{}{path}", self.session);
        let (status, v) = request(self.addr, method, &path, body).expect("chromedriver answers");
        if status < 300 {
            return Some(v["value"].clone());
        }
        let error = v["value"]["error"].as_str().unwrap_or_default();
        // Chromedriver reports an element whose page navigated away between the find and the
        // command as an "unknown error" from the inspector, not always as a stale reference
        // (CI, 2026-11-30: the single sign-on provider's page, read as it left for the daemon).
        let message = v["value"]["message"].as_str().unwrap_or_default();
        let gone = error == "unknown error" && message.contains("does not belong to the document");
        assert!(
            gone || matches!(
                error,
                "stale element reference"
                    | "aborted by navigation"
                    | "no such element"
                    | "element not interactable"
                    | "element click intercepted"
            ),
            "WebDriver {path}: {v}"
        );
        None
    }

    /// Clicks the first element matching `css`, retrying while the page re-renders it; on
    /// timeout, says what the console showed instead.
    ///
    /// A click WebDriver reports done but that never reached the page is clicked again: the page
    /// counts the clicks it gets (a listener on `window`, which every click in the document
    /// passes first), and WebDriver answers once the page has handled the mouse events, so a
    /// count that did not move is a lost click (CI, 2026-12-01: Log out, clicked under load,
    /// sent nothing). A page that navigated away has no count: its click arrived.
    pub fn click_css(&self, css: &str, deadline: Duration) {
        const COUNT: &str = "if (window.__gsClicks === undefined) { window.__gsClicks = 0; \
            window.addEventListener('click', () => { window.__gsClicks += 1; }, {capture: true}); } \
            return window.__gsClicks";
        crate::support::wait_for(&format!("a click on {css}"), deadline, || {
            let Some(e) = self.all(css).into_iter().next() else {
                return Err(format!("none on the page; {}", self.console_state()));
            };
            let before = self.script_if_any(COUNT);
            self.try_cmd("POST", &format!("/element/{e}/click"), Some(&json!({})))
                .ok_or_else(|| format!("not clickable; {}", self.console_state()))?;
            // A click that opened a dialog arrived (and a script now would dismiss it).
            if self.dialog_text().is_some() {
                return Ok(());
            }
            let after = self.script_if_any("return window.__gsClicks ?? null");
            if before.as_ref().is_some_and(Value::is_number) && after == before {
                return Err(format!(
                    "the click never reached the page; {}",
                    self.console_state()
                ));
            }
            Ok(())
        });
    }

    /// What the console shows, for a failure's message: who is named, whether the navigation
    /// is hidden, the login form (with the length of the key typed), its message and the daemon's
    /// reason for a session it ended, the route.
    pub fn console_state(&self) -> String {
        const SEEN: &str = "const k = document.getElementById('key'); \
            const e = document.getElementById('login-error'); \
            const r = document.getElementById('login-reason'); \
            const n = document.getElementById('nav'); \
            return `who: \"${document.querySelector('.who')?.textContent ?? ''}\", \
            nav: ${n ? (n.hidden ? 'hidden' : 'shown') : 'none'}, \
            form: ${k ? 'shown, key of ' + k.value.length + ' chars' : 'none'}, message: \"${e ? e.textContent : ''}\", \
            ${r && r.textContent ? r.textContent + ', ' : ''}at ${location.hash}`";
        let seen = self.script(SEEN).as_str().unwrap_or_default().to_owned();
        format!(
            "{seen}\nthe page's last requests (time, method, path, cookie sent → status, cookie set):\n{}",
            self.requests().join("\n")
        )
    }

    /// The page's last 40 requests to the daemon: when, what, the session cookie it carried
    /// and the one its answer set (each as `<key id>.<expiry>.<nonce>.…<end of its MAC>`), from
    /// Chromium's network log — which cookie a request really carried, for a failure that
    /// says a session ended.
    pub fn requests(&self) -> Vec<String> {
        // `gs_session=v2.<id>.<expiry>.<nonce>.<MAC>` as `<id>.<expiry>.<nonce>.…<MAC's last 6>`.
        fn cookie(header: &str) -> String {
            header
                .split(['\n', ';'])
                .filter_map(|c| c.trim().strip_prefix("gs_session="))
                .map(|v| match v.rsplit_once('.') {
                    Some((head, mac)) => format!(
                        "{}.…{}",
                        head.trim_start_matches("v2."),
                        &mac[mac.len().saturating_sub(6)..]
                    ),
                    None => format!("{v:?}"),
                })
                .collect::<Vec<_>>()
                .join("+")
        }
        let path = format!("/session/{}/se/log", self.session);
        let entries = request(
            self.addr,
            "POST",
            &path,
            Some(&json!({"type": "performance"})),
        )
        .map(|(_, v)| v["value"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
        let mut seen = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for entry in entries {
            let Ok(m) = serde_json::from_str::<Value>(entry["message"].as_str().unwrap_or("{}"))
            else {
                continue;
            };
            let (method, p) = (
                m["message"]["method"].as_str().unwrap_or(""),
                &m["message"]["params"],
            );
            let header = |h: &Value, name: &str| {
                h.as_object()
                    .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                    .and_then(|(_, v)| v.as_str())
                    .map(cookie)
                    .unwrap_or_default()
            };
            let id = p["requestId"].as_str().unwrap_or("").to_owned();
            let r = seen.0.entry(id).or_default();
            match method {
                "Network.requestWillBeSent" => {
                    let url = p["request"]["url"].as_str().unwrap_or("");
                    let path = url.splitn(4, '/').nth(3).unwrap_or(url);
                    r.at = p["timestamp"].as_f64().unwrap_or(0.0);
                    r.line = format!("{} /{path}", p["request"]["method"].as_str().unwrap_or("?"));
                }
                "Network.requestWillBeSentExtraInfo" => {
                    r.sent = Some(header(&p["headers"], "cookie"));
                }
                "Network.responseReceivedExtraInfo" => {
                    r.answer = Some(format!(
                        "{} {}",
                        p["statusCode"],
                        header(&p["headers"], "set-cookie")
                    ));
                }
                _ => {}
            }
        }
        let mut all: Vec<&Seen> = seen.0.values().filter(|r| !r.line.is_empty()).collect();
        all.sort_by(|a, b| a.at.total_cmp(&b.at));
        all[all.len().saturating_sub(40)..]
            .iter()
            .map(|r| {
                format!(
                    "{:.3} {} [{}] → {}",
                    r.at,
                    r.line,
                    r.sent.as_deref().unwrap_or("?"),
                    r.answer.as_deref().unwrap_or("(no answer seen)")
                )
            })
            .collect()
    }

    /// Reloads the page and returns once it has loaded (WebDriver's Refresh waits for the load;
    /// a `location.reload()` script returns at once and the next command can meet the page
    /// half torn down — a CI failure of the browser test). A refresh the page's own navigation
    /// overtakes ("aborted by navigation", seen under load) is left to the caller's wait, which
    /// asks again.
    pub fn refresh(&self) {
        let _ = self.try_cmd("POST", "/refresh", Some(&json!({})));
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(&json!({"url": url})));
    }

    /// The elements matching `css` now.
    pub fn all(&self, css: &str) -> Vec<String> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
            .collect()
    }

    /// The first element matching `css`, waiting up to `deadline` for one.
    pub fn find(&self, css: &str, deadline: Duration) -> String {
        crate::support::wait_until(&format!("an element {css}"), deadline, || {
            self.all(css).into_iter().next()
        })
    }

    /// The element's text; empty when the page has just replaced it.
    pub fn text(&self, element: &str) -> String {
        self.try_cmd("GET", &format!("/element/{element}/text"), None)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits until the element matching `css` shows text for which `want` holds.
    pub fn wait_text(&self, css: &str, deadline: Duration, want: impl Fn(&str) -> bool) -> String {
        crate::support::wait_for(&format!("{css} to show the text"), deadline, || {
            let e = self.all(css).into_iter().next().ok_or("not on the page")?;
            let t = self.text(&e);
            if want(&t) {
                Ok(t)
            } else {
                Err(format!("shows {t:?}"))
            }
        })
    }

    /// Types `text` into the first element matching `css`, finding it again while the page
    /// re-renders it (a login form drawn twice met a stale element under load).
    /// On timeout, says what the console showed instead.
    pub fn type_css(&self, css: &str, text: &str, deadline: Duration) {
        crate::support::wait_for(&format!("typing into {css}"), deadline, || {
            let Some(e) = self.all(css).into_iter().next() else {
                return Err(format!("none on the page; {}", self.console_state()));
            };
            self.try_cmd(
                "POST",
                &format!("/element/{e}/value"),
                Some(&json!({"text": text})),
            )
            .map(|_| ())
            .ok_or_else(|| format!("not typable; {}", self.console_state()))
        });
    }

    /// Forgets every cookie of the page's origin.
    pub fn delete_cookies(&self) {
        self.cmd("DELETE", "/cookie", None);
    }

    /// Where the page is.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn type_into(&self, element: &str, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{element}/value"),
            Some(&json!({"text": text})),
        );
    }

    /// The text of the open confirm() or alert() dialog, if one is open.
    fn dialog_text(&self) -> Option<String> {
        let path = format!("/session/{}/alert/text", self.session);
        let (status, v) = request(self.addr, "GET", &path, None).ok()?;
        (status == 200).then(|| v["value"].as_str().unwrap_or("").to_owned())
    }

    /// Accepts the open confirm() dialog, waiting for it to open.
    pub fn accept_dialog(&self, deadline: Duration) -> String {
        let text = crate::support::wait_until("a dialog", deadline, || self.dialog_text());
        self.cmd("POST", "/alert/accept", Some(&json!({})));
        text
    }

    /// [`Browser::script`] on a page that may be navigating: `None` then (ask again).
    pub fn try_script(&self, js: &str) -> Option<Value> {
        self.try_cmd(
            "POST",
            "/execute/sync",
            Some(&json!({"script": js, "args": []})),
        )
    }

    pub fn script(&self, js: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(&json!({"script": js, "args": []})),
        )
    }

    /// A script's value, or `None` where the page could not run it (navigating, or a dialog
    /// the click opened meanwhile: [`Browser::try_script`] takes that for a failure).
    fn script_if_any(&self, js: &str) -> Option<Value> {
        let path = format!("/session/{}/execute/sync", self.session);
        let body = json!({"script": js, "args": []});
        let (status, v) = request(self.addr, "POST", &path, Some(&body)).ok()?;
        (status < 300).then(|| v["value"].clone())
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(&json!({"width": width, "height": height})),
        );
    }

    /// Saves a PNG of the page as it is now.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = request(self.addr, "DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
