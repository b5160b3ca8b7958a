// gateway-supervisor console. Plain DOM, no framework: every value from the API is set as
// text (textContent), never as markup. The session cookie authenticates every call; the API
// enforces roles and the page hides what the role cannot do.
"use strict";

const RANK = { viewer: 0, operator: 1, admin: 2 };
const PAGE_SIZE = 100;
const EVENT_TYPES = "gateway.status,gateway.changed,gateway.primary,connection.changed,operation.progress,approval.requested,approval.resolved,gateway.config_drift,gateway.managed,cron.missed";
// Pages by their hash, beside those routed below (ops.js adds its own).
const PAGES = {};
// The statuses a gateway can have, as the daemon names them: every page's `counts` has one key
// per status (the daemon's enum), so a new status needs no change here.
const statuses = () => Object.keys(state.fleet?.counts || {});
// `fleet`: the page of the list on screen (the daemon pages it: a 10,000-gateway fleet is never
// read whole). `names`: gateway names seen, for the sessions page.
// `session`: counts logins and logouts, so an answer knows whether the session it was asked
// under is still the page's.
// `loggingOut`: the logout under way (its answer clears the session cookie), which a login waits for.
const state = { loggingOut: null, session: 0, me: null, fleet: null, names: new Map(), page: 0, filter: "", selector: "", selectorError: "", events: [], stream: null, refreshTimer: null, view: null };

const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
// The page's content: what a role does not get (a form, a button row: null) left out —
// replaceChildren itself would write a null as the word "null".
// Logged out, nothing: a page whose answers come back after a logout (they were asked before
// it) must not draw itself over the login form.
const show = (...children) => {
  if (!state.me) return;
  $("main").replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
};
const can = (role) => state.me && RANK[state.me.role] >= RANK[role];
const announce = (text) => { $("announce").textContent = text; };

// A request refused for want of a session (401): the login form is drawn (or was, for the
// session it was asked under); the page says nothing more.
class Unauthorized extends Error {}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) { opts.headers["content-type"] = "application/json"; opts.body = JSON.stringify(body); }
  const session = state.session;
  const res = await fetch(path, opts);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (res.status === 401 && path !== "/console/login") {
    // Only the session the request was asked under can end: a late answer to a request sent
    // before a logout or a login must not redraw the login form under the key being typed or
    // over the session logged in since.
    if (state.me && session === state.session) {
      showLogin("Your session ended; log in again.", json && typeof json.message === "string" ? json.message : "");
    }
    throw new Unauthorized("unauthorized");
  }
  if (!res.ok) throw new Error((json && json.message) || `${res.status} ${res.statusText}`);
  return json;
}

// ---- session -------------------------------------------------------------------------------

// `reason`: what the daemon said when it refused the session (logged out elsewhere, expired,
// the key revoked, no cookie at all), shown under the message as the daemon's own words.
function showLogin(message, reason = "") {
  state.session += 1;
  state.me = null;
  if (state.stream) { state.stream.close(); state.stream = null; }
  if (state.refreshTimer) { clearTimeout(state.refreshTimer); state.refreshTimer = null; }
  $("nav").hidden = true; $("logout").hidden = true; $("who").textContent = "";
  // A form already shown stays, with what is typed in it: a logout whose own answer comes
  // after a refused request of the same session drew the form twice, and the second, empty,
  // replaced the key being typed into the first.
  const shown = $("login-error");
  const said = reason ? `The daemon said: ${reason.slice(0, 200)}` : "";
  if (shown && $("key")) { shown.textContent = message || ""; $("login-reason").textContent = said; return; }
  const error = el("p", { class: "error", id: "login-error", role: "alert" }, message || "");
  const why = el("p", { class: "muted", id: "login-reason" }, said);
  const key = el("input", { id: "key", type: "password", autocomplete: "current-password", required: true, "aria-describedby": "login-error" });
  const form = el("form", { class: "login", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      // A logout answered after this login would clear the cookie the login just set (the
      // browser applies its Set-Cookie whenever it arrives): wait for it, 30 s at most. (With
      // 5 s, a loaded CI machine once left the page refusing the key just logged in — the
      // likeliest cause, a logout slower than that.)
      await Promise.race([state.loggingOut, new Promise((done) => setTimeout(done, 30000))]);
      const me = await api("POST", "/console/login", { key: key.value });
      state.session += 1;
      state.me = me;
      key.value = "";
      location.hash = "#/";
      start();
    } catch (e) { error.textContent = e.message; }
  } },
    el("h1", {}, "Log in"),
    el("label", { for: "key" }, "API key"), key,
    el("button", { type: "submit", id: "login" }, "Log in"), error, why);
  $("main").replaceChildren(form);
  key.focus();
  // The company's sign-in, when the daemon has one ([sso]): a plain link, the browser goes
  // to the provider and comes back with the session cookie.
  api("GET", "/console/sso").then((sso) => {
    if (!sso || !sso.enabled || form.querySelector("#sso-login")) return;
    form.insertBefore(el("a", { id: "sso-login", class: "sso", href: "/console/sso/login" }, sso.button),
      form.querySelector("label"));
  }).catch(() => {});
}

async function start() {
  $("nav").hidden = false; $("logout").hidden = false; $("logout").disabled = false;
  $("who").textContent = `${state.me.name} (${state.me.role})`;
  $("nav-audit").hidden = !can("admin");
  api("GET", "/api/cluster").then((c) => { $("nav-cluster").hidden = !c.clustered; }).catch(() => {});
  openStream();
  refreshApprovalBadge();
  await route();
}

// The logout's own answer can come after a refused request of the same session drew the form,
// and after a key typed into that form logged in: that login stays (the logout ended only the
// session it was asked under).
// One logout at a time: a second click while the first is unanswered would send a second
// logout, and a login could then wait for one of them only — the other's answer, coming after
// that login, clears the cookie it set (each answer carries `Set-Cookie` with `Max-Age=0`). The
// button is off until the next login, and a login waits for every logout still unanswered.
$("logout").addEventListener("click", async () => {
  const button = $("logout");
  if (button.disabled) return;
  button.disabled = true;
  const session = state.session;
  const answered = api("POST", "/console/logout");
  state.loggingOut = Promise.all([state.loggingOut, answered.catch(() => {})]);
  try { await answered; } finally {
    if (session === state.session || !state.me) showLogin("Logged out.");
    // A login made since keeps its session — unless this answer's `Set-Cookie` reached the
    // browser after the login's and cleared its cookie: asked once, a 401 draws the form now,
    // where a quiet page would have gone on showing a session it no longer has.
    else api("GET", "/console/session").catch(() => {});
  }
});

// ---- live events ---------------------------------------------------------------------------

function openStream() {
  if (state.stream) state.stream.close();
  state.stream = new EventSource(`/api/events?types=${encodeURIComponent(EVENT_TYPES)}`);
  const onEvent = (msg) => {
    let ev; try { ev = JSON.parse(msg.data); } catch (_) { return; }
    state.events.unshift(ev);
    state.events.length = Math.min(state.events.length, 200);
    scheduleRefresh();
    if (ev.type && ev.type.startsWith("approval.")) refreshApprovalBadge();
    if (state.view === "events") renderEvents();
  };
  for (const t of EVENT_TYPES.split(",")) state.stream.addEventListener(t, onEvent);
  // The daemon ends the stream of a session logged out elsewhere (another tab) or of a revoked
  // key; the browser's reconnect is then refused and the stream stays closed: ask who we are
  // (a 401 draws the login form).
  const stream = state.stream;
  stream.onerror = () => {
    if (stream === state.stream && stream.readyState === EventSource.CLOSED) api("GET", "/console/session").catch(() => {});
  };
}

// At most one list refresh per 2 s however many events arrive.
function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(async () => {
    state.refreshTimer = null;
    if (state.view === "fleet") await loadFleet();
    else if (state.view === "operations") await PAGES["#/operations"]();
    else if (state.view === "approvals") await PAGES["#/approvals"]();
    else if (state.view === "config") await PAGES["#/config"]();
    else if (state.view === "hosts") await PAGES["#/hosts"]();
    else if (state.view === "cron") await PAGES["#/cron"]();
    else if (state.view && state.view.startsWith("gateway:")) await renderGateway(state.view.slice(8), true);
  }, 2000);
}

// ---- pages ---------------------------------------------------------------------------------

async function route() {
  if (!state.me) return;
  const hash = location.hash || "#/";
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", a.getAttribute("href") === hash.split("?")[0].split("/").slice(0, 2).join("/") || (hash === "#/" && a.getAttribute("href") === "#/"));
    if (a.hasAttribute("aria-current")) a.setAttribute("aria-current", "page");
  }
  const m = hash.match(/^#\/gateway\/(\d+)$/);
  if (m) return renderGateway(m[1]);
  if (hash === "#/sessions") return renderSessions();
  if (hash === "#/spawns") return renderSpawns();
  if (hash === "#/audit") return renderAudit();
  if (hash === "#/cluster") return renderCluster();
  if (hash === "#/events") { state.view = "events"; return renderEvents(); }
  const page = PAGES[hash.split("?")[0]];
  if (page) return page();
  state.view = "fleet";
  await loadFleet();
}
window.addEventListener("hashchange", route);

function fleetQuery() {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(state.page * PAGE_SIZE) });
  const f = state.filter.trim().toLowerCase();
  if (statuses().includes(f)) params.set("status", f);
  else if (f) params.set("q", f);
  if (state.selector.trim()) params.set("selector", state.selector.trim());
  return params.toString();
}

async function loadFleet() {
  try {
    state.fleet = await api("GET", `/api/gateways?${fleetQuery()}`);
    state.selectorError = "";
  } catch (e) {
    if (e instanceof Unauthorized) return;
    // A selector being typed is often not one yet: say why beside the box, keep the table.
    if (state.selector.trim() && e.message.startsWith("selector:") && state.fleet) {
      state.selectorError = e.message;
      if (state.view === "fleet") renderFleet();
      return;
    }
    show(el("p", { class: "error" }, e.message));
    return;
  }
  for (const g of state.fleet.gateways) state.names.set(g.id, g.name);
  if (state.view === "fleet") renderFleet();
}

function statusBadge(status) { return el("span", { class: `badge s-${status}` }, status); }

const connected = (g) => (g.connection || {}).state === "connected";
// "offline since 14:02: connection refused (…)": the link's last error and since when it is down.
function whyDown(g) {
  const c = g.connection || {};
  const since = g.last_seen ? `last seen ${when(g.last_seen)}` : "never connected";
  const why = c.last_error ? `${c.last_error.code}: ${c.last_error.message}` : c.state || "not connected";
  return `${since}; ${why}`.slice(0, 300);
}

// "in maintenance until 14:00: disk replacement, cordoned": what holds a gateway back, and why.
function heldBack(g) {
  const m = g.maintenance;
  return [m ? `in maintenance${m.until ? ` until ${when(m.until)}` : ""}: ${m.reason}` : "",
    g.suspended ? "suspended" : "", g.cordoned ? "cordoned" : ""].filter(Boolean).join(", ");
}

let filterTimer = null;
function renderFleet() {
  const fleet = state.fleet;
  const slice = fleet.gateways;
  const all = Object.values(fleet.counts).reduce((a, b) => a + b, 0);
  const online = fleet.counts.online || 0;
  const acting = fleet.acting_primary;
  const pages = Math.max(1, Math.ceil(fleet.total / PAGE_SIZE));
  const go = (page) => { state.page = page; loadFleet(); };
  // Typing reloads the page a moment after the last key, and gives the box its focus back.
  const box = (id, key, placeholder, extra) => el("input", { id, type: "search", value: state[key], placeholder, ...extra,
    oninput: (e) => {
      state[key] = e.target.value; state.page = 0;
      clearTimeout(filterTimer);
      filterTimer = setTimeout(async () => { await loadFleet(); const f = $(id); if (f) { f.focus(); f.setSelectionRange(f.value.length, f.value.length); } }, 250);
    } });
  const filter = box("filter", "filter", "name or status", {});
  const selector = box("selector", "selector", "region=eu,tier!=canary", { "aria-describedby": "selector-error", spellcheck: "false" });
  const rows = slice.map((g) => el("tr", { "data-gateway": g.id },
    el("td", {}, el("a", { href: `#/gateway/${g.id}` }, g.name)),
    el("td", {}, statusBadge(g.status)),
    el("td", {}, g.acting_primary ? "acting" : g.is_primary ? "designated" : ""),
    // Not connected: why and since when, not the figures of the last connection.
    connected(g)
      ? [el("td", {}, g.latency === null ? "–" : `${g.latency} ms`), el("td", {}, g.sessions_count), el("td", {}, g.agents_count)]
      : el("td", { colspan: "3", class: "why wrap" }, whyDown(g)),
    el("td", {}, (g.connection && g.connection.server_version) || "–"),
    el("td", {}, g.breaker.state),
    el("td", { class: "wrap" }, heldBack(g)),
    el("td", { class: "labels" }, Object.entries(g.labels || {}).map(([k, v]) => el("span", { class: "label" }, `${k}=${v}`)))));
  show(
    el("h1", {}, "Fleet"),
    el("div", { class: "summary" },
      el("span", {}, el("b", { id: "online-count" }, `${online}/${all}`), " online"),
      el("span", {}, "Acting primary: ", el("b", {}, acting ? acting.name : "none"))),
    el("div", { class: "toolbar" }, el("label", { for: "filter" }, "Filter"), filter,
      el("label", { for: "selector" }, "Labels"), selector,
      el("span", { class: "muted", id: "shown" }, `${fleet.total} match`),
      pages > 1 ? el("button", { type: "button", id: "prev", disabled: state.page === 0, onclick: () => go(state.page - 1) }, "Previous") : null,
      pages > 1 ? el("span", {}, `page ${state.page + 1} of ${pages}`) : null,
      pages > 1 ? el("button", { type: "button", id: "next", disabled: state.page >= pages - 1, onclick: () => go(state.page + 1) }, "Next") : null),
    el("p", { class: "error", id: "selector-error", role: "alert" }, state.selectorError),
    el("div", { class: "scroll" }, el("table", { id: "gateways" },
      el("caption", { class: "sr-only" }, "Gateways"),
      el("thead", {}, el("tr", {}, ["Name", "Status", "Primary", "Latency", "Sessions", "Agents", "Version", "Breaker", "Held", "Labels"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))));
}

async function renderGateway(id, refresh) {
  state.view = `gateway:${id}`;
  let g, history;
  try {
    g = (await api("GET", `/api/gateways/${id}`)).gateway;
    history = await api("GET", `/api/gateways/health/history?gateway_id=${id}`);
  } catch (e) { return failed(e); }
  if (refresh && state.view !== `gateway:${id}`) return;
  const c = g.connection || {};
  const err = c.last_error ? `${c.last_error.code}: ${c.last_error.message}` : "none";
  const fact = (k, v) => [el("dt", {}, k), el("dd", {}, v === null || v === undefined || v === "" ? "–" : v)];
  const action = (role, label, run, confirmText, danger) => can(role)
    ? el("button", { type: "button", class: danger ? "danger" : "", onclick: async (e) => {
        if (confirmText && !window.confirm(confirmText)) return;
        e.target.disabled = true;
        try { await run(); announce(`${label}: done`); } catch (x) { announce(`${label}: ${x.message}`); window.alert(x.message); }
        await renderGateway(id, true);
      } }, label) : null;
  const samples = ((history.series || [])[0] || { points: [] }).points;
  const answered = samples.filter((p) => p.latency !== null).length;
  const chart = el("div", { class: "chart", id: "latency-chart", role: "img", "aria-label": `Probe latency of ${g.name} over the last 24 hours: ${answered} samples` });
  const recent = state.events.filter((e) => String(e.gateway_id) === String(id)).slice(0, 20);
  show(
    el("p", {}, el("a", { href: "#/" }, "← Fleet")),
    el("h1", {}, g.name, " ", statusBadge(g.status)),
    el("dl", { class: "facts" },
      fact("Address", g.url), fact("Primary", g.acting_primary ? "acting" : g.is_primary ? "designated" : "no"),
      fact("Ping round trip", g.latency === null ? null : `${g.latency} ms`), fact("Link", c.state),
      fact("Version", c.server_version), fact("Protocol", c.protocol), fact("Boot id", c.boot_id),
      fact("Sessions", g.sessions_count), fact("Agents", g.agents_count),
      fact("Breaker", `${g.breaker.state} (${g.breaker.consecutive_failures} consecutive failures)`),
      fact("Held back", heldBack(g) || "no"),
      fact("Labels", Object.entries(g.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none"),
      fact("Approval client", c.approval_client ? "yes: the gateway waits for this daemon's answers" : "no"),
      fact("Gateway's suspension", c.suspension === "accepting" || !c.suspension ? c.suspension
        : `${c.suspension}${g.suspended ? "" : " (not made through this daemon unless a drain runs: it lapses 120 s after its maker last renewed it)"}`),
      fact("Last error", err)),
    el("div", { class: "actions" },
      action("operator", "Probe", () => api("POST", "/api/gateways/health", { gateway_id: Number(id) })),
      g.cordoned
        ? action("admin", "Uncordon", () => api("POST", `/api/gateways/${id}/uncordon`, {}), `Uncordon ${g.name}? It takes new spawns again.`)
        : action("admin", "Cordon", () => api("POST", `/api/gateways/${id}/cordon`, {}), `Cordon ${g.name}? It takes no new spawns until uncordoned.`),
      g.suspended
        ? action("admin", "Resume", () => api("POST", `/api/gateways/${id}/resume`, {}), `Resume ${g.name}?`)
        : action("admin", "Suspend", () => api("POST", `/api/gateways/${id}/suspend`, {}), `Suspend ${g.name}? Its runs finish; it takes no new work.`, true),
      action("admin", "Restart", () => api("POST", `/api/gateways/${id}/restart`, {}), `Restart ${g.name}? Its runs are interrupted.`, true),
      action("admin", "Drain", async () => { await api("POST", `/api/gateways/${id}/drain`); location.hash = "#/operations"; },
        `Drain ${g.name}? It is cordoned and suspended once its runs end (follow it on the Operations page).`, true)),
    el("h2", {}, "Probe latency, last 24 hours"), chart,
    el("p", { class: "muted", id: "latency-caption" }, answered === 0
      ? "No answered probe in the last 24 hours."
      : "Round trip of the health probe (the `health` RPC and /readyz), in ms; a gap is a failed probe or no probe. The ping round trip above is measured on the link every ten heartbeats."),
    el("h2", {}, "Recent events"),
    el("ul", { class: "events" }, recent.length ? recent.map(eventLine) : el("li", { class: "muted" }, "None since this page opened.")));
  if (answered > 0 && window.uPlot) drawLatency(chart, samples, Math.min($("main").clientWidth - 8, 1100));
}

// The last 24 hours, pinned to now (one sample does not stretch the axis over years); a failed
// probe, and a stretch with no probe, are gaps in the line, not lines across them. The x axis's
// labels are kept on the chart (`data-x-labels`) as drawn, for those who read them as text.
const DAY = 24 * 3600;
function latencySeries(samples, now) {
  const ts = [], ms = [];
  const steps = samples.slice(1).map((p, i) => p.ts - samples[i].ts).sort((a, b) => a - b);
  const usual = steps.length ? steps[Math.floor(steps.length / 2)] : 60;
  const gap = Math.max(3 * usual, 180);
  let last = null;
  for (const p of samples) {
    if (p.ts < now - DAY) continue;
    if (last !== null && p.ts - last > gap) { ts.push(last + 1); ms.push(null); }
    ts.push(p.ts); ms.push(p.latency);
    last = p.ts;
  }
  return [ts, ms];
}
const hhmm = (t) => { const d = new Date(t * 1000); return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`; };
function drawLatency(chart, samples, width) {
  const now = Math.floor(Date.now() / 1000);
  const data = latencySeries(samples, now);
  chart.dataset.xFrom = String(now - DAY);
  chart.dataset.xTo = String(now);
  new uPlot({
    width, height: 240, legend: { show: false },
    scales: { x: { time: true, range: () => [now - DAY, now] } },
    series: [{}, { label: "Probe latency (ms)", stroke: "#0b57d0", width: 2, spanGaps: false,
      points: { show: true, size: 5 }, value: (u, v) => (v === null || v === undefined ? "–" : `${v} ms`) }],
    axes: [
      { label: "time (last 24 hours, local)", space: 80, values: (u, splits) => {
        const labels = splits.map(hhmm);
        chart.dataset.xLabels = labels.join("|");
        return labels;
      } },
      { label: "probe latency (ms)" }],
  }, data, chart);
}

async function renderSessions() {
  state.view = "sessions";
  const gw = new URLSearchParams((location.hash.split("?")[1]) || "");
  let data;
  try { data = await api("GET", `/api/sessions?limit=500${gw.get("gateway_id") ? `&gateway_id=${encodeURIComponent(gw.get("gateway_id"))}` : ""}`); }
  catch (e) { return failed(e); }
  const ids = [...new Set(data.sessions.map((s) => s.gateway_id))].filter((id) => !state.names.has(id));
  if (ids.length > 0 && ids.length <= 20) {
    for (const id of ids) {
      try { const g = (await api("GET", `/api/gateways/${id}`)).gateway; state.names.set(g.id, g.name); } catch (_) { /* the id is shown */ }
    }
  }
  const names = state.names;
  const rows = data.sessions.map((s) => el("tr", {},
    el("td", {}, names.get(s.gateway_id) || s.gateway_id), el("td", {}, s.key), el("td", {}, s.agent || "–"),
    el("td", {}, s.status), el("td", {}, s.running ? "running" : ""),
    el("td", {}, can("operator") ? el("button", { type: "button", class: "danger", onclick: async (e) => {
      if (!window.confirm(`Kill session ${s.key}? Its run is aborted.`)) return;
      e.target.disabled = true;
      try { await api("POST", `/api/sessions/${encodeURIComponent(s.key)}/control?gateway_id=${s.gateway_id}`, { action: "kill" }); announce("Session killed"); }
      catch (x) { window.alert(x.message); }
      await renderSessions();
    } }, "Kill") : "")));
  show(el("h1", {}, "Sessions"),
    el("p", { class: "muted" }, `${data.sessions.length} of ${data.total}${data.truncated ? " (first 500)" : ""}`),
    el("div", { class: "scroll" }, el("table", { id: "sessions" },
      el("thead", {}, el("tr", {}, ["Gateway", "Key", "Agent", "Status", "Run", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))));
}

function when(ms) {
  return typeof ms === "number" ? new Date(ms < 1e12 ? ms * 1000 : ms).toISOString().replace("T", " ").slice(0, 19) : "–";
}

function failed(e) {
  if (!(e instanceof Unauthorized)) show(el("p", { class: "error" }, e.message));
}

async function renderSpawns() {
  state.view = "spawns";
  const list = el("div", { id: "spawn-list" });
  show(el("h1", {}, "Spawns"), spawnForm(() => loadSpawns(list)), list);
  await loadSpawns(list);
}

async function loadSpawns(list) {
  let data;
  try { data = await api("GET", "/api/spawn?limit=200"); } catch (e) { return failed(e); }
  // What the run said (its reply), or how it ended; the whole record is one click away in
  // the API (GET /api/spawn/{id}), not dumped here as JSON.
  const result = (s) => {
    if (s.error) return s.error;
    const r = s.result;
    if (r === null || r === undefined) return s.status === "running" || s.status === "pending" ? "running…" : "";
    const text = typeof r === "string" ? r
      : typeof r.reply === "string" ? r.reply
      : r.status ? `run ${r.status}${r.runId ? ` (${r.runId})` : ""}`
      : "done (no reply)";
    return text.length > 160 ? `${text.slice(0, 160)}…` : text;
  };
  const rows = data.spawns.map((s) => el("tr", {},
    el("td", {}, when(s.created_at)), el("td", {}, s.agent || s.method),
    el("td", {}, state.names.get(s.gateway_id) || s.gateway_id || "–"),
    el("td", {}, el("span", { class: `badge s-${s.status === "ok" ? "online" : s.status === "running" || s.status === "pending" ? "unknown" : "offline"}` }, s.status)),
    el("td", { class: "wrap" }, result(s))));
  list.replaceChildren(
    el("p", { class: "muted" }, `${data.spawns.length} of ${data.total}, newest first`),
    el("div", { class: "scroll" }, el("table", { id: "spawns" },
      el("thead", {}, el("tr", {}, ["Started", "Agent", "Gateway", "Status", "Result"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))));
}

async function renderAudit() {
  state.view = "audit";
  if (!can("admin")) { show(el("p", {}, "The audit log is for admin keys.")); return; }
  let data;
  try { data = await api("GET", "/api/audit?limit=200"); } catch (e) { return failed(e); }
  const rows = data.entries.map((a) => el("tr", {},
    el("td", {}, when(a.ts)), el("td", {}, a.actor), el("td", {}, a.action),
    el("td", {}, `${a.target_type}${a.target_id ? ` ${a.target_id}` : ""}`),
    el("td", { class: "wrap" }, (a.details || "").slice(0, 200))));
  show(el("h1", {}, "Audit log"),
    el("p", { class: "muted" }, "Who changed what, newest first (the last 200)."),
    el("div", { class: "scroll" }, el("table", { id: "audit" },
      el("thead", {}, el("tr", {}, ["When", "Who", "Action", "Target", "Details"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))));
}

async function renderCluster() {
  state.view = "cluster";
  let c;
  try { c = await api("GET", "/api/cluster"); } catch (e) { return failed(e); }
  if (!c.clustered) { show(el("h1", {}, "Cluster"), el("p", {}, "This daemon runs alone (SQLite, or PostgreSQL without a cluster).")); return; }
  const rows = c.instances.map((i) => el("tr", {},
    el("td", {}, i.instance_id, i.instance_id === c.instance_id ? " (this one)" : ""),
    el("td", {}, i.live ? "live" : i.stopping ? "stopped" : "missing"),
    el("td", {}, `${i.heartbeat_age_ms} ms`), el("td", {}, i.gateways),
    el("td", {}, i.capacity ?? "unbounded"),
    el("td", {}, i.instance_id === c.coordinator ? "coordinator" : "")));
  const adoption = c.adoption && c.adoption.state === "held"
    ? `Adoption held until ${new Date(c.adoption.until_ms).toISOString().slice(11, 19)}: ${c.adoption.why}`
    : "Adoption paced";
  const unplaced = c.gateways_unplaced > 0
    ? el("p", { class: "error", id: "unplaced" }, `${c.gateways_unplaced} gateways no instance has room for (linked by none): ${c.unplaced.join(", ")}${c.gateways_unplaced > c.unplaced.length ? " …" : ""}`)
    : el("p", { id: "unplaced" }, "Every gateway has room on an instance.");
  show(el("h1", {}, "Cluster"),
    el("p", {}, `Gateways linked by nobody right now: ${c.gateways_unowned}`),
    unplaced,
    el("p", { id: "adoption" }, adoption),
    el("div", { class: "scroll" }, el("table", { id: "instances" },
      el("thead", {}, el("tr", {}, ["Instance", "State", "Heartbeat", "Gateways", "Capacity", "Role"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))));
}

function eventLine(e) {
  const when = new Date(e.ts).toISOString().slice(11, 19);
  return el("li", {}, `${when}  ${e.type}  gateway ${e.gateway_id ?? "–"}  ${JSON.stringify(e.payload).slice(0, 200)}`);
}

function renderEvents() {
  show(el("h1", {}, "Events"),
    el("p", { class: "muted" }, "Live; the newest first (the last 200 since this page opened)."),
    el("ul", { class: "events", id: "event-list" }, state.events.map(eventLine)));
}

// ---- boot ----------------------------------------------------------------------------------

(async () => {
  try {
    const res = await fetch("/console/session", { credentials: "same-origin" });
    if (!res.ok) return showLogin();
    state.me = await res.json();
    start();
  } catch (_) { showLogin("The daemon did not answer."); }
})();
