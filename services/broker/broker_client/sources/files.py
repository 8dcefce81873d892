"""Avro container files of ZTF/Fink alerts (fastavro reads the container, avro_decode the records), for
backfills and replays.

The cursor keeps, per file (by absolute path, with its size and modification time), how many records have been
confirmed; a replay resumes after them, and `from_start` sends everything again (changing nothing in the portal).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import fastavro

from ..avro_decode import decoder_for
from ..cursor import Cursor
from ..pipeline import Item
from ..projection import reader_schema
from . import Batch


def expand(paths: list[Path]) -> list[Path]:
    """Files as given, folders as every *.avro under them (sorted); FileNotFoundError naming a missing path."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*.avro") if q.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return list(dict.fromkeys(q.resolve() for q in out))


class FileSource:
    name = "files"

    def __init__(self, paths: list[Path], cursor: Cursor, batch_size: int, *, from_start: bool = False,
                 stop: threading.Event | None = None) -> None:
        self.files = expand(paths)
        self.cursor = cursor
        self.batch_size = batch_size
        self.from_start = from_start
        self.stop = stop or threading.Event()
        self.skipped = 0
        self.current: str | None = None

    def _done(self, path: Path) -> int:
        state = self.cursor.data.get(str(path))
        st = path.stat()
        if self.from_start or not state or state.get("size") != st.st_size or state.get("mtime") != st.st_mtime:
            return 0
        return int(state.get("done", 0))

    def _committer(self, path: Path, done: int):
        st = path.stat()

        def commit() -> None:
            self.cursor.data[str(path)] = {"done": done, "size": st.st_size, "mtime": st.st_mtime}
            self.cursor.save()

        return commit

    def records(self, path: Path) -> Iterator[Item]:
        """Every record of one file as an Item; a file or record that cannot be read becomes a failed Item."""
        try:
            fh = open(path, "rb")
        except OSError as exc:
            yield Item(where=str(path), error=f"cannot open the file: {exc}", payload={"path": str(path)})
            return
        with fh:
            try:
                reader = fastavro.reader(fh)
            except Exception as exc:  # noqa: BLE001 - fastavro raises several types for a non-Avro file
                yield Item(where=str(path), error=f"not an Avro container file: {exc}", payload={"path": str(path)})
                return
            fast = decoder_for(reader.writer_schema)
            narrow = reader_schema(reader.writer_schema) if fast is None else None
            if fast is not None:  # the generated decoder (avro_decode): the mapping's fields only, much cheaper
                fh.seek(0)
                reader = fast.records(fastavro.block_reader(fh))
            elif narrow is not None:
                try:  # only the fields the mapping reads; a schema that cannot be narrowed is read whole
                    fh.seek(0)
                    reader = fastavro.reader(fh, reader_schema=narrow)
                except Exception:  # noqa: BLE001
                    fh.seek(0)
                    reader = fastavro.reader(fh)
            index = 0
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except Exception as exc:  # noqa: BLE001 - a truncated or corrupt block
                    yield Item(where=f"{path}#{index}", error=f"the file is corrupt from record {index} on: {exc}",
                               payload={"path": str(path), "index": index})
                    return
                topic = record.get("topic") if isinstance(record, dict) else None
                yield Item(where=f"{path}#{index}", record=record, topic=topic,
                           payload={"path": str(path), "index": index})
                index += 1

    def batches(self) -> Iterator[Batch]:
        for path in self.files:
            self.current = str(path)
            skip = self._done(path)
            items: list[Item] = []
            count = 0
            for item in self.records(path):
                count += 1
                if count <= skip:
                    self.skipped += 1
                    continue
                items.append(item)
                if len(items) >= self.batch_size:
                    yield Batch(items, self._committer(path, count))
                    items = []
                    if self.stop.is_set():
                        return
            if items:
                yield Batch(items, self._committer(path, count))
            elif count == 0 or count == skip:
                self._committer(path, count)()
            if self.stop.is_set():
                return

    def position(self) -> dict[str, Any]:
        return {"file": self.current, "cursor_file": str(self.cursor.path)}

    def close(self) -> None:
        pass
