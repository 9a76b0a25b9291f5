// The webhooks page (Editors and above): create a webhook (its signing
// secret shown once), edit, disable, enable or delete one, and read each
// one's delivery log with a Redeliver button per delivery.

import { api, el, show, errorLine, twoStep } from "./lib.js";

// The event types a webhook may subscribe to (api/v1 WebhookEvents).
const eventTypes = ["job.queued", "job.started", "job.completed", "job.failed", "job.cancelled", "pool.paused", "pool.resumed"];

function hookPath(id, rest = "") {
  return "/v1/webhooks/" + encodeURIComponent(id) + rest;
}

// eventBoxes is a fieldset of one checkbox per event type; checked() reads
// the ticked ones.
function eventBoxes(prefix, selected) {
  const boxes = eventTypes.map((ev) => el("input", { type: "checkbox", id: prefix + "-" + ev.replace(".", "-"), name: "events", value: ev, checked: selected.includes(ev) }));
  const fieldset = el("fieldset", { class: "events" }, el("legend", {}, "Events"),
    boxes.map((b) => el("label", { class: "check", for: b.id }, b, " " + b.value)));
  return { fieldset, checked: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

function createForm(reload) {
  const url = el("input", { id: "hook-url", name: "url", type: "url", required: true, placeholder: "https://…/hooks/mpegflow" });
  const description = el("input", { id: "hook-description", name: "description", maxlength: "200" });
  const events = eventBoxes("new-hook", ["job.completed", "job.failed"]);
  const secret = el("p", { id: "hook-secret", role: "status" });
  const error = errorLine();
  return el("form", { id: "create-hook", method: "post", class: "card", "aria-labelledby": "hook-title", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const created = await api("POST", "/v1/webhooks", { url: url.value, description: description.value || undefined, events: events.checked() });
      // The secret first: it is shown once, whatever the list does next.
      secret.replaceChildren("Signing secret of ", created.url, " (shown once, copy it now): ", el("code", {}, created.secret));
      await reload();
    } catch (err) { error.textContent = err.message; }
  } }, el("h2", { id: "hook-title" }, "Add a webhook"),
  el("label", { for: "hook-url" }, "URL (https)"), url,
  el("label", { for: "hook-description" }, "Description"), description, events.fieldset,
  el("p", {}, el("button", { type: "submit" }, "Add")), secret, error);
}

async function hookCard(w, reload) {
  const deliveries = await api("GET", hookPath(w.id, "/deliveries?limit=20"));
  const error = errorLine();
  const rows = deliveries.items.map((d) => el("tr", { "data-delivery": d.id },
    el("td", {}, d.event_type), el("td", { class: "delivery-status" }, d.status), el("td", {}, String(d.attempts)),
    el("td", { class: "hide-narrow" }, d.last_status_code ? String(d.last_status_code) : (d.last_error || "")),
    el("td", {}, el("button", { type: "button", class: "secondary", "aria-label": "Redeliver " + d.event_type, onclick: async (e) => {
      try {
        await api("POST", hookPath(w.id, "/deliveries/" + encodeURIComponent(d.id) + "/redeliver"));
        e.target.textContent = "Queued";
        e.target.disabled = true;
      } catch (err) { error.textContent = err.message; }
    } }, "Redeliver"))));
  const act = (fn) => async () => {
    error.textContent = "";
    try { await fn(); await reload(); } catch (err) { error.textContent = err.message; }
  };
  const prefix = "hook-" + w.id;
  const url = el("input", { id: prefix + "-url", name: "url", type: "url", required: true, value: w.url });
  const description = el("input", { id: prefix + "-description", name: "description", maxlength: "200", value: w.description || "" });
  const events = eventBoxes(prefix, w.events);
  const edit = el("details", {}, el("summary", {}, "Edit"),
    el("form", { class: "edit-hook", method: "post", onsubmit: (e) => {
      e.preventDefault();
      act(() => api("PATCH", hookPath(w.id), { url: url.value, description: description.value, events: events.checked() }))();
    } }, el("label", { for: url.id }, "URL (https)"), url, el("label", { for: description.id }, "Description"), description, events.fieldset,
    el("p", {}, el("button", { type: "submit" }, "Save"))));
  const state = w.enabled ? "enabled" : "disabled" + (w.disabled_reason ? ": " + w.disabled_reason : "");
  return el("section", { class: "card", "data-webhook": w.id },
    el("h2", {}, w.url), el("p", { class: "hook-state" }, state + " · events: " + w.events.join(", ")),
    w.description ? el("p", {}, w.description) : "",
    el("p", { class: "actions" },
      el("button", { type: "button", class: "secondary", "data-action": w.enabled ? "disable" : "enable",
        onclick: act(() => api("PATCH", hookPath(w.id), { enabled: !w.enabled })) }, w.enabled ? "Disable" : "Enable"), " ",
      twoStep("Delete", "Delete: sure?", act(() => api("DELETE", hookPath(w.id))), { "data-action": "delete", "aria-label": "Delete webhook " + w.url })),
    edit, error,
    el("h3", {}, "Recent deliveries"),
    rows.length ? el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Event"), el("th", {}, "Status"), el("th", {}, "Attempts"), el("th", { class: "hide-narrow" }, "Last answer"), el("th", {}, el("span", { class: "visually-hidden" }, "Actions")))),
      el("tbody", {}, rows))) : el("p", {}, "No deliveries yet."));
}

export async function webhooksPage() {
  const list = el("div", { id: "webhooks" });
  const reload = async () => {
    const page = await api("GET", "/v1/webhooks?limit=100");
    const cards = await Promise.all(page.items.map((w) => hookCard(w, reload)));
    list.replaceChildren(...cards, cards.length ? "" : el("p", {}, "No webhooks."));
  };
  await reload();
  show(el("h1", {}, "Webhooks"), createForm(reload), list);
}
