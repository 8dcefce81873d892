/* One solve job: state, calibration, the image with matched stars, a coordinate grid and sources. */
"use strict";

Portal.ready(() => {
  const { el, api, fmt, fmtTime, flash, showError, clear, action, sexagesimal } = Portal;
  const jobId = Portal.pageData().job_id;
  const SVG = "http://www.w3.org/2000/svg";
  let shownStatus = null;

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function summary(job) {
    const box = document.getElementById("job-summary");
    clear(box);
    const rows = [
      ["File", job.filename || "—"], ["Submitter", job.submitter || "—"],
      ["Size", job.image_width ? `${job.image_width} × ${job.image_height} pixels` : "—"],
      ["Queued", fmtTime(job.queued_at)], ["Started", job.started_at ? fmtTime(job.started_at) : "—"],
      ["Finished", job.finished_at ? fmtTime(job.finished_at) : "—"],
      ["Duration", job.duration === null ? "—" : fmt(job.duration, 2) + " s"],
      ["Runs", String(job.attempts)], ["Worker", job.worker || "—"],
      ["Options", Object.keys(job.options).length ? JSON.stringify(job.options) : "none"],
      ["Message", job.message || "—"],
    ];
    box.appendChild(el("table", { class: "data" }, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { "data-field": k.toLowerCase() }, v))))));
    const files = Object.entries(job.files).map(([k, url]) => [el("a", { href: url, class: "job-file" }, k.replace("_", " ")), " "]);
    if (files.length) box.appendChild(el("div", {}, "Download: ", files));
    const st = document.getElementById("job-status");
    clear(st);
    st.appendChild(el("span", { class: "badge status-" + job.status, id: "job-status-badge", "data-status": job.status }, job.status.replace("_", " ")));
    const acts = document.getElementById("job-actions");
    clear(acts);
    if (job.may_manage && (job.status === "queued" || job.status === "running")) {
      acts.appendChild(el("button", { class: "secondary", id: "job-cancel", onclick: action(async () => { await api("POST", `/api/solve/jobs/${jobId}/cancel`); flash("Cancelled.", "success"); load(); }) }, "Cancel"));
    }
    if (job.may_manage && ["failure", "cancelled", "timed_out"].includes(job.status)) {
      acts.appendChild(el("button", { class: "secondary", id: "job-retry", onclick: action(async () => { await api("POST", `/api/solve/jobs/${jobId}/retry`); flash("Queued again.", "success"); load(); }) }, "Retry"));
    }
  }

  function calibration(job) {
    const cal = job.calibration;
    if (!cal) return;
    const box = document.getElementById("job-calibration");
    clear(box);
    const rows = [
      ["Centre RA", `${fmt(cal.ra, 6)}° (${sexagesimal(cal.ra, true)})`, "ra"],
      ["Centre Dec", `${fmt(cal.dec, 6)}° (${sexagesimal(cal.dec, false)})`, "dec"],
      ["Pixel scale", `${fmt(cal.pixscale, 4)} "/pixel`, "pixscale"],
      ["Field", cal.width_arcsec > 7200 ? `${fmt(cal.width_arcsec / 3600, 2)}° × ${fmt(cal.height_arcsec / 3600, 2)}°`
        : `${fmt(cal.width_arcsec / 60, 2)}′ × ${fmt(cal.height_arcsec / 60, 2)}′`, "field"],
      ["Radius", `${fmt(cal.radius, 4)}°`, "radius"],
      ["Orientation", `up is ${fmt(cal.orientation, 2)}° E of N`, "orientation"],
      ["Parity", String(cal.parity), "parity"],
      ["Matched stars", String(job.stars.length), "stars"],
    ];
    box.appendChild(el("table", { class: "data calibration" }, el("tbody", {}, rows.map(([k, v, f]) => el("tr", {}, el("th", {}, k), el("td", { "data-field": f }, v))))));
  }

  function image(job) {
    const box = document.getElementById("job-image");
    clear(box);
    if (!job.preview) {
      box.appendChild(el("div", { class: "muted" }, "No image (an x/y list)."));
      return;
    }
    const img = el("img", { src: `/solve/jobs/${jobId}/preview.jpg`, alt: "the submitted image", id: "job-preview" });
    box.appendChild(img);
    if (job.status !== "success") return;
    const w = job.calibration.width, h = job.calibration.height;
    const layer = svg("svg", { viewBox: `-0.5 -0.5 ${w} ${h}`, preserveAspectRatio: "none", id: "job-overlay" });
    const stroke = Math.max(w, h) / 600;
    for (const line of job.grid) {
      const pts = line.points.map((p) => p.join(",")).join(" ");
      layer.appendChild(svg("polyline", { points: pts, fill: "none", stroke: line.kind === "ra" ? "#7fd1ff" : "#ffd27f", "stroke-width": stroke, "stroke-opacity": 0.7, class: "grid-line", "data-kind": line.kind, "data-value": line.value }));
      const [x, y] = line.points[Math.floor(line.points.length / 2)];
      const label = svg("text", { x, y, fill: "#ffffff", "font-size": Math.max(w, h) / 60, class: "grid-label" });
      label.textContent = line.kind === "ra" ? `${fmt(line.value, 2)}°` : `${line.value > 0 ? "+" : ""}${fmt(line.value, 2)}°`;
      layer.appendChild(label);
    }
    for (const s of job.stars) {
      layer.appendChild(svg("circle", { cx: s.x, cy: s.y, r: Math.max(w, h) / 120, fill: "none", stroke: "#4cff7a", "stroke-width": stroke, class: "matched-star" }));
    }
    for (const s of job.sources) {
      const a = svg("a", { href: "/source/" + encodeURIComponent(s.id) });
      const r = Math.max(w, h) / 80;
      a.appendChild(svg("rect", { x: s.x - r, y: s.y - r, width: 2 * r, height: 2 * r, fill: "none", stroke: "#ff5c5c", "stroke-width": stroke * 1.5, class: "field-source" }));
      const t = svg("text", { x: s.x + r * 1.3, y: s.y, fill: "#ff8080", "font-size": Math.max(w, h) / 55 });
      t.textContent = s.id;
      a.appendChild(t);
      layer.appendChild(a);
    }
    box.appendChild(layer);
  }

  function sources(job) {
    const box = document.getElementById("job-sources");
    clear(box);
    if (job.status !== "success") { box.appendChild(el("div", { class: "muted" }, "—")); return; }
    if (!job.sources.length) { box.appendChild(el("div", { class: "empty" }, "No portal source falls on this image.")); return; }
    box.appendChild(Portal.table([
      { label: "Source", cell: (s) => el("a", { href: "/source/" + encodeURIComponent(s.id), class: "field-source-link" }, s.id) },
      { label: "RA (°)", class: "num", cell: (s) => fmt(s.ra, 5) },
      { label: "Dec (°)", class: "num", cell: (s) => fmt(s.dec, 5) },
      { label: "x, y (pixels)", class: "num", cell: (s) => `${fmt(s.x + 1, 1)}, ${fmt(s.y + 1, 1)}` },
    ], job.sources, { class: "field-sources" }));
  }

  function history(job) {
    const box = document.getElementById("job-history");
    clear(box);
    box.appendChild(Portal.table([
      { label: "At", cell: (t) => fmtTime(t.at) },
      { label: "From", cell: (t) => t.from || "—" }, { label: "To", cell: (t) => t.to },
      { label: "Worker", cell: (t) => t.worker || "—" }, { label: "Note", cell: (t) => t.note || "" },
    ], job.transitions, { class: "job-history" }));
  }

  async function load() {
    let job;
    try {
      job = await api("GET", `/api/solve/jobs/${jobId}`);
    } catch (err) {
      showError(document.getElementById("job-summary"), err);
      return;
    }
    summary(job);
    history(job);
    if (shownStatus !== job.status) {
      calibration(job);
      image(job);
      sources(job);
      shownStatus = job.status;
    }
    if (job.status === "queued" || job.status === "running") setTimeout(load, 2000);
  }
  load();
});
