// The usage page: the organization's usage per UTC day as a bar chart (one
// measure at a time) over a chosen range, and the same figures as a table.

import { api, el, show, svg, errorLine } from "./lib.js";

const measures = {
  encode_seconds: { label: "Encode seconds", value: (d) => d.encode_seconds, unit: " s" },
  gpu_seconds: { label: "GPU seconds", value: (d) => d.gpu_seconds, unit: " s" },
  output_minutes: { label: "Output minutes", value: (d) => d.output_minutes, unit: " min" },
  jobs: { label: "Jobs (completed, failed)", value: (d) => d.jobs_completed + d.jobs_failed, failed: (d) => d.jobs_failed, unit: "" },
};

// everyDay lists the days from..to (YYYY-MM-DD, both included) with the
// API's figures, zero on days it has none for.
function everyDay(usage) {
  const byDay = new Map(usage.days.map((d) => [d.day.slice(0, 10), d]));
  const out = [];
  const zero = { encode_seconds: 0, gpu_seconds: 0, output_minutes: 0, jobs_completed: 0, jobs_failed: 0, jobs_cancelled: 0 };
  for (let t = Date.parse(usage.from + "T00:00:00Z"); t <= Date.parse(usage.to + "T00:00:00Z"); t += 86400000) {
    const day = new Date(t).toISOString().slice(0, 10);
    out.push({ ...zero, ...byDay.get(day), day });
  }
  return out;
}

// chart draws one bar per day of measure m (failed jobs in their own
// colour on top of the completed ones).
function chart(days, m) {
  const width = 720, height = 240, left = 48, bottom = 28, top = 12;
  const most = Math.max(1, ...days.map(m.value));
  const step = (width - left) / Math.max(days.length, 1);
  const y = (v) => top + (height - top - bottom) * (1 - v / most);
  const bars = [];
  days.forEach((d, i) => {
    const x = left + i * step + step * 0.1;
    const w = Math.max(step * 0.8, 1);
    const v = m.value(d);
    const tip = d.day + ": " + (Number.isInteger(v) ? v : v.toFixed(1)) + m.unit;
    bars.push(svg("rect", { class: "bar", x, y: y(v), width: w, height: height - bottom - y(v), "data-day": d.day }, svg("title", {}, tip)));
    if (m.failed && m.failed(d)) {
      const f = m.failed(d);
      bars.push(svg("rect", { class: "bar-failed", x, y: y(v), width: w, height: height - bottom - y(f), "data-day": d.day }, svg("title", {}, d.day + ": " + f + " failed")));
    }
    if (days.length <= 16 || i % Math.ceil(days.length / 8) === 0) {
      bars.push(svg("text", { x: x + w / 2, y: height - 8, "text-anchor": "middle" }, d.day.slice(5)));
    }
  });
  const max = Number.isInteger(most) ? String(most) : most.toFixed(1);
  return svg("svg", { id: "usage-chart", class: "chart", viewBox: "0 0 " + width + " " + height, role: "img",
    "aria-label": m.label + " per day, at most " + max + m.unit },
  svg("line", { class: "axis", x1: left, x2: width, y1: height - bottom, y2: height - bottom }),
  svg("text", { x: 4, y: top + 4 }, max), svg("text", { x: 4, y: height - bottom }, "0"), bars);
}

export async function usagePage(params) {
  const q = new URLSearchParams();
  for (const k of ["from", "to"]) if (params && params.get(k)) q.set(k, params.get(k));
  const usage = await api("GET", "/v1/organization/usage" + (q.size ? "?" + q : ""));
  const days = everyDay(usage);
  const pick = el("select", { id: "usage-measure", name: "measure" },
    Object.entries(measures).map(([k, m]) => el("option", { value: k }, m.label)));
  const holder = el("div", {}, chart(days, measures.encode_seconds));
  pick.addEventListener("change", () => holder.replaceChildren(chart(days, measures[pick.value])));
  const from = el("input", { id: "usage-from", name: "from", type: "date", value: usage.from });
  const to = el("input", { id: "usage-to", name: "to", type: "date", value: usage.to });
  const error = errorLine();
  const range = el("form", { class: "filters", id: "usage-range", onsubmit: (e) => {
    e.preventDefault();
    if (from.value > to.value) { error.textContent = "the first day comes after the last"; return; }
    location.hash = "#/usage?" + new URLSearchParams({ from: from.value, to: to.value });
  } }, el("div", {}, el("label", { for: "usage-from" }, "From"), from), el("div", {}, el("label", { for: "usage-to" }, "To"), to),
  el("div", {}, el("label", { for: "usage-measure" }, "Chart"), pick), el("button", { type: "submit", class: "secondary" }, "Show"));
  const rows = usage.days.map((d) => el("tr", {},
    el("th", { scope: "row" }, d.day.slice(0, 10)),
    el("td", {}, d.encode_seconds.toFixed(0) + " s"),
    el("td", {}, d.output_minutes.toFixed(1)),
    el("td", { class: "hide-narrow" }, d.jobs_completed + " / " + d.jobs_failed + " / " + d.jobs_cancelled)));
  show(el("h1", {}, "Usage"), el("p", {}, "Per UTC day, " + usage.from + " to " + usage.to + "."), range, error,
    el("section", { class: "card", "aria-labelledby": "chart-title" }, el("h2", { id: "chart-title" }, "Per day"), holder),
    el("div", { class: "table-wrap" }, el("table", { id: "usage" },
      el("thead", {}, el("tr", {}, el("th", {}, "Day"), el("th", {}, "Encode seconds"), el("th", {}, "Output minutes"), el("th", { class: "hide-narrow" }, "Jobs completed / failed / cancelled"))),
      el("tbody", {}, rows))), rows.length ? "" : el("p", {}, "No usage in this range."));
}
