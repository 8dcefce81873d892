"""The broker client's generated Avro decoder (avro_decode) against fastavro: the same portal writes for every real
and synthesised alert, through both sources (container files, schemaless Kafka messages), every Avro type of the
spec, negative block counts, and clear errors for truncated or garbled data. No portal needed: decoding and mapping
are plain functions."""

from __future__ import annotations

import copy
import io
import json
import math
import random
import sys

import fastavro
import pytest
from broker_support import ALERTS_DIR, SERVICE_DIR, real_alerts, synth, write_avro

if str(SERVICE_DIR) not in sys.path:
    sys.path.insert(0, str(SERVICE_DIR))

from broker_client.avro_decode import AlertDecoder, AvroDecodeError, Unsupported, decoder_for  # noqa: E402
from broker_client.cursor import Cursor  # noqa: E402
from broker_client.mapping import Context, MappingError, map_alert  # noqa: E402
from broker_client.projection import reader_schema  # noqa: E402
from broker_client.sources.files import FileSource  # noqa: E402
from broker_client.sources.kafka import Decoder  # noqa: E402

CTX = Context(group_ids=[1], instrument_id=2, filter_id=3, taxonomy_id=4)


def mapped(record, topic=None):
    """map_alert's writes, or the MappingError's message: what the portal would get for the record."""
    try:
        return map_alert(record, topic, CTX)
    except MappingError as exc:
        return f"MappingError: {exc}"


def schemaless(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def same(a, b) -> bool:
    """Equal values of equal types, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def file_records(tmp_path, path):
    return list(FileSource([path], Cursor(tmp_path / "state", "files"), 100).records(path))


def varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 127:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def string(s: str) -> bytes:
    raw = s.encode()
    return varint(len(raw)) + raw


# -- the real and synthesised alerts: the same writes as with fastavro ----------------------------------------
def test_real_alert_files_give_the_writes_fastavro_gives(tmp_path):
    files = sorted(ALERTS_DIR.glob("*.avro"))
    assert len(files) == 5
    for path in files:
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            assert decoder_for(reader.writer_schema) is not None, f"{path.name} would not use the fast decoder"
            expected = [mapped(r) for r in reader]
        items = file_records(tmp_path, path)
        assert [i.error for i in items] == [None] * len(expected)
        got = [mapped(i.record, i.topic) for i in items]
        assert got == expected and all(not isinstance(w, str) and w.points for w in got), path.name


def test_real_alerts_as_kafka_messages_give_the_writes_fastavro_gives():
    decoder = Decoder()
    alerts = real_alerts()
    assert len(alerts) == 15
    for schema, record in alerts:
        value = schemaless(schema, record)
        expected = fastavro.schemaless_reader(io.BytesIO(value), fastavro.parse_schema(schema))
        got = decoder.decode(json.dumps(schema).encode(), value)
        assert mapped(got, "fink_kn_candidates_ztf") == mapped(expected, "fink_kn_candidates_ztf")
        # exactly what fastavro gives with the narrowed reader schema, field by field
        narrow = fastavro.schemaless_reader(io.BytesIO(value), fastavro.parse_schema(schema),
                                            fastavro.parse_schema(reader_schema(schema)))
        assert same(got, narrow)


def test_synthesised_alerts_with_nan_nulls_and_long_light_curves(tmp_path):
    schema, records = synth(40, "DEC", prv_points=50, seed=7)
    rng = random.Random(3)
    for i, r in enumerate(records):
        c = r["candidate"]
        if i % 5 == 0:
            c["magpsf"] = float("nan")
        if i % 5 == 1:
            c["diffmaglim"] = None
            c["sigmapsf"] = float("inf")
        if i % 5 == 2:
            r["prv_candidates"] = None
            r["cutoutScience"] = None
        if i % 5 == 3:
            r["rfscore"] = float("nan")
            r["cdsxmatch"] = None
            for p in r["prv_candidates"]:
                p["magpsf"] = None if rng.random() < 0.5 else p["magpsf"]
                p["candid"] = None
        if i % 5 == 4:
            c["ra"] = None  # no position: a MappingError either way
    path = write_avro(tmp_path / "synth.avro", schema, records)
    with open(path, "rb") as fh:
        expected = [mapped(r) for r in fastavro.reader(fh)]
    got = [mapped(i.record, i.topic) for i in file_records(tmp_path, path)]
    assert got == expected
    assert sum(isinstance(w, str) for w in got) == 8  # the alerts without a position
    decoder = Decoder()
    key = json.dumps(schema).encode()
    assert [mapped(decoder.decode(key, schemaless(schema, r))) for r in records] == expected


def test_a_deflate_container_and_a_schema_without_candidate_or_optional_fields(tmp_path):
    schema, records = synth(12, "DFL", prv_points=20)
    path = tmp_path / "deflate.avro"
    with open(path, "wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(schema), records, codec="deflate", sync_interval=50_000)
    with open(path, "rb") as fh:
        expected = [mapped(r) for r in fastavro.reader(fh)]
    assert [mapped(i.record) for i in file_records(tmp_path, path)] == expected

    # Fink's optional fields missing (no scores, no cutouts, no history), and a schema without `candidate`
    kept = {"objectId", "candid", "candidate", "topic"}
    lean = dict(schema, fields=[f for f in schema["fields"] if f["name"] in kept])
    lean_records = [{k: v for k, v in r.items() if k in kept} for r in records]
    path = write_avro(tmp_path / "lean.avro", lean, lean_records)
    with open(path, "rb") as fh:
        expected = [mapped(r) for r in fastavro.reader(fh)]
    got = [mapped(i.record) for i in file_records(tmp_path, path)]
    assert got == expected and all(len(w.points) == 1 and not w.thumbnails for w in got)

    bare = {"type": "record", "name": "alert", "fields": [{"name": "objectId", "type": "string"},
                                                          {"name": "candid", "type": "long"}]}
    path = write_avro(tmp_path / "bare.avro", bare, [{"objectId": "ZTFBARE", "candid": 1}])
    [item] = file_records(tmp_path, path)
    assert mapped(item.record) == "MappingError: alert ZTFBARE has no `candidate` record (the detection)"


# -- every Avro type ------------------------------------------------------------------------------------------
ALL_TYPES = {"type": "record", "name": "alert", "namespace": "test.ns", "fields": [
    {"name": "flag", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": {"type": "double"}},
    {"name": "raw", "type": "bytes"},
    {"name": "s", "type": "string"},
    {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "namespace": "other", "size": 4}},
    {"name": "again", "type": "Color"},
    {"name": "nums", "type": {"type": "array", "items": ["null", "double"]}},
    {"name": "tags", "type": {"type": "map", "values": "string"}},
    {"name": "node", "type": {"type": "record", "name": "Node", "fields": [
        {"name": "value", "type": "int"}, {"name": "next", "type": ["null", "Node"]}]}},
    {"name": "nested", "type": {"type": "array", "items": {"type": "map", "values": {
        "type": "array", "items": "other.Hash"}}}},
    {"name": "nothing", "type": "null"},
    {"name": "choice", "type": ["null", "int", "string", "Color", {"type": "array", "items": "long"}]},
    {"name": "objectId", "type": ["null", "string"]},
    {"name": "candid", "type": "long"},
    {"name": "candidate", "type": ["null", {"type": "record", "name": "cand", "fields": [
        {"name": "jd", "type": "double"}, {"name": "note", "type": "string"}, {"name": "fid", "type": "int"},
        {"name": "ra", "type": "double"}, {"name": "dec", "type": "double"},
        {"name": "magpsf", "type": ["null", "float"]}, {"name": "sigmapsf", "type": ["null", "float"]},
        {"name": "diffmaglim", "type": ["float", "null"]}]}]},
]}


def all_types_record(k: int) -> dict:
    return {
        "flag": k % 2 == 0, "i": [-2**31, 0, 2**31 - 1, -1][k % 4], "l": [-2**63, 2**63 - 1, 0, 300][k % 4],
        "f": [float("nan"), 1.5, float("-inf"), -0.0][k % 4], "d": [math.pi, float("nan"), 1e308, -0.0][k % 4],
        "raw": bytes(range(256)) * k, "s": "é✓ " * k, "color": ["RED", "GREEN", "BLUE"][k % 3],
        "hash": b"\x00\xff\x10\x80", "again": "BLUE", "nums": [None, 2.5, float("nan")][: k % 4],
        "tags": {f"t{j}": "x" * j for j in range(k % 3)},
        "node": {"value": 1, "next": {"value": 2, "next": {"value": 3, "next": None}}} if k % 2 else
        {"value": 0, "next": None},
        "nested": [{"a": [b"abcd"] * k, "b": []}, {}][: k % 3], "nothing": None,
        "choice": [None, -7, "seven", "GREEN", [1, -2**40]][k % 5], "objectId": None if k == 3 else f"ZTFALL{k}",
        "candid": 10**18 + k,
        "candidate": None if k == 4 else {"jd": 2459000.5 + k, "note": "n" * (k * 50), "fid": 1 + k % 3,
                                          "ra": 10.0 + k, "dec": -5.0, "magpsf": None if k == 2 else 18.5,
                                          "sigmapsf": 0.1, "diffmaglim": None if k == 1 else 20.0},
    }


def test_every_avro_type_read_whole_and_skipped_as_fastavro_reads_it():
    parsed = fastavro.parse_schema(ALL_TYPES)
    narrow = fastavro.parse_schema(reader_schema(ALL_TYPES))
    whole, alert = AlertDecoder(ALL_TYPES, mode="full"), AlertDecoder(ALL_TYPES)
    for k in range(10):
        value = schemaless(ALL_TYPES, all_types_record(k))
        expected = fastavro.schemaless_reader(io.BytesIO(value), parsed)
        got, end = whole.decode(value)
        assert same(got, expected) and end == len(value), k
        got, end = alert.decode(value)
        assert end == len(value)
        assert same(got, fastavro.schemaless_reader(io.BytesIO(value), parsed, narrow)), k
        assert set(got) == {"objectId", "candid", "candidate"}
        assert mapped(got) == mapped(expected)


def test_negative_block_counts_carry_a_byte_size_and_are_read_or_skipped():
    schema = {"type": "record", "name": "alert", "fields": [
        {"name": "objectId", "type": "string"}, {"name": "xs", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "string"}}, {"name": "candid", "type": "long"}]}
    items = varint(5) + varint(-300)
    entry = string("key") + string("value")
    # xs: a block of -2 items with its size, then a block of 1, then the end; m: a block of -1 with its size
    value = (string("ZTFNEG") + varint(-2) + varint(len(items)) + items + varint(1) + varint(7) + varint(0)
             + varint(-1) + varint(len(entry)) + entry + varint(0) + varint(42))
    expected = fastavro.schemaless_reader(io.BytesIO(value), fastavro.parse_schema(schema))
    assert expected == {"objectId": "ZTFNEG", "xs": [5, -300, 7], "m": {"key": "value"}, "candid": 42}
    assert AlertDecoder(schema, mode="full").decode(value) == (expected, len(value))
    assert AlertDecoder(schema).decode(value) == ({"objectId": "ZTFNEG", "candid": 42}, len(value))


def test_schemas_it_does_not_handle_are_read_by_fastavro(tmp_path):
    # a logical type in a field the mapping reads: fastavro converts it, so fastavro reads the file
    schema, records = synth(2, "LOG")
    logical = copy.deepcopy(schema)
    for f in logical["fields"]:
        if f["name"] == "topic":
            f["type"] = [{"type": "string", "logicalType": "uuid"}, "null"]
    for r in records:
        r["topic"] = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert decoder_for(logical) is None
    with pytest.raises(Unsupported):
        AlertDecoder(logical)
    path = write_avro(tmp_path / "logical.avro", logical, records)
    items = file_records(tmp_path, path)
    assert [i.error for i in items] == [None, None] and all(not isinstance(mapped(i.record), str) for i in items)
    # skipped, a logical type costs nothing: the real schemas' `timestamp` is one
    assert decoder_for(schema) is not None

    # arrays nested deeper than Python's blocks allow: the Kafka source reads such messages with fastavro
    deep: object = "long"
    for _ in range(12):
        deep = {"type": "array", "items": deep}
    nested = {"type": "record", "name": "alert", "fields": [{"name": "objectId", "type": "string"},
                                                            {"name": "classification", "type": deep}]}
    assert decoder_for(nested) is None
    value = {"objectId": "ZTFDEEP", "classification": [[[[[[[[[[[[7]]]]]]]]]]]]}
    assert Decoder().decode(json.dumps(nested).encode(), schemaless(nested, value)) == value


# -- truncated and garbled data: a clear error, a dead letter -------------------------------------------------
def test_truncated_or_garbled_messages_are_refused_with_a_clear_error():
    schema, record = real_alerts()[-1]
    value = schemaless(schema, record)
    key = json.dumps(schema).encode()
    decoder = Decoder()
    assert mapped(decoder.decode(key, value))
    for cut in list(range(0, 200, 7)) + list(range(200, len(value), 997)) + [len(value) - 1]:
        with pytest.raises(ValueError, match="the message value is not an Avro record of its schema: "):
            decoder.decode(key, value[:cut])
    # a union index no branch has (the first byte after objectId's and candid's)
    fast = decoder_for(schema)
    with pytest.raises(AvroDecodeError, match="a union index out of range at byte"):
        fast.decode(b"\x7f" + value[1:])
    # the same in a skipped nullable double (a table look-up, see avro_decode.emit_union)
    small = {"type": "record", "name": "alert", "fields": [{"name": "d", "type": ["null", "double"]},
                                                           {"name": "objectId", "type": "string"}]}
    good = schemaless(small, {"d": None, "objectId": "ZTFX"})
    assert decoder_for(small).decode(good) == ({"objectId": "ZTFX"}, len(good))
    with pytest.raises(AvroDecodeError, match="a union index out of range"):
        decoder_for(small).decode(b"\x06" + good[1:])
    # random damage: a record or an AvroDecodeError (a ValueError, so a dead letter), never another exception
    rng = random.Random(11)
    for _ in range(300):
        garbled = bytearray(value)
        for _ in range(rng.randint(1, 5)):
            garbled[rng.randrange(len(garbled))] = rng.randrange(256)
        try:
            decoder.decode(key, bytes(garbled))
        except ValueError as exc:
            assert str(exc).startswith("the message value is not an Avro record of its schema: ")


def test_a_truncated_container_file_is_corrupt_from_the_first_lost_record_on(tmp_path):
    schema, records = synth(30, "TRN", prv_points=10)
    whole = tmp_path / "whole.avro"
    with open(whole, "wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(schema), records, sync_interval=200_000)
    data = whole.read_bytes()
    cut = tmp_path / "cut.avro"
    cut.write_bytes(data[: len(data) - 5000])
    items = file_records(tmp_path, cut)
    good = [i for i in items if i.error is None]
    assert 0 < len(good) < 30 and items[-1].error.startswith(f"the file is corrupt from record {len(good)} on: ")
    assert [mapped(i.record) for i in good] == [mapped(r) for r in fastavro.reader(open(whole, "rb"))][: len(good)]
    # a block that claims more records than it holds
    one = tmp_path / "one.avro"
    write_avro(one, schema, records[:1])
    raw = one.read_bytes()
    header_end = raw.index(raw[-16:]) + 16  # the sync marker ends the header and every block
    assert raw[header_end] == 2  # a block of 1 record (zigzag)
    (tmp_path / "liar.avro").write_bytes(raw[:header_end] + b"\x04" + raw[header_end + 1:])
    items = file_records(tmp_path, tmp_path / "liar.avro")
    assert items[0].error is None and items[1].error.startswith("the file is corrupt from record 1 on: ")


def test_the_generated_source_can_be_shown():
    source = AlertDecoder(ALL_TYPES).source
    assert source.startswith("def decode(b, p):") and "def r_test_ns_alert_" in source
    compile(source, "shown", "exec")
    # the kept double `jd` is read; the skipped float `f` and double `d` are one jump, with the last byte of `l`
    assert "_double(b, p" in source and "p += 14" in source and "'raw'" not in source
