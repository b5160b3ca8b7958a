// gateway-supervisor console: the pages that act on the fleet — start a spawn and watch its
// result, fleet operations (drain, rolling restart, upgrade, update hold: each gateway's step,
// cancel, abort the runs holding a drain), the gateways' log tail (filter, follow), usage and
// the version inventory. Loaded after app.js and uses its helpers (el, api, can, when, failed);
// every value is set as text. Buttons exist only for a role that may use them: the API refuses
// the rest anyway.
"use strict";

// ---- spawn form (on the Spawns page) ---------------------------------------------------------

const SPAWN_FINAL = ["ok", "error", "timeout", "aborted"];

function spawnForm(onDone) {
  if (!can("operator")) return null;
  const agent = el("input", { id: "spawn-agent", value: "main", required: true, maxlength: "128" });
  const task = el("textarea", { id: "spawn-task", required: true, rows: "3", maxlength: "20000" });
  const gateway = el("select", { id: "spawn-gateway" }, el("option", { value: "" }, "automatic (primary, then least busy)"),
    [...state.names].sort((a, b) => a[0] - b[0]).map(([id, name]) => el("option", { value: String(id) }, name)));
  const out = el("p", { id: "spawn-result", class: "wrap", role: "status" });
  const submit = el("button", { type: "submit", id: "spawn-submit" }, "Spawn");
  return el("form", { class: "spawn-form", onsubmit: async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    out.textContent = "starting…";
    const body = { agent: agent.value.trim(), task: task.value };
    if (gateway.value) body.gateway_id = Number(gateway.value);
    try {
      const started = await api("POST", "/api/spawn", body);
      out.textContent = `${started.spawn_id}: ${started.status}`;
      const end = Date.now() + 15 * 60 * 1000;
      let s = started;
      while (!SPAWN_FINAL.includes(s.status) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 1000));
        s = await api("GET", `/api/spawn/${encodeURIComponent(started.spawn_id)}`);
        const text = s.error || (s.result && (s.result.reply || JSON.stringify(s.result))) || "";
        out.textContent = `${s.spawn_id}: ${s.status}${text ? ` — ${String(text).slice(0, 500)}` : ""}`;
      }
      announce(`Spawn ${s.status}`);
      if (onDone) onDone();
    } catch (x) { out.textContent = x.message; }
    submit.disabled = false;
  } },
    el("h2", {}, "New spawn"),
    el("label", { for: "spawn-agent" }, "Agent"), agent,
    el("label", { for: "spawn-task" }, "Task"), task,
    el("label", { for: "spawn-gateway" }, "Gateway"), gateway,
    submit, out);
}

// ---- operations ------------------------------------------------------------------------------

async function renderOperations() {
  state.view = "operations";
  let data;
  try { data = await api("GET", "/api/operations?limit=50"); } catch (e) { return failed(e); }
  if (state.view !== "operations") return;
  const act = (label, run, question, danger) => can("admin")
    ? el("button", { type: "button", class: danger ? "danger" : "", onclick: async (e) => {
        if (question && !window.confirm(question)) return;
        e.target.disabled = true;
        try { await run(); announce(`${label}: asked`); } catch (x) { window.alert(x.message); }
        await renderOperations();
      } }, label) : null;
  // Fleet actions take the gateways a label selector picks (empty: every gateway).
  const picker = el("input", { id: "operation-selector", type: "text", placeholder: "selector, e.g. region=eu (empty: every gateway)",
    maxlength: "500", "aria-label": "Gateways (label selector)", value: state.operationSelector || "",
    oninput: (e) => { state.operationSelector = e.target.value; } });
  const picked = () => (picker.value.trim() ? picker.value.trim() : { all: true });
  const start = (path, body, what) => can("admin") ? el("button", { type: "button", class: "danger", onclick: async (e) => {
    const sel = picked();
    const whom = typeof sel === "string" ? `the gateways ${sel} picks` : "every gateway";
    if (!window.confirm(`${what} of ${whom}? It goes on in the background.`)) return;
    e.target.disabled = true;
    try { await api("POST", path, { ...body, selector: sel }); announce(`${what}: asked`); } catch (x) { window.alert(x.message); }
    await renderOperations();
  } }, what) : null;
  const gatewayRows = (op) => op.gateways.map((p) => el("tr", {},
    el("td", {}, state.names.get(p.gateway_id) || p.gateway_id), el("td", {}, p.step),
    el("td", { class: "wrap" }, p.detail || ""),
    el("td", { class: "wrap" }, (p.blocking_runs || []).map((r) => r.session_key).join(", "))));
  const card = (op) => {
    const live = op.state === "running" || op.state === "cancelling";
    const draining = op.gateways.some((p) => p.step === "draining");
    return el("section", { class: "operation", "data-operation": op.id },
      el("h2", {}, `${op.kind.replace("_", " ")} `, el("span", { class: `badge s-${op.state === "succeeded" ? "online" : live ? "unknown" : "offline"}` }, op.state)),
      el("p", { class: "muted" }, `${op.id}, by ${op.created_by}, ${when(op.created_at)}`),
      op.state === "running" ? el("div", { class: "actions" },
        draining ? act("Abort blocking runs", () => api("POST", `/api/operations/${op.id}/abort-runs`),
          "Abort the runs that hold the drain? The suspension is released, each run aborted, the gateway suspended again.", true) : null,
        act("Cancel", () => api("POST", `/api/operations/${op.id}/cancel`), `Cancel ${op.id}? A drain is let go; a restart already sent is seen through.`)) : null,
      el("div", { class: "scroll" }, el("table", { class: "progress" },
        el("thead", {}, el("tr", {}, ["Gateway", "Step", "Detail", "Blocking runs"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, gatewayRows(op)))));
  };
  show(el("h1", {}, "Operations"),
    can("admin") ? el("div", { class: "actions", id: "start-operation" }, picker,
      start("/api/fleet/restart", {}, "Rolling restart"),
      start("/api/fleet/upgrade", { canary: 1 }, "Upgrade (one canary first)"),
      start("/api/fleet/update-hold", {}, "Hold updates")) : null,
    el("p", { class: "muted" }, data.operations.length ? "Newest first; drain one gateway from its page." : "No operation yet; drain one gateway from its page."),
    el("div", { id: "operations" }, data.operations.map(card)));
}

// ---- log tail --------------------------------------------------------------------------------

const logs = { follow: null, lines: [] };

function logLine(e) {
  const p = e.payload || {};
  const t = p.time || new Date(e.ts).toISOString();
  return el("li", {}, `${String(t).slice(0, 23)}  ${state.names.get(e.gateway_id) || e.gateway_id || "–"}  ${p.level || "info"}  ${String(p.message ?? "").slice(0, 500)}`);
}

function stopFollowing() {
  if (logs.follow) { logs.follow.close(); logs.follow = null; }
}

async function renderLogs() {
  state.view = "logs";
  stopFollowing();
  const q = el("input", { id: "log-filter", type: "search", placeholder: "text in the line", maxlength: "200" });
  const level = el("select", { id: "log-level" }, ["", "error", "warn", "info", "debug"].map((l) => el("option", { value: l }, l || "any level")));
  const follow = el("input", { id: "log-follow", type: "checkbox" });
  const list = el("ul", { class: "events", id: "log-lines" });
  const query = () => {
    const params = new URLSearchParams({ limit: "300" });
    if (q.value.trim()) params.set("q", q.value.trim());
    if (level.value) params.set("level", level.value);
    return params;
  };
  let timer = null;
  let loads = 0;
  // Following: the stream is opened first and the recent lines read after it is open, so a
  // line written in between is in one or the other (a line in both, by id, is shown once).
  const load = async () => {
    clearTimeout(timer);
    const mine = ++loads;
    stopFollowing();
    delete list.dataset.following;
    let seen = null;
    const early = [];
    const prepend = (ev) => {
      list.prepend(logLine(ev));
      while (list.childElementCount > 500) list.lastElementChild.remove();
    };
    if (follow.checked && state.view === "logs") {
      const params = query(); params.set("follow", "true");
      const source = new EventSource(`/api/logs?${params}`);
      logs.follow = source;
      source.addEventListener("log", (msg) => {
        if (state.view !== "logs") return stopFollowing();
        let ev; try { ev = JSON.parse(msg.data); } catch (_) { return; }
        if (seen === null) early.push(ev);
        else if (!seen.has(ev.id)) prepend(ev);
      });
      await new Promise((opened) => {
        source.addEventListener("open", opened, { once: true });
        setTimeout(opened, 5000);
      });
      if (mine !== loads) return;
    }
    let data;
    try { data = await api("GET", `/api/logs?${query()}`); } catch (e) { return failed(e); }
    if (mine !== loads) return;
    logs.lines = data.logs.slice().reverse();
    list.replaceChildren(...logs.lines.map(logLine));
    seen = new Set(data.logs.map((l) => l.id));
    for (const ev of early) if (!seen.has(ev.id)) prepend(ev);
    if (logs.follow) list.dataset.following = "true";
  };
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 300); });
  level.addEventListener("change", load);
  follow.addEventListener("change", load);
  show(el("h1", {}, "Gateway logs"),
    el("div", { class: "toolbar" },
      el("label", { for: "log-filter" }, "Filter"), q,
      el("label", { for: "log-level" }, "Level"), level,
      el("label", { for: "log-follow" }, follow, " Follow")),
    el("p", { class: "muted" }, "The newest first: the gateways' log events and their file logs (logs.tail), credentials redacted."),
    list);
  await load();
}

// ---- usage and versions ----------------------------------------------------------------------

async function renderUsage() {
  state.view = "usage";
  let u;
  try { u = await api("GET", "/api/usage?group_by=gateway"); } catch (e) { return failed(e); }
  const n = (x) => Number(x || 0).toLocaleString("en");
  const usd = (x) => `$${Number(x || 0).toFixed(4)}`;
  const row = (label, g) => el("tr", {}, el("td", {}, label), el("td", {}, n(g.input_tokens)), el("td", {}, n(g.output_tokens)),
    el("td", {}, n(g.total_tokens)), el("td", {}, usd(g.cost_usd)));
  show(el("h1", {}, "Usage"),
    el("p", { class: "muted" }, `${u.since} to ${u.until}, as each gateway reports it (usage.cost)${u.truncated ? "; partial: narrow the range" : ""}.`),
    el("div", { class: "scroll" }, el("table", { id: "usage" },
      el("thead", {}, el("tr", {}, ["Gateway", "Input tokens", "Output tokens", "Total tokens", "Cost"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, u.groups.map((g) => row(state.names.get(g.gateway_id) || g.gateway_id || "–", g)), row("All", u.totals)))));
}

async function renderVersions() {
  state.view = "versions";
  let v;
  try { v = await api("GET", "/api/fleet/versions"); } catch (e) { return failed(e); }
  show(el("h1", {}, "Versions"),
    el("p", { class: "muted" }, `${v.total} gateways by the release their last handshake reported${v.unreachable_instances.length ? `; not heard from: ${v.unreachable_instances.join(", ")}` : ""}.`),
    el("div", { class: "scroll" }, el("table", { id: "versions" },
      el("thead", {}, el("tr", {}, ["Release", "Build", "Protocol", "Gateways"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, v.versions.map((g) => el("tr", {},
        el("td", {}, g.version || "no handshake yet"), el("td", {}, g.build_id || "–"), el("td", {}, g.protocol ?? "–"),
        el("td", { class: "wrap" }, `${g.count}: ${g.gateway_ids.map((id) => state.names.get(id) || id).join(", ")}`)))))));
}

Object.assign(PAGES, {
  "#/operations": renderOperations,
  "#/logs": renderLogs,
  "#/usage": renderUsage,
  "#/versions": renderVersions,
});
