/* The sources list: one page of GET /api/sources with the search, sorting and paging in the address. */
"use strict";

Portal.ready(() => {
  const { el, api, query, table, pager, fmt, sexagesimal, fmtTime, groupNames } = Portal;
  const state = Portal.pageData();
  const box = document.getElementById("sources-table");

  if (state.error) {
    Portal.clear(box).appendChild(el("div", { class: "empty" }, "Correct the search above to see sources."));
    return;
  }

  function syncAddress() {
    const params = new URLSearchParams(window.location.search);
    params.set("pageNumber", state.pageNumber);
    params.set("sortBy", state.sortBy);
    if (state.sortOrder) params.set("sortOrder", state.sortOrder);
    else params.delete("sortOrder");
    history.replaceState(null, "", "/sources?" + params.toString());
  }

  function onSort(key) {
    if (state.sortBy === key) state.sortOrder = state.sortOrder === "asc" ? "desc" : "asc";
    else {
      state.sortBy = key;
      state.sortOrder = key === "saved_at" || key === "created_at" ? "desc" : "asc";
    }
    state.pageNumber = 1;
    load();
  }

  async function load() {
    Portal.loading(box);
    const params = {
      pageNumber: state.pageNumber,
      numPerPage: state.numPerPage,
      sortBy: state.sortBy,
      sortOrder: state.sortOrder,
      sourceID: state.sourceID,
      group_ids: state.groupIds,
    };
    if (state.cone) Object.assign(params, state.cone);
    let data;
    try {
      data = await api("GET", "/api/sources" + query(params));
    } catch (err) {
      Portal.showError(box, err);
      return;
    }
    syncAddress();
    const rows = data.sources || [];
    Portal.clear(box);
    if (!rows.length) {
      box.appendChild(el("div", { class: "empty", id: "no-sources" }, state.cone || state.sourceID || state.groupIds ? "No source matches this search." : "No sources yet."));
      return;
    }
    const order = state.sortOrder || (state.sortBy === "saved_at" || state.sortBy === "created_at" ? "desc" : "asc");
    box.appendChild(
      table(
        [
          { label: "Source", sortKey: "id", cell: (s) => el("a", { href: "/source/" + encodeURIComponent(s.id), class: "source-link" }, s.id) },
          { label: "Aliases", cell: (s) => (s.alias || []).join(", ") },
          { label: "RA (°)", sortKey: "ra", class: "num", cell: (s) => fmt(s.ra, 5) },
          { label: "Dec (°)", sortKey: "dec", class: "num", cell: (s) => fmt(s.dec, 5) },
          { label: "RA (h:m:s)", class: "num", cell: (s) => sexagesimal(s.ra, true) },
          { label: "Dec (d:m:s)", class: "num", cell: (s) => sexagesimal(s.dec, false) },
          { label: "Redshift", class: "num", cell: (s) => (s.redshift === null || s.redshift === undefined ? "—" : fmt(s.redshift, 4)) },
          { label: "Groups", cell: (s) => groupNames(s.groups) },
          { label: "Last saved", sortKey: "saved_at", cell: (s) => fmtTime(s.saved_at) },
        ],
        rows,
        { sort: { key: state.sortBy, order }, onSort, class: "sources", rowAttrs: (s) => ({ "data-source-id": s.id }) }
      )
    );
    box.appendChild(
      pager(state.pageNumber, state.numPerPage, data.totalMatches || 0, (p) => {
        state.pageNumber = p;
        load();
      })
    );
  }

  load();
});
