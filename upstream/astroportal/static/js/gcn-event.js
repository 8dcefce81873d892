/* One GW event: properties, notice timeline, the sky map with the chosen localization's contours and the
 * sources/candidates in its credible region (ranked by probability density), and the network's telescopes on
 * a map of the Earth with night and day now. */
"use strict";

Portal.ready(() => {
  const { el, api, query, table, fmt, fmtTime, clear, showError } = Portal;
  const page = Portal.pageData();
  const NS = "http://www.w3.org/2000/svg";
  const SR_PER_DEG2 = (Math.PI / 180) ** 2;
  const REGION_LIMIT = 100; // rows asked of each list: the densest first

  const $ = (id) => document.getElementById(id);
  const skymap = $("gw-skymap");
  const netmap = $("network-map");
  const locSelect = $("localization-select");
  const cumprobSelect = $("cumprob-select");

  let eventData = null;
  let contour = null; // the chosen localization's GeoJSON
  let regionItems = { sources: [], candidates: [] };

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
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
        { label: "Prob. density (deg⁻²)", class: "num probdensity", cell: (s) => el("span", { title: `${Number(s.localization_probdensity).toExponential(3)} sr⁻¹` }, densityText(s.localization_probdensity)) },
      ],
      items,
      { class: "region-" + kind, rowAttrs: (s) => ({ "data-obj-id": s.id, "data-probdensity": s.localization_probdensity }) }
    ));
  }

  /** A density per steradian shown per square degree, to three significant digits. */
  function densityText(perSr) {
    const v = Number(perSr) * SR_PER_DEG2;
    if (!Number.isFinite(v)) return "—";
    if (v === 0) return "0";
    return v >= 0.01 ? v.toPrecision(3) : v.toExponential(2);
  }

  // -- the sky map (Mollweide, equatorial) -----------------------------------------------------------------------
  const SKY = { cx: 420, cy: 220, s: 145 };

  function skyXY(ra, dec) {
    const [x, y] = GW.mollweide(GW.wrapTo(ra, 0), dec);
    return [SKY.cx + SKY.s * x, SKY.cy - SKY.s * y];
  }

  function skyPath(points) {
    return points.map(([ra, dec], i) => { const [x, y] = skyXY(ra, dec); return (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1); }).join("");
  }

  function drawSkymap() {
    clear(skymap);
    const rx = SKY.s * 2 * Math.SQRT2;
    const ry = SKY.s * Math.SQRT2;
    skymap.appendChild(svg("ellipse", { cx: SKY.cx, cy: SKY.cy, rx, ry, class: "sky-bg" }));
    // Graticule: meridians every 2 h, parallels every 30°.
    for (let ra = 0; ra <= 360; ra += 30) {
      const pts = [];
      for (let dec = -90; dec <= 90; dec += 3) pts.push([ra === 360 ? 359.999 : ra, dec]);
      skymap.appendChild(svg("path", { d: skyPath(pts), class: "sky-grid" }));
    }
    for (let dec = -60; dec <= 60; dec += 30) {
      const pts = [];
      for (let ra = 0.001; ra <= 359.999; ra += 3) pts.push([ra, dec]);
      pts.push([359.999, dec]);
      skymap.appendChild(svg("path", { d: skyPath(pts), class: dec === 0 ? "sky-grid equator" : "sky-grid" }));
      const [x, y] = skyXY(359.999, dec);
      skymap.appendChild(svg("text", { x: x - 6, y: y + 4, class: "sky-label", "text-anchor": "end" }, (dec > 0 ? "+" : "") + dec + "°"));
    }
    for (let h = 2; h < 24; h += 2) {
      const [x, y] = skyXY(h * 15, 0);
      skymap.appendChild(svg("text", { x: x + 2, y: y - 3, class: "sky-label" }, h + "h"));
    }
    if (contour) drawContours();
    drawPoints();
    if (eventData && !chosenLocalization()) {
      skymap.appendChild(svg("text", { x: SKY.cx, y: SKY.cy, class: "sky-note", "text-anchor": "middle" }, "no localization for this event yet"));
    }
  }

  function contourFeatures() {
    const feats = contour && contour.type === "FeatureCollection" ? contour.features || [] : contour && contour.type === "Feature" ? [contour] : [];
    // The wider region first, so that the 50% line is drawn on top of the 90% one.
    return feats.slice().sort((a, b) => (GW.featureLevel(b) || 0) - (GW.featureLevel(a) || 0));
  }

  function drawContours() {
    for (const feature of contourFeatures()) {
      if (feature.geometry && feature.geometry.type === "Point") {
        // The densest place of the map: a small cross.
        const [x, y] = skyXY(feature.geometry.coordinates[0], feature.geometry.coordinates[1]);
        const mark = svg("path", { d: `M${x - 5} ${y}h10M${x} ${y - 5}v10`, class: "sky-centre" });
        mark.appendChild(svg("title", {}, "the most probable position"));
        skymap.appendChild(mark);
        continue;
      }
      const level = GW.featureLevel(feature);
      const cls = "contour " + (level !== null && level <= 50 ? "contour-50" : "contour-90");
      const d = GW.geometryLines(feature.geometry)
        .flatMap((line) => GW.splitAtWrap(line, 0))
        .map(skyPath)
        .join("");
      if (d) skymap.appendChild(svg("path", { d, class: cls, "data-level": level === null ? "" : level }));
    }
  }

  function drawPoints() {
    for (const [kind, items] of Object.entries(regionItems)) {
      for (const s of items) {
        if (s.ra === null || s.dec === null || s.ra === undefined) continue;
        const [x, y] = skyXY(s.ra, s.dec);
        const dot = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3.5, class: kind === "sources" ? "sky-dot dot-source" : "sky-dot dot-candidate", "data-obj-id": s.id });
        dot.appendChild(svg("title", {}, `${s.id} (${kind === "sources" ? "source" : "candidate"}), ${densityText(s.localization_probdensity)} deg⁻²`));
        skymap.appendChild(dot);
      }
    }
  }

  // -- the region up close (gnomonic, around the most probable position) ------------------------------------
  const zoom = $("gw-zoom");
  const ZOOM = { c: 220, half: 200, maxRadius: 40 };

  /** The contour lines' points and the centre of the map (the densest place, else the lines' mean). */
  function contourGeometry() {
    let centre = null;
    const points = [];
    for (const f of contourFeatures()) {
      if (f.geometry && f.geometry.type === "Point") centre = f.geometry.coordinates;
      else for (const line of GW.geometryLines(f.geometry)) points.push(...line);
    }
    if (!centre && points.length) {
      // A mean of unit vectors, so that a region astride RA 0 is centred where it is.
      let [x, y, z] = [0, 0, 0];
      for (const [ra, dec] of points) {
        const c = Math.cos(dec * Math.PI / 180);
        x += c * Math.cos(ra * Math.PI / 180); y += c * Math.sin(ra * Math.PI / 180); z += Math.sin(dec * Math.PI / 180);
      }
      centre = [GW.wrapTo(Math.atan2(y, x) * 180 / Math.PI, 0), Math.atan2(z, Math.hypot(x, y)) * 180 / Math.PI];
    }
    return { centre, points };
  }

  function drawZoom() {
    clear(zoom);
    const { centre, points } = contourGeometry();
    const radius = centre && points.length ? Math.max(...points.map(([ra, dec]) => GW.separation(ra, dec, centre[0], centre[1]))) : Infinity;
    // A region spread over much of the sky is read on the all-sky map; a close-up would only distort it.
    const show = Number.isFinite(radius) && radius <= ZOOM.maxRadius;
    zoom.classList.toggle("hidden", !show);
    skymap.classList.toggle("alone", !show);
    if (!show) return;
    const [ra0, dec0] = centre;
    const extent = Math.max(Math.tan(Math.max(radius, 0.05) * Math.PI / 180) * 1.2, 1e-4);
    const s = ZOOM.half / extent;
    const xy = (ra, dec) => { const p = GW.gnomonic(ra, dec, ra0, dec0); return p && [ZOOM.c - s * p[0], ZOOM.c - s * p[1]]; };
    const path = (pts) => {
      let d = "";
      let pen = false;
      for (const [ra, dec] of pts) {
        const p = xy(ra, dec);
        if (!p || Math.abs(p[0] - ZOOM.c) > 4 * ZOOM.half || Math.abs(p[1] - ZOOM.c) > 4 * ZOOM.half) { pen = false; continue; }
        d += (pen ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1);
        pen = true;
      }
      return d;
    };
    const defs = svg("defs", {});
    const clip = svg("clipPath", { id: "zoom-clip" });
    clip.appendChild(svg("rect", { x: 0, y: 0, width: 440, height: 440 }));
    defs.appendChild(clip);
    zoom.appendChild(defs);
    zoom.appendChild(svg("rect", { x: 0, y: 0, width: 440, height: 440, rx: 8, class: "sky-bg" }));
    const g = svg("g", { "clip-path": "url(#zoom-clip)" });
    zoom.appendChild(g);
    // A grid of RA and Dec lines at a round step, two to six lines across.
    const widthDeg = Math.atan(extent) * 180 / Math.PI;
    const step = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20].find((v) => widthDeg / v <= 3) || 20;
    const raSpan = Math.min(180, (widthDeg * 1.5) / Math.max(Math.cos(Math.min(89, Math.abs(dec0) + widthDeg) * Math.PI / 180), 0.02));
    const decLo = Math.max(-90, dec0 - widthDeg * 1.5);
    const decHi = Math.min(90, dec0 + widthDeg * 1.5);
    const digits = step < 1 ? (step < 0.1 ? 2 : 1) : 0;
    for (let dec = Math.ceil(decLo / step) * step; dec <= decHi; dec += step) {
      const pts = [];
      for (let i = 0; i <= 60; i++) pts.push([ra0 - raSpan + (2 * raSpan * i) / 60, dec]);
      g.appendChild(svg("path", { d: path(pts), class: "sky-grid" }));
      const p = xy(ra0, dec);
      if (p && p[1] > 12 && p[1] < 428) g.appendChild(svg("text", { x: 4, y: p[1] - 3, class: "zoom-label" }, (dec >= 0 ? "+" : "") + dec.toFixed(digits) + "°"));
    }
    const raStep = step / Math.max(Math.cos(dec0 * Math.PI / 180), 0.2) > 30 ? 30 : step;
    for (let ra = Math.ceil((ra0 - raSpan) / raStep) * raStep; ra <= ra0 + raSpan; ra += raStep) {
      const pts = [];
      for (let i = 0; i <= 60; i++) pts.push([ra, decLo + ((decHi - decLo) * i) / 60]);
      g.appendChild(svg("path", { d: path(pts), class: "sky-grid" }));
      const p = xy(ra, dec0);
      if (p && p[0] > 30 && p[0] < 410) g.appendChild(svg("text", { x: p[0] + 3, y: 434, class: "zoom-label" }, GW.wrapTo(ra, 0).toFixed(digits) + "°"));
    }
    for (const feature of contourFeatures()) {
      if (feature.geometry && feature.geometry.type === "Point") continue;
      const level = GW.featureLevel(feature);
      const d = GW.geometryLines(feature.geometry).map(path).join("");
      if (d) g.appendChild(svg("path", { d, class: "contour " + (level !== null && level <= 50 ? "contour-50" : "contour-90"), "data-level": level === null ? "" : level }));
    }
    const c = xy(ra0, dec0);
    g.appendChild(svg("path", { d: `M${c[0] - 6} ${c[1]}h12M${c[0]} ${c[1] - 6}v12`, class: "sky-centre" }));
    for (const [kind, items] of Object.entries(regionItems)) {
      for (const item of items) {
        const p = item.ra === null || item.ra === undefined ? null : xy(item.ra, item.dec);
        if (!p) continue;
        const dot = svg("circle", { cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 4, class: kind === "sources" ? "sky-dot dot-source" : "sky-dot dot-candidate", "data-obj-id": item.id });
        dot.appendChild(svg("title", {}, `${item.id}, ${densityText(item.localization_probdensity)} deg⁻²`));
        g.appendChild(dot);
      }
    }
    // A scale bar one grid step long, and which way north and east are.
    const bar = s * Math.tan(step * Math.PI / 180);
    zoom.appendChild(svg("path", { d: `M${420 - bar} 24h${bar}`, class: "scale-bar" }));
    zoom.appendChild(svg("text", { x: 420, y: 16, class: "zoom-label", "text-anchor": "end" }, `${step}°`));
    zoom.appendChild(svg("text", { x: 424, y: 424, class: "zoom-label", "text-anchor": "end" }, "N ↑  E ←"));
  }

  // -- the network on the Earth, with night and day now --------------------------------------------------------------
  let telescopes = [];
  let instruments = [];
  let now = new Date();

  function earthXY(lon, lat) {
    return [(GW.wrapTo(lon, -180) + 180) * 2, (90 - lat) * 2];
  }

  function drawNetwork() {
    clear(netmap);
    netmap.appendChild(svg("rect", { x: 0, y: 0, width: 720, height: 360, class: "earth-bg" }));
    const sun = GW.subsolarPoint(now);
    // Night: per 1° column of longitude, the runs of latitude (in 0.25° steps) where the Sun is below 0° and -12°.
    const STEP = 0.25;
    const lats = [];
    for (let lat = 90 - STEP / 2; lat > -90; lat -= STEP) lats.push(lat);
    const sinLat = lats.map((l) => Math.sin(l * Math.PI / 180));
    const cosLat = lats.map((l) => Math.cos(l * Math.PI / 180));
    const sinDec = Math.sin(sun.lat * Math.PI / 180);
    const cosDec = Math.cos(sun.lat * Math.PI / 180);
    for (const [limit, cls] of [[0, "night"], [-12, "night dark"]]) {
      const sinLimit = Math.sin(limit * Math.PI / 180);
      let d = "";
      for (let lon = -180; lon < 180; lon += 1) {
        const cosH = Math.cos((lon + 0.5 - sun.lon) * Math.PI / 180);
        let start = null;
        for (let i = 0; i <= lats.length; i++) {
          const below = i < lats.length && sinLat[i] * sinDec + cosLat[i] * cosDec * cosH < sinLimit;
          if (below && start === null) start = i;
          if (!below && start !== null) {
            d += `M${(lon + 180) * 2} ${(start * STEP * 2).toFixed(1)}h2V${(i * STEP * 2).toFixed(1)}h-2z`;
            start = null;
          }
        }
      }
      netmap.appendChild(svg("path", { d, class: cls, "shape-rendering": "crispEdges" }));
    }
    // The terminator (the Sun on the horizon): tan(lat) = -cos(H) / tan(dec_sun).
    const tpts = [];
    for (let lon = -180; lon <= 180; lon += 2) {
      const h = (lon - sun.lon) * Math.PI / 180;
      const dec = Math.abs(sun.lat) < 1e-6 ? 1e-6 : sun.lat;
      tpts.push(earthXY(lon === 180 ? 179.999 : lon, Math.atan(-Math.cos(h) / Math.tan(dec * Math.PI / 180)) * 180 / Math.PI));
    }
    netmap.appendChild(svg("path", { d: tpts.map(([x, y], i) => (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1)).join(""), class: "terminator" }));
    for (let lon = -120; lon <= 120; lon += 60) netmap.appendChild(svg("line", { x1: (lon + 180) * 2, y1: 0, x2: (lon + 180) * 2, y2: 360, class: "earth-grid" }));
    for (let lat = -60; lat <= 60; lat += 30) netmap.appendChild(svg("line", { x1: 0, y1: (90 - lat) * 2, x2: 720, y2: (90 - lat) * 2, class: "earth-grid" }));
    for (let lon = -120; lon <= 120; lon += 60) netmap.appendChild(svg("text", { x: (lon + 180) * 2 + 3, y: 354, class: "earth-label" }, (lon > 0 ? "+" : "") + lon + "°"));
    const [sx, sy] = earthXY(sun.lon, sun.lat);
    netmap.appendChild(svg("circle", { cx: sx, cy: sy, r: 7, class: "sun" }, undefined)).appendChild(svg("title", {}, "the Sun is overhead here"));
    // The localization, drawn where it is at the zenith now.
    for (const feature of contourFeatures()) {
      if (feature.geometry && feature.geometry.type === "Point") {
        // A small region is a speck at this scale: ring where its densest place is overhead.
        const p = GW.zenithPoint(feature.geometry.coordinates[0], feature.geometry.coordinates[1], now);
        const [x, y] = earthXY(p.lon, p.lat);
        const ring = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 9, class: "zenith-ring" });
        ring.appendChild(svg("title", {}, "the localization's most probable position is overhead here now"));
        netmap.appendChild(ring);
        continue;
      }
      const level = GW.featureLevel(feature);
      const d = GW.geometryLines(feature.geometry)
        .map((line) => line.map(([ra, dec]) => { const p = GW.zenithPoint(ra, dec, now); return [p.lon, p.lat]; }))
        .flatMap((line) => GW.splitAtWrap(line, -180))
        .map((line) => line.map(([lon, lat], i) => { const [x, y] = earthXY(lon, lat); return (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1); }).join(""))
        .join("");
      if (d) netmap.appendChild(svg("path", { d, class: "contour " + (level !== null && level <= 50 ? "contour-50" : "contour-90") }));
    }
    for (const t of telescopes) {
      if (t.lat === null || t.lon === null || t.lat === undefined) continue;
      const [x, y] = earthXY(t.lon, t.lat);
      const alt = GW.sunAltitude(t.lat, t.lon, now);
      const g = svg("g", { class: "telescope-mark" + (alt < -12 ? " dark" : alt < 0 ? " twilight" : " day"), "data-telescope-id": t.id });
      g.appendChild(svg("circle", { cx: x, cy: y, r: 4.5 }));
      g.appendChild(svg("text", { x: x + 6, y: y - 5, class: "telescope-label" }, t.nickname || t.name));
      g.appendChild(svg("title", {}, `${t.name}: Sun at ${alt.toFixed(1)}°`));
      netmap.appendChild(g);
    }
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
          const c = contourGeometry().centre;
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
