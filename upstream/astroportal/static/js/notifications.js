/* The notifications page: what the member's subscriptions matched, newest first; unread ones stand out. */
"use strict";

Portal.ready(() => {
  const { api, el, clear, showError, action } = Portal;
  const list = document.getElementById("notifications-list");

  async function load() {
    try {
      const data = await api("GET", "/api/notifications");
      clear(list);
      if (!data.notifications.length) list.appendChild(el("li", { class: "empty" }, "No notifications yet: subscribe from the Live page or a source page."));
      for (const n of data.notifications) {
        const li = LiveFeed.item(n.event);
        li.classList.add("notification");
        if (!n.read) li.classList.add("unread");
        li.dataset.notificationId = String(n.id);
        li.querySelector(".ev-meta").textContent += " · " + (n.subscription_name || "a deleted subscription");
        list.appendChild(li);
      }
      Portal.refreshBell && Portal.refreshBell();
    } catch (err) {
      showError(list, err);
    }
  }

  document.getElementById("mark-all-read").addEventListener("click", action(async () => {
    await api("POST", "/api/notifications/read", {});
    await load();
  }));
  load();
});
