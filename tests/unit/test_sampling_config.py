"""The YAML policy file: OTel option names, defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    # Drop policies are evaluated first (as in the Collector), the rest in file order.
    assert kinds == [
        "Drop", "AlwaysSample", "Latency", "StatusCode", "Probabilistic", "StringAttribute",
        "NumericAttribute", "BooleanAttribute", "RateLimiting", "SpanCount", "TraceState",
        "And", "Composite",
    ]  # fmt: skip
    status = cfg.policies[3]
    assert isinstance(status, p.StatusCode) and status.status_codes == {2, 0}
    comp = cfg.policies[-1]
    assert isinstance(comp, p.Composite)
    assert [s.name for s in comp.sub_policies] == ["ce", "ca"]
    assert comp.rate_allocation == {"ce": 75.0, "ca": 25.0}


def test_default_keeps_everything() -> None:
    cfg = load_config("")
    assert [type(x) for x in cfg.policies] == [p.AlwaysSample]
    assert parse_config(None).policies[0].name == "keep-all"


def _pol(kind: str, opts: dict[str, Any] | None = None, name: str = "x") -> dict[str, Any]:
    """One policy entry of type ``kind`` with ``opts`` as its block."""
    entry: dict[str, Any] = {"name": name, "type": kind}
    if opts is not None:
        entry[kind] = opts
    return entry


def _pols(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"policies": list(entries)}


ALWAYS = _pol("always_sample", name="a")
LEAF = {"name": "leaf", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}
COMPOSITE_OK = {"max_total_spans_per_second": 10, "composite_sub_policy": [LEAF]}

# (case, document, the exact error message)
INVALID: list[tuple[str, Any, str]] = [
    # The two examples: misspelled nested keys name the full path and the fix.
    (
        "misspelled latency option (issue)",
        _pols(ALWAYS, _pol("always_sample", name="b"),
              _pol("latency", {"threshold_ms": 500, "upper_threshhold_ms": 900})),
        "policies[2].latency.upper_threshhold_ms: unknown option; did you mean upper_threshold_ms?",
    ),
    (
        "misspelled decision_cache option (issue)",
        {"decision_cache": {"sampled_cache_sise": 10}},
        "decision_cache.sampled_cache_sise: unknown option; did you mean sampled_cache_size?",
    ),
    ("misspelled top-level option", {"polices": []},
     "polices: unknown option; did you mean policies?"),
    ("unknown top-level option far from any", {"bogus": 1},
     "bogus: unknown option; valid: decision_wait, num_traces, max_buffer_bytes, "
     "decision_cache, decide_on_root_span, root_span_wait, policies"),
    ("misspelled policy key", _pols({"name": "x", "typ": "always_sample"}),
     "policies[0].typ: unknown option; did you mean type?"),
    ("block of another type", _pols({**_pol("latency", {"threshold_ms": 1}), "status_code": {}}),
     "policies[0].status_code: does not apply to a policy of type latency"),
    ("misspelled option of an and sub-policy",
     _pols(_pol("and", {"and_sub_policy": [_pol("latency", {"treshold_ms": 1}, "s")]})),
     "policies[0].and.and_sub_policy[0].latency.treshold_ms: unknown option; "
     "did you mean threshold_ms?"),
    ("misspelled and option", _pols(_pol("and", {"and_sub_policies": [LEAF]})),
     "policies[0].and.and_sub_policies: unknown option; did you mean and_sub_policy?"),
    ("misspelled option of a drop sub-policy",
     _pols(_pol("drop", {"drop_sub_policy": [
         _pol("string_attribute", {"ky": "k", "values": ["v"]}, "s")]})),
     "policies[0].drop.drop_sub_policy[0].string_attribute.ky: unknown option; did you mean key?"),
    ("misspelled option of a composite's nested and",
     _pols(_pol("composite", {**COMPOSITE_OK, "composite_sub_policy": [
         _pol("and", {"and_sub_policy": [_pol("span_count", {"min_span": 2}, "n")]}, "s")]})),
     "policies[0].composite.composite_sub_policy[0].and.and_sub_policy[0].span_count.min_span: "
     "unknown option; did you mean min_spans?"),
    ("misspelled rate_allocation key",
     _pols(_pol("composite", {**COMPOSITE_OK,
                              "rate_allocation": [{"policy": "leaf", "percnt": 5}]})),
     "policies[0].composite.rate_allocation[0].percnt: unknown option; did you mean percent?"),
    ("always_sample takes no options", _pols(_pol("always_sample", {"enabled": True})),
     "policies[0].always_sample.enabled: unknown option; valid: none"),
    ("misspelled policy type", _pols(_pol("composit")),
     "policies[0].type: unknown policy type 'composit'; did you mean composite?"),
    ("composite cannot be nested in and",
     _pols(_pol("and", {"and_sub_policy": [_pol("composite", COMPOSITE_OK, "c")]})),
     "policies[0].and.and_sub_policy[0].type: composite cannot be nested in and; allowed: "
     "always_sample, latency, status_code, probabilistic, string_attribute, numeric_attribute, "
     "boolean_attribute, span_count, trace_state, rate_limiting"),
    ("drop cannot be nested in composite",
     _pols(_pol("composite", {**COMPOSITE_OK, "composite_sub_policy": [
         _pol("drop", {"drop_sub_policy": [LEAF]}, "d")]})),
     "policies[0].composite.composite_sub_policy[0].type: drop cannot be nested in composite; "
     "allowed: always_sample, latency, status_code, probabilistic, string_attribute, "
     "numeric_attribute, boolean_attribute, span_count, trace_state, rate_limiting, and"),
    # Missing, empty and duplicate names.
    ("missing name", _pols({"type": "latency"}), "policies[0]: missing name"),
    ("empty name", _pols(_pol("always_sample", name="")), "policies[0].name: must not be empty"),
    ("name not a string", _pols({"name": 7, "type": "always_sample"}),
     "policies[0].name: expected a string, got int 7"),
    ("duplicate top-level names", _pols(ALWAYS, ALWAYS),
     "policies[1].name: duplicate policy name 'a'"),
    ("duplicate sub-policy names", _pols(_pol("and", {"and_sub_policy": [LEAF, LEAF]})),
     "policies[0].and.and_sub_policy[1].name: duplicate policy name 'leaf'"),
    # Wrong types and out-of-range values.
    ("policy not a mapping", _pols("always_sample"),  # type: ignore[arg-type]
     "policies[0]: expected a mapping, got str 'always_sample'"),
    ("policy block not a mapping", _pols(_pol("latency", [1])),  # type: ignore[arg-type]
     "policies[0].latency: expected a mapping, got list [1]"),
    ("top level not a mapping", ["policies"],
     "policy file: expected a mapping, got list ['policies']"),
    ("missing threshold", _pols(_pol("latency", {})), "policies[0].latency: missing threshold_ms"),
    ("negative threshold", _pols(_pol("latency", {"threshold_ms": -1})),
     "policies[0].latency.threshold_ms: must be >= 0, got -1"),
    ("threshold as text", _pols(_pol("latency", {"threshold_ms": "500"})),
     "policies[0].latency.threshold_ms: expected a number, got str '500'"),
    ("upper threshold below lower",
     _pols(_pol("latency", {"threshold_ms": 500, "upper_threshold_ms": 100})),
     "policies[0].latency.upper_threshold_ms: must be 0 or >= threshold_ms 500"),
    ("unknown status code", _pols(_pol("status_code", {"status_codes": ["OK", "BAD"]})),
     "policies[0].status_code.status_codes[1]: unknown status code 'BAD'; valid: UNSET, OK, ERROR"),
    ("empty status codes", _pols(_pol("status_code", {"status_codes": []})),
     "policies[0].status_code.status_codes: expected a non-empty list, got list []"),
    ("probability above 100", _pols(_pol("probabilistic", {"sampling_percentage": 101})),
     "policies[0].probabilistic.sampling_percentage: must be <= 100, got 101"),
    ("probability below 0", _pols(_pol("probabilistic", {"sampling_percentage": -0.5})),
     "policies[0].probabilistic.sampling_percentage: must be >= 0, got -0.5"),
    ("probability as bool", _pols(_pol("probabilistic", {"sampling_percentage": True})),
     "policies[0].probabilistic.sampling_percentage: expected a number, got bool True"),
    ("bad regex", _pols(_pol("string_attribute",
                             {"key": "k", "values": ["ok", "("], "enabled_regex_matching": True})),
     "policies[0].string_attribute.values[1]: bad regex: missing ), unterminated subpattern at "
     "position 0"),
    ("invert_match as text", _pols(_pol("string_attribute",
                                        {"key": "k", "values": ["v"], "invert_match": "yes"})),
     "policies[0].string_attribute.invert_match: expected true or false, got str 'yes'"),
    ("empty attribute key", _pols(_pol("string_attribute", {"key": "", "values": ["v"]})),
     "policies[0].string_attribute.key: must not be empty"),
    ("numeric without bounds", _pols(_pol("numeric_attribute", {"key": "k"})),
     "policies[0].numeric_attribute: set min_value and/or max_value"),
    ("numeric bounds reversed", _pols(_pol("numeric_attribute",
                                           {"key": "k", "min_value": 5, "max_value": 1})),
     "policies[0].numeric_attribute.max_value: must be >= min_value 5"),
    ("boolean without value", _pols(_pol("boolean_attribute", {"key": "k"})),
     "policies[0].boolean_attribute: missing value"),
    ("negative min_spans", _pols(_pol("span_count", {"min_spans": -1})),
     "policies[0].span_count.min_spans: must be >= 0, got -1"),
    ("fractional min_spans", _pols(_pol("span_count", {"min_spans": 1.5})),
     "policies[0].span_count.min_spans: expected an integer, got float 1.5"),
    ("max_spans below min_spans", _pols(_pol("span_count", {"min_spans": 5, "max_spans": 2})),
     "policies[0].span_count.max_spans: must be 0 or >= min_spans 5"),
    ("zero rate limit", _pols(_pol("rate_limiting", {"spans_per_second": 0})),
     "policies[0].rate_limiting.spans_per_second: must be >= 1, got 0"),
    ("empty and", _pols(_pol("and", {"and_sub_policy": []})),
     "policies[0].and.and_sub_policy: expected a non-empty list, got list []"),
    ("composite without budget", _pols(_pol("composite", {"composite_sub_policy": [LEAF]})),
     "policies[0].composite: missing max_total_spans_per_second"),
    ("policy_order names an unknown sub-policy",
     _pols(_pol("composite", {**COMPOSITE_OK, "policy_order": ["lef"]})),
     "policies[0].composite.policy_order[0]: no sub-policy named 'lef'; did you mean leaf?"),
    ("rate_allocation above 100",
     _pols(_pol("composite", {**COMPOSITE_OK,
                              "rate_allocation": [{"policy": "leaf", "percent": 150}]})),
     "policies[0].composite.rate_allocation[0].percent: must be <= 100, got 150"),
    ("rate_allocation twice for one sub-policy",
     _pols(_pol("composite", {**COMPOSITE_OK, "rate_allocation": [
         {"policy": "leaf", "percent": 10}, {"policy": "leaf", "percent": 20}]})),
     "policies[0].composite.rate_allocation[1].policy: 'leaf' already has an allocation"),
    ("empty policies", {"policies": []}, "policies: expected a non-empty list, got list []"),
    ("num_traces zero", {"num_traces": 0}, "num_traces: must be >= 1, got 0"),
    ("num_traces as text", {"num_traces": "many"},
     "num_traces: expected an integer, got str 'many'"),
    ("negative cache size", {"decision_cache": {"non_sampled_cache_size": -1}},
     "decision_cache.non_sampled_cache_size: must be >= 0, got -1"),
    ("decision_cache not a mapping", {"decision_cache": 5},
     "decision_cache: expected a mapping, got int 5"),
    ("bad duration", {"decision_wait": "soon"}, "decision_wait: not a duration: 'soon'"),
    ("negative duration", {"root_span_wait": -1}, "root_span_wait: must be >= 0, got -1"),
    ("malformed duration", {"decision_wait": "1.2.3s"}, "decision_wait: not a duration: '1.2.3s'"),
    ("bad size", {"max_buffer_bytes": "lots"}, "max_buffer_bytes: not a size: 'lots'"),
    ("zero size", {"max_buffer_bytes": 0}, "max_buffer_bytes: must be > 0"),
    ("decide_on_root_span as text", {"decide_on_root_span": "false"},
     "decide_on_root_span: expected true or false, got str 'false'"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_files_name_the_key(doc: Any, message: str) -> None:
    # Through YAML, so the documents are exactly what a file can express.
    with pytest.raises(SamplingConfigError) as err:
        parse_config(yaml.safe_load(yaml.safe_dump(doc)))
    assert str(err.value) == message


def test_load_config_prefixes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("decision_cache:\n  sampled_cache_sise: 10\n")
    with pytest.raises(SamplingConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: decision_cache.sampled_cache_sise: unknown option; "
        "did you mean sampled_cache_size?"
    )
    path.write_text("policies: [\n")
    with pytest.raises(SamplingConfigError, match="not valid YAML"):
        load_config(path)


def test_empty_blocks_and_collector_only_options_are_accepted() -> None:
    cfg = parse_config(
        yaml.safe_load(
            """
decision_cache:
policies:
  - {name: a, type: always_sample, always_sample: }
  - {name: s, type: string_attribute,
     string_attribute: {key: k, values: [v, 200], cache_max_size: 10}}
  - {name: c, type: composite,
     composite: {max_total_spans_per_second: 10,
                 composite_sub_policy: [{name: x, type: always_sample}],
                 rate_allocation: [{policy: x, percent: 0}]}}
"""
        )
    )
    assert cfg.sampled_cache_size == 100_000
    s = cfg.policies[1]
    assert isinstance(s, p.StringAttribute) and s.values == ("v", "200")


def test_duration_and_size_units() -> None:
    assert parse_duration("1500ms", "x") == 1.5
    assert parse_duration(3, "x") == 3.0
    assert parse_duration("1m", "x") == 60.0
    assert parse_size("2KiB", "x") == 2048
    with pytest.raises(SamplingConfigError):
        parse_size("lots", "x")
