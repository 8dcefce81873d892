/* One GW event: properties, notice timeline, the sky map with the chosen localization's contours and the
 * sources/candidates in its credible region (ranked by probability density), and the network's telescopes on
 * a map of the Earth with night and day now. */
"use strict";

Portal.ready(() => {
  const { el, api, query, table, fmt, fmtTime, clear, showError } = Portal;
  const page = Portal.pageData();
  const REGION_LIMIT = 100; // rows asked of each list: the densest first

  const $ = (id) => document.getElementById(id);
  const skymap = $("gw-skymap");
  const netmap = $("network-map");
  const locSelect = $("localization-select");
  const cumprobSelect = $("cumprob-select");

  let eventData = null;
  let contour = null; // the chosen localization's GeoJSON
  let regionItems = { sources: [], candidates: [] };
  let telescopes = [];
  let instruments = [];
  let now = new Date();

  /** The maps, redrawn from the page's state. */
  function drawSkymap() {
    const note = eventData && !chosenLocalization() ? "no localization for this event yet" : null;
    GWMaps.drawSky(skymap, { contour, items: regionItems, note });
  }

  function drawZoom() {
    const shown = GWMaps.drawZoom($("gw-zoom"), { contour, items: regionItems });
    skymap.classList.toggle("alone", !shown);
  }

  function drawNetwork() {
    GWMaps.drawEarth(netmap, { contour, telescopes, now });
  }

  function tagNames(tags) {
    return (tags || []).map((t) => (typeof t === "string" ? t : t.text)).filter(Boolean);
  }

  // -- the event: header, properties, notices -----------------------------------------------------------------
  function renderHeader(e) {
    const tags = tagNames(e.tags);
    const retracted = tags.includes("RETRACTED");
    tags.sort((a, b) => (b === "RETRACTED") - (a === "RETRACTED"));
    clear($("gcn-event-tags")).append(...tags.map((t) => el("span", { class: t === "RETRACTED" ? "badge danger retracted" : "badge" }, t)));
    // Mock and test alerts (superevent MS..., search MDC) exercise the chain; nobody should observe for them.
    const props = GW.mergedProperties(e.properties);
    if (/^M/.test(e.trigger_id || "") || props.search === "MDC") {
      $("gcn-event-tags").appendChild(el("span", { class: "badge warn", id: "test-alert", title: "a mock or test alert (MS... superevent or MDC search): not a real event" }, "test alert"));
    }
    const url = GW.gracedbUrl(e.trigger_id);
    clear($("gcn-event-links"));
    if (url) $("gcn-event-links").appendChild(el("a", { href: url, rel: "noopener noreferrer", target: "_blank", class: "gracedb-link" }, "GraceDB ↗"));
    if (retracted) {
      clear($("retracted-banner")).appendChild(el("div", { class: "alert error", id: "retracted-alert" },
        "This event was RETRACTED by its issuers: it is not astrophysical. There is nothing to follow up."));
    }
  }

  const FLAG_LABELS = { HasNS: "Has a neutron star", HasRemnant: "Has a remnant", HasMassGap: "Has a mass-gap object" };

  function renderProperties(e) {
    const box = $("gcn-properties");
    const props = GW.mergedProperties(e.properties);
    const rows = [];
    const add = (label, value, attrs) => rows.push(el("tr", attrs || {}, el("th", {}, label), el("td", {}, value === null || value === undefined ? "—" : value)));
    add("Time (UTC)", GW.timeText(e.dateobs));
    const url = GW.gracedbUrl(e.trigger_id);
    add("Trigger", e.trigger_id ? (url ? el("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, e.trigger_id) : e.trigger_id) : null);
    if ((e.aliases || []).length) add("Aliases", e.aliases.join(", "));
    const far = GW.farOf(props);
    add("False-alarm rate", far ? el("span", { id: "gcn-far", title: `${Number(far).toExponential(3)} Hz` }, GW.farText(far)) : null);
    if (props.significant !== undefined && props.significant !== null) add("Significant", props.significant ? "yes" : "no");
    const classes = Object.entries(props.classification || {}).sort((a, b) => Number(b[1]) - Number(a[1]));
    if (classes.length) {
      add("Classification", el("span", { id: "gcn-classification" },
        classes.map(([name, p], i) => el("span", { class: i === 0 ? "badge dark" : "badge" }, `${name} ${GW.percent(p)}`))));
    }
    for (const [key, label] of Object.entries(FLAG_LABELS)) if (props[key] !== undefined && props[key] !== null) add(label, GW.percent(props[key]));
    const loc = GW.newest(e.localizations);
    const dist = loc && loc.distmean !== null && loc.distmean !== undefined ? GW.distanceText(loc.distmean, loc.diststd) : GW.distanceText(props.distmean, props.diststd);
    add("Distance", dist);
    for (const key of ["instruments", "pipeline", "group", "search"]) {
      if (props[key] !== undefined && props[key] !== null && props[key] !== "") add(key[0].toUpperCase() + key.slice(1), Array.isArray(props[key]) ? props[key].join(", ") : String(props[key]));
    }
    clear(box).appendChild(el("table", { class: "data kv", id: "gcn-properties-table" }, el("tbody", {}, rows)));
  }

  function renderNotices(e) {
    const box = $("gcn-notices");
    const notices = (e.notices || []).slice().sort((a, b) => String(a.date || a.received_at || "").localeCompare(String(b.date || b.received_at || "")));
    clear(box);
    if (!notices.length) {
      box.appendChild(el("div", { class: "empty" }, "No notices stored for this event."));
      return;
    }
    box.appendChild(table(
      [
        { label: "Notice", cell: (n) => el("span", { class: /RETRACT/i.test(n.notice_type || "") ? "badge danger" : "badge" }, n.notice_type || "?") },
        { label: "Sent (UTC)", class: "num", cell: (n) => fmtTime(n.date) },
        { label: "Received (UTC)", class: "num", cell: (n) => fmtTime(n.received_at) },
        { label: "Stream", cell: (n) => n.stream || "—" },
      ],
      notices,
      { class: "gcn-notices", rowAttrs: (n) => ({ "data-notice-type": n.notice_type || "" }) }
    ));
  }

  // -- localizations ------------------------------------------------------------------------------------------
  function fillLocalizations(e) {
    const locs = (e.localizations || []).slice().sort((a, b) => String(b.created_at || "").localeCompare(String(a.created_at || "")));
    clear(locSelect);
    for (const l of locs) locSelect.appendChild(el("option", { value: l.localization_name }, `${l.localization_name} (${fmtTime(l.created_at)})`));
    if (!locs.length) {
      locSelect.appendChild(el("option", { value: "" }, "none"));
      locSelect.disabled = true;
      cumprobSelect.disabled = true;
      $("localization-summary").textContent = "";
      for (const id of ["region-sources", "region-candidates"]) {
        clear($(id)).appendChild(el("div", { class: "empty" }, "This event has no localization yet; an update notice with a sky map adds one."));
      }
    }
    return locs;
  }

  function chosenLocalization() {
    if (!eventData) return null;
    return (eventData.localizations || []).find((l) => l.localization_name === locSelect.value) || null;
  }

  async function showLocalization() {
    const loc = chosenLocalization();
    contour = null;
    regionItems = { sources: [], candidates: [] };
    drawSkymap();
    drawZoom();
    drawNetwork();
    if (!loc) return;
    const parts = [];
    if (loc.area_50 !== null && loc.area_50 !== undefined) parts.push("50%: " + GW.areaText(loc.area_50));
    if (loc.area_90 !== null && loc.area_90 !== undefined) parts.push("90%: " + GW.areaText(loc.area_90));
    const dist = GW.distanceText(loc.distmean, loc.diststd);
    if (dist) parts.push("distance " + dist);
    $("localization-summary").textContent = parts.join(" · ");
    const base = "/api/localization/" + encodeURIComponent(page.dateobs) + "/name/" + encodeURIComponent(loc.localization_name);
    clear($("localization-download")).appendChild(el("a", { href: base + "/download", class: "small", id: "skymap-download" }, "download the sky map (FITS)"));
    const cumprob = cumprobSelect.value;
    const regionParams = { localizationDateobs: page.dateobs, localizationName: loc.localization_name, localizationCumprob: cumprob, numPerPage: REGION_LIMIT };
    const [contourResult] = await Promise.allSettled([
      api("GET", base).then((data) => { contour = data.contour || null; }),
      loadRegion("sources", regionParams),
      loadRegion("candidates", regionParams),
    ]);
    if (contourResult.status === "rejected") Portal.flash("The contours could not be loaded: " + contourResult.reason.message, "error");
    drawSkymap();
    drawZoom();
    drawNetwork();
    if (telescopes.length) renderTelescopes();
  }

  // -- sources and candidates in the credible region ----------------------------------------------------------
  async function loadRegion(kind, params) {
    const box = $(kind === "sources" ? "region-sources" : "region-candidates");
    Portal.loading(box);
    let data;
    try {
      data = await api("GET", `/api/${kind}` + query(Object.assign({ sortBy: "localization_probdensity", sortOrder: "desc" }, params)));
    } catch (err) {
      showError(box, err);
      return;
    }
    const rows = data[kind] || [];
    if (rows.length && rows.every((s) => s.localization_probdensity === undefined)) {
      // This portal's list ignored the localization: saying "none in the region" would be wrong.
      clear(box).appendChild(el("div", { class: "empty" }, `The ${kind} list of this portal cannot be filtered by a localization.`));
      regionItems[kind] = [];
      return;
    }
    const items = rows.filter((s) => s.localization_probdensity !== undefined && s.localization_probdensity !== null);
    // Densest first: the most probable places of the source on the sky.
    items.sort((a, b) => Number(b.localization_probdensity) - Number(a.localization_probdensity));
    regionItems[kind] = items;
    clear(box);
    const level = Math.round(Number(params.localizationCumprob) * 100);
    if (!items.length) {
      box.appendChild(el("div", { class: "empty", id: `no-region-${kind}` }, `No ${kind} you can see fall in the ${level}% credible region.`));
      return;
    }
    const total = data.totalMatches;
    box.appendChild(el("p", { class: "muted small" },
      `${total !== undefined && total > items.length ? `The ${items.length} densest of ${total}` : items.length} ${kind} in the ${level}% region, ` +
      "ranked by the localization's probability density at their position."));
    box.appendChild(table(
      [
        { label: "#", class: "num", cell: (s) => String(items.indexOf(s) + 1) },
        { label: kind === "sources" ? "Source" : "Candidate", cell: (s) => el("a", { href: "/source/" + encodeURIComponent(s.id), class: "region-link" }, s.id) },
        { label: "RA (°)", class: "num", cell: (s) => fmt(s.ra, 4) },
        { label: "Dec (°)", class: "num", cell: (s) => fmt(s.dec, 4) },
        { label: "Prob. density (deg⁻²)", class: "num probdensity", cell: (s) => el("span", { title: `${Number(s.localization_probdensity).toExponential(3)} sr⁻¹` }, GW.densityText(s.localization_probdensity)) },
      ],
      items,
      { class: "region-" + kind, rowAttrs: (s) => ({ "data-obj-id": s.id, "data-probdensity": s.localization_probdensity }) }
    ));
  }

  function renderTelescopes() {
    renderPlanLinks();
    const box = $("network-telescopes");
    const placed = telescopes.filter((t) => t.lat !== null && t.lon !== null && t.lat !== undefined);
    clear(box);
    if (!placed.length) {
      box.appendChild(el("div", { class: "empty" }, "No telescope with a site yet; add telescopes with their latitude and longitude (POST /api/telescope)."));
      return;
    }
    placed.sort((a, b) => GW.sunAltitude(a.lat, a.lon, now) - GW.sunAltitude(b.lat, b.lon, now));
    box.appendChild(table(
      [
        { label: "Telescope", cell: (t) => el("a", { href: "/telescope/" + t.id }, t.name) },
        { label: "Lat (°)", class: "num", cell: (t) => fmt(t.lat, 2) },
        { label: "Lon (°)", class: "num", cell: (t) => fmt(t.lon, 2) },
        { label: "Sun alt.", class: "num", cell: (t) => GW.sunAltitude(t.lat, t.lon, now).toFixed(1) + "°" },
        { label: "Now", cell: (t) => { const a = GW.sunAltitude(t.lat, t.lon, now); return el("span", { class: a < -12 ? "badge dark" : a < 0 ? "badge" : "badge warn" }, a < -12 ? "dark night" : a < 0 ? "twilight" : "day"); } },
        { label: "Localization alt.", class: "num region-altitude", cell: (t) => {
          const c = GWMaps.contourGeometry(contour).centre;
          if (!c) return "—";
          const a = GW.altitude(c[0], c[1], t.lat, t.lon, now);
          return el("span", { title: "altitude of the most probable position now", class: a > 0 ? "" : "muted" }, a.toFixed(0) + "°");
        } },
        page.planAvailable && chosenLocalization() ? { label: "Tonight's plan", cell: (t) => planLinks(t) } : null,
      ].filter(Boolean),
      placed,
      { class: "network-telescopes", rowAttrs: (t) => ({ "data-telescope-id": t.id }) }
    ));
  }

  /** The address of the network plan (the fields each telescope should observe tonight), or of one telescope's share. */
  function planHref(format, telescopeId) {
    return "/api/gcn_event/" + encodeURIComponent(page.dateobs) + "/network_plan" +
      query({ format, telescope_id: telescopeId, localization_name: locSelect.value || null });
  }

  /** CSV and JSON links to the telescope's share of the network plan (when it has an instrument with a field of view). */
  function planLinks(t) {
    const able = instruments.filter((i) => i.telescope_id === t.id && i.field_of_view);
    if (!able.length) return el("span", { class: "muted small" }, "no instrument with a field of view");
    return el("span", { class: "plan-links" },
      el("a", { href: planHref("csv", t.id), class: "plan-csv" }, "CSV"), " · ",
      el("a", { href: planHref("json", t.id), class: "plan-json" }, "JSON"));
  }

  /** Above the table: the whole network's plan, for the chosen localization. */
  function renderPlanLinks() {
    const box = $("network-plan");
    clear(box);
    if (!page.planAvailable || !chosenLocalization()) return;
    box.append("Tonight's plan for the whole network (each field given to one telescope; computing it may take a "
      + "minute): ", el("a", { href: planHref("csv", null), id: "network-plan-csv" }, "CSV"), " · ",
      el("a", { href: planHref("json", null), id: "network-plan-json" }, "JSON"),
      ". Each telescope's share is in the table's last column.");
  }

  async function loadNetwork() {
    $("network-time").textContent = fmtTime(now.toISOString());
    try {
      [telescopes, instruments] = await Promise.all([api("GET", "/api/telescope"), api("GET", "/api/instrument").catch(() => [])]);
    } catch (err) {
      showError($("network-telescopes"), err);
      return;
    }
    drawNetwork();
    renderTelescopes();
  }

  // -- start ------------------------------------------------------------------------------------------------------
  async function start() {
    drawSkymap();
    drawNetwork();
    loadNetwork();
    try {
      eventData = await api("GET", "/api/gcn_event/" + encodeURIComponent(page.dateobs));
    } catch (err) {
      showError($("gcn-properties"), err);
      clear($("gcn-notices"));
      return;
    }
    renderHeader(eventData);
    renderProperties(eventData);
    renderNotices(eventData);
    if (fillLocalizations(eventData).length) await showLocalization();
    else drawSkymap();
  }

  locSelect.addEventListener("change", () => { showLocalization(); renderTelescopes(); });
  cumprobSelect.addEventListener("change", showLocalization);
  // Night and day move: redraw the Earth every five minutes.
  setInterval(() => { now = new Date(); $("network-time").textContent = fmtTime(now.toISOString()); drawNetwork(); renderTelescopes(); }, 300000);
  start();
});
