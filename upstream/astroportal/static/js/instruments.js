/* Instruments: every instrument with its telescope, type and filters. */
"use strict";

Portal.ready(async () => {
  const { el, api, showError, clear } = Portal;
  const box = document.getElementById("instruments-list");
  let all;
  try {
    all = await api("GET", "/api/instrument");
  } catch (err) {
    showError(box, err);
    return;
  }
  all.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  clear(box);
  if (!all.length) {
    box.appendChild(el("div", { class: "empty" }, "No instruments yet."));
    return;
  }
  box.appendChild(
    Portal.table(
      [
        { label: "Name", cell: (i) => i.name },
        { label: "Telescope", cell: (i) => (i.telescope ? el("a", { href: "/telescope/" + i.telescope.id }, i.telescope.name) : String(i.telescope_id)) },
        { label: "Type", cell: (i) => i.type },
        { label: "Band", cell: (i) => i.band || "—" },
        { label: "Filters", cell: (i) => (i.filters || []).map((f) => el("span", { class: "badge" }, f)) },
      ],
      all,
      { class: "instruments", rowAttrs: (i) => ({ "data-instrument-id": i.id }) }
    )
  );
});
