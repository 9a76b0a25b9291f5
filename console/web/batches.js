// The batches page: each backfill with its progress and ETA; a batch links
// to its jobs.

import { api, el, show } from "./lib.js";

export async function batchesPage() {
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
