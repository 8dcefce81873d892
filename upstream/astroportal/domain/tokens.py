"""API tokens as their owners see them: listed without their secret, created once, revoked."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..models import Token, User
from . import checks
from .accounts import create_token


def serialize_token(t: Token) -> dict[str, Any]:
    """A token without its hash: the prefix is enough to tell tokens apart."""
    return {
        "id": t.id,
        "name": t.name,
        "prefix": t.prefix,
        "user_id": t.created_by_id,
        "created_at": t.created_at,
        "last_used": t.last_used,
    }


def list_tokens(session: Session, actor: User, user_id: int | None = None) -> list[dict]:
    """The actor's tokens, or (for system admins) another user's."""
    owner = actor.id if user_id is None else user_id
    if owner != actor.id and not actor.is_system_admin:
        raise ApiError(403, "only a system admin may list another user's tokens")
    rows = session.scalars(select(Token).where(Token.created_by_id == owner).order_by(Token.id))
    return [serialize_token(t) for t in rows]


def new_token(session: Session, actor: User, data: dict) -> dict:
    """Create a token `{name}` for the actor, or `{name, user_id}` for another user (system admins only).

    The token text is in this answer only: the database keeps its hash."""
    name = checks.text(data, "name", required=True, nullable=False)
    user_id = checks.ident(data, "user_id")
    owner = actor
    if user_id is not checks.MISSING and user_id != actor.id:
        if not actor.is_system_admin:
            raise ApiError(403, "only a system admin may create a token for another user")
        owner = session.get(User, user_id)
        if owner is None:
            raise ApiError(400, f"`user_id`: no user with id {user_id}")
    row, text = create_token(session, owner, name)
    session.commit()
    return {"token_id": row.id, "token": text, "user_id": owner.id}


def revoke_token(session: Session, actor: User, token_id: int) -> None:
    """Delete a token (one's own, or any for system admins); it stops working at once."""
    row = session.get(Token, token_id)
    if row is None or (row.created_by_id != actor.id and not actor.is_system_admin):
        # Another user's token is not admitted to exist.
        raise ApiError(404, f"token {token_id} not found")
    session.delete(row)
    session.commit()
