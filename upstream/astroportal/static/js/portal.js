/* The portal's small browser toolkit: API calls with the session cookie, safe DOM building, formatting.
 *
 * User text only ever reaches the page through text nodes (textContent), never through innerHTML, so a
 * comment or a group name holding markup is shown as typed and never run.
 */
"use strict";

const Portal = (() => {
  class ApiError extends Error {
    constructor(status, message, data) {
      super(message);
      this.status = status;
      this.data = data;
    }
  }

  /** Call the portal's API; resolve to the envelope's `data`, or throw ApiError with the portal's message. */
  async function api(method, path, body) {
    return envelope(path, request(method, path, body));
  }

  /** The session's anti-forgery token, which the page carries in <meta name="csrf-token">. */
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function request(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    // A state change with the session cookie must prove it comes from the portal's own page.
    if (method !== "GET" && method !== "HEAD") opts.headers["X-CSRF-Token"] = csrfToken();
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts);
  }

  /** The envelope's `data` from a fetch() promise (for requests started early, before the page's script). */
  async function envelope(path, pending) {
    let response;
    try {
      response = await pending;
    } catch (err) {
      throw new ApiError(0, "the portal cannot be reached: " + err.message);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (err) {
      throw new ApiError(response.status, `unexpected answer from ${path} (HTTP ${response.status})`);
    }
    if (!response.ok || (payload && payload.status === "error")) {
      const msg = (payload && payload.message) || `HTTP ${response.status}`;
      throw new ApiError(response.status, msg, payload && payload.data);
    }
    return payload ? payload.data : null;
  }

  function query(params) {
    const parts = [];
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === "") continue;
      parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(v));
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  /** Only http(s) and site-relative links may become hrefs (no javascript: URLs from user data). */
  function safeHref(url) {
    if (typeof url !== "string") return null;
    if (url.startsWith("/") && !url.startsWith("//")) return url;
    try {
      const u = new URL(url);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (err) {
      return null;
    }
  }

  /**
   * Build an element: el("a", {href: "/x", class: "c", onclick: fn}, "text", child, ...).
   * Strings become text nodes; null/undefined/false children are skipped.
   */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "class") {
        node.className = value;
      } else if (key === "text") {
        node.textContent = String(value);
      } else if (key === "href" || key === "src") {
        const safe = safeHref(String(value));
        if (safe) node.setAttribute(key, safe);
      } else if (key === "dataset") {
        Object.assign(node.dataset, value);
      } else if (value === true) {
        node.setAttribute(key, "");
      } else {
        node.setAttribute(key, String(value));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function $(sel, root) {
    return (root || document).querySelector(sel);
  }

  /** A short-lived message in the corner (kind: "info", "success" or "error"). */
  function flash(message, kind) {
    const area = document.getElementById("flash-area");
    if (!area) return;
    const node = el("div", { class: "flash " + (kind || "info"), role: kind === "error" ? "alert" : "status" }, message);
    area.appendChild(node);
    setTimeout(() => node.remove(), kind === "error" ? 9000 : 4000);
  }

  /** Show an error inside a container (replacing what it held). */
  function showError(container, err) {
    clear(container).appendChild(el("div", { class: "alert error" }, err && err.message ? err.message : String(err)));
  }

  function loading(container, text) {
    clear(container).appendChild(el("div", { class: "muted" }, text || "Loading…"));
  }

  // -- formatting -----------------------------------------------------------------------------------
  function fmt(x, digits) {
    if (x === null || x === undefined || x === "" || Number.isNaN(Number(x))) return "—";
    return Number(x).toFixed(digits === undefined ? 5 : digits);
  }

  function pad(n, width) {
    return String(n).padStart(width, "0");
  }

  /** Degrees to sexagesimal: hours for RA (hours=true), degrees for Dec. */
  function sexagesimal(deg, hours) {
    if (deg === null || deg === undefined) return "—";
    let value = Number(deg);
    const sign = value < 0 ? "-" : hours ? "" : "+";
    value = Math.abs(value) / (hours ? 15 : 1);
    let d = Math.floor(value);
    let m = Math.floor((value - d) * 60);
    let s = ((value - d) * 60 - m) * 60;
    const decimals = hours ? 2 : 1;
    if (Number(s.toFixed(decimals)) >= 60) {
      s = 0;
      m += 1;
    }
    if (m >= 60) {
      m = 0;
      d += 1;
    }
    const sec = s.toFixed(decimals).padStart(decimals + 3, "0");
    return `${sign}${pad(d, 2)}:${pad(m, 2)}:${sec}`;
  }

  const MJD_UNIX_EPOCH = 40587;
  function mjdToDate(mjd) {
    return new Date((mjd - MJD_UNIX_EPOCH) * 86400000);
  }
  function dateToMjd(date) {
    return date.getTime() / 86400000 + MJD_UNIX_EPOCH;
  }
  /** "2026-01-31 22:15:03" (UTC) for an MJD. */
  function mjdToIso(mjd) {
    const d = mjdToDate(Number(mjd));
    const ms = d.getTime();
    // A stored value no calendar can show (1e30, say) is shown as such rather than stopping the page.
    if (!Number.isFinite(ms) || d.getUTCFullYear() < 1 || d.getUTCFullYear() > 9999) return "(no such date)";
    return d.toISOString().slice(0, 19).replace("T", " ");
  }
  /** A timestamp from the API (ISO, UTC when it has no zone) as "YYYY-MM-DD HH:MM UTC". */
  function fmtTime(value) {
    if (!value) return "—";
    let s = String(value);
    if (!/[zZ]|[+-]\d\d:?\d\d$/.test(s)) s += "Z";
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) return String(value);
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  // -- the logged-in user (from the page's body attributes) ---------------------------------------------
  const body = document.body.dataset;
  const acls = new Set((body.acls || "").split("|").filter(Boolean));
  const user = {
    id: body.userId ? Number(body.userId) : null,
    username: body.username || null,
    acls,
    has(acl) {
      return acls.has("System admin") || acls.has(acl);
    },
    get isAdmin() {
      return acls.has("System admin");
    },
  };

  // -- tables and paging ----------------------------------------------------------------------------------
  /**
   * A table: columns = [{label, cell: row => node|string, sortKey?, class?}], with optional sorting state
   * {key, order} and onSort(key) called when a sortable header is clicked.
   */
  function table(columns, rows, opts) {
    opts = opts || {};
    const head = el(
      "tr",
      {},
      columns.map((c) => {
        const sorted = opts.sort && c.sortKey && opts.sort.key === c.sortKey;
        const th = el("th", {
          class: [c.sortKey && opts.onSort ? "sortable" : "", sorted ? "sorted-" + opts.sort.order : ""].join(" ").trim() || null,
          scope: "col",
        }, c.label);
        if (c.sortKey && opts.onSort) th.addEventListener("click", () => opts.onSort(c.sortKey));
        return th;
      })
    );
    const bodyRows = rows.map((row) =>
      el("tr", opts.rowAttrs ? opts.rowAttrs(row) : {}, columns.map((c) => el("td", { class: c.class || null }, c.cell(row))))
    );
    const t = el("table", { class: "data" + (opts.class ? " " + opts.class : "") }, el("thead", {}, head), el("tbody", {}, bodyRows));
    return el("div", { class: "table-wrap" }, t);
  }

  /** "Page N of M" with previous/next buttons; onChange(newPage). */
  function pager(page, perPage, total, onChange) {
    const pages = Math.max(1, Math.ceil(total / perPage));
    return el(
      "div",
      { class: "pager" },
      el("button", { class: "secondary small", disabled: page <= 1, onclick: () => onChange(page - 1), "data-role": "prev" }, "‹ Previous"),
      el("span", {}, `Page ${page} of ${pages} (${total} in all)`),
      el("button", { class: "secondary small", disabled: page >= pages, onclick: () => onChange(page + 1), "data-role": "next" }, "Next ›")
    );
  }

  /** Run `fn` when the page's DOM is ready. */
  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  /** A page's settings from <script type="application/json" id="page-data"> (not executed, so CSP-safe). */
  function pageData() {
    const node = document.getElementById("page-data");
    return node ? JSON.parse(node.textContent) : {};
  }

  /** A button handler that disables the button while `fn` runs and reports an error as a message. */
  function action(fn) {
    return async (event) => {
      const button = event && event.currentTarget;
      if (event && event.preventDefault) event.preventDefault();
      if (button) button.disabled = true;
      try {
        await fn(event);
      } catch (err) {
        flash(err.message || String(err), "error");
      } finally {
        if (button) button.disabled = false;
      }
    };
  }

  function groupNames(groups) {
    return (groups || []).map((g) => el("span", { class: "badge" }, g.name || g.nickname || "group " + g.id));
  }

  return {
    ApiError, api, envelope, csrfToken, query, el, append, clear, $, flash, showError, loading, fmt, sexagesimal, mjdToDate,
    dateToMjd, mjdToIso, fmtTime, user, table, pager, ready, pageData, action, safeHref, groupNames,
  };
})();

/* The notification bell: the member's unread count, refreshed every 30 seconds. */
Portal.refreshBell = async () => {
  const count = document.getElementById("notification-count");
  if (!count || !Portal.user.id) return;
  try {
    const data = await Portal.api("GET", "/api/notifications/count");
    count.textContent = data.unread ? String(data.unread) : "";
  } catch (err) {
    count.textContent = "";
  }
};
Portal.ready(() => {
  if (!document.getElementById("notification-count") || !Portal.user.id) return;
  Portal.refreshBell();
  setInterval(Portal.refreshBell, 30000);
});
