"""A fast Avro decoder for alerts that reads only the fields the mapping needs and skips the rest.

Why: fastavro builds a Python object for every field of every point of a ZTF alert's light curve (about a hundred
fields for each of ~50 points) and its reader-schema path, which could skip them, is slower still. That decoding was
most of the client's CPU. Here, once per writer schema, we generate straight-line Python for each record type: a
skipped double is `p += 8`, a skipped nullable field one byte test, a skipped string a varint and a jump, and
consecutive fixed-size skips merge into one addition. The kept fields (projection.ALERT_FIELDS) come out exactly as
fastavro would give them with the narrowed reader schema of projection.reader_schema.

The generated source is kept on the decoder (`AlertDecoder.source`, or `python -m broker_client.avro_decode
SCHEMA.avsc`) for debugging. A schema this module does not handle (a logical type in a kept field, an `error`
record, a union of more than 63 branches) raises Unsupported at build time, and callers then read with fastavro.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from typing import Any, Iterator

from .projection import ALERT_FIELDS

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
FIXED_SIZES = {"null": 0, "boolean": 1, "float": 4, "double": 8}


class Unsupported(Exception):
    """A schema construct this decoder does not handle: read that schema with fastavro instead."""


class AvroDecodeError(ValueError):
    """Bytes that are not a record of the schema (truncated, garbled)."""


_double = struct.Struct("<d").unpack_from
_float = struct.Struct("<f").unpack_from


def _varint(b: bytes, p: int, x: int) -> tuple[int, int]:
    """The rest of a varint whose first byte `x` (> 127) was read; (the zigzag-encoded value, new position)."""
    x &= 0x7F
    shift = 7
    while True:
        c = b[p]
        p += 1
        x |= (c & 0x7F) << shift
        if c < 128:
            return x, p
        shift += 7
        if shift > 63:
            raise AvroDecodeError(f"a varint longer than 10 bytes at byte {p}")


def _bad(what: str, p: int) -> AvroDecodeError:
    return AvroDecodeError(f"{what} at byte {p}")


def _size(t: dict) -> int:
    size = t["size"]
    if type(size) is not int or size < 0:
        raise Unsupported(f"a fixed size of {size!r}")
    return size


def _fullname(name: str, ns: str | None) -> str:
    return name if "." in name or not ns else f"{ns}.{name}"


class _Lines:
    """Generated source lines, with position advances of known size held back and merged (`p += 8` then `p += 1`
    become `p += 9`); reads in between address `p + k` instead."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.k = 0
        self.k_ind = 0

    def pos(self) -> str:
        return f"p + {self.k}" if self.k else "p"

    def advance(self, n: int, ind: int) -> None:
        if n:
            if self.k and self.k_ind != ind:
                self.flush()
            self.k += n
            self.k_ind = ind

    def flush(self) -> None:
        if self.k:
            self.lines.append("    " * self.k_ind + f"p += {self.k}")
            self.k = 0

    def add(self, ind: int, text: str, *, keep_pending: bool = False) -> None:
        if not keep_pending:
            self.flush()
        self.lines.append("    " * ind + text)


class _Generator:
    """Python source for one writer schema; `mode` says what to build: "full" (everything), "skip" (nothing), or
    a dict field name -> mode for the records reached (through unions, arrays, maps) at that point."""

    def __init__(self, schema: Any) -> None:
        self.named: dict[str, tuple[dict, str | None]] = {}
        self.consts: dict[str, Any] = {}
        self.funcs: dict[str, str] = {}  # key -> function name
        self.sources: list[str] = []
        self.todo: list[tuple[str, dict, str | None, Any]] = []
        self.n = 0
        self._register(schema, None)

    # -- named types ------------------------------------------------------------------------------------------
    def _register(self, t: Any, ns: str | None) -> None:
        if isinstance(t, list):
            for branch in t:
                self._register(branch, ns)
        elif isinstance(t, dict):
            kind = t.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                full = _fullname(t["name"], t.get("namespace", ns))
                inner = full.rpartition(".")[0] or None
                self.named[full] = (t, inner)
                if kind != "error":
                    for f in t.get("fields", ()):
                        self._register(f["type"], inner)
            elif kind == "array":
                self._register(t["items"], ns)
            elif kind == "map":
                self._register(t["values"], ns)
            elif isinstance(kind, (dict, list)):
                self._register(kind, ns)

    def _resolve(self, t: Any, ns: str | None) -> tuple[Any, str | None]:
        """A type with named references replaced by their definition (and the namespace that applies inside)."""
        if isinstance(t, str) and t not in PRIMITIVES:
            for name in ([t] if "." in t else ([f"{ns}.{t}"] if ns else []) + [t]):
                if name in self.named:
                    return self.named[name]
            raise Unsupported(f"unknown type {t!r}")
        if isinstance(t, dict):
            kind = t.get("type")
            if kind in ("record", "enum", "fixed"):
                return self.named[_fullname(t["name"], t.get("namespace", ns))]
            if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in PRIMITIVES
                                                  and kind not in ("array", "map", "error")):
                return self._resolve(kind, ns)
        return t, ns

    def var(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def const(self, value: Any) -> str:
        name = self.var("_c")
        self.consts[name] = value
        return name

    # -- smallest encoded size (guards counts read from garbled data) ------------------------------------------
    def min_size(self, t: Any, ns: str | None, seen: frozenset = frozenset()) -> int:
        t, ns = self._resolve(t, ns)
        kind = t if isinstance(t, str) else (t if isinstance(t, list) else t.get("type"))
        if isinstance(kind, list):
            return 1
        if kind in FIXED_SIZES:
            return FIXED_SIZES[kind]
        if kind == "fixed":
            return _size(t)
        if kind == "record":
            key = id(t)
            if key in seen:
                return 0
            return sum(self.min_size(f["type"], ns, seen | {key}) for f in t["fields"])
        return 1  # int, long, bytes, string, enum, array, map: at least one byte

    def const_size(self, t: Any, ns: str | None) -> int | None:
        """The encoded size of every value of type `t` when it is the same for all (None otherwise)."""
        t, ns = self._resolve(t, ns)
        kind = t if isinstance(t, str) else (None if isinstance(t, list) else t.get("type"))
        if kind in FIXED_SIZES:
            return FIXED_SIZES[kind]
        return _size(t) if kind == "fixed" else None

    # -- functions per record type and mode ---------------------------------------------------------------------
    def record_func(self, t: dict, ns: str | None, mode: Any) -> str:
        full = _fullname(t["name"], t.get("namespace", ns))
        key = f"{full}|{json.dumps(mode, sort_keys=True)}"
        if key not in self.funcs:
            prefix = "s_" if mode == "skip" else "r_"
            self.funcs[key] = prefix + "".join(c if c.isalnum() else "_" for c in full) + f"_{len(self.funcs)}"
            self.todo.append((self.funcs[key], t, ns, mode))
        return self.funcs[key]

    def build_record(self, fname: str, t: dict, ns: str | None, mode: Any) -> None:
        out = _Lines()
        out.add(0, f"def {fname}(b, p):")
        names = []
        for f in t["fields"]:
            sub = "skip" if mode == "skip" else ("full" if mode == "full" else mode.get(f["name"], "skip"))
            if sub == "skip":
                self.emit(f["type"], ns, "skip", None, out, 1)
            else:
                target = self.var("f")
                self.emit(f["type"], ns, sub, target, out, 1)
                names.append((f["name"], target))
        out.flush()
        if mode == "skip":
            out.add(1, "return p")
        else:
            out.add(1, "return {" + ", ".join(f"{n!r}: {v}" for n, v in names) + "}, p")
        self.sources.append("\n".join(out.lines))

    # -- one value -----------------------------------------------------------------------------------------------
    def emit(self, t: Any, ns: str | None, mode: Any, target: str | None, out: _Lines, ind: int) -> None:
        """Lines that read (into `target`) or skip (`target` None) one value of type `t` at p."""
        if isinstance(t, dict) and "logicalType" in t and target is not None:
            raise Unsupported(f"logical type {t['logicalType']!r} in a kept field")
        t, ns = self._resolve(t, ns)
        if isinstance(t, list):
            return self.emit_union(t, ns, mode, target, out, ind)
        kind = t if isinstance(t, str) else t.get("type")
        if isinstance(t, dict) and "logicalType" in t and target is not None:
            raise Unsupported(f"logical type {t['logicalType']!r} in a kept field")
        skip = target is None
        if kind == "null":
            if not skip:
                out.add(ind, f"{target} = None", keep_pending=True)
        elif kind == "boolean":
            if not skip:
                out.add(ind, f"{target} = b[{out.pos()}] != 0", keep_pending=True)
            else:
                out.add(ind, f"b[{out.pos()}]", keep_pending=True)  # raises IndexError when truncated
            out.advance(1, ind)
        elif kind in ("float", "double"):
            size = FIXED_SIZES[kind]
            if not skip:
                out.add(ind, f"{target} = _{kind}(b, {out.pos()})[0]", keep_pending=True)
            out.advance(size, ind)
        elif kind in ("int", "long", "enum"):
            if skip:
                out.add(ind, "while b[p] > 127:")
                out.add(ind + 1, "p += 1")
                out.advance(1, ind)
            else:
                self.emit_long(target, out, ind)
                if kind == "enum":
                    symbols = self.const(tuple(t["symbols"]))
                    out.add(ind, f"if not 0 <= {target} < {len(t['symbols'])}:")
                    out.add(ind + 1, "raise _bad('an enum index out of range', p)")
                    out.add(ind, f"{target} = {symbols}[{target}]")
        elif kind in ("bytes", "string"):
            n = self.var("n")
            self.emit_long(n, out, ind)
            out.add(ind, f"if {n} < 0:")
            out.add(ind + 1, "raise _bad('a negative length', p)")
            if skip:
                out.add(ind, f"p += {n}")
            else:
                out.add(ind, f"{target} = b[p:p + {n}]")
                out.add(ind, f"if len({target}) != {n}:")
                out.add(ind + 1, "raise _bad('a value past the end of the data', p)")
                if kind == "string":
                    out.add(ind, f"{target} = {target}.decode()")
                out.add(ind, f"p += {n}")
        elif kind == "fixed":
            size = _size(t)
            if skip:
                out.add(ind, f"b[{out.pos()} + {size - 1}]" if size else "pass", keep_pending=True)
            else:
                out.add(ind, f"{target} = b[{out.pos()}:{out.pos()} + {size}]", keep_pending=True)
                out.add(ind, f"if len({target}) != {size}:", keep_pending=True)
                out.add(ind + 1, "raise _bad('a fixed value past the end of the data', p)", keep_pending=True)
            out.advance(size, ind)
        elif kind == "record":
            if not skip and mode == "skip":
                mode = "full"
            fn = self.record_func(t, ns, "skip" if skip else mode)
            out.add(ind, f"p = {fn}(b, p)" if skip else f"{target}, p = {fn}(b, p)")
        elif kind in ("array", "map"):
            self.emit_blocks(t, ns, mode, target, out, ind)
        else:
            raise Unsupported(f"type {kind!r}")

    def emit_long(self, target: str, out: _Lines, ind: int) -> None:
        out.add(ind, f"{target} = b[{out.pos()}]", keep_pending=True)
        out.advance(1, ind)
        out.add(ind, f"if {target} > 127:")
        out.add(ind + 1, f"{target}, p = _varint(b, p, {target})")
        out.add(ind, f"{target} = ({target} >> 1) ^ -({target} & 1)")

    def emit_union(self, branches: list, ns: str | None, mode: Any, target: str | None, out: _Lines,
                   ind: int) -> None:
        if len(branches) > 63:
            raise Unsupported("a union of more than 63 branches")
        sizes = [self.const_size(branch, ns) for branch in branches]
        if target is None and None not in sizes:
            # Skipping a union of fixed-size branches (a nullable double, ...): one table look-up by the index
            # byte gives how far to jump. A garbled index finds None there, and `p += None` raises the TypeError
            # that AlertDecoder.decode reports as a union index out of range.
            table = [None] * 256
            for i, size in enumerate(sizes):
                table[2 * i] = 1 + size
            out.add(ind, f"p += {self.const(tuple(table))}[b[{out.pos()}]]", keep_pending=True)
            return
        u = self.var("u")
        # An index below 64 is one byte (zigzag: 2 * index); anything else is garbled.
        out.add(ind, f"{u} = b[{out.pos()}]", keep_pending=True)
        out.flush()
        for i, branch in enumerate(branches):
            out.add(ind, f"{'if' if i == 0 else 'elif'} {u} == {2 * i}:")
            out.advance(1, ind + 1)
            self.emit(branch, ns, mode, target, out, ind + 1)
            out.flush()
        out.add(ind, "else:")
        out.add(ind + 1, "raise _bad('a union index out of range', p)")

    def emit_blocks(self, t: dict, ns: str | None, mode: Any, target: str | None, out: _Lines, ind: int) -> None:
        """An array or map: blocks of `count` items up to a 0 count; a negative count comes with the block's size
        in bytes (so a skip jumps over it)."""
        is_map = t["type"] == "map"
        item_type = t["values"] if is_map else t["items"]
        c, item, key = self.var("c"), self.var("i"), self.var("k")
        least = max(self.min_size(item_type, ns) + (1 if is_map else 0), 0)
        if target is not None:
            out.add(ind, f"{target} = {{}}" if is_map else f"{target} = []")
        out.add(ind, "while True:")
        self.emit_long(c, out, ind + 1)
        out.add(ind + 1, f"if {c} == 0:")
        out.add(ind + 2, "break")
        out.add(ind + 1, f"if {c} < 0:")
        out.add(ind + 2, f"{c} = -{c}")
        size = self.var("z")
        self.emit_long(size, out, ind + 2)
        if target is None:
            out.add(ind + 2, f"if {size} < 0:")
            out.add(ind + 3, "raise _bad('a negative block size', p)")
            out.add(ind + 2, f"p += {size}")
            out.add(ind + 2, "continue")
        if least:
            out.add(ind + 1, f"if {c} * {least} > len(b) - p:")
            out.add(ind + 2, "raise _bad('a block count past the end of the data', p)")
        out.add(ind + 1, f"for _ in range({c}):")
        if is_map:
            self.emit("string", ns, "full", None if target is None else key, out, ind + 2)
        self.emit(item_type, ns, mode, None if target is None else item, out, ind + 2)
        out.flush()
        if target is not None:
            out.add(ind + 2, f"{target}[{key}] = {item}" if is_map else f"{target}.append({item})")

    # -- the whole schema -------------------------------------------------------------------------------------------
    def build(self, schema: Any, mode: Any) -> str:
        out = _Lines()
        out.add(0, "def decode(b, p):")
        self.emit(schema, None, mode, "v", out, 1)
        out.flush()
        out.add(1, "return v, p")
        while self.todo:
            self.build_record(*self.todo.pop(0))
        return "\n\n\n".join(["\n".join(out.lines), *self.sources]) + "\n"


def alert_mode(schema: Any) -> Any:
    """What to read of an alert: projection.ALERT_FIELDS as a mode (a whole schema of another shape is read whole,
    as projection.reader_schema does)."""
    if not isinstance(schema, dict) or schema.get("type") != "record" or not isinstance(schema.get("fields"), list):
        return "full"
    return {name: "full" if keep is None else {f: "full" for f in keep} for name, keep in ALERT_FIELDS.items()}


class AlertDecoder:
    """Decodes records of one writer schema (only the alert fields the mapping reads) from bytes."""

    def __init__(self, schema: Any, mode: Any = None) -> None:
        # The schema may come from outside (a Kafka message's key): nothing of it reaches the generated source but
        # through repr() (field names), int checks (sizes) and names cut to letters, digits and `_` (functions);
        # symbols and tables are constants passed in the namespace.
        try:
            gen = _Generator(schema)
            self.source = gen.build(schema, alert_mode(schema) if mode is None else mode)
            namespace: dict[str, Any] = {"_double": _double, "_float": _float, "_varint": _varint, "_bad": _bad,
                                         **gen.consts}
            # The generated code: straight-line Python per record type (see the module docstring for why).
            exec(compile(self.source, "<avro_decode generated>", "exec"), namespace)  # noqa: S102
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError, SyntaxError, MemoryError) as exc:
            # SyntaxError: Python allows 20 nested blocks, and each level of arrays or maps takes two
            raise Unsupported(f"cannot generate a decoder: {exc!r}") from None
        self._decode = namespace["decode"]

    def decode(self, data: bytes, pos: int = 0) -> tuple[Any, int]:
        """(the record at `pos`, the position after it); AvroDecodeError for data that is not such a record."""
        if type(data) is not bytes:  # slices of a bytearray or memoryview would not be bytes/str values
            data = bytes(data)
        try:
            record, end = self._decode(data, pos)
        except AvroDecodeError:
            raise
        except (IndexError, struct.error) as exc:
            raise AvroDecodeError(f"the data ends inside a record ({exc})") from None
        except TypeError:  # `p += None`: an index byte no branch has, in a skipped union (see emit_union)
            raise AvroDecodeError("garbled data: a union index out of range") from None
        except (UnicodeDecodeError, RecursionError, OverflowError, MemoryError) as exc:
            raise AvroDecodeError(f"garbled data ({exc})") from None
        if end > len(data):
            raise AvroDecodeError(f"the data ends inside a record (needs {end} bytes, has {len(data)})")
        return record, end

    def records(self, blocks: Iterator[Any]) -> Iterator[Any]:
        """The records of a container file's blocks (fastavro.block_reader: it checks the header, sync markers and
        codec); AvroDecodeError when a block does not hold its count of records."""
        for block in blocks:
            data = block.bytes_.getvalue()
            p = 0
            for _ in range(block.num_records):
                record, p = self.decode(data, p)
                yield record
            if p != len(data):
                raise AvroDecodeError(f"a block holds {len(data) - p} bytes more than its {block.num_records} records")


_CACHE: dict[str, AlertDecoder | None] = {}


def decoder_for(schema: Any) -> AlertDecoder | None:
    """The decoder of a writer schema (built once per schema, cached by its canonical JSON's digest); None when
    this module does not handle the schema (read it with fastavro)."""
    digest = hashlib.sha1(json.dumps(schema, sort_keys=True, default=str).encode()).hexdigest()
    if digest not in _CACHE:
        if len(_CACHE) > 100:
            _CACHE.clear()
        try:
            _CACHE[digest] = AlertDecoder(schema)
        except Unsupported:
            _CACHE[digest] = None
    return _CACHE[digest]


def main(argv: list[str] | None = None) -> int:
    """Print the decoder generated for a schema file (.avsc) or an Avro container file's schema."""
    import argparse

    import fastavro

    parser = argparse.ArgumentParser(prog="python -m broker_client.avro_decode", description=main.__doc__)
    parser.add_argument("path", help="an .avsc schema or an .avro container file")
    args = parser.parse_args(argv)
    if args.path.endswith(".avro"):
        with open(args.path, "rb") as fh:
            schema = fastavro.reader(fh).writer_schema
    else:
        with open(args.path) as fh:
            schema = json.load(fh)
    try:
        print(AlertDecoder(schema).source)
    except Unsupported as exc:
        print(f"not handled, read with fastavro: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
