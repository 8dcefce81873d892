/* Starts loading the source's photometry at once, from the page's <head>, while the browser is still reading
 * the page and loading Plotly; source.js picks the answer up. */
"use strict";

(() => {
  const objId = document.currentScript && document.currentScript.dataset.objId;
  if (!objId || !window.fetch) return;
  const pending = fetch("/api/sources/" + encodeURIComponent(objId) + "/photometry?format=mag", {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  // A failure is reported by source.js when it awaits this; keep the browser from calling it unhandled.
  pending.catch(() => {});
  window.portalPrefetch = { photometry: pending };
})();
