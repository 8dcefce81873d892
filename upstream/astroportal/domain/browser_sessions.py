"""Browser sessions kept in the database: started at login, ended at logout or after an idle or absolute limit.

The cookie carries a random key; the table holds its SHA-256 hash. A copied cookie therefore stops working as
soon as its row is gone (logout), and a session cannot outlive `server.session.max_hours` or stay unused for
more than `server.session.idle_minutes`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from ..models import User, UserSession
from .accounts import _acls_of, _groups_of, _preload

# last_seen is written at most this often per session: the hot path stays read-only between writes.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Lifetimes:
    """How long a session may stay unused (idle) and live at all (absolute)."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def from_config(cls, cfg) -> "Lifetimes":
        idle = float(cfg.get("server.session.idle_minutes") or 720)
        absolute = float(cfg.get("server.session.max_hours") or 168)
        return cls(idle=timedelta(minutes=idle), absolute=timedelta(hours=absolute))


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start_session(session: Session, user: User, limits: Lifetimes) -> str:
    """Record a new session for `user` (not committed); return the key the cookie carries. The user's sessions
    that have run out are deleted on the way, so that abandoned ones do not pile up."""
    now = datetime.utcnow()
    session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id,
            (UserSession.last_seen < now - limits.idle) | (UserSession.created_at < now - limits.absolute),
        )
    )
    key = secrets.token_urlsafe(32)
    session.add(UserSession(key_hash=_hash(key), user_id=user.id))
    session.flush()
    return key


def end_session(session: Session, key: str) -> None:
    """Forget the session with `key` (committed): every copy of its cookie stops working."""
    session.execute(delete(UserSession).where(UserSession.key_hash == _hash(key)))
    session.commit()


# Built once, like the token lookup: every request of a browser runs it (the user, the session and the ACLs in one
# round trip), and the groups.
_USER_BY_SESSION = (
    select(User, UserSession.id, UserSession.created_at, UserSession.last_seen, _acls_of(User.id),
           _groups_of(User.id))
    .join(UserSession, UserSession.user_id == User.id)
    .where(UserSession.key_hash == bindparam("key_hash"))
)


def user_for_session(session: Session, key: str, limits: Lifetimes, now: datetime | None = None) -> User | None:
    """The user of a live session, with ACLs and group ids preloaded; None for an unknown, idle or too old session
    (which is then deleted)."""
    now = now or datetime.utcnow()
    found = session.execute(_USER_BY_SESSION, {"key_hash": _hash(key)}).first()
    if found is None:
        return None
    user, sid, created_at, last_seen, acls, group_ids = found
    if now - last_seen > limits.idle or now - created_at > limits.absolute:
        session.execute(delete(UserSession).where(UserSession.id == sid))
        session.commit()
        return None
    if now - last_seen > TOUCH_EVERY:
        session.execute(update(UserSession).where(UserSession.id == sid).values(last_seen=now))
        session.commit()
    _preload(user, acls, group_ids)
    return user


def csrf_token(secret: str, key: str) -> str:
    """The anti-forgery token of the session with `key`: pages embed it, and state-changing requests that
    the session cookie authenticates must send it back. Derived (HMAC) so that nothing more is stored."""
    return hmac.new(secret.encode(), b"csrf:" + key.encode(), hashlib.sha256).hexdigest()


def csrf_token_matches(secret: str, key: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(secret, key), sent)
