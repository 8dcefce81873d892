"""Where alerts come from, behind one interface: `batches()` yields Batch(items, commit), and `commit()` is
called only once the portal has confirmed every item (or dead-lettered it); `position()` describes the cursor
and lag for the status. A source that reads in the caller's thread yields None when a wait found nothing (an
idle stream), so that the caller commits the batches that were confirmed meanwhile instead of holding them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

from ..pipeline import Item


@dataclass
class Batch:
    items: list[Item]
    commit: Callable[[], None]


class Source(Protocol):
    name: str

    def batches(self) -> Iterator[Batch | None]:
        ...

    def position(self) -> dict[str, Any]:
        ...

    def close(self) -> None:
        ...
