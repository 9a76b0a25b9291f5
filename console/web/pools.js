// The pools pages: each pool with its queue, the jobs it runs and its
// workers, Pause / Resume; a pool's page with its settings and the objects
// the operator applies, and, for Admins, a settings editor whose every
// change is previewed as the operator would apply it before it is saved.

import { api, el, show, errorLine, managers, state } from "./lib.js";

function poolPath(id, rest = "") {
  return "/v1/pools/" + encodeURIComponent(id) + rest;
}

// depthText is a pool's queue as "live 2, backfill 0".
function depthText(pool) {
  return Object.entries(pool.queue_depth || {}).map(([lane, n]) => lane + " " + n).join(", ");
}

// statusText is a pool's status and what paused it.
function statusText(pool) {
  return pool.status + (pool.paused_by ? " (" + pool.paused_by + ")" : "");
}

// workersText is the pool's live workers; the shared pool's fleet is the
// platform's and not counted for tenants.
function workersText(pool) {
  if (!pool.org_id) return "shared";
  return pool.workers === undefined ? "" : String(pool.workers);
}

// mayManage: Admins change their organization's own pools (the shared
// pool is the platform's).
function mayManage(pool) {
  return managers.has(state.session.role) && Boolean(pool.org_id);
}

function pauseButton(pool, onChange, error) {
  const paused = pool.status === "paused";
  return el("button", { type: "button", class: "secondary", "data-action": paused ? "resume" : "pause",
    "aria-label": (paused ? "Resume pool " : "Pause pool ") + pool.id, onclick: async () => {
      error.textContent = "";
      try {
        onChange(await api("POST", poolPath(pool.id, paused ? "/resume" : "/pause")));
      } catch (err) { error.textContent = err.message; }
    } }, paused ? "Resume" : "Pause");
}

export async function poolsPage() {
  const page = await api("GET", "/v1/pools?limit=200");
  const tbody = el("tbody");
  const error = errorLine();
  const row = async (pool) => {
    try {
      pool = await api("GET", poolPath(pool.id));
    } catch { /* the list's view is enough */ }
    const actions = el("td");
    const tr = el("tr", { "data-pool": pool.id },
      el("td", {}, el("a", { href: "#/pools/" + encodeURIComponent(pool.id) }, pool.name || pool.id)),
      el("td", { class: "pool-status" }, statusText(pool)),
      el("td", { class: "pool-queued" }, depthText(pool)),
      el("td", { class: "pool-in-flight" }, pool.in_flight === undefined ? "" : String(pool.in_flight)),
      el("td", { class: "pool-workers hide-narrow" }, workersText(pool)),
      actions);
    if (mayManage(pool)) actions.append(pauseButton(pool, async (changed) => tr.replaceWith(await row(changed)), error));
    return tr;
  };
  for (const pool of page.items) tbody.append(await row(pool));
  show(el("h1", {}, "Pools"), error, el("div", { class: "table-wrap" }, el("table", { id: "pools" },
    el("thead", {}, el("tr", {}, el("th", {}, "Pool"), el("th", {}, "Status"), el("th", {}, "Queued"), el("th", {}, "Running"),
      el("th", { class: "hide-narrow" }, "Workers"), el("th", {}, el("span", { class: "visually-hidden" }, "Actions")))),
    tbody)));
}

// planList shows plan objects; with before (the saved plan), each line
// that differs from the saved object's is marked as changed.
function planList(id, objects, before) {
  const key = (o) => o.kind + "/" + ((o.metadata && o.metadata.name) || "");
  const saved = new Map((before || []).map((o) => [key(o), new Set(JSON.stringify(o, null, 2).split("\n"))]));
  return el("ol", { id }, objects.map((o) => {
    const old = saved.get(key(o));
    const lines = JSON.stringify(o, null, 2).split("\n").map((line) => {
      const changed = before && (!old || !old.has(line));
      return changed ? el("mark", { class: "changed" }, line + "\n") : line + "\n";
    });
    return el("li", {}, el("strong", {}, key(o).replace("/", " ")), el("pre", {}, lines));
  }));
}

const numberFields = [
  ["min_replicas", "Minimum workers (live lane)"],
  ["max_replicas", "Maximum workers (live lane)"],
  ["target_queue_length", "Queued jobs per worker"],
  ["polling_interval_seconds", "Queue polling interval (s)"],
  ["backfill_max_replicas", "Maximum backfill workers"],
  ["warm_idle_seconds", "Warm pod idle wait (s)"],
  ["jobs_per_pod", "Jobs per pod"],
];
const jsonFields = ["resources", "node_selector", "tolerations", "cron_windows", "pause_windows"];

// settingsForm edits a pool's settings: Preview shows the plan of the
// form's values (changed lines marked) and only then may they be saved;
// any edit asks for a new preview.
function settingsForm(pool, savedPlan, onSaved) {
  const error = errorLine();
  const preview = el("section", { id: "plan-preview", "aria-live": "polite" });
  const inputs = {};
  const fields = [];
  const name = el("input", { id: "pool-name", name: "name", value: pool.name, required: true, maxlength: "100" });
  fields.push(el("label", { for: "pool-name" }, "Name"), name);
  const accel = el("select", { id: "pool-accelerator", name: "accelerator" },
    ["cpu", "nvidia"].map((a) => el("option", { value: a, selected: a === pool.accelerator }, a)));
  fields.push(el("label", { for: "pool-accelerator" }, "Accelerator"), accel);
  for (const [field, label] of numberFields) {
    inputs[field] = el("input", { id: "pool-" + field, name: field, type: "number", min: "0", step: "1", value: String(pool[field]), required: true });
    fields.push(el("label", { for: "pool-" + field }, label), inputs[field]);
  }
  const advanced = {};
  for (const field of jsonFields) advanced[field] = pool[field];
  const json = el("textarea", { id: "pool-advanced", name: "advanced", rows: "8", spellcheck: "false" }, JSON.stringify(advanced, null, 2));
  fields.push(el("label", { for: "pool-advanced" }, "Resources, node selector, tolerations, cron and pause windows (JSON)"), json);

  const save = el("button", { type: "button", id: "pool-save", disabled: true }, "Save");
  // previewed is the body whose plan is shown; generation counts edits, so
  // a preview answered after a later edit enables nothing.
  let previewed = null;
  let generation = 0;
  const body = () => {
    const b = { name: name.value, accelerator: accel.value };
    for (const [field] of numberFields) {
      const n = Number(inputs[field].value);
      if (inputs[field].value === "" || !Number.isInteger(n)) throw new Error(field + " must be a whole number");
      b[field] = n;
    }
    let extra;
    try { extra = JSON.parse(json.value); } catch { throw new Error("the JSON settings are not valid JSON"); }
    if (extra === null || typeof extra !== "object" || Array.isArray(extra)) throw new Error("the JSON settings must be an object");
    for (const field of jsonFields) if (field in extra) b[field] = extra[field];
    return b;
  };
  const form = el("form", { id: "pool-settings", method: "post", class: "card", "aria-labelledby": "settings-title",
    oninput: () => { generation++; previewed = null; save.disabled = true; },
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const asked = generation;
      try {
        const b = body();
        const plan = await api("POST", poolPath(pool.id, "/plan"), b);
        if (asked !== generation) return; // edited meanwhile: preview again
        preview.replaceChildren(el("h3", {}, "The operator will apply (changes marked)"), planList("preview-plan", plan.items, savedPlan));
        previewed = b;
        save.disabled = false;
      } catch (err) {
        preview.replaceChildren();
        error.textContent = err.message;
      }
    } },
  el("h2", { id: "settings-title" }, "Settings"), fields,
  el("p", { class: "actions" }, el("button", { type: "submit", class: "secondary", id: "pool-preview" }, "Preview"), " ", save), error, preview);
  save.addEventListener("click", async () => {
    if (!previewed) return;
    error.textContent = "";
    try {
      await api("PATCH", poolPath(pool.id), previewed);
      await onSaved();
    } catch (err) { error.textContent = err.message; }
  });
  return form;
}

export async function poolPage(id) {
  let pool;
  try {
    pool = await api("GET", poolPath(id));
  } catch (err) {
    if (err.status === 404) { show(el("h1", {}, "Pool not found")); return; }
    throw err;
  }
  const error = errorLine();
  const summary = el("p", { id: "pool-summary" },
    "Status: ", el("span", { class: "pool-status" }, statusText(pool)),
    " · queued: " + (depthText(pool) || "0") + " · running: " + (pool.in_flight ?? 0) + " · workers: " + workersText(pool));
  const nodes = [el("h1", {}, "Pool ", pool.name || pool.id), el("p", {}, "Id ", el("code", {}, pool.id)), summary];
  if (pool.policy_violation) nodes.push(el("p", { class: "error" }, "Outside the platform policy: " + pool.policy_violation));
  if (mayManage(pool)) nodes.push(el("p", {}, pauseButton(pool, () => poolPage(id), error)), error);
  let plan = null;
  try {
    plan = await api("GET", poolPath(id, "/plan"));
  } catch (err) {
    nodes.push(el("p", { class: "error" }, "Plan unavailable: " + err.message));
  }
  if (mayManage(pool) && plan) nodes.push(settingsForm(pool, plan.items, () => poolPage(id)));
  if (plan) {
    nodes.push(el("section", { class: "card", "aria-labelledby": "plan-title" }, el("h2", { id: "plan-title" }, "What the operator applies"),
      planList("plan", plan.items)));
  }
  show(...nodes);
}
