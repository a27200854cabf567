"""Remote sampling strategies: Jaeger's file format, its resolution rules, strict checking,
reload on change, and answers that parse with Jaeger's published api_v2 messages."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from query import sampling_proto
from query.sampling_file import StrategiesFile
from query.sampling_strategies import (
    DEFAULT_PROBABILITY,
    INT32_MAX,
    StrategyFileError,
    parse_strategies,
)
from tests.sampling_idl import file_proto, message

# The example of Jaeger's documentation, in spirit: a probabilistic and a rate-limited service,
# per-operation strategies in the default that services without their own inherit.
EXAMPLE: dict[str, Any] = {
    "service_strategies": [
        {
            "service": "foo",
            "type": "probabilistic",
            "param": 0.8,
            "operation_strategies": [
                {"operation": "op1", "type": "probabilistic", "param": 0.2},
                {"operation": "op2", "type": "probabilistic", "param": 0.4},
            ],
        },
        {"service": "bar", "type": "ratelimiting", "param": 5},
        {"service": "baz", "type": "probabilistic", "param": 0.3},
    ],
    "default_strategy": {
        "type": "probabilistic",
        "param": 0.5,
        "default_lower_bound_traces_per_second": 0.25,
        "operation_strategies": [
            {"operation": "/health", "type": "probabilistic", "param": 0.0},
            {"operation": "op1", "type": "probabilistic", "param": 0.9},
        ],
    },
}


def jaeger_message(doc: dict[str, Any]) -> Any:
    """Parse with the IDL's class, refusing unknown fields: what a proto-based client does."""
    return json_format.ParseDict(doc, message("SamplingStrategyResponse")())


def test_resolution_follows_jaegers_rules() -> None:
    book = parse_strategies(EXAMPLE).base
    foo = book.for_service("foo").to_json()
    assert foo["strategyType"] == "PROBABILISTIC"
    assert foo["probabilisticSampling"] == {"samplingRate": 0.8}
    ops = foo["operationSampling"]
    assert ops["defaultSamplingProbability"] == 0.8
    # Its own op1 wins over the default's; the default's /health is added.
    assert [
        (o["operation"], o["probabilisticSampling"]["samplingRate"])
        for o in ops["perOperationStrategies"]
    ] == [
        ("op1", 0.2),
        ("op2", 0.4),
        ("/health", 0.0),
    ]
    bar = book.for_service("bar").to_json()
    assert bar["strategyType"] == "RATE_LIMITING"
    assert bar["rateLimitingSampling"] == {"maxTracesPerSecond": 5}
    assert "probabilisticSampling" not in bar
    # A rate-limited service inherits the default's operations at the default's probability.
    assert bar["operationSampling"]["defaultSamplingProbability"] == 0.5
    baz = book.for_service("baz").to_json()
    assert baz["operationSampling"]["defaultSamplingProbability"] == 0.3
    assert baz["operationSampling"]["defaultLowerBoundTracesPerSecond"] == 0.25
    unknown = book.for_service("nobody").to_json()
    assert unknown["probabilisticSampling"] == {"samplingRate": 0.5}
    for doc in (foo, bar, baz, unknown):
        jaeger_message(doc)


def test_no_file_serves_the_default_probability() -> None:
    doc = parse_strategies({}).base.for_service("x").to_json()
    assert doc == {
        "strategyType": "PROBABILISTIC",
        "probabilisticSampling": {"samplingRate": DEFAULT_PROBABILITY},
    }
    assert parse_strategies({}, 0.25).base.for_service("x").param == 0.25


def test_tenants_get_their_own_book() -> None:
    doc = {
        "default_strategy": {"type": "probabilistic", "param": 0.1},
        "tenants": {"acme": {"default_strategy": {"type": "ratelimiting", "param": 7}}},
    }
    s = parse_strategies(doc)
    assert s.book("acme").for_service("x").kind == "ratelimiting"
    assert s.book("globex").for_service("x").param == 0.1
    assert s.book("").for_service("x").param == 0.1


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"default_strategy": {"type": "probabilistic", "param": 0.1, "parm": 1}}, "'parm'"),
        ({"service_strategy": []}, "'service_strategy'"),
        (
            {"service_strategies": [{"service": "a", "type": "probabilistic", "param": 1, "x": 1}]},
            "service_strategies[0]: unknown key 'x'",
        ),
        (
            {
                "default_strategy": {
                    "type": "probabilistic",
                    "param": 1,
                    "operation_strategies": [
                        {"operation": "o", "type": "probabilistic", "param": 1, "lower": 2}
                    ],
                }
            },
            "operation_strategies[0]: unknown key 'lower'",
        ),
        ({"tenants": {"t": {"tenants": {}}}}, "tenants.t: unknown key 'tenants'"),
        ({"default_strategy": {"type": "probabilistic", "param": 1.5}}, "outside [0, 1]"),
        ({"default_strategy": {"type": "probabilistic", "param": -0.1}}, "outside [0, 1]"),
        ({"default_strategy": {"type": "probabilistic", "param": "0.5"}}, "expected a number"),
        ({"default_strategy": {"type": "probabilistic", "param": True}}, "expected a number"),
        ({"default_strategy": {"type": "ratelimiting", "param": 2.5}}, "whole number"),
        ({"default_strategy": {"type": "ratelimiting", "param": INT32_MAX + 1}}, "whole number"),
        ({"default_strategy": {"type": "ratelimiting", "param": -1}}, "whole number"),
        ({"default_strategy": {"type": "const", "param": 1}}, "'const' is not"),
        ({"default_strategy": {"param": 1}}, "missing key 'type'"),
        ({"service_strategies": [{"type": "probabilistic", "param": 1}]}, "missing key 'service'"),
        (
            {"service_strategies": [{"service": "", "type": "probabilistic", "param": 1}]},
            "non-empty string",
        ),
        (
            {
                "service_strategies": [
                    {"service": "a", "type": "probabilistic", "param": 1},
                    {"service": "a", "type": "probabilistic", "param": 1},
                ]
            },
            "'a' appears twice",
        ),
        (
            {
                "default_strategy": {
                    "type": "probabilistic",
                    "param": 1,
                    "operation_strategies": [
                        {"operation": "o", "type": "ratelimiting", "param": 1}
                    ],
                }
            },
            "can only be probabilistic",
        ),
        (
            {
                "default_strategy": {
                    "type": "probabilistic",
                    "param": 1,
                    "operation_strategies": [
                        {"operation": "o", "type": "probabilistic", "param": 1},
                        {"operation": "o", "type": "probabilistic", "param": 0},
                    ],
                }
            },
            "'o' appears twice",
        ),
        (
            {
                "default_strategy": {
                    "type": "probabilistic",
                    "param": 1,
                    "default_lower_bound_traces_per_second": 1,
                }
            },
            "add operation_strategies",
        ),
        (
            {
                "default_strategy": {
                    "type": "probabilistic",
                    "param": 1,
                    "operation_strategies": [],
                    "default_lower_bound_traces_per_second": -1,
                }
            },
            "is negative",
        ),
        ({"service_strategies": {}}, "expected a list"),
        ([], "expected a JSON object"),
        ({"tenants": []}, "tenant -> strategies"),
    ],
)
def test_every_mistake_is_named(doc: Any, needle: str) -> None:
    with pytest.raises(StrategyFileError) as err:
        parse_strategies(doc)
    assert needle in str(err.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "type",
        "param",
        "service",
        "operation",
        "operation_strategies",
        "service_strategies",
        "default_strategy",
        "tenants",
        "default_lower_bound_traces_per_second",
    ]
)
shaped = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers()
    | st.sampled_from(["probabilistic", "ratelimiting", "s"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, shaped))
def test_any_document_parses_or_is_refused_with_a_reason(doc: Any) -> None:
    try:
        s = parse_strategies(doc)
    except StrategyFileError as exc:
        assert str(exc)
        return
    # Whatever parses answers every service with a message Jaeger's IDL accepts.
    for book in [s.base, *s.tenants.values()]:
        for name in [*book.services, "unknown"]:
            jaeger_message(book.for_service(name).to_json())


probabilities = st.floats(0, 1)
op_names = st.text(min_size=1, max_size=20)
operation = st.builds(
    lambda o, p: {"operation": o, "type": "probabilistic", "param": p}, op_names, probabilities
)


@st.composite
def service_doc(draw: st.DrawFn, named: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from(["probabilistic", "ratelimiting"]))
    param = draw(probabilities) if kind == "probabilistic" else draw(st.integers(0, INT32_MAX))
    doc: dict[str, Any] = {"type": kind, "param": param}
    if named:
        doc["service"] = draw(op_names)
    if draw(st.booleans()):
        ops = draw(st.lists(operation, max_size=5, unique_by=lambda o: o["operation"]))
        doc["operation_strategies"] = ops
        doc["default_lower_bound_traces_per_second"] = draw(st.floats(0, 1e6))
    return doc


valid_docs = st.builds(
    lambda d, s: {"default_strategy": d, "service_strategies": s},
    service_doc(False),
    st.lists(service_doc(True), max_size=5, unique_by=lambda s: s["service"]),
)


@settings(max_examples=200, deadline=None)
@given(valid_docs)
def test_valid_files_round_trip_through_both_bindings(doc: dict[str, Any]) -> None:
    book = parse_strategies(json.loads(json.dumps(doc))).base
    for entry in doc["service_strategies"]:
        strategy = book.for_service(entry["service"])
        as_json = strategy.to_json()
        parsed = jaeger_message(as_json)
        # gRPC binding: the same message, byte for byte, as the JSON binding's.
        wire = sampling_proto.response_message(strategy).SerializeToString(deterministic=True)
        assert parsed.SerializeToString(deterministic=True) == wire
        if entry["type"] == "probabilistic":
            assert as_json["probabilisticSampling"]["samplingRate"] == entry["param"]
        else:
            assert as_json["rateLimitingSampling"]["maxTracesPerSecond"] == entry["param"]
        own = {o["operation"]: o["param"] for o in entry.get("operation_strategies", [])}
        served = as_json.get("operationSampling", {}).get("perOperationStrategies", [])
        for op in served:
            if op["operation"] in own:
                assert op["probabilisticSampling"]["samplingRate"] == own[op["operation"]]


def test_our_messages_match_the_published_idl() -> None:
    theirs = {m.name: m for m in file_proto().message_type}
    ours = {m.name: m for m in sampling_proto.file_descriptor().message_type}
    assert set(ours) == set(theirs)

    def shape(m: descriptor_pb2.DescriptorProto) -> list[tuple[Any, ...]]:
        return sorted(
            (f.name, f.number, f.type, f.label, f.type_name.rsplit(".", 1)[-1]) for f in m.field
        )

    for name, m in theirs.items():
        assert shape(ours[name]) == shape(m), name
    (their_enum,) = file_proto().enum_type
    (our_enum,) = sampling_proto.file_descriptor().enum_type
    assert [(v.name, v.number) for v in our_enum.value] == [
        (v.name, v.number) for v in their_enum.value
    ]
    (their_svc,) = file_proto().service
    (our_svc,) = sampling_proto.file_descriptor().service
    assert [(m.name, m.input_type, m.output_type) for m in our_svc.method] == [
        (m.name, m.input_type, m.output_type) for m in their_svc.method
    ]


def write(path: Path, doc: Any, bump: int) -> None:
    path.write_text(json.dumps(doc))
    # mtime granularity can hide a quick second write; make each write distinct.
    st_ = path.stat()
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + bump * 1_000_000_000))


def test_file_reloads_on_change_and_keeps_the_last_good_on_error(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    write(path, {"default_strategy": {"type": "probabilistic", "param": 0.1}}, 0)
    f = StrategiesFile(str(path), DEFAULT_PROBABILITY)
    assert f.current.base.default.param == 0.1
    assert f.poll() is False
    write(path, {"default_strategy": {"type": "probabilistic", "param": 0.2}}, 1)
    assert f.poll() is True
    assert f.current.base.default.param == 0.2
    write(path, {"default_strategy": {"type": "probabilistic", "param": 0.3, "typo": 1}}, 2)
    assert f.poll() is False
    assert f.current.base.default.param == 0.2
    assert f.reload_errors == 1 and "'typo'" in f.last_error
    path.write_bytes(b"{not json")
    os.utime(path, ns=(0, 3_000_000_000))
    assert f.poll() is False and f.reload_errors == 2
    path.unlink()
    assert f.poll() is False and f.reload_errors == 3
    assert f.current.base.default.param == 0.2
    write(path, {"default_strategy": {"type": "ratelimiting", "param": 3}}, 4)
    assert f.poll() is True and f.current.base.default.kind == "ratelimiting"


def test_a_bad_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"default_strategy": {"type": "probabilistic", "param": 2}}')
    with pytest.raises(StrategyFileError, match=str(path)):
        StrategiesFile(str(path), DEFAULT_PROBABILITY)
    with pytest.raises(StrategyFileError, match="cannot read"):
        StrategiesFile(str(tmp_path / "missing.json"), DEFAULT_PROBABILITY)
    assert StrategiesFile("", 0.5).current.base.default.param == 0.5
