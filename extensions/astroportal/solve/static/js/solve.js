/* Plate solving: the upload form and the jobs table, refreshed every few seconds. */
"use strict";

Portal.ready(() => {
  const { el, api, fmt, fmtTime, flash, showError, clear, action } = Portal;
  const data = Portal.pageData();
  const box = document.getElementById("solve-jobs");
  const counts = document.getElementById("solve-counts");

  function badge(status) {
    return el("span", { class: "badge status-" + status, "data-status": status }, status.replace("_", " "));
  }

  function size(bytes) {
    if (bytes === null || bytes === undefined) return "—";
    return bytes > 1048576 ? fmt(bytes / 1048576, 1) + " MB" : fmt(bytes / 1024, 0) + " kB";
  }

  function actions(job) {
    const out = [el("a", { href: "/solve/jobs/" + job.id, class: "job-details" }, "details")];
    const mine = job.user_id === data.user_id;
    if (mine && (job.status === "queued" || job.status === "running")) {
      out.push(" ", el("button", { class: "secondary small job-cancel", onclick: action(async () => {
        await api("POST", `/api/solve/jobs/${job.id}/cancel`); flash(`Job ${job.id} cancelled.`, "success"); refresh();
      }) }, "cancel"));
    }
    if (mine && ["failure", "cancelled", "timed_out"].includes(job.status)) {
      out.push(" ", el("button", { class: "secondary small job-retry", onclick: action(async () => {
        await api("POST", `/api/solve/jobs/${job.id}/retry`); flash(`Job ${job.id} queued again.`, "success"); refresh();
      }) }, "retry"));
    }
    return out;
  }

  async function refresh() {
    let answer;
    try {
      answer = await api("GET", "/api/solve/jobs");
    } catch (err) {
      showError(box, err);
      return;
    }
    counts.textContent = Object.entries(answer.counts).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(" · ");
    clear(box);
    if (!answer.jobs.length) {
      box.appendChild(el("div", { class: "empty" }, "No jobs yet."));
      return;
    }
    box.appendChild(Portal.table([
      { label: "Id", cell: (j) => el("a", { href: "/solve/jobs/" + j.id }, String(j.id)) },
      { label: "File", cell: (j) => j.filename || "—" },
      { label: "Submitter", cell: (j) => j.submitter || "—" },
      { label: "Status", cell: (j) => [badge(j.status), j.message && j.status !== "success" ? el("div", { class: "small muted job-message" }, j.message) : ""] },
      { label: "Queued", cell: (j) => fmtTime(j.queued_at) },
      { label: "Started", cell: (j) => (j.started_at ? fmtTime(j.started_at) : "—") },
      { label: "Finished", cell: (j) => (j.finished_at ? fmtTime(j.finished_at) : "—") },
      { label: "Duration", class: "num", cell: (j) => (j.duration === null ? "—" : fmt(j.duration, 1) + " s") },
      { label: "Size", class: "num", cell: (j) => size(j.size) },
      { label: "", cell: actions },
    ], answer.jobs, { class: "solve-jobs", rowAttrs: (j) => ({ "data-job-id": j.id, "data-status": j.status }) }));
  }

  const form = document.getElementById("solve-upload");
  if (form) {
    form.addEventListener("submit", action(async () => {
      const status = document.getElementById("solve-upload-status");
      status.textContent = "Uploading…";
      const body = new FormData(form);
      for (const [k, v] of Array.from(body.entries())) if (v === "") body.delete(k);
      let payload;
      try {
        // A multipart body, so not through Portal.api; the session's anti-forgery token goes along all the same.
        const response = await fetch("/api/solve/upload", {
          method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": Portal.csrfToken() },
        });
        payload = await response.json();
      } catch (err) {
        status.textContent = "";
        throw new Error("the upload failed: " + err.message);
      }
      status.textContent = "";
      if (payload.status !== "success") throw new Error(payload.message);
      flash(`Queued as job ${payload.data.job_id}.`, "success");
      form.reset();
      refresh();
    }));
  }

  refresh();
  setInterval(refresh, 3000);
});
