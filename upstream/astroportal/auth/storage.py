"""social-core's storage over the portal's SQLAlchemy models.

social-core calls its storage through class methods (`storage.user.get_social_auth(...)`), with no way to pass a
database session. `bind_storage(session, cfg)` therefore builds, per request, subclasses that carry the
request's session and configuration. Everything but nonces goes through that session, so that a login is one
transaction. Nonces (the OAuth2 `state` values) are written and consumed in transactions of their own: a state
that was used must stay used even when the rest of the login fails and is rolled back.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
from typing import Any

from social_core.identifiers import identifier_matches
from social_core.storage import (
    AssociationMixin,
    BaseStorage,
    CodeMixin,
    NonceMixin,
    PartialMixin,
    UserMixin,
)
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import extension_points as ep
from ..config import Config
from ..domain import accounts
from ..models import SocialAssociation, SocialCode, SocialNonce, SocialPartial, User, UserSocialAuth
from ..models.social import ID_KEY_FIELD

# Nonces of logins that were started and never completed are dropped after this long.
NONCE_MAX_AGE = 24 * 3600
USERNAME_MAX_LENGTH = 255


class _Bound:
    """What a bound storage class carries (filled in by bind_storage)."""

    session: Session
    cfg: Config


class PortalUserStorage(_Bound, UserMixin):
    """Users and their provider identities (UserSocialAuth rows)."""

    @classmethod
    def user_model(cls) -> type[User]:
        return User

    @classmethod
    def username_max_length(cls) -> int:
        return USERNAME_MAX_LENGTH

    @classmethod
    def get_username(cls, user: User) -> str:
        return user.username

    @classmethod
    def user_exists(cls, *args: Any, **kwargs: Any) -> bool:
        return cls.session.scalar(select(User.id).filter_by(**kwargs).limit(1)) is not None

    @classmethod
    def create_user(cls, *args: Any, username: str, email: str | None = None, **kwargs: Any) -> User:
        """A user created at first login: the configured default role, their own group, the sitewide group."""
        role = ep.DEFAULT_ROLE.read(cls.cfg)
        return accounts.create_user(
            cls.session,
            username,
            [role] if role else [],
            first_name=kwargs.get("first_name") or None,
            last_name=kwargs.get("last_name") or None,
            contact_email=email or None,
        )

    @classmethod
    def changed(cls, user: User) -> None:
        cls.session.add(user)
        cls.session.flush()

    @classmethod
    def get_user(cls, pk: Any) -> User | None:
        try:
            return cls.session.get(User, int(pk))
        except (TypeError, ValueError):
            return None

    @classmethod
    def get_users_by_email(cls, email: str) -> list[User]:
        return list(cls.session.scalars(select(User).where(func.lower(User.contact_email) == email.lower())))

    @classmethod
    def get_social_auth(cls, provider: str, uid: str, id_key: str | None = None) -> UserSocialAuth | None:
        """The identity `uid` at `provider`; with `id_key`, only if it was stored as that kind of identifier."""
        row = cls.session.scalar(
            select(UserSocialAuth).where(UserSocialAuth.provider == provider, UserSocialAuth.uid == str(uid))
        )
        if row is None or (id_key is not None and row.id_key != id_key):
            return None
        return row

    @classmethod
    def get_social_auth_by_extra_data(
        cls, provider: str, key: str, value: str, id_key: str = ""
    ) -> UserSocialAuth | None:
        rows = list(
            cls.session.scalars(
                select(UserSocialAuth).where(
                    UserSocialAuth.provider == provider, UserSocialAuth.extra_data[key].astext == str(value)
                )
            )
        )
        rows = [r for r in rows if r.id_key == (id_key or "")]
        # Ambiguous evidence identifies nobody.
        return rows[0] if len(rows) == 1 else None

    @classmethod
    def get_social_auth_for_user(
        cls, user: User, provider: str | None = None, id: int | None = None  # noqa: A002 (social-core's name)
    ) -> list[UserSocialAuth]:
        query = select(UserSocialAuth).where(UserSocialAuth.user_id == user.id)
        if provider:
            query = query.where(UserSocialAuth.provider == provider)
        if id is not None:
            query = query.where(UserSocialAuth.id == id)
        return list(cls.session.scalars(query))

    @classmethod
    def create_social_auth(cls, user: User, uid: str, provider: str, id_key: str = "") -> UserSocialAuth:
        row = UserSocialAuth(user=user, uid=str(uid), provider=provider, extra_data={ID_KEY_FIELD: id_key or ""})
        # A savepoint, so that a duplicate (a login racing another) leaves the transaction usable: social-core
        # then looks the existing row up.
        with cls.session.begin_nested():
            cls.session.add(row)
        return row

    @classmethod
    def migrate_social_auth(
        cls, social: UserSocialAuth, uid: str, id_key: str, *, evidence_key: str | None = None
    ) -> UserSocialAuth:
        """Re-key an identity (for example from email to sub), checking its stored evidence under a row lock."""
        with cls.session.begin_nested():
            cls.session.refresh(social, with_for_update=True)
            if evidence_key is not None:
                stored = (social.extra_data or {}).get(evidence_key)
                if stored is None or not identifier_matches(stored, uid):
                    raise ValueError("stored identifier evidence does not match")
            social.uid = str(uid)
            social.extra_data = {**(social.extra_data or {}), ID_KEY_FIELD: id_key or "", id_key: str(uid)}
            cls.session.flush()
        return social

    @classmethod
    def allowed_to_disconnect(cls, user: User, backend_name: str, association_id: Any = None) -> bool:
        """A person keeps at least one way to log in (API tokens are not one)."""
        others = select(func.count(UserSocialAuth.id)).where(UserSocialAuth.user_id == user.id)
        if association_id is not None:
            others = others.where(UserSocialAuth.id != association_id)
        else:
            others = others.where(UserSocialAuth.provider != backend_name)
        return (cls.session.scalar(others) or 0) > 0

    @classmethod
    def disconnect(cls, entry: UserSocialAuth) -> None:
        cls.session.delete(entry)
        cls.session.flush()


class PortalNonceStorage(_Bound, NonceMixin):
    """One-use values (OAuth2 states), each use committed at once on a connection of its own."""

    @classmethod
    def use(cls, server_url: str, timestamp: int, salt: str) -> bool:
        """Record a nonce; False when it exists already."""
        engine = cls.session.get_bind()
        with engine.begin() as conn:
            conn.execute(
                delete(SocialNonce).where(
                    SocialNonce.server_url == server_url, SocialNonce.timestamp < int(time.time()) - NONCE_MAX_AGE
                )
            )
            inserted = conn.execute(
                insert(SocialNonce)
                .values(server_url=server_url, timestamp=int(timestamp), salt=salt)
                .on_conflict_do_nothing()
                .returning(SocialNonce.id)
            ).first()
        return inserted is not None

    @classmethod
    def consume(cls, server_url: str, timestamp: int, salt: str) -> bool:
        """Remove the nonce; True only for the one caller that removed it."""
        engine = cls.session.get_bind()
        with engine.begin() as conn:
            removed = conn.execute(
                delete(SocialNonce)
                .where(
                    SocialNonce.server_url == server_url,
                    SocialNonce.timestamp == int(timestamp),
                    SocialNonce.salt == salt,
                )
                .returning(SocialNonce.id)
            ).all()
        return len(removed) == 1

    @classmethod
    def get(cls, server_url: str, salt: str) -> SocialNonce | None:
        return cls.session.scalar(
            select(SocialNonce).where(SocialNonce.server_url == server_url, SocialNonce.salt == salt).limit(1)
        )

    @classmethod
    def delete(cls, nonce: SocialNonce) -> None:
        cls.consume(nonce.server_url, nonce.timestamp, nonce.salt)


class PortalAssociationStorage(_Bound, AssociationMixin):
    """OpenID (1/2) associations."""

    @classmethod
    def store(cls, server_url: str, association: Any) -> SocialAssociation:
        row = cls.session.scalar(
            select(SocialAssociation).where(
                SocialAssociation.server_url == server_url, SocialAssociation.handle == association.handle
            )
        ) or SocialAssociation(server_url=server_url, handle=association.handle)
        row.secret = base64.encodebytes(association.secret).decode()
        row.issued = association.issued
        row.lifetime = association.lifetime
        row.assoc_type = association.assoc_type
        cls.session.add(row)
        cls.session.flush()
        return row

    @classmethod
    def get(cls, server_url: str | None = None, handle: str | None = None) -> list[SocialAssociation]:
        query = select(SocialAssociation)
        if server_url is not None:
            query = query.where(SocialAssociation.server_url == server_url)
        if handle is not None:
            query = query.where(SocialAssociation.handle == handle)
        return list(cls.session.scalars(query))

    @classmethod
    def remove(cls, ids_to_delete: list[int]) -> None:
        cls.session.execute(delete(SocialAssociation).where(SocialAssociation.id.in_(list(ids_to_delete))))
        cls.session.flush()


class PortalCodeStorage(_Bound, CodeMixin):
    """Email-validation codes."""

    @classmethod
    def make_code(cls, email: str) -> SocialCode:
        row = SocialCode(email=email, code=cls.generate_code(), verified=False)
        cls.session.add(row)
        # Not stored (no column): valid while this request lasts.
        row.timestamp = datetime.now(timezone.utc)
        row.save()
        return row

    @classmethod
    def get_code(cls, code: str) -> SocialCode | None:
        return cls.session.scalar(select(SocialCode).where(SocialCode.code == code).limit(1))


class PortalPartialStorage(_Bound, PartialMixin):
    """Paused pipelines."""

    @classmethod
    def prepare(cls, backend: str, next_step: int, data: dict[str, Any]) -> SocialPartial:
        row = SocialPartial(backend=backend, next_step=next_step, data=data, token=cls.generate_token())
        cls.session.add(row)
        return row

    @classmethod
    def load(cls, token: str) -> SocialPartial | None:
        return cls.session.scalar(select(SocialPartial).where(SocialPartial.token == token).limit(1))

    @classmethod
    def destroy(cls, token: str) -> None:
        cls.session.execute(delete(SocialPartial).where(SocialPartial.token == token))
        cls.session.flush()


class PortalStorage(BaseStorage):
    user = PortalUserStorage
    nonce = PortalNonceStorage
    association = PortalAssociationStorage
    code = PortalCodeStorage
    partial = PortalPartialStorage

    @classmethod
    def is_integrity_error(cls, exception: BaseException) -> bool:
        return isinstance(exception, IntegrityError)


def bind_storage(session: Session, cfg: Config) -> type[PortalStorage]:
    """A storage class whose parts use `session` and `cfg` (one per request; social-core only sees classes)."""
    bound = {"session": session, "cfg": cfg}
    parts = {
        name: type(f"Bound{base.__name__}", (base,), bound)
        for name, base in (
            ("user", PortalUserStorage),
            ("nonce", PortalNonceStorage),
            ("association", PortalAssociationStorage),
            ("code", PortalCodeStorage),
            ("partial", PortalPartialStorage),
        )
    }
    return type("BoundPortalStorage", (PortalStorage,), parts)
