"""Groups: the list (and creating one), and one group's members (admins add and remove them)."""

from __future__ import annotations

from ...domain.groups import is_group_admin, visible_group
from ...errors import not_found
from .common import PageHandler, login_required
from ...validate import shown, small_id


class GroupsPage(PageHandler):
    @login_required
    def get(self) -> None:
        """The user's groups and the other groups they may see."""
        self.render_page("groups.html")


class GroupPage(PageHandler):
    @login_required
    def get(self, group_id: str) -> None:
        """One group: its members, streams and filters; its admins may add and remove members."""
        if small_id(group_id) is None:
            raise not_found(f"group {shown(group_id)}")
        group = visible_group(self.session, self.current_user, int(group_id))
        admin = is_group_admin(self.session, self.current_user, group.id)
        self.render_page(
            "group.html",
            group=group,
            page_data={"groupId": group.id, "isGroupAdmin": admin},
        )


ROUTES = [
    (r"/groups/?", GroupsPage),
    (r"/group/([^/]+)/?", GroupPage),
]
