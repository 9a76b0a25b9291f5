// MpegFlow console: hash routes over the REST API and the WebSocket of the
// server that serves it. Every value from the API is put in the page as
// text, never as markup.

import { api, el, show, live, bytes, state, writers, errorLine } from "./lib.js";
import { uploadFile } from "./upload.js";
import { poolsPage, poolPage } from "./pools.js";
import { batchesPage } from "./batches.js";
import { usagePage } from "./usage.js";
import { webhooksPage } from "./webhooks.js";
import { membersPage } from "./members.js";
import { keysPage } from "./keys.js";

const who = document.getElementById("who");
const signOutButton = document.getElementById("sign-out");

function signInPage(message) {
  const key = el("input", { id: "api-key", name: "api_key", type: "password", autocomplete: "off", required: true });
  const error = el("p", { class: "error", role: "alert" }, message || "");
  // method post: a submission that bypasses the script never puts the key
  // in a URL.
  const form = el("form", { id: "signin", method: "post", class: "card", "aria-labelledby": "signin-title", onsubmit: async (e) => {
    e.preventDefault();
    try {
      state.session = await api("POST", "/v1/console/session", { api_key: key.value });
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
  who.textContent = state.session ? state.session.role + " · " + state.session.org_id : "";
  signOutButton.hidden = !state.session;
  for (const a of document.querySelectorAll(".writer-only")) a.hidden = !state.session || !writers.has(state.session.role);
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
  if (writers.has(state.session.role)) nodes.push(submitForm(row));
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

// submitForm submits a job from an uploaded file (sent straight to
// storage, with progress) or from a URL, with a workflow and a pool; the
// new job is added to the list by row.
function submitForm(row) {
  const source = el("select", { id: "submit-source", name: "source" },
    el("option", { value: "url" }, "a URL"), el("option", { value: "file" }, "a file from this device"));
  const url = el("input", { id: "submit-url", name: "url", type: "url", required: true, placeholder: "https://…/input.mp4" });
  const file = el("input", { id: "submit-file", name: "file", type: "file", accept: "video/*,audio/*,.mxf,.mkv,.mov,.ts" });
  const urlField = el("div", {}, el("label", { for: "submit-url" }, "Input URL"), url);
  const fileField = el("div", { hidden: true }, el("label", { for: "submit-file" }, "Input file"), file);
  source.addEventListener("change", () => {
    const byFile = source.value === "file";
    urlField.hidden = byFile;
    fileField.hidden = !byFile;
    url.required = !byFile;
    file.required = byFile;
  });
  const workflows = el("datalist", { id: "workflow-names" }, (state.session.builtin_workflows || []).map((w) => el("option", { value: w })));
  const workflow = el("input", { id: "submit-workflow", name: "workflow", value: "hls-ladder", required: true, list: "workflow-names",
    "aria-describedby": "workflow-help" });
  const pools = el("datalist", { id: "pool-names" });
  const pool = el("input", { id: "submit-pool", name: "pool", value: "default", list: "pool-names" });
  // The organization's own workflows (by id) and pools join the choices.
  api("GET", "/v1/workflows?limit=200").then((page) => workflows.append(...page.items.map((w) => el("option", { value: w.id }, w.name)))).catch(() => {});
  api("GET", "/v1/pools?limit=200").then((page) => pools.append(...page.items.map((p) => el("option", { value: p.id }, p.name || p.id)))).catch(() => {});
  const bar = el("progress", { id: "upload-progress", max: "1", value: "0", "aria-label": "upload progress" });
  const sent = el("span", { id: "upload-sent" });
  const cancel = el("button", { type: "button", class: "secondary", id: "upload-cancel" }, "Cancel upload");
  const progress = el("p", { class: "upload-progress", hidden: true, "aria-live": "polite" }, bar, sent, cancel);
  const error = errorLine();
  const submitButton = el("button", { type: "submit" }, "Submit");
  let aborter = null;
  cancel.addEventListener("click", () => aborter && aborter.abort());
  return el("form", { id: "submit", method: "post", class: "card", "aria-labelledby": "submit-title", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    submitButton.disabled = true;
    try {
      const w = workflow.value.trim();
      const body = { pool: pool.value || undefined };
      if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(w)) body.workflow_id = w; else body.workflow = w;
      if (source.value === "file") {
        const f = file.files[0];
        if (!f) throw new Error("choose a file to upload");
        aborter = new AbortController();
        progress.hidden = false;
        cancel.hidden = false;
        const asset = await uploadFile(f, (n, total) => {
          bar.value = total ? n / total : 1;
          sent.textContent = bytes(n) + " of " + bytes(total) + " (" + Math.floor(100 * (total ? n / total : 1)) + " %)";
        }, aborter.signal);
        body.input = { asset_id: asset.id };
      } else {
        body.input = { url: url.value };
      }
      row(await api("POST", "/v1/jobs", body));
      url.value = "";
      file.value = "";
    } catch (err) {
      error.textContent = err.message;
    } finally {
      aborter = null;
      submitButton.disabled = false;
      cancel.hidden = true;
    }
  } }, el("h2", { id: "submit-title" }, "Submit a job"),
  el("label", { for: "submit-source" }, "Input from"), source, urlField, fileField, progress,
  el("label", { for: "submit-workflow" }, "Workflow"), workflow, workflows,
  el("p", { id: "workflow-help", class: "help" }, "A built-in workflow's name or one of your workflows' ids."),
  el("label", { for: "submit-pool" }, "Pool"), pool, pools,
  el("p", {}, submitButton), error);
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
  if (writers.has(state.session.role) && !["completed", "failed", "cancelled"].includes(job.status)) {
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

async function route() {
  if (state.socket) { state.socket.close(); state.socket = null; }
  if (!state.session) {
    try {
      state.session = await api("GET", "/v1/console/session");
    } catch {
      state.session = null;
    }
    header();
  }
  const [path, query] = location.hash.slice(1).split("?");
  if (!state.session || path === "/signin") {
    if (state.session && path === "/signin") { location.hash = "#/jobs"; return; }
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
    else if (path === "/usage") await usagePage(params);
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
  state.session = null;
  if (state.socket) state.socket.close();
  header();
  location.hash = "#/signin";
});
window.addEventListener("hashchange", route);
route();
