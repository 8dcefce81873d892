/* The dashboard: counts and the latest sources and candidates, from the API. */
"use strict";

Portal.ready(() => {
  const { el, api, query, fmt, fmtTime, groupNames, showError, clear } = Portal;

  function setCount(id, value) {
    document.getElementById(id).textContent = value === null || value === undefined ? "—" : String(value);
  }

  async function sources() {
    const box = document.getElementById("recent-sources");
    try {
      const data = await api("GET", "/api/sources" + query({ numPerPage: 10, sortBy: "saved_at", sortOrder: "desc" }));
      setCount("count-sources", data.totalMatches);
      clear(box);
      if (!data.sources.length) {
        box.appendChild(el("div", { class: "empty" }, "No sources yet."));
        return;
      }
      box.appendChild(
        Portal.table(
          [
            { label: "Source", cell: (s) => el("a", { href: "/source/" + encodeURIComponent(s.id) }, s.id) },
            { label: "RA, Dec (°)", class: "num", cell: (s) => `${fmt(s.ra, 4)} ${fmt(s.dec, 4)}` },
            { label: "Groups", cell: (s) => groupNames(s.groups) },
            { label: "Saved", cell: (s) => fmtTime(s.saved_at) },
          ],
          data.sources,
          { class: "recent-sources" }
        )
      );
    } catch (err) {
      setCount("count-sources", null);
      showError(box, err);
    }
  }

  async function candidates() {
    const box = document.getElementById("recent-candidates");
    try {
      const data = await api("GET", "/api/candidates" + query({ numPerPage: 10 }));
      setCount("count-candidates", data.totalMatches);
      clear(box);
      if (!data.candidates.length) {
        box.appendChild(el("div", { class: "empty" }, "No candidates yet."));
        return;
      }
      box.appendChild(
        Portal.table(
          [
            { label: "Object", cell: (c) => el("a", { href: "/source/" + encodeURIComponent(c.id) }, c.id) },
            { label: "RA, Dec (°)", class: "num", cell: (c) => `${fmt(c.ra, 4)} ${fmt(c.dec, 4)}` },
            { label: "Passed", cell: (c) => fmtTime(c.passed_at) },
            { label: "Saved", cell: (c) => (c.is_source ? groupNames(c.saved_groups) : el("span", { class: "muted" }, "no")) },
          ],
          data.candidates,
          { class: "recent-candidates" }
        )
      );
    } catch (err) {
      setCount("count-candidates", null);
      showError(box, err);
    }
  }

  async function groups() {
    try {
      const data = await api("GET", "/api/groups");
      setCount("count-groups", (data.user_groups || []).length);
    } catch (err) {
      setCount("count-groups", null);
    }
  }

  // The latest few events, kept current by the live websocket.
  async function live() {
    const box = document.getElementById("dashboard-live");
    try {
      const data = await api("GET", "/api/live/events" + query({ limit: 5 }));
      clear(box);
      if (!data.events.length) box.appendChild(el("li", { class: "empty" }, "Nothing has happened yet."));
      for (const e of data.events) box.appendChild(LiveFeed.item(e));
      LiveFeed.connect({
        since: data.events.length ? data.events[0].id : 0,
        onEvents: (events) => {
          const empty = box.querySelector(".empty");
          if (empty) empty.remove();
          for (const e of events) box.insertBefore(LiveFeed.item(e), box.firstChild);
          while (box.children.length > 5) box.lastChild.remove();
        },
      });
    } catch (err) {
      showError(box, err);
    }
  }

  sources();
  candidates();
  groups();
  live();
});
