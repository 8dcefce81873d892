/* The Live page: the recent past from the API, then the websocket; newest on top; a sky map of the events. */
"use strict";

Portal.ready(() => {
  const { api, el, query, clear, showError } = Portal;
  const list = document.getElementById("live-list");
  const status = document.getElementById("live-status");
  const map = document.getElementById("live-skymap");
  const MAX = 200;
  const seen = new Set();
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  // An equirectangular map, RA increasing to the left as on the sky; 2 px per degree.
  function drawGrid() {
    map.appendChild(svg("rect", { x: 0, y: 0, width: 720, height: 360, class: "sky-bg" }));
    for (let ra = 0; ra <= 360; ra += 60) map.appendChild(svg("line", { x1: 720 - ra * 2, y1: 0, x2: 720 - ra * 2, y2: 360, class: "sky-grid" }));
    for (let dec = -60; dec <= 60; dec += 30) map.appendChild(svg("line", { x1: 0, y1: 180 - dec * 2, x2: 720, y2: 180 - dec * 2, class: "sky-grid" }));
    for (let ra = 60; ra < 360; ra += 60) {
      const t = svg("text", { x: 720 - ra * 2 + 3, y: 354, class: "sky-label" });
      t.textContent = ra / 15 + "h";
      map.appendChild(t);
    }
  }

  function plot(event) {
    if (event.ra === null || event.dec === null || event.ra === undefined) return;
    const dot = svg("circle", { cx: 720 - event.ra * 2, cy: 180 - event.dec * 2, r: 4,
      class: "sky-dot ev-" + event.kind.replace(/[^a-z0-9]+/g, "-"), "data-event-id": event.id });
    const title = svg("title", {});
    title.textContent = (event.data && event.data.summary) || event.kind;
    dot.appendChild(title);
    map.appendChild(dot);
    const dots = map.querySelectorAll(".sky-dot");
    if (dots.length > MAX) dots[0].remove();
  }

  function add(events, fresh) {
    const empty = list.querySelector(".empty");
    if (empty && events.length) empty.remove();
    for (const event of events) {
      if (seen.has(event.id)) continue;
      seen.add(event.id);
      const li = LiveFeed.item(event);
      if (fresh) li.classList.add("fresh");
      list.insertBefore(li, list.firstChild);
      plot(event);
    }
    while (list.children.length > MAX) list.lastChild.remove();
  }

  async function start() {
    drawGrid();
    let since = null;
    try {
      const data = await api("GET", "/api/live/events" + query({ limit: 100 }));
      clear(list);
      if (!data.events.length) list.appendChild(el("li", { class: "empty" }, "Nothing has happened yet; new events appear here as they happen."));
      add(data.events.slice().reverse(), false);
      since = data.events.length ? data.events[0].id : 0;
    } catch (err) {
      showError(list, err);
      return;
    }
    LiveFeed.connect({
      since,
      onEvents: (events) => add(events, true),
      onStatus: (text) => { status.textContent = text; status.dataset.state = text === "live" ? "live" : "down"; },
    });
  }

  // -- the member's subscriptions: list, delete, create --------------------------------------------------------
  const subsBox = document.getElementById("subscriptions");
  const FIELDS = {
    cone: [["ra", "RA (°)"], ["dec", "Dec (°)"], ["radius", "radius (°)"]],
    classification: [["classification", "class"], ["min_probability", "min. probability"]],
    group_candidates: [["group_id", "group id"]],
    event: [["event_kind", "event kind"], ["filter", "filter (JSON)"]],
  };

  async function loadSubscriptions() {
    try {
      const subs = await api("GET", "/api/subscriptions");
      clear(subsBox);
      if (!subs.length) subsBox.appendChild(el("div", { class: "empty" }, "No subscriptions yet."));
      else subsBox.appendChild(Portal.table([
        { label: "Subscription", cell: (s) => s.name },
        { label: "Channels", cell: (s) => s.channels.join(", ") + (s.active ? "" : " (off)") },
        { label: "", cell: (s) => el("button", { class: "secondary small", "data-role": "delete-subscription",
          onclick: Portal.action(async () => { await api("DELETE", "/api/subscriptions/" + s.id); loadSubscriptions(); }) }, "Delete") },
      ], subs, { class: "subscriptions" }));
      subsBox.appendChild(form());
    } catch (err) {
      showError(subsBox, err);
    }
  }

  function form() {
    const kind = el("select", { name: "kind", id: "sub-kind" }, Object.keys(FIELDS).map((k) => el("option", { value: k }, k.replace("_", " "))));
    const fields = el("div", { class: "sub-fields" });
    const channels = ["portal", "email", "webhook"].map((c) => el("label", { class: "inline" },
      el("input", { type: "checkbox", name: "channel", value: c, checked: c === "portal" }), c));
    const webhook = el("input", { name: "webhook_url", placeholder: "webhook URL (https://…)" });
    function showFields() {
      clear(fields);
      for (const [name, label] of FIELDS[kind.value]) fields.appendChild(el("label", {}, label, el("input", { name, "data-field": name })));
    }
    kind.addEventListener("change", showFields);
    showFields();
    const submit = el("button", { type: "submit", id: "sub-create" }, "Subscribe");
    const f = el("form", { id: "subscription-form" }, el("label", {}, "What", kind), fields, el("div", {}, channels), webhook, submit);
    f.addEventListener("submit", Portal.action(async () => {
      const params = {};
      for (const input of fields.querySelectorAll("input")) {
        const v = input.value.trim();
        if (v === "") continue;
        params[input.name] = input.name === "filter" ? JSON.parse(v) : (["classification", "event_kind"].includes(input.name) ? v : Number(v));
      }
      const chosen = [...f.querySelectorAll("input[name=channel]:checked")].map((i) => i.value);
      const body = { kind: kind.value, params, channels: chosen };
      if (chosen.includes("webhook")) body.webhook_url = webhook.value.trim();
      const sub = await api("POST", "/api/subscriptions", body);
      Portal.flash("Subscribed: " + sub.name, "success");
      loadSubscriptions();
    }));
    return f;
  }

  start();
  loadSubscriptions();
});
