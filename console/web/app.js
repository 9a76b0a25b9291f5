// MpegFlow console: hash routes over the REST API and the WebSocket of the
// server that serves it. Every value from the API is put in the page as
// text, never as markup.

const main = document.getElementById("main");
const who = document.getElementById("who");
const signOutButton = document.getElementById("sign-out");
const writers = new Set(["editor", "admin", "owner", "superadmin"]);
const managers = new Set(["admin", "owner", "superadmin"]);
let session = null; // {org_id, role}
let socket = null;

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)mpegflow_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  if (res.status === 401 && !path.startsWith("/v1/console/session")) {
    session = null;
    location.hash = "#/signin";
    throw new Error("signed out");
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((data && (data.detail || data.title)) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus();
}

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1000)));
  return (n / 1000 ** i).toFixed(i ? 1 : 0) + " " + units[i];
}

function live(query, onEvent) {
  if (socket) socket.close();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(scheme + "//" + location.host + "/ws" + query);
  socket.addEventListener("message", (m) => {
    try { onEvent(JSON.parse(m.data)); } catch { /* not an event */ }
  });
}

function signInPage(message) {
  const key = el("input", { id: "api-key", name: "api_key", type: "password", autocomplete: "off", required: true });
  const error = el("p", { class: "error", role: "alert" }, message || "");
  // method post: a submission that bypasses the script never puts the key
  // in a URL.
  const form = el("form", { id: "signin", method: "post", class: "card", "aria-labelledby": "signin-title", onsubmit: async (e) => {
    e.preventDefault();
    try {
      session = await api("POST", "/v1/console/session", { api_key: key.value });
      key.value = "";
      header();
      location.hash = "#/jobs";
    } catch (err) {
      error.textContent = err.message;
    }
  } },
  el("h1", { id: "signin-title" }, "Sign in"),
  el("label", { for: "api-key" }, "API key"), key,
  el("p", {}, "The key is exchanged for a session; this browser does not keep it."),
  el("button", { type: "submit" }, "Sign in"), error);
  show(form);
  key.focus();
}

function header() {
  who.textContent = session ? session.role + " · " + session.org_id : "";
  signOutButton.hidden = !session;
  for (const a of document.querySelectorAll(".writer-only")) a.hidden = !session || !writers.has(session.role);
}

function statusCell(job) {
  return el("span", { class: "status-" + job.status }, job.status);
}

async function jobsPage(params) {
  const status = params.get("status") || "";
  const pool = params.get("pool") || "";
  const lane = params.get("lane") || "";
  const batch = params.get("batch") || "";
  const q = new URLSearchParams({ limit: "50" });
  for (const [k, v] of Object.entries({ status, pool, lane, batch })) if (v) q.set(k, v);
  const page = await api("GET", "/v1/jobs?" + q);
  const rows = new Map();
  const tbody = el("tbody");
  const row = (job) => {
    const tr = el("tr", { "data-job": job.id },
      el("td", {}, el("a", { href: "#/jobs/" + job.id }, job.id.slice(0, 8))),
      el("td", {}, statusCell(job)),
      el("td", {}, el("progress", { max: "1", value: String(job.progress), "aria-label": "progress of job " + job.id.slice(0, 8) })),
      el("td", { class: "hide-narrow" }, job.pool_id),
      el("td", { class: "hide-narrow" }, new Date(job.created_at).toLocaleString()));
    const old = rows.get(job.id);
    if (old) old.replaceWith(tr); else tbody.prepend(tr);
    rows.set(job.id, tr);
  };
  for (const job of page.items.slice().reverse()) row(job);

  const statusSelect = el("select", { id: "filter-status", name: "status" },
    ["", "queued", "running", "retry_wait", "completed", "failed", "cancelled"].map((s) => el("option", { value: s, selected: s === status }, s || "any")));
  const poolInput = el("input", { id: "filter-pool", name: "pool", value: pool });
  const laneSelect = el("select", { id: "filter-lane", name: "lane" },
    ["", "live", "backfill"].map((s) => el("option", { value: s, selected: s === lane }, s || "any")));
  const batchInput = el("input", { id: "filter-batch", name: "batch", value: batch, placeholder: "batch id" });
  const filters = el("form", { class: "filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (statusSelect.value) p.set("status", statusSelect.value);
    if (poolInput.value) p.set("pool", poolInput.value);
    if (laneSelect.value) p.set("lane", laneSelect.value);
    if (batchInput.value) p.set("batch", batchInput.value);
    location.hash = "#/jobs?" + p;
  } }, el("div", {}, el("label", { for: "filter-status" }, "Status"), statusSelect),
  el("div", {}, el("label", { for: "filter-pool" }, "Pool"), poolInput),
  el("div", {}, el("label", { for: "filter-lane" }, "Lane"), laneSelect),
  el("div", {}, el("label", { for: "filter-batch" }, "Batch"), batchInput),
  el("button", { type: "submit", class: "secondary" }, "Filter"));

  const nodes = [el("h1", {}, "Jobs"), filters];
  if (writers.has(session.role)) nodes.push(submitForm(row));
  nodes.push(el("div", { class: "table-wrap" }, el("table", { id: "jobs" },
    el("thead", {}, el("tr", {}, el("th", {}, "Job"), el("th", {}, "Status"), el("th", {}, "Progress"), el("th", { class: "hide-narrow" }, "Pool"), el("th", { class: "hide-narrow" }, "Created"))),
    tbody)));
  show(...nodes);
  live("", async (ev) => {
    if (!ev.job_id) return;
    try {
      const job = await api("GET", "/v1/jobs/" + ev.job_id);
      // A job's record does not name its batch: under a batch filter only
      // the listed jobs update.
      const listed = rows.has(job.id);
      if (batch ? listed : (!status || job.status === status) && (!pool || job.pool_id === pool) && (!lane || job.lane === lane)) row(job);
    } catch { /* gone or not ours */ }
  });
}

function submitForm(row) {
  const url = el("input", { id: "submit-url", name: "url", type: "url", required: true, placeholder: "https://…/input.mp4" });
  const workflow = el("input", { id: "submit-workflow", name: "workflow", value: "hls-ladder", required: true });
  const pool = el("input", { id: "submit-pool", name: "pool", value: "default" });
  const error = el("p", { class: "error", role: "alert" });
  return el("form", { id: "submit", method: "post", class: "card", "aria-labelledby": "submit-title", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const job = await api("POST", "/v1/jobs", { input: { url: url.value }, workflow: workflow.value, pool: pool.value || undefined });
      row(job);
      url.value = "";
    } catch (err) {
      error.textContent = err.message;
    }
  } }, el("h2", { id: "submit-title" }, "Submit a job"),
  el("label", { for: "submit-url" }, "Input URL"), url,
  el("label", { for: "submit-workflow" }, "Workflow"), workflow,
  el("label", { for: "submit-pool" }, "Pool"), pool,
  el("p", {}, el("button", { type: "submit" }, "Submit")), error);
}

async function jobPage(id) {
  let job;
  try {
    job = await api("GET", "/v1/jobs/" + encodeURIComponent(id));
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      show(el("h1", {}, "Job not found"), el("p", { id: "not-found" }, "No job " + id + " in your organization."));
      return;
    }
    throw err;
  }
  const status = el("span", { id: "job-status" });
  const bar = el("progress", { id: "job-progress", max: "1", "aria-label": "progress" });
  const pct = el("span", { id: "job-percent" });
  const errorText = el("p", { class: "error", id: "job-error" });
  const events = el("ol", { id: "job-events" });
  const outputs = el("tbody");
  const render = (j) => {
    status.replaceChildren(statusCell(j));
    bar.value = j.progress;
    pct.textContent = Math.round(j.progress * 100) + " %";
    errorText.textContent = j.error ? "Error: " + j.error : "";
  };
  const loadEvents = async () => {
    const page = await api("GET", "/v1/jobs/" + id + "/events?limit=200");
    events.replaceChildren(...page.items.map((e) => el("li", {}, new Date(e.created_at).toLocaleTimeString() + " " + e.type)));
  };
  const player = el("section", { class: "card", id: "player", "aria-labelledby": "player-title", hidden: true });
  let played = false;
  const loadOutputs = async () => {
    const page = await api("GET", "/v1/jobs/" + id + "/outputs?limit=200");
    outputs.replaceChildren(...page.items.map((o) => el("tr", {},
      el("td", {}, el("a", { href: o.download && o.download.url, rel: "noreferrer" }, o.name)), el("td", {}, o.kind),
      el("td", {}, bytes(o.size_bytes)), el("td", { class: "hide-narrow" }, (o.attributes && o.attributes.codec) || ""))));
    if (!played) {
      played = true;
      showPlayer(player, id, page.items);
    }
  };
  render(job);
  const nodes = [el("h1", {}, "Job ", job.id),
    el("p", {}, "Status: ", status, " ", bar, " ", pct), errorText,
    el("p", {}, "Pool ", job.pool_id, " · lane ", job.lane, " · attempt ", String(job.attempts), " of ", String(job.max_attempts))];
  if (writers.has(session.role) && !["completed", "failed", "cancelled"].includes(job.status)) {
    nodes.push(el("button", { type: "button", class: "secondary", id: "cancel", onclick: async () => {
      try { render(await api("POST", "/v1/jobs/" + id + "/cancel")); } catch (err) { errorText.textContent = err.message; }
    } }, "Cancel job"));
  }
  nodes.push(player, el("section", { class: "card", "aria-labelledby": "events-title" }, el("h2", { id: "events-title" }, "Events"), events),
    el("section", { class: "card", "aria-labelledby": "outputs-title" }, el("h2", { id: "outputs-title" }, "Outputs"),
      el("div", { class: "table-wrap" }, el("table", { id: "outputs" },
        el("thead", {}, el("tr", {}, el("th", {}, "File"), el("th", {}, "Kind"), el("th", {}, "Size"), el("th", { class: "hide-narrow" }, "Codec"))), outputs))));
  show(...nodes);
  await loadEvents();
  if (job.status === "completed") await loadOutputs();
  live("?jobs=" + encodeURIComponent(id), async () => {
    const j = await api("GET", "/v1/jobs/" + id);
    render(j);
    await loadEvents();
    if (j.status === "completed") await loadOutputs();
  });
}

// fileURL is where the API serves a job's output file, on this origin.
function fileURL(job, name) {
  return "/v1/jobs/" + encodeURIComponent(job) + "/files/" + name.split("/").map(encodeURIComponent).join("/");
}

// showPlayer plays a completed job's outputs: the HLS master playlist with
// the browser's own player where it plays HLS, else the DASH manifest or an
// fMP4 HLS master with the console's Media Source Extensions player
// (player.js), else an MP4 rendition; and shows the poster and thumbnails.
// "?player=mse" at the end of the page's address prefers the console's
// player to the browser's HLS.
function showPlayer(section, job, outputs) {
  const probe = document.createElement("video");
  const master = outputs.find((o) => o.name === "master.m3u8");
  const mpd = outputs.find((o) => o.name === "manifest.mpd");
  const mp4 = outputs.find((o) => o.kind === "video" && o.name.endsWith(".mp4") && !o.name.endsWith("/init.mp4"));
  const poster = outputs.find((o) => o.kind === "poster");
  const thumbs = outputs.filter((o) => o.kind === "thumbnail").slice(0, 12);
  const preferMSE = new URLSearchParams(location.hash.split("?")[1] || "").get("player") === "mse";
  const nodes = [el("h2", { id: "player-title" }, "Play")];
  const status = el("p", { id: "player-status", role: "status" });
  const video = (src) => el("video", { id: "video", controls: true, muted: true, playsinline: true, preload: "metadata", src,
    poster: poster ? fileURL(job, poster.name) : undefined, "aria-label": "the job's output",
    onerror: (e) => { if (e.target.error) status.textContent = "The browser could not play this output: " + (e.target.error.message || "error " + e.target.error.code) + "."; } });
  const manifest = mpd || master; // both: the same CMAF segments
  if (master && !preferMSE && probe.canPlayType("application/vnd.apple.mpegurl")) {
    nodes.push(video(fileURL(job, master.name)));
  } else if (manifest && typeof window.MediaSource === "function") {
    const v = video(undefined);
    nodes.push(v, status);
    playAdaptive(v, job, manifest, mp4, status);
  } else if (mp4) {
    nodes.push(video(fileURL(job, mp4.name)));
  } else if (manifest) {
    nodes.push(el("p", {}, "This browser plays neither the HLS nor an MP4 output of this job; download the files below."));
  }
  if (!nodes.includes(status)) nodes.push(status);
  if (thumbs.length) {
    nodes.push(el("div", { id: "thumbnails", class: "thumbs" }, thumbs.map((o) => el("img", { src: fileURL(job, o.name), alt: "thumbnail " + o.name, loading: "lazy" }))));
  }
  if (nodes.length > 2) {
    section.replaceChildren(...nodes);
    section.hidden = false;
  }
}

// playAdaptive plays manifest in video with the console's player, with a
// quality menu when there are several video renditions; where that player
// cannot, it says why in status and plays the MP4 rendition, or leaves the
// download links.
async function playAdaptive(video, job, manifest, mp4, status) {
  const say = (text) => { status.textContent = text; };
  try {
    const player = await import("./player.js");
    const session = await player.open(video, fileURL(job, manifest.name), say);
    video.dataset.player = manifest.name.endsWith(".mpd") ? "dash" : "hls";
    if (session.variants.length > 1) {
      const current = session.current;
      const menu = el("select", { id: "player-quality", onchange: () => session.choose(session.variants[Number(menu.value)]) },
        session.variants.map((v, i) => el("option", { value: String(i), selected: v === current }, v.label + " (" + v.width + "×" + v.height + ")")));
      video.after(el("p", { class: "player-quality" }, el("label", { for: "player-quality" }, "Quality"), menu));
    }
  } catch (err) {
    let why = err instanceof Error ? err.message : String(err);
    if (!why.endsWith(".")) why += ".";
    if (mp4) {
      say(why + " Playing the MP4 rendition instead.");
      video.src = fileURL(job, mp4.name);
    } else {
      video.hidden = true;
      say(why + " Download the files below.");
    }
  }
}

async function poolsPage() {
  const page = await api("GET", "/v1/pools?limit=200");
  const tbody = el("tbody");
  const error = el("p", { class: "error", role: "alert" });
  const row = async (pool) => {
    let depth = "";
    try {
      const full = await api("GET", "/v1/pools/" + encodeURIComponent(pool.id));
      depth = Object.entries(full.queue_depth || {}).map(([lane, n]) => lane + " " + n).join(", ");
      pool = full;
    } catch { /* the list's view is enough */ }
    const actions = el("td");
    if (managers.has(session.role) && pool.org_id) {
      const paused = pool.status === "paused";
      actions.append(el("button", { type: "button", class: "secondary", "data-action": paused ? "resume" : "pause",
        "aria-label": (paused ? "Resume pool " : "Pause pool ") + pool.id, onclick: async () => {
          error.textContent = "";
          try {
            const changed = await api("POST", "/v1/pools/" + encodeURIComponent(pool.id) + "/" + (paused ? "resume" : "pause"));
            tr.replaceWith(await row(changed));
          } catch (err) { error.textContent = err.message; }
        } }, paused ? "Resume" : "Pause"));
    }
    const tr = el("tr", { "data-pool": pool.id },
      el("td", {}, el("a", { href: "#/pools/" + encodeURIComponent(pool.id) }, pool.id)),
      el("td", { class: "pool-status" }, pool.status + (pool.paused_by ? " (" + pool.paused_by + ")" : "")),
      el("td", { class: "hide-narrow" }, depth),
      actions);
    return tr;
  };
  for (const pool of page.items) tbody.append(await row(pool));
  show(el("h1", {}, "Pools"), error, el("div", { class: "table-wrap" }, el("table", { id: "pools" },
    el("thead", {}, el("tr", {}, el("th", {}, "Pool"), el("th", {}, "Status"), el("th", { class: "hide-narrow" }, "Queued"), el("th", {}, el("span", { class: "visually-hidden" }, "Actions")))),
    tbody)));
}

async function poolPage(id) {
  let pool;
  try {
    pool = await api("GET", "/v1/pools/" + encodeURIComponent(id));
  } catch (err) {
    if (err.status === 404) { show(el("h1", {}, "Pool not found")); return; }
    throw err;
  }
  const nodes = [el("h1", {}, "Pool ", pool.id), el("p", {}, "Status: ", pool.status)];
  try {
    const plan = await api("GET", "/v1/pools/" + encodeURIComponent(id) + "/plan");
    nodes.push(el("section", { class: "card", "aria-labelledby": "plan-title" }, el("h2", { id: "plan-title" }, "What the operator applies"),
      el("ol", { id: "plan" }, plan.items.map((o) => el("li", {}, el("strong", {}, o.kind + " " + ((o.metadata && o.metadata.name) || "")),
        el("pre", {}, JSON.stringify(o, null, 2)))))));
  } catch (err) {
    nodes.push(el("p", { class: "error" }, "Plan unavailable: " + err.message));
  }
  show(...nodes);
}

async function batchesPage() {
  const page = await api("GET", "/v1/batches?limit=100");
  const rows = await Promise.all(page.items.map(async (b) => {
    const full = await api("GET", "/v1/batches/" + encodeURIComponent(b.id));
    const c = full.counts;
    const done = c.completed + c.failed + c.cancelled;
    return el("tr", { "data-batch": b.id },
      el("td", {}, el("a", { href: "#/jobs?batch=" + encodeURIComponent(b.id) }, b.key)), el("td", {}, full.status),
      el("td", {}, el("progress", { max: String(Math.max(c.total, 1)), value: String(done), "aria-label": "progress of batch " + b.key }), " ", done + " / " + c.total),
      el("td", { class: "hide-narrow" }, String(c.failed)),
      el("td", { class: "hide-narrow" }, full.eta ? new Date(full.eta).toLocaleString() : ""));
  }));
  show(el("h1", {}, "Batches"), el("div", { class: "table-wrap" }, el("table", { id: "batches" },
    el("thead", {}, el("tr", {}, el("th", {}, "Batch"), el("th", {}, "Status"), el("th", {}, "Done"), el("th", { class: "hide-narrow" }, "Failed"), el("th", { class: "hide-narrow" }, "ETA"))),
    el("tbody", {}, rows))), rows.length ? "" : el("p", {}, "No batches yet."));
}

async function usagePage() {
  const usage = await api("GET", "/v1/organization/usage");
  const most = Math.max(1, ...usage.days.map((d) => d.encode_seconds));
  const rows = usage.days.map((d) => el("tr", {},
    el("th", { scope: "row" }, d.day.slice(0, 10)),
    el("td", {}, el("meter", { min: "0", max: String(most), value: String(d.encode_seconds), "aria-label": "encode seconds on " + d.day.slice(0, 10) }), " ", d.encode_seconds.toFixed(0) + " s"),
    el("td", {}, d.output_minutes.toFixed(1)),
    el("td", { class: "hide-narrow" }, d.jobs_completed + " / " + d.jobs_failed + " / " + d.jobs_cancelled)));
  show(el("h1", {}, "Usage"), el("p", {}, "Per UTC day, " + usage.from + " to " + usage.to + "."),
    el("div", { class: "table-wrap" }, el("table", { id: "usage" },
      el("thead", {}, el("tr", {}, el("th", {}, "Day"), el("th", {}, "Encode seconds"), el("th", {}, "Output minutes"), el("th", { class: "hide-narrow" }, "Jobs completed / failed / cancelled"))),
      el("tbody", {}, rows))));
}

async function webhooksPage() {
  const page = await api("GET", "/v1/webhooks?limit=100");
  const sections = await Promise.all(page.items.map(async (w) => {
    const deliveries = await api("GET", "/v1/webhooks/" + encodeURIComponent(w.id) + "/deliveries?limit=20");
    const error = el("p", { class: "error", role: "alert" });
    const rows = deliveries.items.map((d) => el("tr", { "data-delivery": d.id },
      el("td", {}, d.event_type), el("td", { class: "delivery-status" }, d.status), el("td", {}, String(d.attempts)),
      el("td", { class: "hide-narrow" }, d.last_status_code ? String(d.last_status_code) : (d.last_error || "")),
      el("td", {}, el("button", { type: "button", class: "secondary", "aria-label": "Redeliver " + d.event_type, onclick: async (e) => {
        try {
          await api("POST", "/v1/webhooks/" + encodeURIComponent(w.id) + "/deliveries/" + encodeURIComponent(d.id) + "/redeliver");
          e.target.textContent = "Queued";
          e.target.disabled = true;
        } catch (err) { error.textContent = err.message; }
      } }, "Redeliver"))));
    return el("section", { class: "card", "data-webhook": w.id },
      el("h2", {}, w.url), el("p", {}, (w.enabled ? "enabled" : "disabled" + (w.disabled_reason ? ": " + w.disabled_reason : "")) + " · events: " + (w.events.join(", ") || "all")),
      error, el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Event"), el("th", {}, "Status"), el("th", {}, "Attempts"), el("th", { class: "hide-narrow" }, "Last answer"), el("th", {}, el("span", { class: "visually-hidden" }, "Actions")))),
        el("tbody", {}, rows))));
  }));
  show(el("h1", {}, "Webhooks"), ...sections, sections.length ? "" : el("p", {}, "No webhooks."));
}

async function membersPage() {
  const page = await api("GET", "/v1/members?limit=200");
  show(el("h1", {}, "Members"), el("div", { class: "table-wrap" }, el("table", { id: "members" },
    el("thead", {}, el("tr", {}, el("th", {}, "Email"), el("th", {}, "Name"), el("th", {}, "Role"))),
    el("tbody", {}, page.items.map((m) => el("tr", {}, el("td", {}, m.email), el("td", {}, m.name), el("td", {}, m.role)))))));
}

async function keysPage() {
  const tbody = el("tbody");
  const shown = el("p", { id: "new-key", role: "status" });
  const error = el("p", { class: "error", role: "alert" });
  const load = async () => {
    const page = await api("GET", "/v1/api-keys?limit=200");
    tbody.replaceChildren(...page.items.map((k) => el("tr", { "data-key": k.id },
      el("td", {}, k.name), el("td", {}, k.prefix), el("td", { class: "key-state" }, k.revoked_at ? "revoked" : "active"),
      el("td", {}, k.revoked_at ? "" : el("button", { type: "button", class: "secondary", "aria-label": "Revoke key " + k.name, onclick: async () => {
        try { await api("DELETE", "/v1/api-keys/" + encodeURIComponent(k.id)); await load(); } catch (err) { error.textContent = err.message; }
      } }, "Revoke")))));
  };
  const name = el("input", { id: "key-name", name: "name", required: true, maxlength: "100" });
  const form = el("form", { id: "create-key", method: "post", class: "card", "aria-labelledby": "key-title", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const created = await api("POST", "/v1/api-keys", { name: name.value });
      shown.replaceChildren("New key (shown once, copy it now): ", el("code", {}, created.key));
      name.value = "";
      await load();
    } catch (err) { error.textContent = err.message; }
  } }, el("h2", { id: "key-title" }, "Create a key"), el("label", { for: "key-name" }, "Name"), name, el("p", {}, el("button", { type: "submit" }, "Create")));
  await load();
  show(el("h1", {}, "Your API keys"), form, shown, error, el("div", { class: "table-wrap" }, el("table", { id: "keys" },
    el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Prefix"), el("th", {}, "State"), el("th", {}, el("span", { class: "visually-hidden" }, "Actions")))), tbody)));
}

async function route() {
  if (socket) { socket.close(); socket = null; }
  if (!session) {
    try {
      session = await api("GET", "/v1/console/session");
    } catch {
      session = null;
    }
    header();
  }
  const [path, query] = location.hash.slice(1).split("?");
  if (!session || path === "/signin") {
    if (session && path === "/signin") { location.hash = "#/jobs"; return; }
    signInPage();
    return;
  }
  const params = new URLSearchParams(query || "");
  const m = path.match(/^\/jobs\/(.+)$/);
  const pm = path.match(/^\/pools\/(.+)$/);
  try {
    if (m) await jobPage(decodeURIComponent(m[1]));
    else if (pm) await poolPage(decodeURIComponent(pm[1]));
    else if (path === "/pools") await poolsPage();
    else if (path === "/batches") await batchesPage();
    else if (path === "/usage") await usagePage();
    else if (path === "/webhooks") await webhooksPage();
    else if (path === "/members") await membersPage();
    else if (path === "/keys") await keysPage();
    else await jobsPage(params);
  } catch (err) {
    if (err.message !== "signed out") show(el("p", { class: "error", role: "alert" }, err.message));
  }
}

signOutButton.addEventListener("click", async () => {
  await api("DELETE", "/v1/console/session").catch(() => {});
  session = null;
  if (socket) socket.close();
  header();
  location.hash = "#/signin";
});
window.addEventListener("hashchange", route);
route();
