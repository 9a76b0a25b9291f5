// API keys: the table both key pages use, and your own keys' page (create
// one, shown once; revoke one).

import { api, el, show, errorLine } from "./lib.js";

// keyTable lists the keys list() answers (name, prefix, the role when
// roleOf is given, state) with a Revoke button per active key that calls
// revoke(key); refresh() reads the list again. owner names whose keys they
// are, for the buttons' labels.
export function keyTable(list, revoke, onError, { id, roleOf, owner = "" } = {}) {
  const tbody = el("tbody");
  const refresh = async () => {
    const page = await list();
    tbody.replaceChildren(...page.items.map((k) => el("tr", { "data-key": k.id },
      el("td", {}, k.name), el("td", {}, k.prefix), roleOf ? el("td", {}, roleOf(k)) : null,
      el("td", { class: "key-state" }, k.revoked_at ? "revoked" : "active"),
      el("td", {}, k.revoked_at ? "" : el("button", { type: "button", class: "secondary", "aria-label": "Revoke key " + k.name + owner, onclick: async () => {
        try { await revoke(k); await refresh(); } catch (err) { onError(err); }
      } }, "Revoke")))));
  };
  const head = [el("th", {}, "Name"), el("th", {}, "Prefix"), roleOf ? el("th", {}, "Role") : null, el("th", {}, "State"),
    el("th", {}, el("span", { class: "visually-hidden" }, "Actions"))];
  const table = el("div", { class: "table-wrap" }, el("table", { id }, el("thead", {}, el("tr", {}, head)), tbody));
  return { table, refresh };
}

export async function keysPage() {
  const shown = el("p", { id: "new-key", role: "status" });
  const error = errorLine();
  const keys = keyTable(() => api("GET", "/v1/api-keys?limit=200"), (k) => api("DELETE", "/v1/api-keys/" + encodeURIComponent(k.id)),
    (err) => { error.textContent = err.message; }, { id: "keys" });
  const name = el("input", { id: "key-name", name: "name", required: true, maxlength: "100" });
  const form = el("form", { id: "create-key", method: "post", class: "card", "aria-labelledby": "key-title", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const created = await api("POST", "/v1/api-keys", { name: name.value });
      shown.replaceChildren("New key (shown once, copy it now): ", el("code", {}, created.key));
      name.value = "";
      await keys.refresh();
    } catch (err) { error.textContent = err.message; }
  } }, el("h2", { id: "key-title" }, "Create a key"), el("label", { for: "key-name" }, "Name"), name, el("p", {}, el("button", { type: "submit" }, "Create")));
  await keys.refresh();
  show(el("h1", {}, "Your API keys"), form, shown, error, keys.table);
}
