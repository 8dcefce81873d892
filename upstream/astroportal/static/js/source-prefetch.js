/* Starts loading the source's photometry at once, from the page's <head>, while the browser is still reading
 * the page and loading Plotly; source.js picks the answer up. */
"use strict";

(() => {
  const objId = document.currentScript && document.currentScript.dataset.objId;
  if (!objId || !window.fetch) return;
  // The first page of the light curve (source.js fetches any further ones, of the same size). The page size may
  // be made smaller for this browser (localStorage "portal.lightCurvePage"), to try paging on a short curve.
  let PAGE = 20000;
  try {
    PAGE = Number(window.localStorage && localStorage.getItem("portal.lightCurvePage")) || PAGE;
  } catch (err) {
    PAGE = 20000;
  }
  const pending = fetch("/api/sources/" + encodeURIComponent(objId) + "/photometry?format=mag&pageNumber=1&numPerPage=" + PAGE, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  // A failure is reported by source.js when it awaits this; keep the browser from calling it unhandled.
  pending.catch(() => {});
  window.portalPrefetch = { photometry: pending };
})();
