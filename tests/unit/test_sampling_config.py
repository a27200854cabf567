"""The YAML policy file: OTel option names, defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streams import policies as p
from streams.sampling_config import (
    SamplingConfigError,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
)

FULL = """
decision_wait: 2s
num_traces: 1000
max_buffer_bytes: 64MiB
decision_cache: {sampled_cache_size: 10, non_sampled_cache_size: 20}
decide_on_root_span: true
root_span_wait: 250ms
policies:
  - {name: all, type: always_sample}
  - {name: slow, type: latency, latency: {threshold_ms: 500, upper_threshold_ms: 900}}
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR, unset]}}
  - {name: p, type: probabilistic, probabilistic: {sampling_percentage: 12.5, hash_salt: x}}
  - name: route
    type: string_attribute
    string_attribute: {key: http.route, values: ["^/api"], enabled_regex_matching: true}
  - {name: code, type: numeric_attribute, numeric_attribute: {key: c, min_value: 500}}
  - {name: dbg, type: boolean_attribute, boolean_attribute: {key: debug, value: true}}
  - {name: rl, type: rate_limiting, rate_limiting: {spans_per_second: 100}}
  - {name: big, type: span_count, span_count: {min_spans: 10}}
  - {name: ts, type: trace_state, trace_state: {key: k, values: [v]}}
  - name: both
    type: and
    and: {and_sub_policy: [{name: e, type: status_code, status_code: {status_codes: [ERROR]}},
                           {name: s, type: latency, latency: {threshold_ms: 10}}]}
  - name: nohealth
    type: drop
    drop: {drop_sub_policy: [{name: h, type: string_attribute,
                              string_attribute: {key: http.route, values: [/health]}}]}
  - name: comp
    type: composite
    composite:
      max_total_spans_per_second: 1000
      policy_order: [ce, ca]
      composite_sub_policy:
        - {name: ca, type: always_sample}
        - {name: ce, type: status_code, status_code: {status_codes: [ERROR]}}
      rate_allocation: [{policy: ce, percent: 75}, {policy: ca, percent: 25}]
"""


def test_full_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(FULL)
    cfg = load_config(path)
    assert cfg.decision_wait == 2.0 and cfg.root_span_wait == 0.25
    assert cfg.num_traces == 1000 and cfg.max_buffer_bytes == 64 * 1024**2
    assert (cfg.sampled_cache_size, cfg.non_sampled_cache_size) == (10, 20)
    assert cfg.decide_on_root_span
    kinds = [type(x).__name__ for x in cfg.policies]
    assert kinds == [
        "AlwaysSample", "Latency", "StatusCode", "Probabilistic", "StringAttribute",
        "NumericAttribute", "BooleanAttribute", "RateLimiting", "SpanCount", "TraceState",
        "And", "Drop", "Composite",
    ]  # fmt: skip
    status = cfg.policies[2]
    assert isinstance(status, p.StatusCode) and status.status_codes == {2, 0}
    comp = cfg.policies[-1]
    assert isinstance(comp, p.Composite)
    assert [s.name for s in comp.sub_policies] == ["ce", "ca"]
    assert comp.rate_allocation == {"ce": 75.0, "ca": 25.0}


def test_default_keeps_everything() -> None:
    cfg = load_config("")
    assert [type(x) for x in cfg.policies] == [p.AlwaysSample]
    assert parse_config(None).policies[0].name == "keep-all"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"policies": [{"name": "x", "type": "nope"}]}, "unknown policy type"),
        ({"policies": [{"type": "latency"}]}, "missing 'name'"),
        ({"policies": [{"name": "x", "type": "latency", "latency": {}}]}, "threshold_ms"),
        (
            {
                "policies": [
                    {"name": "x", "type": "status_code", "status_code": {"status_codes": ["BAD"]}}
                ]
            },
            "unknown status codes",
        ),
        (
            {
                "policies": [
                    {
                        "name": "x",
                        "type": "probabilistic",
                        "probabilistic": {"sampling_percentage": 101},
                    }
                ]
            },
            "0..100",
        ),
        ({"policies": [{"name": "x", "type": "and", "and": {"and_sub_policy": []}}]}, "non-empty"),
        ({"policies": []}, "non-empty"),
        ({"decision_wait": "soon"}, "not a duration"),
        ({"bogus": 1}, "unknown options"),
        (
            {
                "policies": [
                    {"name": "a", "type": "always_sample"},
                    {"name": "a", "type": "always_sample"},
                ]
            },
            "duplicate",
        ),
        (
            {
                "policies": [
                    {"name": "x", "type": "numeric_attribute", "numeric_attribute": {"key": "k"}}
                ]
            },
            "min_value",
        ),
    ],
)
def test_invalid_files_name_the_problem(doc: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SamplingConfigError, match=message):
        parse_config(yaml.safe_load(yaml.safe_dump(doc)))


def test_duration_and_size_units() -> None:
    assert parse_duration("1500ms", "x") == 1.5
    assert parse_duration(3, "x") == 3.0
    assert parse_duration("1m", "x") == 60.0
    assert parse_size("2KiB", "x") == 2048
    with pytest.raises(SamplingConfigError):
        parse_size("lots", "x")
