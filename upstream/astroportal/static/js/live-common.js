/* The live feed in the browser: one event as a list item, and a websocket that reconnects where it left off. */
"use strict";

const LiveFeed = (() => {
  const { el, fmtTime } = Portal;
  const ICONS = {
    "source.saved": ["★", "saved"],
    "photometry.added": ["◆", "photometry"],
    "candidate.passed": ["✦", "candidate"],
    "classification.added": ["⚑", "classification"],
    "comment.added": ["✎", "comment"],
  };

  /** [symbol, short label] of an event kind (kinds of a distribution get a dot and their own name). */
  function icon(kind) {
    return ICONS[kind] || ["●", kind];
  }

  /** One event as an <li>: icon, summary (a link to its page), kind and time. */
  function item(event) {
    const [symbol, label] = icon(event.kind);
    const summary = (event.data && event.data.summary) || event.kind;
    const url = event.data && event.data.url;
    return el(
      "li",
      { class: "live-event", dataset: { eventId: String(event.id), kind: event.kind } },
      el("span", { class: "ev-icon ev-" + event.kind.replace(/[^a-z0-9]+/g, "-"), title: event.kind, "aria-hidden": "true" }, symbol),
      el("span", { class: "ev-body" }, url ? el("a", { href: url }, summary) : summary,
        el("span", { class: "ev-meta muted" }, label + " · " + fmtTime(event.created_at))),
    );
  }

  /**
   * Keep a websocket on /api/live open: onEvents(events) for each frame of events, onStatus(text) when the
   * connection opens or drops. After a drop it reconnects with since=<last event id>, so nothing is missed.
   */
  function connect({ since, params, onEvents, onStatus }) {
    let lastId = since;
    let delay = 1000;
    let socket = null;
    function open() {
      const q = Object.assign({}, params || {});
      if (lastId !== null && lastId !== undefined) q.since = lastId;
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + "/api/live" + Portal.query(q));
      socket.onopen = () => { delay = 1000; onStatus && onStatus("live"); };
      socket.onmessage = (msg) => {
        const frame = JSON.parse(msg.data);
        if (frame.type === "hello" && frame.last_id !== null && frame.last_id !== undefined) lastId = Math.max(lastId || 0, frame.last_id);
        if (frame.type === "events" && frame.events.length) {
          for (const e of frame.events) lastId = Math.max(lastId || 0, e.id);
          onEvents(frame.events);
        }
      };
      socket.onclose = (ev) => {
        onStatus && onStatus("reconnecting" + (ev.reason ? " (" + ev.reason + ")" : "") + "…");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    open();
    return { close: () => socket && socket.close() };
  }

  return { icon, item, connect };
})();
