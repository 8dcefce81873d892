/* Groups: the list (and creating a group), and one group's members, streams and sources. */
"use strict";

Portal.ready(() => {
  const { el, api, query, fmt, fmtTime, showError, clear, flash, action, user } = Portal;
  const page = Portal.pageData();

  function groupTable(groups) {
    return Portal.table(
      [
        { label: "Name", cell: (g) => el("a", { href: "/group/" + g.id, class: "group-link" }, g.name) },
        { label: "Nickname", cell: (g) => g.nickname || "" },
        { label: "", cell: (g) => (g.private ? el("span", { class: "badge" }, "private") : "") },
      ],
      groups,
      { class: "groups", rowAttrs: (g) => ({ "data-group-id": g.id }) }
    );
  }

  // -- the list -----------------------------------------------------------------------------------------
  async function loadList() {
    const mineBox = document.getElementById("my-groups");
    const otherBox = document.getElementById("other-groups");
    let data;
    try {
      data = await api("GET", "/api/groups");
    } catch (err) {
      showError(mineBox, err);
      clear(otherBox);
      return;
    }
    const mine = data.user_groups || [];
    const mineIds = new Set(mine.map((g) => g.id));
    const others = (data.all_groups || []).filter((g) => !mineIds.has(g.id));
    clear(mineBox).appendChild(mine.length ? groupTable(mine) : el("div", { class: "empty" }, "You are in no group yet."));
    clear(otherBox).appendChild(others.length ? groupTable(others) : el("div", { class: "empty" }, "No other groups."));
  }

  if (document.getElementById("my-groups")) {
    loadList();
    if (user.has("Manage groups")) {
      document.getElementById("create-group-card").classList.remove("hidden");
      document.getElementById("create-group-form").addEventListener(
        "submit",
        action(async () => {
          const name = document.getElementById("new-group-name").value.trim();
          const nickname = document.getElementById("new-group-nickname").value.trim();
          const body = { name, private: document.getElementById("new-group-private").checked };
          if (nickname) body.nickname = nickname;
          const result = await api("POST", "/api/groups", body);
          flash("Group created", "success");
          window.location.href = "/group/" + result.id;
        })
      );
    }
  }

  // -- one group ----------------------------------------------------------------------------------------------
  if (!page.groupId) return;
  const gid = page.groupId;
  const membersBox = document.getElementById("group-members");
  const streamsBox = document.getElementById("group-streams");
  const usersByName = new Map();

  async function loadGroup() {
    let group;
    try {
      group = await api("GET", "/api/groups/" + gid);
    } catch (err) {
      showError(membersBox, err);
      clear(streamsBox);
      return;
    }
    const members = group.users || [];
    clear(membersBox);
    if (!members.length) membersBox.appendChild(el("div", { class: "empty" }, "No members."));
    else {
      membersBox.appendChild(
        Portal.table(
          [
            { label: "User", cell: (m) => el("span", { class: "member-name" }, m.username) },
            { label: "Name", cell: (m) => [m.first_name, m.last_name].filter(Boolean).join(" ") },
            {
              label: "Role in group",
              cell: (m) => [m.admin && el("span", { class: "badge dark" }, "admin"), m.can_save === false && el("span", { class: "badge" }, "cannot save"), m.is_bot && el("span", { class: "badge" }, "bot")],
            },
            {
              label: "",
              cell: (m) =>
                page.isGroupAdmin &&
                el("button", { class: "danger small remove-member", "data-user-id": m.id, onclick: action(() => removeMember(m)) }, "Remove"),
            },
          ],
          members,
          { class: "members", rowAttrs: (m) => ({ "data-user-id": m.id }) }
        )
      );
    }
    clear(streamsBox);
    const streams = group.streams || [];
    const filters = group.filters || [];
    if (!streams.length && !filters.length) streamsBox.appendChild(el("div", { class: "empty" }, "No streams or filters."));
    if (streams.length) streamsBox.appendChild(el("p", {}, el("strong", {}, "Streams: "), streams.map((s) => el("span", { class: "badge" }, s.name))));
    if (filters.length)
      streamsBox.appendChild(
        el("p", {}, el("strong", {}, "Filters: "), filters.map((f) => el("span", { class: "badge" }, `${f.name} (#${f.id})`)))
      );
  }

  async function removeMember(m) {
    if (!window.confirm(`Remove ${m.username} from this group?`)) return;
    await api("DELETE", `/api/groups/${gid}/users/${m.id}`);
    flash(`${m.username} removed`, "success");
    await loadGroup();
  }

  async function loadUserChoices() {
    if (!user.has("Manage users")) return;
    try {
      const data = await api("GET", "/api/user" + query({ numPerPage: 500 }));
      const list = document.getElementById("user-choices");
      for (const u of data.users || []) {
        usersByName.set(u.username, u.id);
        list.appendChild(el("option", { value: u.username }));
      }
    } catch (err) {
      /* without the user list, members are added by user id */
    }
  }

  async function resolveUser(text) {
    text = text.trim();
    if (/^\d+$/.test(text)) return Number(text);
    if (usersByName.has(text)) return usersByName.get(text);
    const data = await api("GET", "/api/user" + query({ username: text }));
    const match = (data.users || []).find((u) => u.username === text);
    if (!match) throw new Error(`no user named ${text}`);
    return match.id;
  }

  async function loadSources() {
    const box = document.getElementById("group-sources");
    try {
      const data = await api("GET", "/api/sources" + query({ group_ids: gid, numPerPage: 25 }));
      clear(box);
      if (!data.sources.length) {
        box.appendChild(el("div", { class: "empty" }, "No sources saved to this group."));
        return;
      }
      box.appendChild(
        Portal.table(
          [
            { label: "Source", cell: (s) => el("a", { href: "/source/" + encodeURIComponent(s.id) }, s.id) },
            { label: "RA, Dec (°)", class: "num", cell: (s) => `${fmt(s.ra, 5)} ${fmt(s.dec, 5)}` },
            { label: "Saved", cell: (s) => fmtTime(s.saved_at) },
          ],
          data.sources
        )
      );
      if (data.totalMatches > data.sources.length)
        box.appendChild(el("p", { class: "muted small" }, `${data.totalMatches} in all — `, el("a", { href: "/sources" }, "search them")));
    } catch (err) {
      // Private groups one is not in cannot be read.
      clear(box).appendChild(el("div", { class: "empty" }, err.message));
    }
  }

  if (page.isGroupAdmin) {
    const form = document.getElementById("add-member-form");
    form.classList.remove("hidden");
    form.addEventListener(
      "submit",
      action(async () => {
        const input = document.getElementById("add-member-user");
        const uid = await resolveUser(input.value);
        await api("POST", `/api/groups/${gid}/users`, {
          userID: uid,
          admin: document.getElementById("add-member-admin").checked,
          canSave: document.getElementById("add-member-cansave").checked,
        });
        input.value = "";
        flash("Member added", "success");
        await loadGroup();
      })
    );
    loadUserChoices();
  }
  loadGroup();
  loadSources();
});
