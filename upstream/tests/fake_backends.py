"""Test-only login pieces, imported by a portal process that tests start (PYTHONPATH includes upstream/tests).

`FakeGoogleOAuth2` is Google's backend pointed at the test's provider (oauth_fake_provider.FakeProvider), whose
port comes from $ASTROPORTAL_TEST_OAUTH_PORT. `map_groups` is the kind of step a distribution adds through
`server.auth.pipeline_extra`: it puts the user into the portal groups named by the provider's `groups` claim.
"""

from __future__ import annotations

import os
from typing import Any

from social_core.backends.google import GoogleOAuth2

PORT_VARIABLE = "ASTROPORTAL_TEST_OAUTH_PORT"
PROVIDER_URL = f"http://127.0.0.1:{os.environ.get(PORT_VARIABLE, '9')}"


class FakeGoogleOAuth2(GoogleOAuth2):
    name = "fake-oauth2"
    title = "Fake Google"
    AUTHORIZATION_URL = f"{PROVIDER_URL}/authorize"
    ACCESS_TOKEN_URL = f"{PROVIDER_URL}/token"
    USERINFO_URL = f"{PROVIDER_URL}/userinfo"

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        response = self.get_json(self.USERINFO_URL, headers={"Authorization": f"Bearer {access_token}"})
        self.validate_email_verified(response)
        return response


def map_groups(strategy: Any, backend: Any, response: dict, user: Any = None, *args: Any, **kwargs: Any) -> None:
    """Make `user` a member of each portal group named in the provider's `groups` claim (created if missing)."""
    from sqlalchemy import select

    from astroportal.models import Group, GroupUser

    if user is None:
        return
    session = strategy.session
    for name in response.get("groups") or []:
        group = session.scalar(select(Group).where(Group.name == name))
        if group is None:
            group = Group(name=name, nickname=name)
            session.add(group)
            session.flush()
        member = session.scalar(select(GroupUser).where(GroupUser.group_id == group.id, GroupUser.user_id == user.id))
        if member is None:
            session.add(GroupUser(group_id=group.id, user_id=user.id))
    session.flush()
