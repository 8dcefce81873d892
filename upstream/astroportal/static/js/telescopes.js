/* Telescopes: the list with night status now, and a telescope page's instruments. */
"use strict";

Portal.ready(() => {
  const { el, api, fmt, showError, clear } = Portal;
  const STATE_LABEL = {
    day: "day", civil: "civil twilight", nautical: "nautical twilight", astronomical: "astronomical twilight", night: "night",
  };

  function stateBadge(s) {
    if (!s || !s.location_known) return el("span", { class: "muted" }, "no fixed site");
    const cls = s.twilight === "night" ? "badge dark" : s.twilight === "day" ? "badge warn" : "badge";
    return el("span", { class: cls + " night-state", "data-is-night": String(s.is_night) }, STATE_LABEL[s.twilight] || s.twilight);
  }

  async function list(box) {
    let telescopes;
    let states = [];
    try {
      [telescopes, states] = await Promise.all([api("GET", "/api/telescope"), api("GET", "/api/internal/ephemeris").catch(() => [])]);
    } catch (err) {
      showError(box, err);
      return;
    }
    const byId = new Map(states.map((s) => [s.telescope_id, s]));
    telescopes.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    clear(box);
    if (!telescopes.length) {
      box.appendChild(el("div", { class: "empty" }, "No telescopes yet."));
      return;
    }
    box.appendChild(
      Portal.table(
        [
          { label: "Name", cell: (t) => el("a", { href: "/telescope/" + t.id, class: "telescope-link" }, t.name) },
          { label: "Nickname", cell: (t) => t.nickname },
          { label: "Lat (°)", class: "num", cell: (t) => fmt(t.lat, 4) },
          { label: "Lon (°)", class: "num", cell: (t) => fmt(t.lon, 4) },
          { label: "Elevation (m)", class: "num", cell: (t) => fmt(t.elevation, 0) },
          { label: "Diameter (m)", class: "num", cell: (t) => fmt(t.diameter, 2) },
          { label: "Robotic", cell: (t) => (t.robotic ? "yes" : "no") },
          { label: "Now", cell: (t) => stateBadge(byId.get(t.id)) },
          { label: "Sun alt.", class: "num", cell: (t) => { const s = byId.get(t.id); return s && s.sun_altitude !== null ? fmt(s.sun_altitude, 1) + "°" : "—"; } },
        ],
        telescopes,
        { class: "telescopes", rowAttrs: (t) => ({ "data-telescope-id": t.id }) }
      )
    );
  }

  async function instruments(box, telescopeId) {
    let all;
    try {
      all = await api("GET", "/api/instrument");
    } catch (err) {
      showError(box, err);
      return;
    }
    const mine = all.filter((i) => i.telescope_id === telescopeId);
    clear(box);
    if (!mine.length) {
      box.appendChild(el("div", { class: "empty" }, "No instruments on this telescope."));
      return;
    }
    box.appendChild(
      Portal.table(
        [
          { label: "Name", cell: (i) => i.name },
          { label: "Type", cell: (i) => i.type },
          { label: "Band", cell: (i) => i.band || "—" },
          { label: "Filters", cell: (i) => (i.filters || []).map((f) => el("span", { class: "badge" }, f)) },
        ],
        mine,
        { class: "instruments" }
      )
    );
  }

  const listBox = document.getElementById("telescopes-list");
  if (listBox) list(listBox);
  const instBox = document.getElementById("telescope-instruments");
  if (instBox) instruments(instBox, Portal.pageData().telescopeId);
});
