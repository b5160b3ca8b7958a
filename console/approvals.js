// gateway-supervisor console: the fleet's approvals inbox. Every pending exec and plugin approval
// of every gateway, newest first, with its gateway, agent, the command exactly as the gateway
// presents it (monospace, set as text: never interpreted), the time left, and — for an operator
// — the answers the gateway offers (Allow once / Allow always / Deny), which show the result or
// who answered first; an approval whose text was cut can only be denied, and an offline
// gateway's take no answer (its buttons are disabled, saying why). The whole command is shown,
// in a box that scrolls: an operator is never shown less than what they approve. The pending
// count is a badge on every page. Loaded after app.js and uses its helpers.
"use strict";

const APPROVAL_ANSWERS = [["allow-once", "Allow once"], ["allow-always", "Allow always"], ["deny", "Deny"]];

// The pending count beside "Approvals" in the navigation (hidden at zero).
async function refreshApprovalBadge() {
  let page;
  try { page = await api("GET", "/api/approvals?status=pending&limit=1000"); } catch (_) { return; }
  const n = page.approvals.length;
  const badge = $("approvals-badge");
  badge.textContent = n >= 1000 ? "999+" : String(n);
  badge.hidden = n === 0;
  badge.setAttribute("aria-label", `${n} waiting`);
}

function timeLeft(a) {
  const s = Math.round((a.expires_at_ms - Date.now()) / 1000);
  if (s <= 0) return "expiring";
  return s >= 120 ? `${Math.floor(s / 60)} min left` : `${s} s left`;
}

function approvalEnd(a) {
  const who = a.resolved_by === "elsewhere" ? `answered elsewhere${a.resolver_label ? ` (${a.resolver_label})` : ""}`
    : a.resolved_by === "auto" ? "denied by the daemon: nobody answered"
    : a.resolved_by === "operator" ? `by ${a.resolver_label || "an operator"}`
    : a.reason || "";
  return `${a.status}${a.decision ? ` (${a.decision})` : ""}${who ? `, ${who}` : ""}`;
}

async function renderApprovals() {
  state.view = "approvals";
  const gateway = new URLSearchParams((location.hash.split("?")[1]) || "").get("gateway_id");
  const only = gateway && /^\d+$/.test(gateway) ? `&gateway_id=${gateway}` : "";
  let pending, recent;
  try {
    [pending, recent] = await Promise.all([
      api("GET", `/api/approvals?status=pending&limit=200${only}`),
      api("GET", `/api/approvals?limit=50${only}`),
    ]);
  } catch (e) { return failed(e); }
  if (state.view !== "approvals") return;
  // Only what the gateway offers; an allow of what was cut, or any answer to a gateway that
  // cannot be reached, is shown disabled with why (the daemon refuses them too).
  const answer = (a, outcome) => can("operator") ? el("div", { class: "actions" }, APPROVAL_ANSWERS
    .filter(([decision]) => (a.offered_decisions || []).includes(decision)).map(([decision, label]) =>
    el("button", { type: "button", class: decision === "deny" ? "danger" : "", "data-decision": decision,
      disabled: a.gateway_reachable === false || (decision !== "deny" && a.presented_whole === false),
      title: a.gateway_reachable === false ? "gateway offline" : decision !== "deny" && a.presented_whole === false ? "not shown whole: it can only be denied" : null,
      onclick: async (e) => {
      for (const b of e.target.parentNode.querySelectorAll("button")) b.disabled = true;
      try {
        const done = await api("POST", `/api/approvals/${a.gateway_id}/${encodeURIComponent(a.id)}/resolve`, { decision });
        outcome.textContent = approvalEnd(done.approval);
      } catch (x) { outcome.textContent = x.message; }
      announce(outcome.textContent);
      refreshApprovalBadge();
    } }, label))) : null;
  const row = (a) => {
    const outcome = el("p", { class: "outcome", role: "status" });
    return el("tr", { "data-approval": a.id },
      el("td", {}, state.names.get(a.gateway_id) || a.gateway_id),
      el("td", {}, a.agent_id || "–"), el("td", {}, a.kind),
      el("td", { class: "wrap" }, el("code", { class: "command", tabindex: "0" }, a.command),
        a.presented_whole === false ? el("p", { class: "error cut" }, "Cut: the gateway presented more than the inbox keeps. It can only be denied.") : null,
        a.warning ? el("p", { class: "muted" }, a.warning) : null),
      el("td", {}, `${when(a.created_at_ms)}, ${timeLeft(a)}`),
      el("td", {}, a.gateway_reachable === false ? el("p", { class: "error offline" }, "gateway offline") : null,
        answer(a, outcome), outcome));
  };
  const ended = recent.approvals.filter((a) => a.status !== "pending");
  const head = (cols) => el("thead", {}, el("tr", {}, cols.map((h) => el("th", { scope: "col" }, h))));
  show(el("h1", {}, "Approvals"),
    el("p", { class: "muted" }, `${pending.approvals.length} waiting for an answer${only ? ` on gateway ${gateway}` : ""}. The first answer wins, wherever it is given.`),
    el("div", { class: "scroll" }, el("table", { id: "approvals" },
      head(["Gateway", "Agent", "Kind", "Command", "Asked", ""]),
      el("tbody", {}, pending.approvals.map(row)))),
    el("h2", {}, "Recently ended"),
    el("div", { class: "scroll" }, el("table", { id: "approvals-ended" },
      head(["Gateway", "Agent", "Command", "Ended"]),
      el("tbody", {}, ended.map((a) => el("tr", {},
        el("td", {}, state.names.get(a.gateway_id) || a.gateway_id), el("td", {}, a.agent_id || "–"),
        el("td", { class: "wrap" }, el("code", { class: "command" }, a.command)),
        el("td", { class: "wrap" }, approvalEnd(a))))))));
  refreshApprovalBadge();
}

PAGES["#/approvals"] = renderApprovals;
