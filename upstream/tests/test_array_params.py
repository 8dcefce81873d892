"""Batch columns sent as array literals read back in PostgreSQL exactly as they were in Python."""

import math
import random
import struct

from sqlalchemy import text

from astroportal.array_params import array_literal


def _floats(n: int) -> list[float]:
    rng = random.Random(7)
    bits = (struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(n))
    return [v for v in bits if math.isfinite(v)] + [rng.uniform(58000, 61000) for _ in range(n)] + [
        0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e-7, 1e16, 123456789.0, 2459000.5]


def test_numbers_nulls_and_non_finite_values_round_trip(db):
    floats = _floats(3000)
    with_nulls = [None if i % 3 == 0 else v for i, v in enumerate(floats)]
    specials = [float("nan"), None, float("inf"), -1.5, float("-inf")]
    ints = [0, -1, None, 2**31 - 1, 2**63 - 1, -(2**63)]
    with db() as session:
        back = session.execute(text("SELECT CAST(:a AS float8[]), CAST(:b AS float8[]), CAST(:c AS float8[]), "
                                    "CAST(:d AS bigint[]), CAST(:e AS numeric[])"),
                               {"a": array_literal(floats), "b": array_literal(with_nulls),
                                "c": array_literal(specials), "d": array_literal(ints),
                                "e": array_literal([2**70, None, 3])}).one()
    assert back[0] == floats and [math.copysign(1, v) for v in back[0]] == [math.copysign(1, v) for v in floats]
    assert back[1] == with_nulls
    assert math.isnan(back[2][0]) and back[2][1:] == specials[1:]  # NaN and infinities stay themselves, not NULL
    assert back[3] == ints
    assert back[4] == [2**70, None, 3]
