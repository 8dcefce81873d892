"""The profile (API tokens) and user role management for administrators."""

from __future__ import annotations

from .common import PageHandler, login_required, require_acl


class ProfilePage(PageHandler):
    @login_required
    def get(self) -> None:
        """The current user: roles, groups and API tokens (create, shown once; list; revoke)."""
        self.render_page("profile.html")


class UserManagementPage(PageHandler):
    @login_required
    def get(self) -> None:
        """Every user with their roles; system admins give and take roles."""
        require_acl(self.current_user, "Manage users")
        # Roles are given and taken by system admins only (the API says so too).
        self.render_page("user_management.html", page_data={"canEditRoles": self.current_user.is_system_admin})


ROUTES = [
    (r"/profile/?", ProfilePage),
    (r"/user_management/?", UserManagementPage),
]
