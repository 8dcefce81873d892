/* Plots drawn with Plotly (served by the portal from the installed plotly package): light curves, airmass. */
"use strict";

const PortalPlots = (() => {
  // Colours close to the bands' own (blue for u/b, green for g/v, red for r, ...); anything else gets one
  // of the palette's colours in turn.
  const FILTER_COLORS = {
    ztfg: "#28a745", ztfr: "#d62728", ztfi: "#e6a700",
    sdssu: "#6f42c1", sdssg: "#2ca02c", sdssr: "#c0392b", sdssi: "#d4a017", sdssz: "#7f4f24",
    "ps1::g": "#3cb371", "ps1::r": "#e74c3c", "ps1::i": "#f1c40f", "ps1::z": "#8e5a2b", "ps1::y": "#5d4037", "ps1::w": "#7f8c8d",
    bessellux: "#6f42c1", bessellb: "#1f77b4", bessellv: "#17a589", bessellr: "#cb4335", besselli: "#b9770e",
    "standard::u": "#6f42c1", "standard::b": "#1f77b4", "standard::v": "#17a589", "standard::r": "#cb4335", "standard::i": "#b9770e",
    atlasc: "#17becf", atlaso: "#ff7f0e",
    "2massj": "#8c564b", "2massh": "#6d3b2f", "2massks": "#4a2820",
    lsstu: "#6f42c1", lsstg: "#2ca02c", lsstr: "#d62728", lssti: "#e6a700", lsstz: "#8c564b", lssty: "#5d4037",
    "uvot::u": "#7d3c98", "uvot::b": "#2e86c1", "uvot::v": "#138d75", "uvot::uvw1": "#9b59b6", "uvot::uvw2": "#af7ac5", "uvot::uvm2": "#c39bd3",
  };
  const PALETTE = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  // Above this many points WebGL draws far faster than SVG; below it SVG is crisper and each marker is in the DOM.
  const WEBGL_THRESHOLD = 1500;
  const MJD_UNIX_EPOCH = 40587;

  function colorFor(filter, used) {
    if (FILTER_COLORS[filter]) return FILTER_COLORS[filter];
    if (!used.has(filter)) used.set(filter, PALETTE[used.size % PALETTE.length]);
    return used.get(filter);
  }

  let webglOk = null;
  function webglAvailable() {
    if (webglOk === null) {
      try {
        const c = document.createElement("canvas");
        webglOk = !!(c.getContext("webgl") || c.getContext("experimental-webgl"));
      } catch (err) {
        webglOk = false;
      }
    }
    return webglOk;
  }

  /** WebGL for big light curves, unless this browser was told otherwise (localStorage "portal.plotRenderer"). */
  function rendererChoice(n) {
    let forced = null;
    try {
      forced = window.localStorage && localStorage.getItem("portal.plotRenderer");
    } catch (err) {
      forced = null;
    }
    if (forced === "svg") return false;
    if (forced === "webgl") return webglAvailable();
    return n > WEBGL_THRESHOLD && webglAvailable();
  }

  /** Plotly reads a subset of HTML in labels and hover text: user text goes in with its markup escaped. */
  function plotlyText(value) {
    return String(value === null || value === undefined ? "" : value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function mjdToDateString(mjd) {
    return new Date((mjd - MJD_UNIX_EPOCH) * 86400000).toISOString().slice(0, 19).replace("T", " ");
  }

  const LC_CONFIG = { responsive: true, displaylogo: false, scrollZoom: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  /**
   * Get WebGL ready in `div` while a big light curve is still on its way: the first WebGL plot in a page
   * spends most of its time creating the context and compiling shaders, and that can happen while waiting.
   * A few invisible points exercise the same shaders (markers and error bars) as the real plot.
   * Returns a promise; lightCurve() then only swaps the data in.
   */
  function prepareLightCurve(div, expectedPoints) {
    if (!rendererChoice(expectedPoints)) return Promise.resolve(false);
    const ghost = [0, 1].map((k) => ({
      type: "scattergl", mode: "markers", x: [0, 1], y: [0, 1], hoverinfo: "skip", showlegend: false,
      marker: { size: 7, opacity: 0, symbol: k ? "triangle-down" : "circle" },
      error_y: { type: "data", array: [0.1, 0.1], visible: true, thickness: 1, width: 0, color: "rgba(0,0,0,0)" },
    }));
    const layout = {
      margin: { l: 60, r: 20, t: 66, b: 48 },
      xaxis: { title: { text: "MJD" }, showticklabels: false },
      yaxis: { title: { text: "AB magnitude" }, showticklabels: false },
      annotations: [{ text: "Loading the light curve…", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { color: "#5d6678" } }],
    };
    return Plotly.newPlot(div, ghost, layout, LC_CONFIG).then(() => {
      div.dataset.warmed = "true";
      return true;
    });
  }

  /**
   * Draw a light curve: one colour per filter, detections with error bars, upper limits as downward
   * triangles, magnitudes increasing downwards, MJD below and the calendar date (UTC) above.
   * Resolves once drawn; the container's data-points attribute then holds the number of markers plotted.
   */
  async function lightCurve(div, points, opts) {
    opts = opts || {};
    const useGL = opts.webgl !== undefined ? opts.webgl : rendererChoice(points.length);
    const type = useGL ? "scattergl" : "scatter";
    const byFilter = new Map();
    for (const p of points) {
      if (!byFilter.has(p.filter)) byFilter.set(p.filter, { det: [], lim: [] });
      const entry = byFilter.get(p.filter);
      if (p.mag !== null && p.mag !== undefined) entry.det.push(p);
      else if (p.limiting_mag !== null && p.limiting_mag !== undefined) entry.lim.push(p);
    }
    const used = new Map();
    const traces = [];
    let drawn = 0;
    // Instrument names and origins repeat across points: escape each distinct one once.
    const escaped = new Map();
    const text = (v) => {
      if (!escaped.has(v)) escaped.set(v, plotlyText(v));
      return escaped.get(v);
    };
    for (const filter of [...byFilter.keys()].sort()) {
      const { det, lim } = byFilter.get(filter);
      const color = colorFor(filter, used);
      if (det.length) {
        traces.push({
          type, mode: "markers", name: plotlyText(filter), legendgroup: filter,
          x: det.map((p) => p.mjd), y: det.map((p) => p.mag),
          error_y: { type: "data", array: det.map((p) => p.magerr || 0), visible: true, thickness: 1, width: 0, color },
          marker: { color, size: 7, line: { width: 0.5, color: "#ffffff" } },
          customdata: det.map((p) => [mjdToDateString(p.mjd), p.magerr === null || p.magerr === undefined ? "" : p.magerr.toFixed(3), text(p.instrument_name), text(p.origin)]),
          hovertemplate: "<b>%{fullData.name}</b> %{y:.3f} ± %{customdata[1]}<br>MJD %{x:.5f}<br>%{customdata[0]} UTC<br>%{customdata[2]} %{customdata[3]}<extra></extra>",
        });
        drawn += det.length;
      }
      if (lim.length) {
        traces.push({
          type, mode: "markers", name: plotlyText(filter) + " limit", legendgroup: filter, showlegend: !det.length,
          x: lim.map((p) => p.mjd), y: lim.map((p) => p.limiting_mag),
          marker: { color, size: 8, symbol: "triangle-down", opacity: 0.55 },
          customdata: lim.map((p) => [mjdToDateString(p.mjd), text(p.instrument_name), text(p.origin)]),
          hovertemplate: "<b>" + plotlyText(filter) + "</b> upper limit &gt; %{y:.2f}<br>MJD %{x:.5f}<br>%{customdata[0]} UTC<br>%{customdata[1]} %{customdata[2]}<extra></extra>",
        });
        drawn += lim.length;
      }
    }
    if (!traces.length) {
      div.dataset.points = "0";
      return null;
    }
    // Both x ranges are set before drawing, so that the date axis needs no second drawing pass.
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of points) {
      if (p.mjd < lo) lo = p.mjd;
      if (p.mjd > hi) hi = p.mjd;
    }
    const pad = Math.max((hi - lo) * 0.04, 0.5);
    const xRange = [lo - pad, hi + pad];
    const layout = {
      margin: { l: 60, r: 20, t: 66, b: 48 },
      hovermode: "closest",
      showlegend: true,
      legend: { orientation: "h", y: -0.18 },
      xaxis: { title: { text: "MJD" }, range: xRange, tickformat: ".5~f", exponentformat: "none", zeroline: false, showgrid: true, gridcolor: "#eef0f5" },
      // The date axis follows the MJD axis (it cannot be dragged itself).
      xaxis2: { type: "date", overlaying: "x", side: "top", fixedrange: true, showgrid: false, range: xRange.map(mjdToDateString) },
      yaxis: { title: { text: "AB magnitude" }, autorange: "reversed", zeroline: false, gridcolor: "#eef0f5" },
      plot_bgcolor: "#ffffff",
      paper_bgcolor: "#ffffff",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 },
    };
    // An invisible trace on the date axis makes Plotly draw it.
    traces.push({ type: "scatter", x: [], y: [], xaxis: "x2", yaxis: "y", showlegend: false, hoverinfo: "skip" });
    const warmed = div.dataset.warmed === "true" && useGL;
    if (div.dataset.warmed === "true" && !useGL) Plotly.purge(div);
    await (warmed ? Plotly.react : Plotly.newPlot)(div, traces, layout, LC_CONFIG);
    div.on("plotly_relayout", (ev) => {
      if (!ev || (ev["xaxis.range[0]"] === undefined && ev["xaxis.range"] === undefined && ev["xaxis.autorange"] === undefined)) return;
      const r = div.layout.xaxis.range;
      if (r) Plotly.relayout(div, { "xaxis2.range": [mjdToDateString(r[0]), mjdToDateString(r[1])] });
    });
    div.dataset.points = String(drawn);
    div.dataset.renderer = type;
    return div;
  }

  const BAND_SHADES = {
    day: "rgba(255, 214, 102, 0.22)",
    civil: "rgba(120, 144, 200, 0.22)",
    nautical: "rgba(70, 90, 160, 0.28)",
    astronomical: "rgba(40, 55, 120, 0.34)",
    night: "rgba(15, 22, 60, 0.32)",
  };
  const BAND_LABELS = {
    day: "day", civil: "civil twilight", nautical: "nautical twilight", astronomical: "astronomical twilight", night: "night",
  };

  function plotTime(iso) {
    // Plotly reads "YYYY-MM-DD HH:MM:SS" as-is; the axis is labelled UTC.
    return iso.replace("T", " ").replace("Z", "");
  }

  /** Draw a target's airmass through tonight with the twilight bands shaded (curve from /api/internal/airmass). */
  async function airmass(div, curve, opts) {
    opts = opts || {};
    const x = curve.times.map(plotTime);
    const shapes = (curve.twilight || []).map((band) => ({
      type: "rect", xref: "x", yref: "paper", x0: plotTime(band.start), x1: plotTime(band.end), y0: 0, y1: 1,
      fillcolor: BAND_SHADES[band.name] || "rgba(0,0,0,0)", line: { width: 0 }, layer: "below",
    }));
    const nowShape = curve.time && {
      type: "line", xref: "x", yref: "paper", x0: plotTime(curve.time), x1: plotTime(curve.time), y0: 0, y1: 1,
      line: { color: "#c0392b", width: 1.5, dash: "dot" },
    };
    if (nowShape && curve.time >= curve.start && curve.time <= curve.end) shapes.push(nowShape);
    const hoverAlt = curve.altitude.map((a, i) => [a.toFixed(1), curve.sun_altitude[i].toFixed(1)]);
    const traces = [
      {
        type: "scatter", mode: "lines", name: "airmass", x, y: curve.airmass, line: { color: "#1f4fd1", width: 2.5 },
        customdata: hoverAlt, connectgaps: false,
        hovertemplate: "%{x} UTC<br>airmass %{y:.2f}<br>altitude %{customdata[0]}°<br>sun %{customdata[1]}°<extra></extra>",
      },
    ];
    // Legend entries for the shades (Plotly shapes have none of their own).
    const seen = new Set();
    for (const band of curve.twilight || []) {
      if (seen.has(band.name)) continue;
      seen.add(band.name);
      traces.push({
        type: "scatter", mode: "markers", x: [null], y: [null], name: BAND_LABELS[band.name] || band.name,
        marker: { symbol: "square", size: 12, color: BAND_SHADES[band.name] }, hoverinfo: "skip",
      });
    }
    const layout = {
      margin: { l: 60, r: 20, t: 20, b: 50 },
      hovermode: "x unified",
      xaxis: { type: "date", title: { text: "Time (UTC)" }, range: [x[0], x[x.length - 1]] },
      yaxis: { title: { text: "Airmass" }, range: [opts.maxAirmass || 3, 1], zeroline: false },
      shapes,
      legend: { orientation: "h", y: -0.25 },
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 },
    };
    await Plotly.newPlot(div, traces, layout, { responsive: true, displaylogo: false });
    div.dataset.bands = String((curve.twilight || []).length);
    return div;
  }

  return { lightCurve, prepareLightCurve, airmass, colorFor, webglAvailable, WEBGL_THRESHOLD };
})();
