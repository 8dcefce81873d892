"""The checks every upload's text goes through, on bodies shaped like a broker's batch of cutouts (megabytes of
base64 in a list of a few hundred objects): the fast paths must answer exactly what the plain rules do."""

from __future__ import annotations

import base64
import binascii
import json
import random

import pytest

from astroportal.domain.thumbnails import decode_base64
from astroportal.errors import ApiError
from astroportal.validate import MAX_JSON_DEPTH, parse_json_body


def standard(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def ours(text: str) -> bytes | None:
    try:
        return decode_base64(text)
    except ApiError as exc:
        assert exc.status_code == 400 and "not valid base64" in exc.message
        return None


EDGES = ["", "=", "==", "A", "AA", "AAA", "AAAA", "AA==", "AAA=", "AAAA=", "AAAA==", "AAAA===", "AA=A", "A===",
         "QQ==", "QR==", "QUJD", "QUJ=", "AAAA\n", "AA AA", "AAAA\r\nAAAA", "-_-_", "AAAé", "AAAA\x00",
         "AA==AA==", "=AAA", "////", "++++", "\ud800AAA"]


@pytest.mark.parametrize("text", EDGES)
def test_base64_edges_decode_as_the_standard_library_does(text):
    assert ours(text) == standard(text)


def test_base64_mutations_decode_as_the_standard_library_does():
    rng = random.Random(5)
    alphabet = "AQgw/+=Z9 \n\t\r-_.é\x00"
    for _ in range(20_000):
        chars = list(base64.b64encode(rng.randbytes(rng.randrange(0, 40))).decode())
        for _ in range(rng.randrange(0, 3)):
            if chars:
                chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        if rng.random() < 0.3:
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(alphabet))
        text = "".join(chars)
        assert ours(text) == standard(text), repr(text)


def batch(n: int = 300, size: int = 15_000) -> list[dict]:
    rng = random.Random(3)
    return [{"obj_id": f"ZTF{i:05d}", "ttype": "new", "origin": "x",
             "data": base64.b64encode(rng.randbytes(size)).decode()} for i in range(n)]


def refusal(body: bytes) -> str:
    with pytest.raises(ApiError) as caught:
        parse_json_body(body)
    assert caught.value.status_code == 400
    return caught.value.message


def test_a_clean_batch_parses_unchanged():
    items = batch()
    body = json.dumps(items).encode()
    assert parse_json_body(body) == items
    assert parse_json_body(json.dumps(items).replace("/", "\\/").encode()) == items  # harmless escapes


@pytest.mark.parametrize("bad, word", [("\\u0000", "NUL"), ("\\udc80", "surrogate"), ("\\uD800", "surrogate")])
def test_a_bad_string_deep_into_a_batch_names_its_place(bad, word):
    text = json.dumps(batch()).replace("/", "\\/")  # backslashes all over, none of them a bad escape
    at = text.rindex('"origin": "x"') + len('"origin": "')
    message = refusal((text[:at] + bad + text[at:]).encode())
    assert "[299].origin" in message and word in message


def test_an_integer_beyond_64_bits_is_refused_in_a_batch_of_long_strings():
    # The walk that checks integers happens for any body with more than MAX_JSON_DEPTH brackets: here the list's
    # objects are megabytes apart from the last, which carries the integer.
    items = batch()
    items[-1]["origin"] = 2**64 - 1  # within what the JSON parser takes, beyond what PostgreSQL can
    message = refusal(json.dumps(items).encode())
    assert "[299].origin" in message and "beyond 64 bits" in message


def test_nesting_too_deep_after_megabytes_of_strings_is_refused():
    text = json.dumps(batch(40))
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert "nested more than" in refusal((text[:-1] + ", " + deep + "]").encode())
    shallow = "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)
    assert parse_json_body((text[:-1] + ", " + shallow + "]").encode())[-1] is not None
