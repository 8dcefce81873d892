"""Blocking work (long database queries, serialising long answers) run off the IOLoop, in a small thread pool.

While a handler awaits `offload(fn, ...)`, the IOLoop goes on answering other requests (the health probe,
pages). The pool is small on purpose: a burst of heavy reads queues there instead of taking every core.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from sqlalchemy.orm import Session
from tornado.ioloop import IOLoop

T = TypeVar("T")

#: Threads for offloaded work in one app process.
WORKERS = 2

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="astroportal-offload")
    return _pool


async def offload(fn: Callable[..., T], *args: Any, release: Session | None = None, **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` in the pool and return its result (or raise its exception) on the IOLoop.

    Whatever `fn` uses (the request's database session, say) must not be used by the IOLoop meanwhile.
    `release`: a session whose transaction (so far only reads, such as the credentials check) is ended first,
    so that its connection goes back to the pool while the work waits for a thread; otherwise a queue of heavy
    requests holds every connection and the IOLoop itself blocks waiting for one (the portal stalls).
    """
    if release is not None:
        release.commit()
    return await IOLoop.current().run_in_executor(_executor(), functools.partial(fn, *args, **kwargs))
