// gateway-supervisor console: hosts and the gateways this daemon runs on them (managed
// gateways). Each host: whether a daemon of it is up, what it says of itself (releases
// installed, CPUs, memory, load), its managed gateways with release, state, pid, restarts and
// last exit — `unsupervised` while no daemon of the host is up. An admin installs a gateway,
// restarts one (OpenClaw's handoff) and upgrades a host's gateways (a canary first, rolled back
// if the target fails). Loaded after app.js and uses its helpers; every value is set as text.
"use strict";

const GiB = 1024 * 1024 * 1024;

function hostFacts(h) {
  const i = h.info;
  if (!i) return "not reported yet";
  const mem = i.memory_total_bytes ? `${(i.memory_available_bytes / GiB).toFixed(1)} of ${(i.memory_total_bytes / GiB).toFixed(1)} GiB free` : "memory unknown";
  return `${i.cpus} CPUs · ${mem} · load ${i.load_1m ?? "?"} · releases ${i.releases.join(", ") || "none"}`;
}

async function hostsAct(label, run) {
  try { await run(); announce(`${label}: done`); } catch (x) { announce(`${label}: ${x.message}`); window.alert(x.message); }
  await renderHosts();
}

function installForm() {
  if (!can("admin")) return null;
  const name = el("input", { id: "managed-name", required: true, maxlength: "63", pattern: "[A-Za-z0-9][A-Za-z0-9._-]*" });
  const version = el("input", { id: "managed-version", required: true, maxlength: "64", value: "2026.9.6" });
  return el("form", { class: "spawn-form", id: "managed-install", onsubmit: async (ev) => {
    ev.preventDefault();
    await hostsAct(`Install ${name.value}`, () => api("POST", "/api/managed", { name: name.value.trim(), version: version.value.trim() }));
  } },
    el("h2", {}, "Install a gateway on this daemon's host"),
    el("label", { for: "managed-name" }, "Name"), name,
    el("label", { for: "managed-version" }, "OpenClaw release"), version,
    el("button", { type: "submit", id: "managed-install-submit" }, "Install"));
}

function upgradeForm(h) {
  const ids = h.managed.map((m) => m.gateway_id);
  if (!can("admin") || ids.length === 0) return null;
  const version = el("input", { class: "upgrade-version", required: true, maxlength: "64", placeholder: "release, e.g. 2026.9.6", "aria-label": `Release for ${h.host_id}` });
  return el("form", { class: "inline upgrade", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const op = await api("POST", "/api/fleet/upgrade", { gateway_ids: ids, version: version.value.trim(), canary: 1 });
      announce(`Upgrade started: ${op.operation.id}`);
      location.hash = "#/operations";
    } catch (x) { announce(`Upgrade: ${x.message}`); window.alert(x.message); }
  } }, version, el("button", { type: "submit" }, `Upgrade ${ids.length} (canary first)`));
}

async function renderHosts() {
  state.view = "hosts";
  let data;
  try { data = await api("GET", "/api/hosts"); } catch (e) { return failed(e); }
  if (state.view !== "hosts") return;
  const head = el("thead", {}, el("tr", {}, ["Gateway", "State", "Release", "Port", "Pid", "Restarts", "Crashes", "Last exit", "Detail", ""]
    .map((h) => el("th", { scope: "col" }, h))));
  const row = (m) => el("tr", { "data-managed": m.gateway_id, "data-state": m.state },
    el("td", {}, el("a", { href: `#/gateway/${m.gateway_id}` }, m.name)),
    el("td", {}, el("span", { class: `badge m-${m.state}` }, m.state)),
    el("td", {}, m.version), el("td", {}, String(m.port)), el("td", {}, m.pid == null ? "–" : String(m.pid)),
    el("td", {}, String(m.restarts)), el("td", {}, String(m.crashes)), el("td", {}, m.last_exit || "–"),
    el("td", { class: "wrap" }, m.detail || "–"),
    el("td", {}, can("admin") ? el("button", { type: "button", class: "restart", onclick: (e) => {
      e.target.disabled = true;
      hostsAct(`Restart ${m.name}`, () => api("POST", `/api/managed/${m.gateway_id}/restart`));
    } }, "Restart") : null));
  const blocks = data.hosts.map((h) => el("section", { class: "host", "data-host": h.host_id },
    el("h2", {}, h.host_id, " ", el("span", { class: `badge ${h.supervised ? "s-online" : "s-offline"}` }, h.supervised ? "supervised" : "no daemon up")),
    el("p", { class: "muted" }, hostFacts(h), h.instances ? ` · instances ${h.instances.join(", ") || "none"}` : ""),
    h.managed.length === 0 ? el("p", { class: "muted" }, "No managed gateway.")
      : el("div", { class: "scroll" }, el("table", { class: "managed" }, head, el("tbody", {}, h.managed.map(row)))),
    upgradeForm(h)));
  show(el("h1", {}, "Hosts"), installForm(), ...blocks);
}

PAGES["#/hosts"] = renderHosts;
