/* The source page: groups (save/unsave), light curve, photometry table, comments, classifications, airmass. */
"use strict";

Portal.ready(() => {
  const { el, api, query, clear, flash, action, fmt, fmtTime, mjdToIso, showError, loading, user } = Portal;
  const page = Portal.pageData();
  const objId = page.objId;
  const objPath = "/api/sources/" + encodeURIComponent(objId);

  // -- groups -------------------------------------------------------------------------------------------
  const groupsBox = document.getElementById("groups-list");
  const saveSelect = document.getElementById("save-group");
  // Saving and unsaving need "Upload data": without it (view-only users) the page offers neither.
  const canSave = user.has("Upload data");
  if (!canSave) {
    document.getElementById("save-form").replaceWith(el("p", { class: "muted small", id: "save-needs-permission" }, "Saving to a group needs the permission “Upload data”."));
  }
  let myGroups = null;

  async function loadGroups() {
    let source;
    try {
      const [src, groups] = await Promise.all([api("GET", objPath), myGroups ? Promise.resolve(null) : api("GET", "/api/groups")]);
      source = src;
      if (groups) myGroups = (groups.user_groups || []).slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
    } catch (err) {
      showError(groupsBox, err);
      return;
    }
    const saved = source.groups || [];
    const savedIds = new Set(saved.map((g) => g.id));
    clear(groupsBox);
    if (!saved.length) groupsBox.appendChild(el("div", { class: "empty" }, "Not saved to any of your groups."));
    else {
      groupsBox.appendChild(
        Portal.table(
          [
            { label: "Group", cell: (g) => el("a", { href: "/group/" + g.id, class: "group-name" }, g.name) },
            { label: "Saved", cell: (g) => fmtTime(g.saved_at) + (g.saved_by ? " by " + g.saved_by : "") },
            canSave && {
              label: "",
              class: "actions",
              cell: (g) =>
                el("button", { class: "danger small unsave", "data-group-id": g.id, onclick: action(() => unsave(g)) }, "Unsave"),
            },
          ].filter(Boolean),
          saved,
          { class: "groups", rowAttrs: (g) => ({ "data-group-id": g.id }) }
        )
      );
    }
    if (!canSave) return;
    clear(saveSelect);
    const options = (myGroups || []).filter((g) => !savedIds.has(g.id));
    if (!options.length) saveSelect.appendChild(el("option", { value: "" }, "— no other group —"));
    for (const g of options) saveSelect.appendChild(el("option", { value: g.id }, g.name));
    document.getElementById("save-button").disabled = !options.length;
  }

  async function unsave(group) {
    if (!window.confirm(`Remove ${objId} from the group “${group.name}”? Its members will no longer see it saved there.`)) return;
    await api("POST", "/api/source_groups", { objId, unsaveGroupIds: [group.id] });
    flash(`Removed from ${group.name}`, "success");
    await loadGroups();
  }

  if (canSave) document.getElementById("save-form").addEventListener(
    "submit",
    action(async () => {
      const gid = Number(saveSelect.value);
      if (!gid) return;
      await api("POST", "/api/source_groups", { objId, inviteGroupIds: [gid] });
      flash("Saved", "success");
      await loadGroups();
    })
  );

  // -- photometry: light curve and table --------------------------------------------------------------------
  const lcDiv = document.getElementById("lightcurve");
  const lcStatus = document.getElementById("lightcurve-status");
  const photBox = document.getElementById("photometry-table");

  // The light curve comes in pages (the portal answers at most 20,000 points at a time): the first one was
  // asked for by source-prefetch.js while the page loaded, the others follow, two at a time, of the same size.
  async function fetchLightCurve() {
    let size = 20000;
    const pagePath = (n) => `${objPath}/photometry?format=mag&pageNumber=${n}&numPerPage=${size}`;
    const early = window.portalPrefetch && window.portalPrefetch.photometry;
    const first = early ? await Portal.envelope(pagePath(1), early) : await api("GET", pagePath(1));
    size = first.numPerPage;
    const pages = Math.ceil((first.totalMatches || 0) / size);
    const rest = new Array(Math.max(pages - 1, 0));
    let next = 2;
    let got = first.photometry.length;
    async function worker() {
      while (next <= pages) {
        const n = next++;
        const page = await api("GET", pagePath(n));
        rest[n - 2] = page.photometry;
        got += page.photometry.length;
        lcStatus.textContent = `loading… ${got} of ${first.totalMatches} points`;
      }
    }
    await Promise.all([worker(), worker()]);
    return first.photometry.concat(...rest);
  }

  async function loadPhotometry() {
    const started = performance.now();
    // For a big light curve, WebGL gets ready while the points are on their way.
    const warming = PortalPlots.prepareLightCurve(lcDiv, page.photometryCount || 0).catch(() => false);
    let points;
    try {
      points = await fetchLightCurve();
    } catch (err) {
      await warming;
      if (lcDiv.dataset.warmed === "true") Plotly.purge(lcDiv);
      showError(lcDiv, err);
      showError(photBox, err);
      return;
    }
    const fetched = performance.now();
    document.getElementById("photometry-count").textContent = `(${points.length} point${points.length === 1 ? "" : "s"})`;
    if (!points.length) {
      await warming;
      if (lcDiv.dataset.warmed === "true") Plotly.purge(lcDiv);
      lcDiv.classList.remove("plot");
      clear(lcDiv).appendChild(el("div", { class: "empty", id: "no-photometry" }, "No photometry yet."));
      lcDiv.dataset.points = "0";
      lcDiv.dataset.ready = "true";
    } else {
      await warming;
      let plotted = null;
      let why = "None of these points can be drawn (see the table below).";
      try {
        plotted = await PortalPlots.lightCurve(lcDiv, points);
      } catch (err) {
        // Whatever went wrong in drawing, the table below still lists every point.
        console.error("light curve:", err);
        why = `The light curve could not be drawn (${err.message}); the table below lists the points.`;
        lcDiv.dataset.points = "0";
      }
      const drawn = performance.now();
      if (!plotted) {
        if (lcDiv.dataset.warmed === "true") Plotly.purge(lcDiv);
        lcDiv.classList.remove("plot");
        clear(lcDiv).appendChild(el("div", { class: "empty", id: "no-photometry" }, why));
      }
      lcStatus.textContent = `${lcDiv.dataset.points} points`;
      showSkipped(points);
      lcDiv.dataset.fetchMs = (fetched - started).toFixed(0);
      lcDiv.dataset.plotMs = (drawn - fetched).toFixed(0);
      // Milliseconds since navigation began: what a person waits for the plot (read by the page benchmark).
      lcDiv.dataset.readyAt = drawn.toFixed(0);
      lcDiv.dataset.ready = "true";
    }
    renderPhotTable(points);
  }

  /** Name the stored points whose dates no plot can show (they stay in the table), so that none goes unnoticed. */
  function showSkipped(points) {
    const old = document.getElementById("lightcurve-skipped");
    if (old) old.remove();
    const bad = points.filter((p) => !PortalPlots.plottable(p.mjd));
    if (!bad.length) return;
    const [lo, hi] = PortalPlots.PLOTTABLE_MJD;
    const shown = bad.slice(0, 5).map((p) => `${p.id} (MJD ${p.mjd})`).join(", ") + (bad.length > 5 ? `, and ${bad.length - 5} more` : "");
    lcDiv.after(
      el("p", { class: "alert warning small", id: "lightcurve-skipped" },
        `${bad.length} point${bad.length === 1 ? " is" : "s are"} not drawn: ${bad.length === 1 ? "its date is" : "their dates are"} outside MJD ${lo}–${hi}: ` +
        `${shown}. Correct or delete ${bad.length === 1 ? "it" : "them"} (PATCH or DELETE /api/photometry/ID).`)
    );
  }

  function renderPhotTable(points) {
    const perPage = 50;
    const rows = points.slice().sort((a, b) => b.mjd - a.mjd);
    let pageNo = 1;
    function draw() {
      clear(photBox);
      if (!rows.length) {
        photBox.appendChild(el("div", { class: "empty" }, "No photometry yet."));
        return;
      }
      const slice = rows.slice((pageNo - 1) * perPage, pageNo * perPage);
      photBox.appendChild(
        Portal.table(
          [
            { label: "MJD", class: "num", cell: (p) => fmt(p.mjd, 5) },
            { label: "Date (UTC)", class: "num", cell: (p) => mjdToIso(p.mjd) },
            { label: "Filter", cell: (p) => p.filter },
            { label: "Mag", class: "num", cell: (p) => (p.mag === null || p.mag === undefined ? "—" : fmt(p.mag, 3)) },
            { label: "Error", class: "num", cell: (p) => (p.magerr === null || p.magerr === undefined ? "—" : fmt(p.magerr, 3)) },
            { label: "Limit", class: "num", cell: (p) => fmt(p.limiting_mag, 2) },
            { label: "Instrument", cell: (p) => p.instrument_name || String(p.instrument_id) },
            { label: "Origin", cell: (p) => p.origin || "" },
            { label: "Groups", cell: (p) => Portal.groupNames(p.groups) },
          ],
          slice,
          { class: "photometry" }
        )
      );
      if (rows.length > perPage)
        photBox.appendChild(
          Portal.pager(pageNo, perPage, rows.length, (p) => {
            pageNo = p;
            draw();
          })
        );
    }
    draw();
  }

  // -- comments -----------------------------------------------------------------------------------------------
  const commentsBox = document.getElementById("comments-list");
  const canManage = user.has("Manage sources");

  async function loadComments() {
    let comments;
    try {
      comments = await api("GET", objPath + "/comments");
    } catch (err) {
      showError(commentsBox, err);
      return;
    }
    clear(commentsBox);
    if (!comments.length) {
      commentsBox.appendChild(el("div", { class: "empty", id: "no-comments" }, "No comments yet."));
      return;
    }
    for (const c of comments) {
      const mine = c.author_id === user.id;
      commentsBox.appendChild(
        el(
          "div",
          { class: "comment", "data-comment-id": c.id },
          el(
            "div",
            { class: "meta" },
            el("strong", { class: "author" }, c.author_name),
            el("span", {}, fmtTime(c.created_at)),
            (mine || canManage) &&
              el("button", { class: "danger small delete-comment", onclick: action(() => deleteComment(c)) }, "Delete")
          ),
          el("div", { class: "text" }, c.text)
        )
      );
    }
  }

  async function deleteComment(c) {
    if (!window.confirm("Delete this comment?")) return;
    await api("DELETE", `${objPath}/comments/${c.id}`);
    flash("Comment deleted", "success");
    await loadComments();
  }

  const commentText = document.getElementById("comment-text");
  if (!user.has("Comment")) {
    const form = document.getElementById("comment-form");
    form.replaceWith(el("p", { class: "muted small" }, "Commenting needs the permission “Comment”."));
  }
  const commentForm = document.getElementById("comment-form");
  if (commentForm) commentForm.addEventListener(
    "submit",
    action(async () => {
      const text = commentText.value;
      if (!text.trim()) {
        flash("Write something first", "error");
        return;
      }
      await api("POST", objPath + "/comments", { text });
      commentText.value = "";
      await loadComments();
    })
  );

  // -- classifications ---------------------------------------------------------------------------------------
  const classBox = document.getElementById("classifications");

  async function loadClassifications() {
    let items;
    let taxonomies = [];
    try {
      items = await api("GET", objPath + "/classifications");
      if (items.length) taxonomies = await api("GET", "/api/taxonomy").catch(() => []);
    } catch (err) {
      showError(classBox, err);
      return;
    }
    const taxName = new Map((taxonomies || []).map((t) => [t.id, `${t.name} ${t.version || ""}`.trim()]));
    clear(classBox);
    if (!items.length) {
      classBox.appendChild(el("div", { class: "empty" }, "No classifications yet."));
      return;
    }
    classBox.appendChild(
      Portal.table(
        [
          { label: "Class", cell: (c) => el("strong", {}, c.classification) },
          { label: "Probability", class: "num", cell: (c) => (c.probability === null || c.probability === undefined ? "—" : fmt(c.probability, 3)) },
          { label: "Taxonomy", cell: (c) => taxName.get(c.taxonomy_id) || String(c.taxonomy_id) },
          { label: "By", cell: (c) => c.author_name },
          { label: "When", cell: (c) => fmtTime(c.created_at) },
        ],
        items,
        { class: "classifications" }
      )
    );
  }

  // -- airmass ----------------------------------------------------------------------------------------------------
  const telSelect = document.getElementById("airmass-telescope");
  const airDiv = document.getElementById("airmass-plot");
  const airStatus = document.getElementById("airmass-status");
  const STORE_KEY = "portal.airmassTelescope";

  async function loadTelescopes() {
    let telescopes;
    try {
      telescopes = await api("GET", "/api/telescope");
    } catch (err) {
      showError(airDiv, err);
      return;
    }
    const placed = telescopes.filter((t) => t.lat !== null && t.lon !== null && t.lat !== undefined && t.lon !== undefined);
    placed.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    clear(telSelect);
    if (!placed.length) {
      telSelect.appendChild(el("option", { value: "" }, "— no telescope with a known site —"));
      clear(airDiv).appendChild(el("div", { class: "empty" }, "Add a telescope with a location to see when this source is observable."));
      airDiv.classList.remove("plot");
      return;
    }
    for (const t of placed) telSelect.appendChild(el("option", { value: t.id }, `${t.name}${t.nickname && t.nickname !== t.name ? " (" + t.nickname + ")" : ""}`));
    const stored = window.localStorage ? localStorage.getItem(STORE_KEY) : null;
    if (stored && placed.some((t) => String(t.id) === stored)) telSelect.value = stored;
    await drawAirmass();
  }

  async function drawAirmass() {
    const tid = telSelect.value;
    if (!tid) return;
    if (window.localStorage) localStorage.setItem(STORE_KEY, tid);
    airStatus.textContent = "computing…";
    let curve;
    try {
      curve = await api("GET", "/api/internal/airmass/" + encodeURIComponent(objId) + query({ telescope_id: tid }));
    } catch (err) {
      airStatus.textContent = "";
      showError(airDiv, err);
      return;
    }
    clear(airDiv);
    await PortalPlots.airmass(airDiv, curve);
    const night = curve.night || {};
    airStatus.textContent = night.exists && night.start && night.end
      ? `night ${fmtTime(night.start)} → ${fmtTime(night.end)}`
      : night.exists ? "the sun does not rise in the next day" : "the sun does not set in the next day";
  }
  telSelect.addEventListener("change", drawAirmass);

  // The light curve first; the airmass (the heaviest computation on the server) once it is drawn.
  loadPhotometry().finally(loadTelescopes);
  loadGroups();
  loadComments();
  loadClassifications();
});
