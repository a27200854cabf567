"""One tick's kept spans of every partition -> one run of messages (``streams/kept_spans.py``,
ADR 0020): every kept span goes out exactly once, in partition order, under the lowest
partition's key; a span no message can carry is refused and counted in the output of the
partition it came from, never in another's."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import avro_codec
from streams import counters as c
from streams.kept_spans import encode_kept
from streams.partition_processor import TickOutput
from streams.span_views import SpanView, span_views
from tracehouse.span_specs import SpanSpec, sid, tid, traces_data


def kept(partition: int, spans: int, first_trace: int = 1) -> tuple[int, TickOutput]:
    specs = [
        SpanSpec(tid(first_trace + n), sid(n + 1), f"svc-{partition}", name=f"p{partition}-{n}")
        for n in range(spans)
    ]
    return partition, TickOutput(sampled=span_views(traces_data(specs)) if specs else [])


def names_sent(payloads: list[bytes]) -> list[str]:
    out: list[str] = []
    for payload in payloads:
        columns = avro_codec.decode("span_batch", payload)
        data, offsets = columns["name"], columns["name_offsets"]
        ends = [int.from_bytes(offsets[i : i + 4], "little") for i in range(0, len(offsets), 4)]
        out.extend(data[a:b].decode() for a, b in itertools.pairwise(ends))
    return out


def test_no_partitions_send_nothing() -> None:
    _, encoded = encode_kept([], 1 << 20)
    assert encoded.payloads == [] and encoded.refused == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 63), st.integers(0, 30)), max_size=6, unique_by=lambda t: t[0]
    )
)
def test_every_kept_span_goes_once_in_partition_order_under_the_lowest_key(
    parts: list[tuple[int, int]],
) -> None:
    outputs = [kept(p, n, first_trace=100 * p + 1) for p, n in parts]
    key, encoded = encode_kept(outputs, 1 << 20)
    expected = [v.name for _, out in outputs for v in out.sampled]
    assert names_sent(encoded.payloads) == expected
    assert not encoded.refused
    if parts:
        assert key == str(min(p for p, _ in parts)).encode()
    if not expected:
        assert encoded.payloads == []
    for _, out in outputs:
        assert out.counters == {}


def test_a_refused_span_is_counted_in_its_own_partition() -> None:
    outputs = [kept(3, 4), kept(1, 3, first_trace=50), kept(7, 2, first_trace=90)]
    bad: SpanView = outputs[0][1].sampled[2]
    bad.start_time_unix_nano = 2**64  # what no int64 column can hold
    huge = outputs[2][1].sampled[0]
    huge.attributes = {"blob": "x" * 60_000}
    key, encoded = encode_kept(outputs, 50_000)
    assert key == b"1"
    assert sorted((reason, vs[0].name) for reason, vs in encoded.refused) == [
        ("encode_error", "p3-2"),
        ("span_too_large", "p7-0"),
    ]
    assert outputs[0][1].counters == {(c.SPANS_REJECTED, "encode_error"): 1}
    assert outputs[1][1].counters == {}
    assert outputs[2][1].counters == {(c.SPANS_REJECTED, "span_too_large"): 1}
    sent = names_sent(encoded.payloads)
    assert sorted(sent) == sorted(["p3-0", "p3-1", "p3-3", "p1-0", "p1-1", "p1-2", "p7-1"])
