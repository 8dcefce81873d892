/* The GW events list: one page of GET /api/gcn_event, newest first, each event summarised in one row. */
"use strict";

Portal.ready(() => {
  const { el, api, query, table, pager, fmtTime } = Portal;
  const box = document.getElementById("gcn-events-list");
  const hideRetracted = document.getElementById("hide-retracted");
  const params = new URLSearchParams(window.location.search);
  const state = {
    pageNumber: Math.max(1, Number(params.get("pageNumber")) || 1),
    numPerPage: 50,
    hideRetracted: params.get("hideRetracted") === "1",
  };
  hideRetracted.checked = state.hideRetracted;

  function syncAddress() {
    const q = new URLSearchParams();
    if (state.pageNumber > 1) q.set("pageNumber", state.pageNumber);
    if (state.hideRetracted) q.set("hideRetracted", "1");
    const s = q.toString();
    history.replaceState(null, "", "/gcn_events" + (s ? "?" + s : ""));
  }

  /** The event's page address: /gcn_events/<dateobs as the API writes it>. */
  function eventHref(e) {
    return "/gcn_events/" + encodeURIComponent(e.dateobs);
  }

  function tagBadges(tags) {
    const names = (tags || []).map((t) => (typeof t === "string" ? t : t.text)).filter(Boolean);
    // A retraction is the first thing anyone should see about the event.
    names.sort((a, b) => (b === "RETRACTED") - (a === "RETRACTED"));
    return names.map((t) => el("span", { class: t === "RETRACTED" ? "badge danger retracted" : "badge" }, t));
  }

  function isRetracted(e) {
    return (e.tags || []).some((t) => (typeof t === "string" ? t : t.text) === "RETRACTED");
  }

  function cell(text, title) {
    return text === null || text === undefined ? el("span", { class: "muted" }, "—") : el("span", { title: title || null }, text);
  }

  async function load() {
    Portal.loading(box);
    let data;
    try {
      data = await api("GET", "/api/gcn_event" + query({
        pageNumber: state.pageNumber,
        numPerPage: state.numPerPage,
        tagRemove: state.hideRetracted ? "RETRACTED" : null,
      }));
    } catch (err) {
      Portal.showError(box, err);
      return;
    }
    syncAddress();
    const events = Array.isArray(data) ? data : data.events || [];
    const total = Array.isArray(data) ? events.length : data.totalMatches || events.length;
    Portal.clear(box);
    if (!events.length) {
      box.appendChild(el("div", { class: "empty", id: "no-gcn-events" },
        state.hideRetracted
          ? "No event but retracted ones. Untick “hide retracted events” to see them."
          : "No events yet. Events arrive from the gcn service (GCN Kafka alerts) or by POST /api/gcn_event " +
            "with an igwn.gwalert JSON notice or a VOEvent."));
      return;
    }
    box.appendChild(table(
      [
        { label: "Time (UTC)", class: "num", cell: (e) => el("a", { href: eventHref(e), class: "gcn-event-link" }, GW.timeText(e.dateobs)) },
        { label: "Trigger", cell: (e) => {
          const url = GW.gracedbUrl(e.trigger_id);
          if (!e.trigger_id) return el("span", { class: "muted" }, "—");
          return url ? el("a", { href: url, rel: "noopener noreferrer", target: "_blank", class: "gracedb-link" }, e.trigger_id) : e.trigger_id;
        } },
        { label: "False-alarm rate", class: "far", cell: (e) => {
          const far = GW.farOf(GW.mergedProperties(e.properties));
          return cell(GW.farText(far), far ? `FAR ${Number(far).toExponential(2)} Hz` : null);
        } },
        { label: "Classification", cell: (e) => cell(GW.classificationText(GW.mergedProperties(e.properties).classification)) },
        { label: "Distance", class: "num", cell: (e) => {
          const loc = GW.newest(e.localizations);
          const props = GW.mergedProperties(e.properties);
          return cell(loc && loc.distmean !== null && loc.distmean !== undefined
            ? GW.distanceText(loc.distmean, loc.diststd) : GW.distanceText(props.distmean, props.diststd));
        } },
        { label: "90% area", class: "num", cell: (e) => { const loc = GW.newest(e.localizations); return cell(loc ? GW.areaText(loc.area_90) : null); } },
        { label: "Tags", cell: (e) => tagBadges(e.tags) },
      ],
      events,
      { class: "gcn-events", rowAttrs: (e) => ({ "data-dateobs": e.dateobs, class: isRetracted(e) ? "retracted-row" : null }) }
    ));
    box.appendChild(pager(state.pageNumber, state.numPerPage, total, (p) => { state.pageNumber = p; load(); }));
  }

  hideRetracted.addEventListener("change", () => {
    state.hideRetracted = hideRetracted.checked;
    state.pageNumber = 1;
    load();
  });
  load();
});
