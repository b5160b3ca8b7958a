// gateway-supervisor console: desired configuration. The config profiles (what each sets, for
// which gateways, in the order they apply; secrets as the gateway shows them) and every
// gateway's drift from them: in sync, drifted (each path with what it runs and what the
// profiles set), saved but not applied, unknown (and why); and the newest rollouts, each as its
// waves with every gateway's step, live (an `operation.progress` event refreshes the page), and
// for an admin the buttons that steer it (promote, pause, resume, cancel).
// Values are set as text, never interpreted. Loaded after app.js and uses its helpers.
"use strict";

const DRIFT_STATES = ["in_sync", "drifted", "saved_not_applied", "unknown"];

function shownValue(v) { return v === undefined ? "(not set)" : JSON.stringify(v); }

const ROLLOUTS_SHOWN = 5;

// The buttons that steer a rollout in its state (admin keys only): promote after the canaries,
// pause and resume, cancel in every state that is not over (a revert stops where it is).
function rolloutSteering(op) {
  if (!can("admin")) return null;
  const steer = (label, path, question, danger) => el("button", { type: "button", class: danger ? "danger" : "",
    "data-steer": label.toLowerCase(), onclick: async (e) => {
      if (question && !window.confirm(question)) return;
      e.target.disabled = true;
      try { await api("POST", path); announce(`${label}: asked`); } catch (x) { window.alert(x.message); }
      await renderConfig();
    } }, label);
  const id = encodeURIComponent(op.id);
  const buttons = [
    op.state === "awaiting_promotion" ? steer("Promote", `/api/config/rollouts/${id}/promote`, null) : null,
    op.state === "running" || op.state === "awaiting_promotion" ? steer("Pause", `/api/config/rollouts/${id}/pause`, null) : null,
    op.state === "paused" ? steer("Resume", `/api/config/rollouts/${id}/resume`, null) : null,
    ["running", "paused", "awaiting_promotion", "reverting"].includes(op.state)
      ? steer("Cancel", `/api/operations/${id}/cancel`, `Cancel rollout ${op.id}? What was written is seen through; a revert stops where it is.`, true) : null,
  ].filter(Boolean);
  return buttons.length ? el("div", { class: "actions" }, buttons) : null;
}

// One rollout: its state (and why it stopped), then its waves, each gateway with its step.
function rolloutBlock(r) {
  const op = r.operation;
  const byId = new Map(op.gateways.map((g) => [g.gateway_id, g]));
  const chip = (id) => {
    const g = byId.get(id) || { step: "pending" };
    return el("li", { "data-gateway": id, "data-step": g.step, title: g.detail || "" },
      el("a", { href: `#/gateway/${id}` }, `#${id}`), " ", el("span", { class: `badge s-${g.step}` }, g.step));
  };
  const waves = r.waves.map((w, i) => el("li", { class: "wave", "data-wave": i },
    el("span", { class: "muted" }, w.canary ? "canary" : `wave ${r.waves[0] && r.waves[0].canary ? i : i + 1}`),
    el("ul", { class: "chips" }, w.gateways.map(chip))));
  return el("section", { class: "rollout", "data-rollout": op.id, "data-state": op.state },
    el("h3", {}, el("code", {}, op.id), " ", el("span", { class: `badge r-${op.state}` }, op.state.replaceAll("_", " ")),
      " ", el("span", { class: "muted" }, `${r.rollout.profile ? `profile ${r.rollout.profile}` : `selector ${r.rollout.selector || "(every gateway)"}`} · by ${op.created_by} · ${when(op.created_at * 1000)}`)),
    op.detail ? el("p", { class: "detail" }, op.detail) : null,
    rolloutSteering(op),
    el("ol", { class: "waves" }, waves));
}

async function renderConfig() {
  state.view = "config";
  let profiles, drift, rollouts;
  try {
    [profiles, drift, rollouts] = await Promise.all([api("GET", "/api/config/profiles"), api("GET", "/api/config/drift"),
      api("GET", "/api/config/rollouts")]);
    rollouts = await Promise.all(rollouts.rollouts.slice(0, ROLLOUTS_SHOWN)
      .map((op) => api("GET", `/api/config/rollouts/${encodeURIComponent(op.id)}`)));
  } catch (e) { return failed(e); }
  if (state.view !== "config") return;
  const head = (cols) => el("thead", {}, el("tr", {}, cols.map((h) => el("th", { scope: "col" }, h))));
  const profileRows = profiles.profiles.map((p) => el("tr", { "data-profile": p.name },
    el("td", {}, p.name), el("td", {}, el("code", {}, p.selector || "(every gateway)")),
    el("td", { class: "wrap" }, el("code", { class: "command" }, JSON.stringify(p.patch))),
    el("td", { class: "wrap" }, p.note || "–"), el("td", {}, `${when(p.updated_at_ms)} by ${p.updated_by}`)));
  const pathList = (g) => g.paths.length === 0 ? (g.reason || "–")
    : el("ul", { class: "paths" }, g.paths.map((p) => el("li", {}, el("code", {}, p.path), p.secret
      ? (p.present ? " (secret: differs)" : " (secret: not set)")
      : ` runs ${shownValue(p.present ? p.live : undefined)}, profiles set ${shownValue(p.desired)}`)));
  const driftRows = drift.gateways.map((g) => el("tr", { "data-gateway": g.gateway_id, "data-state": g.state },
    el("td", {}, el("a", { href: `#/gateway/${g.gateway_id}` }, g.name)),
    el("td", {}, el("span", { class: `badge d-${g.state}` }, g.state.replaceAll("_", " "))),
    el("td", {}, g.profiles.join(", ") || "–"),
    el("td", { class: "wrap" }, pathList(g)),
    el("td", {}, g.checked_at_ms ? when(g.checked_at_ms) : "never")));
  const counts = DRIFT_STATES.map((s) => `${drift.counts[s] || 0} ${s.replaceAll("_", " ")}`).join(" · ");
  show(el("h1", {}, "Config"),
    el("p", { class: "summary", id: "drift-counts" }, counts),
    el("h2", {}, "Rollouts"),
    rollouts.length === 0
      ? el("p", { class: "muted", id: "rollouts" }, "No rollout yet. Start one with POST /api/config/rollouts (admin) or ctl config rollout.")
      : el("div", { id: "rollouts" }, rollouts.map(rolloutBlock)),
    el("h2", {}, "Drift"),
    el("div", { class: "scroll" }, el("table", { id: "drift" },
      head(["Gateway", "State", "Profiles", "Differs", "Read back"]), el("tbody", {}, driftRows))),
    el("h2", {}, "Profiles"),
    el("p", { class: "muted" }, "They apply in name order; a later one wins a path both set. Written with PUT /api/config/profiles/{name} (admin)."),
    el("div", { class: "scroll" }, el("table", { id: "profiles" },
      head(["Name", "Selector", "Patch", "Note", "Updated"]), el("tbody", {}, profileRows))));
}

PAGES["#/config"] = renderConfig;
