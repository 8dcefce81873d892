"""Tables of social-auth-core's storage (the methods live in astroportal.auth.storage)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped
from .users import User


class UserSocialAuth(Base, Timestamped):
    """A user's identity at an external provider."""

    __tablename__ = "social_auth_usersocialauth"
    __table_args__ = (UniqueConstraint("provider", "uid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    uid: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    extra_data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")

    user: Mapped[User] = relationship()


class SocialNonce(Base):
    __tablename__ = "social_auth_nonce"
    __table_args__ = (UniqueConstraint("server_url", "timestamp", "salt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_url: Mapped[str] = mapped_column(String(255), nullable=False)
    timestamp: Mapped[int] = mapped_column(Integer, nullable=False)
    salt: Mapped[str] = mapped_column(String(40), nullable=False)


class SocialAssociation(Base):
    __tablename__ = "social_auth_association"
    __table_args__ = (UniqueConstraint("server_url", "handle"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_url: Mapped[str] = mapped_column(String(255), nullable=False)
    handle: Mapped[str] = mapped_column(String(255), nullable=False)
    secret: Mapped[str] = mapped_column(String(255), nullable=False)
    issued: Mapped[int] = mapped_column(Integer, nullable=False)
    lifetime: Mapped[int] = mapped_column(Integer, nullable=False)
    assoc_type: Mapped[str] = mapped_column(String(64), nullable=False)


class SocialCode(Base):
    __tablename__ = "social_auth_code"
    __table_args__ = (UniqueConstraint("code", "email"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(200), nullable=False)
    code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    verified: Mapped[bool] = mapped_column(nullable=False, server_default="false")


class SocialPartial(Base):
    __tablename__ = "social_auth_partial"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default="{}")
    next_step: Mapped[int] = mapped_column(Integer, nullable=False)
    backend: Mapped[str] = mapped_column(String(32), nullable=False)
