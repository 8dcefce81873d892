"""Users, roles, ACLs, groups and API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped
from ..validate import NAME_MAX

role_acls = Table(
    "role_acls",
    Base.metadata,
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column("acl_id", ForeignKey("acls.id", ondelete="CASCADE"), primary_key=True),
)

user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)

user_acls = Table(
    "user_acls",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("acl_id", ForeignKey("acls.id", ondelete="CASCADE"), primary_key=True),
)


class ACL(Base):
    """A named permission, such as 'Upload data'."""

    __tablename__ = "acls"
    id: Mapped[str] = mapped_column(String, primary_key=True)


class Role(Base):
    """A named set of ACLs, such as 'Full user'."""

    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    acls: Mapped[list[ACL]] = relationship(secondary=role_acls, lazy="selectin")


class User(Base, Timestamped):
    __tablename__ = "users"
    # Usernames are unique ignoring case: "Alice" and "alice" would be one person to everyone reading them.
    __table_args__ = (Index("ix_users_username_lower", func.lower(text("username")), unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, nullable=False)
    first_name: Mapped[str | None] = mapped_column(String)
    last_name: Mapped[str | None] = mapped_column(String)
    contact_email: Mapped[str | None] = mapped_column(String)
    oauth_uid: Mapped[str | None] = mapped_column(String, unique=True)
    is_bot: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    preferences: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    expiration_date: Mapped[datetime | None] = mapped_column(DateTime)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles)
    extra_acls: Mapped[list[ACL]] = relationship(secondary=user_acls)
    group_users: Mapped[list["GroupUser"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    tokens: Mapped[list["Token"]] = relationship(
        back_populates="created_by", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def acl_names(self) -> set[str]:
        """Every ACL the user holds, through roles or directly.

        Authentication preloads this in the same query as the user (see domain.accounts), so that checking a
        permission costs no extra round trip on every request.
        """
        cached = self.__dict__.get("_acl_cache")
        if cached is not None:
            return cached
        names = {acl.id for acl in self.extra_acls}
        for role in self.roles:
            names.update(acl.id for acl in role.acls)
        return names

    def forget_acls(self) -> None:
        """Drop the preloaded ACLs (after a role change in the same session)."""
        self.__dict__.pop("_acl_cache", None)

    @property
    def is_system_admin(self) -> bool:
        return "System admin" in self.acl_names

    @property
    def role_names(self) -> list[str]:
        return sorted(r.id for r in self.roles)


class Group(Base, Timestamped):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, nullable=False)
    nickname: Mapped[str | None] = mapped_column(String)
    description: Mapped[str | None] = mapped_column(String)
    private: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    # A user's own group, holding data shared with that user alone.
    single_user_group: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")

    group_users: Mapped[list["GroupUser"]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True
    )


class GroupUser(Base):
    """A membership: a user in a group, perhaps as its admin, perhaps allowed to save sources."""

    __tablename__ = "group_users"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    can_save: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")

    group: Mapped[Group] = relationship(back_populates="group_users")
    user: Mapped[User] = relationship(back_populates="group_users")


class Token(Base):
    """An API token. Only its SHA-256 hash is stored; the token itself is shown once, at creation."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    # The first characters, so that a person can tell tokens apart in a list.
    prefix: Mapped[str] = mapped_column(String(8), nullable=False)
    name: Mapped[str] = mapped_column(String, nullable=False)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
    last_used: Mapped[datetime | None] = mapped_column(DateTime)

    created_by: Mapped[User] = relationship(back_populates="tokens")


class UserSession(Base):
    """A browser session. The cookie holds a random key; only its SHA-256 hash is stored, so that logging out
    (deleting the row) ends the session for every copy of the cookie, and a database dump yields no cookie."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
    last_seen: Mapped[datetime] = mapped_column(DateTime, server_default=func.now(), nullable=False)
