// What every page of the console shares: the session, API calls with the
// CSRF token, element building (text only, never markup) and the live
// event socket.

export const main = document.getElementById("main");
export const writers = new Set(["editor", "admin", "owner", "superadmin"]);
export const managers = new Set(["admin", "owner", "superadmin"]);

// state.session is who the console acts as ({org_id, role}, null when
// signed out); state.socket the page's live event socket.
export const state = { session: null, socket: null };

export function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)mpegflow_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  if (res.status === 401 && !path.startsWith("/v1/console/session")) {
    state.session = null;
    location.hash = "#/signin";
    throw new Error("signed out");
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    let message = (data && (data.detail || data.title)) || res.statusText;
    // A refused body names each field and what it must be: say them.
    if (data && Array.isArray(data.errors) && data.errors.length) {
      message = data.errors.map((e) => e.field + ": " + e.detail).join("; ");
    }
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return data;
}

export function el(tag, attrs = {}, ...children) {
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

// svg builds an SVG element (charts), with the same rules as el.
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus();
}

export function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1000)));
  return (n / 1000 ** i).toFixed(i ? 1 : 0) + " " + units[i];
}

export function live(query, onEvent) {
  if (state.socket) state.socket.close();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  state.socket = new WebSocket(scheme + "//" + location.host + "/ws" + query);
  state.socket.addEventListener("message", (m) => {
    try { onEvent(JSON.parse(m.data)); } catch { /* not an event */ }
  });
}

// errorLine is a live region for a form's or a page's error.
export function errorLine() {
  return el("p", { class: "error", role: "alert" });
}

// twoStep is a button that asks to be pressed again before it acts.
export function twoStep(label, confirmLabel, act, attrs = {}) {
  let armed = false;
  const b = el("button", { type: "button", class: "secondary", ...attrs, onclick: async () => {
    if (!armed) { armed = true; b.textContent = confirmLabel; return; }
    await act();
  } }, label);
  return b;
}
