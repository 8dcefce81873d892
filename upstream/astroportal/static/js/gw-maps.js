/* The maps of the GW event page, drawn in SVG with no library: the sky (Mollweide, equatorial), a close-up of a
 * small region (gnomonic), and the Earth with night and day and the network's telescopes. */
"use strict";

const GWMaps = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
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

  /**
   * The all-sky map into `skymap` (an <svg> of viewBox 0 0 840 440): graticule, the localization's contours and
   * its densest place, the sources/candidates of `items` ({sources: [...], candidates: [...]}), and `note` if given.
   */
  function drawSky(skymap, { contour, items, note }) {
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
    if (contour) drawContours(skymap, contour);
    drawPoints(skymap, items || {});
    if (note) skymap.appendChild(svg("text", { x: SKY.cx, y: SKY.cy, class: "sky-note", "text-anchor": "middle" }, note));
  }

  /** The features of a localization's GeoJSON contours, the widest level first. */
  function contourFeatures(contour) {
    const feats = contour && contour.type === "FeatureCollection" ? contour.features || [] : contour && contour.type === "Feature" ? [contour] : [];
    // The wider region first, so that the 50% line is drawn on top of the 90% one.
    return feats.slice().sort((a, b) => (GW.featureLevel(b) || 0) - (GW.featureLevel(a) || 0));
  }

  function drawContours(skymap, contour) {
    for (const feature of contourFeatures(contour)) {
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

  function drawPoints(skymap, regionItems) {
    for (const [kind, items] of Object.entries(regionItems)) {
      for (const s of items) {
        if (s.ra === null || s.dec === null || s.ra === undefined) continue;
        const [x, y] = skyXY(s.ra, s.dec);
        const dot = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3.5, class: kind === "sources" ? "sky-dot dot-source" : "sky-dot dot-candidate", "data-obj-id": s.id });
        dot.appendChild(svg("title", {}, `${s.id} (${kind === "sources" ? "source" : "candidate"}), ${GW.densityText(s.localization_probdensity)} deg⁻²`));
        skymap.appendChild(dot);
      }
    }
  }

  // -- the region up close (gnomonic, around the most probable position) ------------------------------------
  const ZOOM = { c: 220, half: 200, maxRadius: 40 };

  /** The contour lines' points and the centre of the map (the densest place, else the lines' mean). */
  function contourGeometry(contour) {
    let centre = null;
    const points = [];
    for (const f of contourFeatures(contour)) {
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

  /**
   * A close-up of the region into `zoom` (an <svg> of viewBox 0 0 440 440), gnomonic around its densest place,
   * with `items` on it. Returns false (drawing nothing, hiding `zoom`) when the region reaches further than
   * ZOOM.maxRadius from its centre.
   */
  function drawZoom(zoom, { contour, items }) {
    const regionItems = items || {};
    clear(zoom);
    const { centre, points } = contourGeometry(contour);
    const radius = centre && points.length ? Math.max(...points.map(([ra, dec]) => GW.separation(ra, dec, centre[0], centre[1]))) : Infinity;
    // A region spread over much of the sky is read on the all-sky map; a close-up would only distort it.
    const show = Number.isFinite(radius) && radius <= ZOOM.maxRadius;
    zoom.classList.toggle("hidden", !show);
    if (!show) return false;
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
    for (const feature of contourFeatures(contour)) {
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
        dot.appendChild(svg("title", {}, `${item.id}, ${GW.densityText(item.localization_probdensity)} deg⁻²`));
        g.appendChild(dot);
      }
    }
    // A scale bar one grid step long, and which way north and east are.
    const bar = s * Math.tan(step * Math.PI / 180);
    zoom.appendChild(svg("path", { d: `M${420 - bar} 24h${bar}`, class: "scale-bar" }));
    zoom.appendChild(svg("text", { x: 420, y: 16, class: "zoom-label", "text-anchor": "end" }, `${step}°`));
    zoom.appendChild(svg("text", { x: 424, y: 424, class: "zoom-label", "text-anchor": "end" }, "N ↑  E ←"));
    return true;
  }

  // -- the network on the Earth, with night and day now --------------------------------------------------------------

  function earthXY(lon, lat) {
    return [(GW.wrapTo(lon, -180) + 180) * 2, (90 - lat) * 2];
  }

  /**
   * The Earth into `netmap` (an <svg> of viewBox 0 0 720 360, equirectangular): night and dark night at `now`,
   * the terminator, the Sun, the localization where it is overhead at `now`, and the `telescopes` (lat, lon).
   */
  function drawEarth(netmap, { contour, telescopes, now }) {
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
    for (const feature of contourFeatures(contour)) {
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
    for (const t of telescopes || []) {
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

  return { contourFeatures, contourGeometry, drawSky, drawZoom, drawEarth };
})();
