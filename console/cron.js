// gateway-supervisor console: every gateway's cron jobs (GET /api/cron/jobs) — schedule, next
// and last run, the extra copies of a job and the fires a gateway skipped flagged; a job's row
// opens its last runs (read from its gateway) and its missed fires. An admin removes a
// gateway's extra copies in one action. The declared jobs follow, with their drift. Loaded after app.js and uses its helpers; every value
// is set as text.
"use strict";

const cronView = { status: "", q: "", system: false, open: null };

function cronSchedule(s) {
  if (!s || typeof s !== "object") return "–";
  if (s.kind === "cron") return `${s.expr}${s.tz ? ` (${s.tz})` : ""}`;
  if (s.kind === "every" && typeof s.everyMs === "number") return `every ${s.everyMs / 1000}s`;
  return String(s.kind || "–");
}

function cronQuery() {
  const p = new URLSearchParams({ limit: "500" });
  if (cronView.status) p.set("status", cronView.status);
  if (cronView.q.trim()) p.set("q", cronView.q.trim());
  if (cronView.system) p.set("system", "true");
  return p.toString();
}

async function cronDetail(j) {
  const path = `/api/cron/jobs/${j.gateway_id}/${encodeURIComponent(j.job_id)}`;
  let d;
  try { d = await api("GET", path); } catch (e) { return el("p", { class: "error" }, e.message); }
  const runs = d.runs
    ? el("table", { class: "cron-runs" },
      el("thead", {}, el("tr", {}, ["Run at", "Status", "Duration", "Model", "Tokens", "Run id"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, d.runs.map((r) => el("tr", {},
        el("td", {}, when(r.run_at_ms)), el("td", {}, r.status || "–"),
        el("td", {}, r.duration_ms == null ? "–" : `${r.duration_ms} ms`), el("td", {}, r.model || "–"),
        el("td", {}, r.total_tokens == null ? "–" : String(r.total_tokens)), el("td", {}, r.run_id || "scheduled")))))
    : el("p", { class: "muted" }, `Runs not read: ${d.runs_unavailable}`);
  const misses = d.misses.length === 0 ? el("p", { class: "muted" }, "No missed fire on record.")
    : el("table", { class: "cron-misses" },
      el("thead", {}, el("tr", {}, ["Slot", "Cause", "Recovery", "Detail"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, d.misses.map((m) => el("tr", { "data-cause": m.cause },
        el("td", {}, when(m.slot_ms)), el("td", {}, m.cause), el("td", {}, m.recovery || "–"),
        el("td", { class: "wrap" }, m.recovery_detail || "–")))));
  return el("div", { class: "cron-detail" }, el("h3", {}, "Last runs"), runs, el("h3", {}, "Missed fires"), misses);
}

async function removeDuplicates(gatewayId) {
  try {
    const done = await api("POST", `/api/cron/gateways/${gatewayId}/remove-duplicates`);
    announce(`Removed ${done.removed.length} extra copies on gateway ${gatewayId}`);
    if (done.failed.length) window.alert(done.failed.map((f) => `${f.job_id}: ${f.error}`).join("\n"));
  } catch (x) { announce(`Remove duplicates: ${x.message}`); window.alert(x.message); }
  await renderCron();
}

// The declared jobs (GET /api/cron/declarations): where each fires, its revision, the
// gateways written and those whose job differs from it, by field; its last rollout. The
// platform's: a key scoped to a tenant is not shown them.
async function cronDeclarations() {
  let data;
  try { data = await api("GET", "/api/cron/declarations"); } catch (_) { return null; }
  const title = el("h2", {}, "Declared jobs");
  if (data.declarations.length === 0) return el("section", { class: "cron-declarations" }, title, el("p", { class: "muted" }, "No job is declared."));
  const head = el("thead", {}, el("tr", {}, ["Declaration", "Selector", "Schedule", "Fires on", "Revision", "Gateways", "Drift", "Rollout"]
    .map((h) => el("th", { scope: "col" }, h))));
  const rows = data.declarations.map((d) => {
    const fires = d.single ? `one (${state.names.get(d.owner_gateway_id) || `gateway ${d.owner_gateway_id ?? "–"}`}; moves: ${d.single})` : "every one picked";
    const drifted = d.gateways.filter((g) => g.drift.length || g.error)
      .map((g) => `${state.names.get(g.gateway_id) || `gateway ${g.gateway_id}`}: ${g.error || g.drift.join(", ")}`);
    return el("tr", { "data-declaration": d.name, "data-drifted": String(d.drifted) },
      el("td", {}, d.name), el("td", {}, d.selector || "every gateway"), el("td", {}, cronSchedule(d.job && d.job.schedule)),
      el("td", {}, fires), el("td", {}, String(d.revision)), el("td", {}, String(d.gateways.length)),
      el("td", { class: "wrap" }, drifted.length ? el("span", { class: "badge s-degraded" }, `${d.drifted} drifted`) : "in sync",
        drifted.length ? el("div", { class: "muted" }, drifted.join("; ")) : null),
      el("td", {}, d.operation_id ? el("a", { href: "#/operations", title: "on the operations page" }, d.operation_id) : "–"));
  });
  return el("section", { class: "cron-declarations" }, title,
    el("div", { class: "scroll" }, el("table", { class: "cron-declared" }, head, el("tbody", {}, rows))));
}

async function renderCron() {
  state.view = "cron";
  let data, missed;
  try {
    [data, missed] = await Promise.all([
      api("GET", `/api/cron/jobs?${cronQuery()}`),
      api("GET", `/api/cron/jobs?status=missed&limit=1000${cronView.system ? "&system=true" : ""}`),
    ]);
  } catch (e) { return failed(e); }
  if (state.view !== "cron") return;
  const skipped = new Set(missed.jobs.map((j) => `${j.gateway_id}/${j.job_id}`));
  // Gateways named as the fleet page named them; a few unknown ones asked for.
  const unknown = [...new Set(data.jobs.map((j) => j.gateway_id))].filter((id) => !state.names.has(id));
  if (unknown.length > 0 && unknown.length <= 20) {
    for (const id of unknown) {
      try { const g = (await api("GET", `/api/gateways/${id}`)).gateway; state.names.set(g.id, g.name); } catch (_) { /* the id is shown */ }
    }
  }
  if (state.view !== "cron") return;
  const status = el("select", { id: "cron-status", "aria-label": "Status", onchange: (e) => { cronView.status = e.target.value; renderCron(); } },
    ["", "enabled", "disabled", "failing", "duplicate", "missed"].map((s) => el("option", { value: s, selected: s === cronView.status ? "" : null }, s || "any status")));
  const search = el("input", { id: "cron-q", type: "search", placeholder: "name", "aria-label": "Name", value: cronView.q,
    onchange: (e) => { cronView.q = e.target.value; renderCron(); } });
  const system = el("label", {}, el("input", { type: "checkbox", id: "cron-system", checked: cronView.system ? "" : null,
    onchange: (e) => { cronView.system = e.target.checked; renderCron(); } }), " the gateways' own jobs");
  const head = el("thead", {}, el("tr", {}, ["Gateway", "Job", "Agent", "Schedule", "State", "Next run", "Last run", ""]
    .map((h) => el("th", { scope: "col" }, h))));
  const rows = [];
  for (const j of data.jobs) {
    const key = `${j.gateway_id}/${j.job_id}`;
    const flags = [];
    if (skipped.has(key)) flags.push(el("span", { class: "badge s-offline", title: "a fire was skipped and not run again" }, "missed"));
    if (j.duplicate_of) flags.push(el("span", { class: "badge s-degraded", title: `an extra copy of ${j.duplicate_of}` }, "duplicate"));
    if (j.last_run_status === "error") flags.push(el("span", { class: "badge s-offline" }, "failing"));
    const name = state.names.get(j.gateway_id) || `gateway ${j.gateway_id}`;
    rows.push(el("tr", { "data-job": key, "data-enabled": String(j.enabled) },
      el("td", {}, el("a", { href: `#/gateway/${j.gateway_id}` }, name)),
      el("td", {}, el("button", { type: "button", class: "cron-open", "aria-expanded": String(cronView.open === key),
        onclick: () => { cronView.open = cronView.open === key ? null : key; renderCron(); } }, j.name)),
      el("td", {}, j.agent || "–"), el("td", {}, cronSchedule(j.schedule)),
      el("td", {}, j.enabled ? "enabled" : "disabled", j.system ? " · gateway's own" : "", ...flags.flatMap((f) => [" ", f])),
      el("td", {}, when(j.next_run_at_ms)), el("td", {}, `${when(j.last_run_at_ms)} ${j.last_run_status || ""}`),
      el("td", {}, j.duplicate_of && can("admin") ? el("button", { type: "button", class: "remove-duplicates",
        onclick: (e) => { e.target.disabled = true; removeDuplicates(j.gateway_id); } }, "Remove extra copies") : null)));
    if (cronView.open === key) rows.push(el("tr", { class: "cron-detail-row" }, el("td", { colspan: "8" }, await cronDetail(j))));
  }
  const table = data.jobs.length === 0 ? el("p", { class: "muted" }, "No job matches.")
    : el("div", { class: "scroll" }, el("table", { class: "cron" }, head, el("tbody", {}, rows)));
  const declared = await cronDeclarations();
  if (state.view !== "cron") return;
  show(el("h1", {}, "Cron"),
    el("div", { class: "toolbar" }, status, search, system),
    table,
    data.next_cursor ? el("p", { class: "muted" }, "More jobs than shown: narrow the filter.") : null,
    declared);
}

PAGES["#/cron"] = renderCron;
