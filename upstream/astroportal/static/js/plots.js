/* Plots drawn with Plotly (served by the portal from the installed plotly package): light curves, airmass. */
"use strict";

const PortalPlots = (() => {
  // Colours close to the bands' own (purple for u, blue for b, green for g, red for r, ...). Filters of different
  // systems in the same band (ztfg, sdssg, ps1::g) get different shades of that colour and different markers.
  const BAND_COLORS = {
    u: "#6f42c1", b: "#1f77b4", g: "#2ca02c", v: "#17a589", r: "#d62728", i: "#e6a700", z: "#8c564b", y: "#5d4037",
    w: "#7f8c8d", open: "#7f8c8d", j: "#a0522d", h: "#6d3b2f", ks: "#4a2820", c: "#17becf", o: "#ff7f0e",
    uvw1: "#9b59b6", uvw2: "#af7ac5", uvm2: "#c39bd3",
  };
  // A marker per photometric system (detections; upper limits stay downward triangles).
  const SYSTEMS = [
    [/^ztf/, "circle"], [/^sdss/, "square"], [/^ps1::/, "diamond"], [/^(bessell|standard::)/, "pentagon"],
    [/^atlas/, "hexagon"], [/^2mass/, "star"], [/^lsst/, "cross"], [/^uvot::/, "x"],
  ];
  const SYSTEM_PREFIX = /^(ztf|sdss|ps1::|bessell|standard::|atlas|2mass|lsst|uvot::)/;
  const PALETTE = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  // Above this many points WebGL draws far faster than SVG; below it SVG is crisper and each marker is in the DOM.
  const WEBGL_THRESHOLD = 1500;
  const MJD_UNIX_EPOCH = 40587;
  const DAY_MS = 86400000;
  // The dates a light curve can show: MJD 0 (1858-11-17) to MJD 100000 (2132-09-01). A stored point outside
  // (a typing error such as mjd 1e30) is listed under the plot instead of stretching or breaking it.
  const PLOTTABLE_MJD = [0, 100000];

  /** The band of a filter name ("g" for ztfg, sdssg and ps1::g), or null for a name of no known system. */
  function bandOf(filter) {
    const m = SYSTEM_PREFIX.exec(filter);
    if (!m) return null;
    const band = filter.slice(m[0].length).replace(/^x$/, "").toLowerCase();
    return band === "ux" ? "u" : band;
  }

  function systemSymbol(filter) {
    for (const [re, symbol] of SYSTEMS) if (re.test(filter)) return symbol;
    return "circle-open";
  }

  /** `hex` mixed towards black (k odd) or white (k even), more for larger k: shade 0 is the colour itself. */
  function shade(hex, k) {
    if (!k) return hex;
    const amount = Math.min(0.25 * Math.ceil(k / 2), 0.6);
    const target = k % 2 ? 0 : 255;
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    return "#" + rgb.map((c) => Math.round(c + (target - c) * amount).toString(16).padStart(2, "0")).join("");
  }

  /** One colour per filter of a plot: the band's colour, shaded for each further system in that band. */
  function filterColors(filters) {
    const colors = new Map();
    const perBand = new Map();
    let other = 0;
    for (const f of filters) {
      const band = bandOf(f);
      if (band !== null && BAND_COLORS[band]) {
        const k = perBand.get(band) || 0;
        perBand.set(band, k + 1);
        colors.set(f, shade(BAND_COLORS[band], k));
      } else {
        colors.set(f, PALETTE[other++ % PALETTE.length]);
      }
    }
    return colors;
  }

  function colorFor(filter) {
    return filterColors([filter]).get(filter);
  }

  function plottable(mjd) {
    return typeof mjd === "number" && mjd >= PLOTTABLE_MJD[0] && mjd <= PLOTTABLE_MJD[1];
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
    const d = new Date((mjd - MJD_UNIX_EPOCH) * DAY_MS);
    if (!Number.isFinite(d.getTime())) return "(no such date)";
    return d.toISOString().slice(0, 19).replace("T", " ");
  }

  // -- the calendar axis above the MJD axis ---------------------------------------------------------------------
  // It is a second linear axis on the same MJD range, whose ticks are put where calendar boundaries fall and
  // labelled with their UTC dates. A whole MJD is exactly a midnight UTC, so a day's tick is exactly over its
  // MJD (Plotly's own date axis, laid over the MJD axis, put its ticks seconds before midnight and so labelled
  // them with the day before).
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const SUBDAY_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720].map((minutes) => minutes / 1440);
  const DAY_STEPS = [1, 2, 7, 14];
  const MONTH_STEPS = [1, 2, 3, 6];
  const DATE_LIMITS = [-678575, 2973483]; // 0001-01-01 .. 9999-12-31: the dates a label can be written for

  function utcOf(mjd) {
    return new Date(Math.round((mjd - MJD_UNIX_EPOCH) * DAY_MS / 60000) * 60000);
  }

  function mjdOf(year, month) {
    const d = new Date(Date.UTC(2000, month, 1));
    d.setUTCFullYear(year); // Date.UTC reads years 0-99 as 1900-1999
    return d.getTime() / DAY_MS + MJD_UNIX_EPOCH;
  }

  const pad2 = (n) => String(n).padStart(2, "0");

  /** Tick positions (MJD) and labels for the calendar axis over [lo, hi], at most about `maxTicks` of them. */
  function dateTicks(lo, hi, maxTicks) {
    const vals = [];
    const text = [];
    lo = Math.max(lo, DATE_LIMITS[0]);
    hi = Math.min(hi, DATE_LIMITS[1]);
    const span = hi - lo;
    if (!(span > 0)) return { vals, text };
    maxTicks = Math.max(2, maxTicks);
    const fixed = SUBDAY_STEPS.concat(DAY_STEPS).find((s) => span / s <= maxTicks);
    if (fixed !== undefined) {
      let lastDay = null;
      for (let k = Math.ceil(lo / fixed - 1e-9); k * fixed <= hi + 1e-9; k++) {
        const v = k * fixed;
        const d = utcOf(v);
        const day = `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
        let label;
        if (fixed < 1) {
          const time = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
          label = day !== lastDay ? `${day}<br>${time}` : time;
        } else {
          label = lastDay === null || (d.getUTCMonth() === 0 && d.getUTCDate() <= fixed) ? `${day}<br>${d.getUTCFullYear()}` : day;
        }
        lastDay = day;
        vals.push(v);
        text.push(label);
      }
      return { vals, text };
    }
    const first = utcOf(lo);
    const monthStep = MONTH_STEPS.find((s) => span / (30.44 * s) <= maxTicks);
    if (monthStep !== undefined) {
      let y = first.getUTCFullYear();
      let m = first.getUTCMonth();
      for (;;) {
        const v = mjdOf(y, m);
        if (v > hi) break;
        if (v >= lo && m % monthStep === 0) {
          text.push(!vals.length || m === 0 ? `${MONTHS[m]}<br>${y}` : MONTHS[m]);
          vals.push(v);
        }
        m += 1;
        if (m === 12) {
          m = 0;
          y += 1;
        }
      }
      return { vals, text };
    }
    let yearStep = 1; // then 2, 5, 10, 20, 50, ...
    for (let k = 1; span / (365.25 * yearStep) > maxTicks; k++) yearStep = [1, 2, 5][k % 3] * 10 ** Math.floor(k / 3);
    const lastYear = utcOf(hi).getUTCFullYear();
    for (let y = Math.ceil(first.getUTCFullYear() / yearStep) * yearStep; y <= lastYear; y += yearStep) {
      const v = mjdOf(y, 0);
      if (v >= lo && v <= hi) {
        vals.push(v);
        text.push(String(y));
      }
    }
    return { vals, text };
  }

  /** The calendar axis's layout for the MJD range `range` in a plot `width` pixels wide. */
  function dateAxis(range, width) {
    const ticks = dateTicks(range[0], range[1], Math.floor((width || 800) / 90));
    return { range: range.slice(), tickvals: ticks.vals, ticktext: ticks.text };
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
    // Points whose date cannot be drawn are set aside (and counted in data-skipped), never allowed to stop the plot.
    const skipped = [];
    const usable = [];
    for (const p of points) (plottable(p.mjd) ? usable : skipped).push(p);
    div.dataset.skipped = String(skipped.length);
    points = usable;
    const useGL = opts.webgl !== undefined ? opts.webgl : rendererChoice(points.length);
    const type = useGL ? "scattergl" : "scatter";
    const byFilter = new Map();
    for (const p of points) {
      if (!byFilter.has(p.filter)) byFilter.set(p.filter, { det: [], lim: [] });
      const entry = byFilter.get(p.filter);
      if (Number.isFinite(p.mag)) entry.det.push(p);
      else if (Number.isFinite(p.limiting_mag)) entry.lim.push(p);
    }
    const filters = [...byFilter.keys()].sort();
    const colors = filterColors(filters);
    const traces = [];
    let drawn = 0;
    // Instrument names and origins repeat across points: escape each distinct one once.
    const escaped = new Map();
    const text = (v) => {
      if (!escaped.has(v)) escaped.set(v, plotlyText(v));
      return escaped.get(v);
    };
    for (const filter of filters) {
      const { det, lim } = byFilter.get(filter);
      const color = colors.get(filter);
      if (det.length) {
        traces.push({
          type, mode: "markers", name: plotlyText(filter), legendgroup: filter,
          x: det.map((p) => p.mjd), y: det.map((p) => p.mag),
          error_y: { type: "data", array: det.map((p) => (Number.isFinite(p.magerr) ? p.magerr : 0)), visible: true, thickness: 1, width: 0, color },
          marker: { color, size: 7, symbol: systemSymbol(filter), line: { width: 0.5, color: "#ffffff" } },
          customdata: det.map((p) => [mjdToDateString(p.mjd), Number.isFinite(p.magerr) ? p.magerr.toFixed(3) : "", text(p.instrument_name), text(p.origin)]),
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
    for (const t of traces) {
      for (const x of t.x) {
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
    }
    const pad = Math.max((hi - lo) * 0.04, 0.5);
    const xRange = [lo - pad, hi + pad];
    const width = () => Math.max((div.clientWidth || 800) - 80, 200);
    const layout = {
      margin: { l: 60, r: 20, t: 66, b: 48 },
      hovermode: "closest",
      showlegend: true,
      legend: { orientation: "h", y: -0.18 },
      xaxis: { title: { text: "MJD" }, range: xRange, tickformat: ".5~f", exponentformat: "none", zeroline: false, showgrid: true, gridcolor: "#eef0f5" },
      // The calendar axis follows the MJD axis (it cannot be dragged itself).
      xaxis2: {
        overlaying: "x", side: "top", fixedrange: true, showgrid: false, zeroline: false, tickmode: "array",
        title: { text: "Date (UTC)", standoff: 4 }, ...dateAxis(xRange, width()),
      },
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
      if (!ev || !Object.keys(ev).some((k) => k.startsWith("xaxis.") || k === "autosize" || k === "width")) return;
      const r = div.layout.xaxis.range;
      if (!r) return;
      const axis = dateAxis(r.map(Number), width());
      Plotly.relayout(div, { "xaxis2.range": axis.range, "xaxis2.tickvals": axis.tickvals, "xaxis2.ticktext": axis.ticktext });
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

  return { lightCurve, prepareLightCurve, airmass, colorFor, dateTicks, plottable, webglAvailable, WEBGL_THRESHOLD, PLOTTABLE_MJD };
})();
