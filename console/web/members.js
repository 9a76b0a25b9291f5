// The members page: everyone reads the organization's members; Admins add
// and remove members, change their roles, issue and revoke their API keys
// and invite them to get a key (keys and invitation tokens shown once).

import { api, el, show, errorLine, managers, state, twoStep } from "./lib.js";
import { keyTable } from "./keys.js";

const roles = ["viewer", "editor", "admin", "owner"];

function memberPath(id, rest = "") {
  return "/v1/members/" + encodeURIComponent(id) + rest;
}

// roleSelect offers the roles an organization gives, and the member's own
// when it is another (a platform superadmin).
function roleSelect(id, selected) {
  const offered = roles.includes(selected) ? roles : [...roles, selected];
  return el("select", { id, name: "role" }, offered.map((r) => el("option", { value: r, selected: r === selected }, r)));
}

// keysOf manages one member's keys: the list with Revoke, issue a key
// (shown once) and invite them to get one (the token shown once).
function keysOf(m, error) {
  const shown = el("p", { class: "member-secret", role: "status" });
  const keys = keyTable(() => api("GET", memberPath(m.user_id, "/api-keys?limit=200")),
    (k) => api("DELETE", memberPath(m.user_id, "/api-keys/" + encodeURIComponent(k.id))),
    (err) => { error.textContent = err.message; }, { roleOf: (k) => k.role || m.role, owner: " of " + m.email });
  const load = keys.refresh;
  const prefix = "member-" + m.user_id;
  const name = el("input", { id: prefix + "-key-name", name: "name", required: true, maxlength: "100" });
  const role = roleSelect(prefix + "-key-role", m.role);
  const issue = el("form", { class: "issue-key", method: "post", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const created = await api("POST", memberPath(m.user_id, "/api-keys"), { name: name.value, role: role.value });
      shown.replaceChildren("Key for " + m.email + " (shown once, hand it over now): ", el("code", {}, created.key));
      name.value = "";
      await load();
    } catch (err) { error.textContent = err.message; }
  } }, el("label", { for: name.id }, "New key's name"), name, el("label", { for: role.id }, "Acting at most as"), role,
  el("p", {}, el("button", { type: "submit" }, "Issue key"), " ",
    el("button", { type: "button", class: "secondary", "data-action": "invite", onclick: async () => {
      error.textContent = "";
      try {
        const inv = await api("POST", memberPath(m.user_id, "/invitations"), { role: role.value });
        shown.replaceChildren("Invitation for " + m.email + " (shown once; they redeem it for a key): ", el("code", {}, inv.token));
      } catch (err) { error.textContent = err.message; }
    } }, "Invite instead")));
  const details = el("details", { class: "member-keys" }, el("summary", {}, "API keys"), issue, shown, keys.table);
  details.addEventListener("toggle", () => { if (details.open) load().catch((err) => { error.textContent = err.message; }); });
  return details;
}

function addForm(reload, error) {
  const email = el("input", { id: "member-email", name: "email", type: "email", required: true });
  const name = el("input", { id: "member-name", name: "name", maxlength: "100" });
  const role = roleSelect("member-role", "viewer");
  return el("form", { id: "add-member", method: "post", class: "card", "aria-labelledby": "add-member-title", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await api("POST", "/v1/members", { email: email.value, name: name.value || undefined, role: role.value });
      email.value = "";
      name.value = "";
      await reload();
    } catch (err) { error.textContent = err.message; }
  } }, el("h2", { id: "add-member-title" }, "Add a member"),
  el("label", { for: "member-email" }, "Email"), email, el("label", { for: "member-name" }, "Name"), name,
  el("label", { for: "member-role" }, "Role"), role, el("p", {}, el("button", { type: "submit" }, "Add")));
}

export async function membersPage() {
  const manage = managers.has(state.session.role);
  const tbody = el("tbody");
  const error = errorLine();
  const reload = async () => {
    const page = await api("GET", "/v1/members?limit=200");
    tbody.replaceChildren(...page.items.map((m) => {
      const cells = [el("td", {}, m.email), el("td", {}, m.name), el("td", { class: "member-role" }, m.role)];
      if (manage) {
        const role = roleSelect("role-" + m.user_id, m.role);
        role.setAttribute("aria-label", "Role of " + m.email);
        role.addEventListener("change", async () => {
          error.textContent = "";
          // Changed in place: the row (and a keys list open in it) stays.
          try { m.role = (await api("PATCH", memberPath(m.user_id), { role: role.value })).role; } catch (err) { error.textContent = err.message; role.value = m.role; }
        });
        const remove = twoStep("Remove", "Remove: sure?", async () => {
          error.textContent = "";
          try { await api("DELETE", memberPath(m.user_id)); await reload(); } catch (err) { error.textContent = err.message; }
        }, { "data-action": "remove", "aria-label": "Remove " + m.email });
        cells[2].replaceChildren(role);
        cells.push(el("td", {}, keysOf(m, error)), el("td", {}, remove));
      }
      return el("tr", { "data-member": m.user_id }, cells);
    }));
  };
  await reload();
  const head = [el("th", {}, "Email"), el("th", {}, "Name"), el("th", {}, "Role")];
  if (manage) head.push(el("th", {}, "Keys"), el("th", {}, el("span", { class: "visually-hidden" }, "Actions")));
  show(el("h1", {}, "Members"), manage ? addForm(reload, error) : "", error,
    el("div", { class: "table-wrap" }, el("table", { id: "members" }, el("thead", {}, el("tr", {}, head)), tbody)));
}
