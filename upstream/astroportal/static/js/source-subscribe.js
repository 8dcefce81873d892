/* The source page's Subscribe button: in-portal notifications of the source's new data. */
"use strict";

Portal.ready(() => {
  const button = document.getElementById("subscribe-source");
  if (!button) return;
  button.addEventListener("click", Portal.action(async () => {
    const sub = await Portal.api("POST", "/api/subscriptions", { kind: "source", params: { obj_id: button.dataset.objId }, channels: ["portal"] });
    Portal.flash(`Subscribed: ${sub.name}. Manage your subscriptions on the Live page.`, "success");
  }));
});
