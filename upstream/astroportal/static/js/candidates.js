/* The candidates page: scan, save to a group, reject (and un-reject). */
"use strict";

Portal.ready(() => {
  const { el, api, query, fmt, fmtTime, sexagesimal, groupNames, showError, clear, flash, action } = Portal;
  const state = Portal.pageData();
  const box = document.getElementById("candidates-list");
  let myGroups = [];
  let rejections = new Map();
  // Saving and rejecting need "Upload data": view-only users scan without those controls.
  const canAct = Portal.user.has("Upload data");

  async function loadContext() {
    const [groups, listings] = await Promise.all([
      api("GET", "/api/groups"),
      api("GET", "/api/listing" + query({ listName: "rejected_candidates" })).catch(() => []),
    ]);
    myGroups = (groups.user_groups || []).slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
    rejections = new Map((listings || []).map((l) => [l.obj_id, l.id]));
  }

  function syncAddress() {
    const params = new URLSearchParams(window.location.search);
    params.set("pageNumber", state.pageNumber);
    history.replaceState(null, "", "/candidates?" + params.toString());
  }

  function saveControl(c) {
    const savedIds = new Set((c.saved_groups || []).map((g) => g.id));
    const options = myGroups.filter((g) => !savedIds.has(g.id));
    if (!options.length) return el("span", { class: "muted small" }, "saved to all your groups");
    const select = el("select", { class: "save-group" }, options.map((g) => el("option", { value: g.id }, g.name)));
    const button = el(
      "button",
      {
        class: "small save-candidate",
        onclick: action(async () => {
          const gid = Number(select.value);
          await api("POST", "/api/source_groups", { objId: c.id, inviteGroupIds: [gid] });
          flash(`${c.id} saved`, "success");
          await load();
        }),
      },
      "Save"
    );
    return el("span", { class: "inline-form" }, select, button);
  }

  function rejectControl(c) {
    const listingId = rejections.get(c.id);
    if (c.rejected || listingId) {
      return el(
        "button",
        {
          class: "secondary small unreject-candidate",
          onclick: action(async () => {
            if (listingId) await api("DELETE", "/api/listing/" + listingId);
            flash(`${c.id} is back among the candidates`, "success");
            await load();
          }),
        },
        "Un-reject"
      );
    }
    return el(
      "button",
      {
        class: "danger small reject-candidate",
        onclick: action(async () => {
          await api("POST", "/api/listing", { obj_id: c.id, list_name: "rejected_candidates" });
          flash(`${c.id} rejected`, "success");
          await load();
        }),
      },
      "Reject"
    );
  }

  /** Columns a deployment adds (config app.page_blocks, place candidates.columns): one <template> each. */
  function extraColumns() {
    return Array.from(document.querySelectorAll("#candidate-columns template")).map((tpl) => ({
      label: tpl.dataset.label || "",
      cell: (c) => {
        const cell = tpl.content.cloneNode(true);
        cell.querySelectorAll("[data-field]").forEach((node) => {
          const value = c[node.dataset.field];
          node.textContent = value === null || value === undefined ? "" : String(value);
        });
        cell.querySelectorAll("[data-obj-id]").forEach((node) => node.setAttribute("data-obj-id", c.id));
        return cell;
      },
    }));
  }

  async function load() {
    Portal.loading(box);
    let data;
    try {
      await loadContext();
      data = await api(
        "GET",
        "/api/candidates" +
          query({
            pageNumber: state.pageNumber,
            numPerPage: state.numPerPage,
            savedStatus: state.savedStatus === "all" ? null : state.savedStatus,
            includeRejected: state.includeRejected ? "true" : null,
          })
      );
    } catch (err) {
      showError(box, err);
      return;
    }
    syncAddress();
    clear(box);
    if (!data.candidates.length) {
      box.appendChild(el("div", { class: "empty", id: "no-candidates" }, "No candidates to scan."));
      return;
    }
    box.appendChild(
      Portal.table(
        [
          { label: "Object", cell: (c) => el("a", { href: "/source/" + encodeURIComponent(c.id), class: "candidate-link" }, c.id) },
          { label: "RA, Dec (°)", class: "num", cell: (c) => `${fmt(c.ra, 5)} ${fmt(c.dec, 5)}` },
          { label: "RA, Dec", class: "num", cell: (c) => `${sexagesimal(c.ra, true)} ${sexagesimal(c.dec, false)}` },
          { label: "Last passed", cell: (c) => fmtTime(c.passed_at) },
          { label: "Saved to", cell: (c) => (c.saved_groups && c.saved_groups.length ? groupNames(c.saved_groups) : el("span", { class: "muted" }, "—")) },
          canAct && { label: "Save", class: "actions", cell: saveControl },
          canAct && { label: "", class: "actions", cell: rejectControl },
        ].filter(Boolean).concat(extraColumns()),
        data.candidates,
        { class: "candidates", rowAttrs: (c) => ({ "data-obj-id": c.id, class: c.rejected ? "rejected" : null }) }
      )
    );
    document.dispatchEvent(new CustomEvent("portal:candidates-rendered", { detail: { candidates: data.candidates } }));
    box.appendChild(
      Portal.pager(state.pageNumber, state.numPerPage, data.totalMatches || 0, (p) => {
        state.pageNumber = p;
        load();
      })
    );
  }

  load();
});
