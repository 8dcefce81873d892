/* The profile (account and API tokens) and user management (roles) pages. */
"use strict";

Portal.ready(() => {
  const { el, api, query, fmtTime, showError, clear, flash, action } = Portal;
  const page = Portal.pageData();

  // -- profile --------------------------------------------------------------------------------------------
  async function loadProfile(box) {
    let me;
    try {
      me = await api("GET", "/api/internal/profile");
    } catch (err) {
      showError(box, err);
      return;
    }
    const rows = [
      ["Username", me.username],
      ["Name", [me.first_name, me.last_name].filter(Boolean).join(" ") || "—"],
      ["Email", me.contact_email || "—"],
      ["Roles", (me.roles || []).map((r) => el("span", { class: "badge dark" }, r))],
      ["Permissions", (me.acls || []).map((a) => el("span", { class: "badge" }, a))],
      ["Groups", (me.groups || []).map((g) => el("a", { href: "/group/" + g.id, class: "badge" }, g.name))],
      ["Account expires", me.expiration_date ? fmtTime(me.expiration_date) : "never"],
    ];
    clear(box).appendChild(
      el("table", { class: "data kv" }, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))))
    );
  }

  async function loadTokens() {
    const box = document.getElementById("token-list");
    let tokens;
    try {
      tokens = await api("GET", "/api/internal/tokens");
    } catch (err) {
      showError(box, err);
      return;
    }
    clear(box);
    if (!tokens.length) {
      box.appendChild(el("div", { class: "empty", id: "no-tokens" }, "No tokens."));
      return;
    }
    box.appendChild(
      Portal.table(
        [
          { label: "Name", cell: (t) => el("span", { class: "token-name" }, t.name) },
          { label: "Starts with", class: "num", cell: (t) => (t.prefix || "") + "…" },
          { label: "Created", cell: (t) => fmtTime(t.created_at) },
          { label: "Last used", cell: (t) => (t.last_used ? fmtTime(t.last_used) : "never") },
          { label: "", cell: (t) => el("button", { class: "danger small revoke-token", onclick: action(() => revoke(t)) }, "Revoke") },
        ],
        tokens,
        { class: "tokens", rowAttrs: (t) => ({ "data-token-id": t.id }) }
      )
    );
  }

  async function revoke(t) {
    if (!window.confirm(`Revoke the token “${t.name}”? Scripts using it will stop working.`)) return;
    await api("DELETE", "/api/internal/tokens/" + t.id);
    document.getElementById("token-shown").classList.add("hidden");
    flash("Token revoked", "success");
    await loadTokens();
  }

  const profileBox = document.getElementById("profile-details");
  if (profileBox) {
    loadProfile(profileBox);
    loadTokens();
    document.getElementById("token-form").addEventListener(
      "submit",
      action(async () => {
        const nameInput = document.getElementById("token-name");
        const result = await api("POST", "/api/internal/tokens", { name: nameInput.value.trim() });
        nameInput.value = "";
        document.getElementById("token-value").textContent = result.token;
        document.getElementById("token-shown").classList.remove("hidden");
        await loadTokens();
      })
    );
  }

  // -- user management -------------------------------------------------------------------------------------------
  const usersBox = document.getElementById("users-list");
  if (!usersBox) return;
  let roles = [];
  let pageNo = 1;
  const perPage = 100;

  function roleCell(u) {
    const badges = (u.roles || []).map((r) =>
      el(
        "span",
        { class: "badge dark role", "data-role": r },
        r,
        page.canEditRoles &&
          el(
            "button",
            {
              class: "small secondary remove-role",
              title: `take ${r} away`,
              style: "margin-left:.3rem;padding:0 .3rem",
              onclick: action(async () => {
                await api("DELETE", `/api/user/${u.id}/roles/${encodeURIComponent(r)}`);
                flash(`${r} taken from ${u.username}`, "success");
                await loadUsers();
              }),
            },
            "×"
          )
      )
    );
    if (!page.canEditRoles) return badges;
    const missing = roles.filter((r) => !(u.roles || []).includes(r.id));
    if (!missing.length) return badges;
    const select = el("select", { class: "add-role-select" }, missing.map((r) => el("option", { value: r.id }, r.id)));
    const add = el(
      "button",
      {
        class: "small add-role",
        onclick: action(async () => {
          await api("POST", `/api/user/${u.id}/roles`, { roleIds: [select.value] });
          flash(`${select.value} given to ${u.username}`, "success");
          await loadUsers();
        }),
      },
      "Add role"
    );
    return [badges, el("span", { class: "inline-form", style: "margin-top:.3rem" }, select, add)];
  }

  async function loadUsers() {
    const text = document.getElementById("user-search-text").value.trim();
    let data;
    try {
      if (!roles.length) roles = await api("GET", "/api/roles");
      data = await api("GET", "/api/user" + query({ pageNumber: pageNo, numPerPage: perPage, username: text }));
    } catch (err) {
      showError(usersBox, err);
      return;
    }
    clear(usersBox);
    const users = data.users || [];
    if (!users.length) {
      usersBox.appendChild(el("div", { class: "empty" }, "No users match."));
      return;
    }
    usersBox.appendChild(
      Portal.table(
        [
          { label: "Id", class: "num", cell: (u) => String(u.id) },
          { label: "Username", cell: (u) => [el("span", { class: "user-name" }, u.username), u.is_bot && el("span", { class: "badge" }, "bot")] },
          { label: "Name", cell: (u) => [u.first_name, u.last_name].filter(Boolean).join(" ") },
          { label: "Roles", cell: roleCell },
          { label: "Groups", cell: (u) => (u.groups || []).filter((g) => !g.single_user_group).map((g) => el("a", { href: "/group/" + g.id, class: "badge" }, g.name)) },
          { label: "Joined", cell: (u) => fmtTime(u.created_at) },
        ],
        users,
        { class: "users", rowAttrs: (u) => ({ "data-user-id": u.id }) }
      )
    );
    usersBox.appendChild(
      Portal.pager(pageNo, perPage, data.totalMatches || users.length, (p) => {
        pageNo = p;
        loadUsers();
      })
    );
  }

  document.getElementById("user-search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    pageNo = 1;
    loadUsers();
  });
  loadUsers();
});
