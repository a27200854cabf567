import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import partitioning
from core.partitioning import murmur2, murmur2_reference, murmur2_signed, partition_for_key

# Vectors from Apache Kafka's UtilsTest.testMurmur2 (Java's signed results).
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), sorted(KAFKA_VECTORS.items()))
def test_murmur2_matches_kafka(data: bytes, expected: int) -> None:
    assert murmur2_signed(data) == expected
    reference = murmur2_reference(data)
    assert (reference - (1 << 32) if reference & 0x80000000 else reference) == expected


def test_the_compiled_murmur2_is_the_one_in_use() -> None:
    # make setup builds it; without it every trace id is hashed in Python (~3.5 us each).
    assert partitioning._FAST is not None


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=70))
def test_the_compiled_murmur2_equals_the_reference(data: bytes) -> None:
    assert murmur2(data) == murmur2_reference(data)
    assert murmur2(bytearray(data)) == murmur2_reference(data)  # not bytes: the reference


def test_partition_is_positive_modulo() -> None:
    for key in KAFKA_VECTORS:
        p = partition_for_key(key, 7)
        assert 0 <= p < 7
        assert p == (murmur2_signed(key) & 0x7FFFFFFF) % 7


def test_trace_ids_spread_over_partitions() -> None:
    import random

    rng = random.Random(3)
    seen = {partition_for_key(rng.randbytes(16), 8) for _ in range(400)}
    assert seen == set(range(8))
