"""List bodies: a batch of single-object writes applied by the same domain functions in one transaction.

A broker client sends hundreds of alerts a second; one request and one commit per batch instead of one per
object is what makes that rate possible. Every item goes through the same checks as its single-object form,
and the batch is all or nothing: the first refused item rolls everything back and the error names its index,
so a client may send the batch again (the writes are idempotent) or send its items one by one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from sqlalchemy.orm import Session

from ..errors import ApiError
from ..models import User

MAX_BATCH = 1000


def check_items(data: Any, what: str) -> list[dict]:
    """A list body: each item a JSON object, at most MAX_BATCH of them; 400 otherwise."""
    if not isinstance(data, list):
        raise ApiError(400, f"the request body must be a JSON object (one {what}) or a list of them")
    if not data:
        raise ApiError(400, f"the list of {what}s is empty")
    if len(data) > MAX_BATCH:
        raise ApiError(400, f"a batch holds at most {MAX_BATCH} {what}s, got {len(data)}: split it")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ApiError(400, f"item {i}: each {what} must be a JSON object, got {type(item).__name__}")
    return data


@contextmanager
def one_transaction(session: Session) -> Iterator[None]:
    """Run the body with the domain functions' own commits turned into flushes; commit once at the end,
    roll everything back on any error."""
    session.commit = session.flush  # type: ignore[method-assign]
    try:
        yield
    except BaseException:
        del session.commit
        session.rollback()
        raise
    del session.commit
    session.commit()


def apply_each(session: Session, items: list[dict], what: str, write: Callable[[dict], Any]) -> list[Any]:
    """`write(item)` for every item in one transaction; the results in order. An item's error is re-raised
    with its index in the message (same status), after rolling the whole batch back."""
    check_items(items, what)
    results: list[Any] = []
    with one_transaction(session):
        for i, item in enumerate(items):
            try:
                results.append(write(item))
            except ApiError as exc:
                raise ApiError(exc.status_code, f"item {i} of the batch: {exc.message}; nothing was written",
                               {"index": i, **exc.data}) from None
    return results


def post_sources(session: Session, user: User, items: list[dict]) -> list[dict]:
    """The list form of POST /api/sources: each answer also says whether the object was `created`."""
    from ..models import Obj
    from .sources import post_source

    def one(item: dict) -> dict:
        obj_id = item.get("id")
        existed = isinstance(obj_id, str) and "\x00" not in obj_id and session.get(Obj, obj_id) is not None
        return {**post_source(session, user, item), "created": not existed}

    return apply_each(session, items, "source", one)
