//! The console's single sign-on (docs/design.md, *Single sign-on*) against a real, certified
//! OpenID Provider run here (panva's `oidc-provider` from npm, `e2e/oidc/`): in a real headless
//! Chromium a team's operator signs in through the provider's own pages, sees only their
//! tenant's gateways and logs out; a user whose groups map to nothing, an ID token minted for
//! another audience, an expired one, and a code presented a second time are each refused — the
//! page says only that sign-in failed, the daemon's log says why.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::webdriver::{Browser, free_port};
use crate::support::{Daemon, Request, Response, contains, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);
const CLIENT_ID: &str = "gateway-supervisor";
const CLIENT_SECRET: &str = "sso-test-client-secret-1";

/// The provider, installed from its pinned lockfile (cached) and started on a port of its own.
struct Provider {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start(redirect_uri: &str) -> Provider {
        let install = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("e2e/oidc/install.sh");
        let out = Command::new(&install)
            .stderr(Stdio::inherit())
            .output()
            .expect("run e2e/oidc/install.sh (needs node and npm)");
        assert!(out.status.success(), "e2e/oidc/install.sh failed");
        let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let port = free_port();
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .args([&port.to_string(), CLIENT_ID, CLIENT_SECRET, redirect_uri])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the provider with node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            first.starts_with("listening "),
            "the provider did not start: {first}"
        );
        Provider {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next token responses carry an ID token a relying party must refuse (`provider.mjs`).
    fn fault(&self, fault: &str) {
        let res = Request::new("POST", &format!("/__faults/{fault}"))
            .send(self.addr)
            .unwrap();
        assert_eq!(res.status, 204);
    }
}

/// A daemon with `[sso]` on `provider`, listening on `port` (the callback registered there),
/// with two tenants' gateways.
fn daemon(port: u16, provider: &Provider) -> Daemon {
    let bind = format!("127.0.0.1:{port}");
    let mut d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__SERVER__BIND", &bind)]);
    for (name, tenant, port) in [("alpha-team-a", "team-a", 1), ("bravo-team-b", "team-b", 2)] {
        let body =
            json!({"name": name, "host": "127.0.0.1", "port": port, "labels": {"tenant": tenant}});
        let res = d.call("POST", "/api/gateways", &d.admin_key, &body);
        assert_eq!(res.status, 201, "{}", res.text());
    }
    d.kill9();
    let config = d.state_dir().join("sso.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[sso]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_url = "http://{bind}/console/sso/callback"
button = "Sign in with Example SSO"

[[sso.groups]]
group = "platform-admins"
role = "admin"

[[sso.groups]]
group = "team-a-operators"
role = "operator"
tenant = "team-a"
verbs = "read,spawn,session_control"
"#,
            issuer = provider.issuer()
        ),
    )
    .unwrap();
    d.launch_with(|cmd| {
        cmd.arg("--config").arg(&config);
    });
    d
}

/// Signs in through the provider's own pages as `login` (any password), from the console's
/// button: the provider's login form, then its consent page the first time a user meets this
/// client. The provider's own session from an earlier sign-in is forgotten first (else it
/// would sign the last user in again without asking).
fn sign_in(b: &Browser, base: &str, provider: &Provider, login: &str) {
    b.goto(&format!(
        "{}/.well-known/openid-configuration",
        provider.issuer()
    ));
    b.delete_cookies();
    b.goto(&format!("{base}/console/#/"));
    let button = b.wait_text("#sso-login", DEADLINE, |t| !t.is_empty());
    assert_eq!(button, "Sign in with Example SSO");
    b.click_css("#sso-login", DEADLINE);
    b.type_css("input[name=login]", login, DEADLINE);
    b.type_css("input[name=password]", "any password", DEADLINE);
    b.click_css("button[type=submit]", DEADLINE);
    // The consent page (once per user and client), or back at the daemon already.
    let consent = wait_until("the consent page or the daemon", DEADLINE, || {
        if b.url().starts_with(base) {
            return Some(false);
        }
        let shown = b.all("button[type=submit]").into_iter().next()?;
        (b.text(&shown) == "Continue").then_some(true)
    });
    if consent {
        b.click_css("button[type=submit]", DEADLINE);
    }
}

/// The daemon's log, once it holds `needle`.
fn wait_log(d: &Daemon, needle: &str) -> String {
    wait_until(&format!("the log to say `{needle}`"), DEADLINE, || {
        let logs = d.logs();
        contains(&logs, needle.as_bytes()).then(|| String::from_utf8_lossy(&logs).into_owned())
    })
}

#[test]
fn a_team_signs_in_through_the_provider_sees_its_gateways_only_and_bad_sign_ins_are_refused() {
    let port = free_port();
    let provider = Provider::start(&format!("http://127.0.0.1:{port}/console/sso/callback"));
    let d = daemon(port, &provider);
    let base = format!("http://{}", d.addr);
    let b = Browser::start(1024, 700);

    // Ana (team-a-operators) signs in: an operator of team-a, who sees team-a's gateway only.
    sign_in(&b, &base, &provider, "ana@team-a.example");
    b.wait_text(".who", DEADLINE, |t| t == "ana@team-a.example (operator)");
    let table = b.wait_text("#gateways", DEADLINE, |t| t.contains("alpha-team-a"));
    assert!(
        !table.contains("bravo-team-b"),
        "another tenant's gateway shown: {table}"
    );
    let session: serde_json::Value =
        b.script("return fetch('/api/gateways', {credentials: 'same-origin'}).then(r => r.json())");
    let names: Vec<&str> = session["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["alpha-team-a"], "the API behind the console");
    // An admin route is the platform's: refused to her session.
    let audit = b.script("return fetch('/api/audit').then(r => r.status)");
    assert_eq!(audit, 403);
    let log = wait_log(&d, "console single sign-on");
    assert!(
        log.contains("team-a-operators"),
        "the sign-in is logged with its group"
    );

    // Log out: the console asks again, and the session is over on the server.
    b.click_css("#logout", DEADLINE);
    b.find("#key", DEADLINE);
    assert_eq!(
        b.script("return fetch('/console/session').then(r => r.status)"),
        401
    );

    // Refused: each says only that sign-in failed; the log says why.
    let refused = |login: &str, why: &str| {
        sign_in(&b, &base, &provider, login);
        b.wait_text("#sso-refused", DEADLINE, |t| {
            t.contains("did not let you in")
        });
        let page = b.script("return document.body.innerText").to_string();
        assert!(
            !page.contains(why),
            "the reason is in the log, not the page: {page}"
        );
        wait_log(&d, why);
        // No session: the console asks for a key (or the provider) again.
        b.goto(&format!("{base}/console/#/"));
        b.find("#key", DEADLINE);
        assert_eq!(
            b.script("return fetch('/console/session').then(r => r.status)"),
            401,
            "{login}: no session"
        );
    };
    refused(
        "dee@marketing.example",
        "none of the user's groups is mapped",
    );
    let log = String::from_utf8_lossy(&d.logs()).into_owned();
    assert!(log.contains("marketing"), "the unmapped groups are named");
    provider.fault("wrong_audience");
    refused(
        "ana@team-a.example",
        "the ID token was refused: Invalid audiences",
    );
    provider.fault("expired");
    refused(
        "ana@team-a.example",
        "the ID token was refused: Expired: ID token expired at",
    );
    provider.fault("none");

    // A code presented twice (a callback URL replayed with its cookie): the provider takes
    // each code once, and the daemon refuses the second.
    let (callback, pending) = code_without_a_browser(&d, &provider, "cy@platform.example");
    let first = Request::new("GET", &callback)
        .header("cookie", pending.clone())
        .send(d.addr)
        .unwrap();
    assert_eq!(first.status, 303, "{}", first.text());
    assert!(set_cookie(&first, "gs_session").is_some_and(|v| v.starts_with("s2.")));
    let again = Request::new("GET", &callback)
        .header("cookie", pending)
        .send(d.addr)
        .unwrap();
    assert_eq!(again.status, 403, "a replayed code: {}", again.text());
    assert!(set_cookie(&again, "gs_session").is_none());
    wait_log(&d, "the provider refused the code: invalid_grant");

    // The refusals were answered to one browser and one client: nothing leaked the secret.
    assert!(!contains(&d.logs(), CLIENT_SECRET.as_bytes()));
}

/// A cookie a response sets, by name: its value.
fn set_cookie(res: &Response, name: &str) -> Option<String> {
    res.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            let pair = v.split(';').next()?;
            let (n, value) = pair.split_once('=')?;
            (n.trim() == name && !value.is_empty()).then(|| value.to_owned())
        })
}

/// Walks the sign-in as a browser would, over plain HTTP with a cookie jar per origin, up to
/// the provider's redirect back to the daemon: the callback's path and query, and the cookie
/// the daemon's `/console/sso/login` set (`gs_sso=…`).
fn code_without_a_browser(d: &Daemon, provider: &Provider, login: &str) -> (String, String) {
    let start = Request::new("GET", "/console/sso/login")
        .send(d.addr)
        .unwrap();
    assert_eq!(start.status, 303, "{}", start.text());
    let pending = format!(
        "gs_sso={}",
        set_cookie(&start, "gs_sso").expect("gs_sso set")
    );
    let mut jar: Vec<(String, String)> = Vec::new();
    let mut next = start.header("location").unwrap().to_owned();
    let issuer = provider.issuer();
    for _ in 0..12 {
        if let Some(callback) = next.strip_prefix(&format!("http://{}", d.addr)) {
            return (callback.to_owned(), pending);
        }
        let path = next.strip_prefix(&issuer).unwrap_or(&next).to_owned();
        let cookies = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = Request::new("GET", &path)
            .header("cookie", cookies.clone())
            .send(provider.addr)
            .unwrap();
        keep(&mut jar, &res);
        let res = if res.status == 200 {
            // The provider's own form (login, then consent), posted as its page would.
            let page = res.text();
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("a form")
                .to_owned();
            let form = if page.contains("value=\"login\"") {
                format!(
                    "prompt=login&login={}&password=x",
                    login.replace('@', "%40")
                )
            } else {
                "prompt=consent".to_owned()
            };
            let cookies = jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let res = Request::new("POST", &action)
                .header("cookie", cookies)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send(provider.addr)
                .unwrap();
            keep(&mut jar, &res);
            res
        } else {
            res
        };
        assert!(
            matches!(res.status, 302 | 303),
            "the provider answered {}: {}",
            res.status,
            res.text()
        );
        next = res.header("location").unwrap().to_owned();
    }
    panic!("the provider never sent the browser back");
}

/// Keeps the cookies a response sets (and forgets those it clears).
fn keep(jar: &mut Vec<(String, String)>, res: &Response) {
    for (k, v) in &res.headers {
        if !k.eq_ignore_ascii_case("set-cookie") {
            continue;
        }
        let Some((name, value)) = v.split(';').next().and_then(|p| p.split_once('=')) else {
            continue;
        };
        jar.retain(|(n, _)| n != name.trim());
        if !value.is_empty() {
            jar.push((name.trim().to_owned(), value.to_owned()));
        }
    }
}
