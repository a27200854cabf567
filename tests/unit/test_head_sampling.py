import random

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from core.consistent_sampling import (
    encode_threshold,
    keep_span,
    parse_ot,
    ratio_threshold,
    sample,
    with_threshold,
)


def test_threshold_encoding_matches_spec_examples() -> None:
    # th values from the OTel consistent-probability-sampling spec (50% -> 8, 25% -> c).
    assert encode_threshold(ratio_threshold(1.0)) == "0"
    assert encode_threshold(ratio_threshold(0.5)) == "8"
    assert encode_threshold(ratio_threshold(0.25)) == "c"
    # 2**56 - round(0.1 * 2**56), 14 hex digits.
    assert encode_threshold(ratio_threshold(0.1)) == "e6666666666666"
    with pytest.raises(ValueError):
        ratio_threshold(0)


def test_decision_uses_low_56_bits_or_rv() -> None:
    t = ratio_threshold(0.5)
    low = bytes(9) + b"\x00" * 7
    high = bytes(9) + b"\xff" * 7
    assert keep_span(low, "", t) == (False, None)
    assert keep_span(high, "", t) == (True, "ot=th:8")
    # rv overrides the trace id's randomness.
    assert keep_span(high, "ot=rv:00000000000001", t)[0] is False


def test_stricter_upstream_threshold_is_kept_and_ours_rewrites_looser() -> None:
    t = ratio_threshold(0.5)
    high = bytes(9) + b"\xff" * 7
    assert keep_span(high, "ot=th:c", t) == (True, None)
    assert keep_span(high, "vendor=x,ot=th:4;rv:ffffffffffffff", t) == (
        True,
        "ot=th:8;rv:ffffffffffffff,vendor=x",
    )
    assert parse_ot("a=1,ot=th:8;rv:ab") == {"th": "8", "rv": "ab"}
    assert with_threshold("a=1", 0) == "ot=th:0,a=1"


def test_sampling_is_consistent_per_trace_and_close_to_ratio() -> None:
    rng = random.Random(5)
    data = trace_pb2.TracesData()
    ss = data.resource_spans.add().scope_spans.add()
    traces = [rng.randbytes(16) for _ in range(2000)]
    for tid in traces:
        for _ in range(3):
            ss.spans.add(trace_id=tid, span_id=rng.randbytes(8))
    dropped = sample(data, ratio_threshold(0.25))
    kept = [s.trace_id for s in data.resource_spans[0].scope_spans[0].spans]
    assert dropped + len(kept) == 6000
    assert all(kept.count(t) == 3 for t in set(kept))  # whole traces only
    assert 0.2 < len(set(kept)) / 2000 < 0.3
    assert all(s.trace_state == "ot=th:c" for s in data.resource_spans[0].scope_spans[0].spans)
