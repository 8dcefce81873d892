"""Tables of social-auth-core's storage.

The rows carry social-core's instance behaviour (its storage mixins, plus `save`); the queries social-core
runs against them live in astroportal.auth.storage.
"""

from __future__ import annotations

from typing import Any

from social_core.storage import AssociationMixin, CodeMixin, NonceMixin, PartialMixin, UserMixin
from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship
from sqlalchemy.orm.attributes import flag_modified

from .base import Base, Timestamped
from .users import User

# There is no id_key column: the identifier's kind (such as "sub") is kept in extra_data under this key.
ID_KEY_FIELD = "_id_key"


class _Saved:
    """`save()` as social-core calls it: write the row through the session that holds it."""

    _json_fields: tuple[str, ...] = ()

    def save(self) -> Any:
        session = object_session(self)
        if session is None:
            raise RuntimeError(f"{type(self).__name__} row is not attached to a session; create it through the storage")
        # JSONB columns are plain dicts, mutated in place by social-core: SQLAlchemy must be told.
        for name in self._json_fields:
            flag_modified(self, name)
        session.flush()
        return self


class UserSocialAuth(_Saved, Base, Timestamped, UserMixin):
    """A user's identity at an external provider."""

    __tablename__ = "social_auth_usersocialauth"
    __table_args__ = (UniqueConstraint("provider", "uid"),)
    _json_fields = ("extra_data",)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    uid: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    extra_data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")

    user: Mapped[User] = relationship()

    @property
    def id_key(self) -> str:  # type: ignore[override]
        """The kind of identifier `uid` is ("sub", "email", ...); "" for a row stored before it was recorded."""
        return str((self.extra_data or {}).get(ID_KEY_FIELD, ""))

    @id_key.setter
    def id_key(self, value: str) -> None:
        self.extra_data = {**(self.extra_data or {}), ID_KEY_FIELD: value or ""}

    def set_extra_data(self, extra_data: dict[str, Any] | None = None) -> bool:
        """Merge the provider's data into extra_data (a new dict, so the change is written) and save."""
        if not extra_data:
            return False
        merged = {**(self.extra_data or {}), **extra_data}
        if merged == self.extra_data:
            return False
        self.extra_data = merged
        if object_session(self) is not None:
            self.save()
        return True


class SocialNonce(_Saved, Base, NonceMixin):
    __tablename__ = "social_auth_nonce"
    __table_args__ = (UniqueConstraint("server_url", "timestamp", "salt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_url: Mapped[str] = mapped_column(String(255), nullable=False)
    timestamp: Mapped[int] = mapped_column(Integer, nullable=False)
    salt: Mapped[str] = mapped_column(String(40), nullable=False)


class SocialAssociation(_Saved, Base, AssociationMixin):
    __tablename__ = "social_auth_association"
    __table_args__ = (UniqueConstraint("server_url", "handle"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_url: Mapped[str] = mapped_column(String(255), nullable=False)
    handle: Mapped[str] = mapped_column(String(255), nullable=False)
    secret: Mapped[str] = mapped_column(String(255), nullable=False)
    issued: Mapped[int] = mapped_column(Integer, nullable=False)
    lifetime: Mapped[int] = mapped_column(Integer, nullable=False)
    assoc_type: Mapped[str] = mapped_column(String(64), nullable=False)


class SocialCode(_Saved, Base, CodeMixin):
    """An email-validation code. There is no timestamp column, so a code read back from the table counts as
    expired unless SOCIAL_AUTH_EMAIL_VALIDATION_EXPIRED_THRESHOLD is 0."""

    __tablename__ = "social_auth_code"
    __table_args__ = (UniqueConstraint("code", "email"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(200), nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    verified: Mapped[bool] = mapped_column(nullable=False, server_default="false")


class SocialPartial(_Saved, Base, PartialMixin):
    """A paused pipeline (a step that needs more input from the person logging in)."""

    __tablename__ = "social_auth_partial"
    _json_fields = ("data",)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    next_step: Mapped[int] = mapped_column(Integer, nullable=False)
    backend: Mapped[str] = mapped_column(String(32), nullable=False)
