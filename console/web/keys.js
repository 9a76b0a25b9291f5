// Your own API keys: create one (shown once), revoke one.

import { api, el, show, errorLine } from "./lib.js";

export async function keysPage() {
  const tbody = el("tbody");
  const shown = el("p", { id: "new-key", role: "status" });
  const error = errorLine();
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
