"""The tail sampler's YAML file -> validated settings and policy objects.

The file mirrors the OTel Collector's ``tail_sampling`` configuration (same policy types and
option names), so a Collector user can bring their policy set over unchanged. Without a file
the sampler keeps every trace, which is the safe default for a new installation.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streams import policies as p


class SamplingConfigError(ValueError):
    """The policy file is invalid; the message starts with the full path of the offending key."""


@dataclass
class SamplingConfig:
    decision_wait: float = 5.0
    num_traces: int = 50_000
    max_buffer_bytes: int = 256 * 1024 * 1024
    sampled_cache_size: int = 100_000
    non_sampled_cache_size: int = 100_000
    decide_on_root_span: bool = False
    root_span_wait: float = 1.0
    policies: list[p.Policy] = field(default_factory=lambda: [p.AlwaysSample("keep-all")])


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m)?\s*$")
_SIZE = re.compile(r"^\s*([0-9]+)\s*(B|KiB|MiB|GiB)?\s*$")

TOP_LEVEL = (
    "decision_wait", "num_traces", "max_buffer_bytes", "decision_cache",
    "decide_on_root_span", "root_span_wait", "policies",
)  # fmt: skip
DECISION_CACHE = ("sampled_cache_size", "non_sampled_cache_size")
POLICY = ("name", "type")
# Each policy type's own options (the Collector's names).
OPTIONS: dict[str, tuple[str, ...]] = {
    "always_sample": (),
    "latency": ("threshold_ms", "upper_threshold_ms"),
    "status_code": ("status_codes",),
    "probabilistic": ("sampling_percentage", "hash_salt"),
    "string_attribute": (
        "key",
        "values",
        "enabled_regex_matching",
        "cache_max_size",
        "invert_match",
    ),
    "numeric_attribute": ("key", "min_value", "max_value", "invert_match"),
    "boolean_attribute": ("key", "value", "invert_match"),
    "span_count": ("min_spans", "max_spans", "invert_match"),
    "trace_state": ("key", "values"),
    "rate_limiting": ("spans_per_second",),
    "and": ("and_sub_policy",),
    "drop": ("drop_sub_policy",),
    "composite": (
        "max_total_spans_per_second",
        "policy_order",
        "composite_sub_policy",
        "rate_allocation",
    ),
}
RATE_ALLOCATION = ("policy", "percent")
_LEAF_TYPES = tuple(t for t in OPTIONS if t not in ("and", "drop", "composite"))
# Which types a combining policy may hold, as in the Collector: composite may nest and.
_SUB_TYPES = {"and": _LEAF_TYPES, "drop": _LEAF_TYPES, "composite": (*_LEAF_TYPES, "and")}


def _fail(path: str, problem: str) -> SamplingConfigError:
    return SamplingConfigError(f"{path}: {problem}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else f"; valid: {', '.join(choices) or 'none'}"


def _mapping(value: Any, path: str, allowed: Sequence[str]) -> dict[str, Any]:
    """``value`` as a mapping whose keys are all in ``allowed``.

    A misspelled option must not be silently ignored (the intended setting would quietly be
    its default), so the first unknown key is an error naming its full path and the closest
    valid key. An empty YAML block (``key:`` with nothing under it) reads as an empty mapping.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path or "policy file", f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _fail(_join(path, str(key)), "option names must be strings")
        if key not in allowed:
            raise _fail(_join(path, key), "unknown option" + _suggest(key, allowed))
    return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _present(o: dict[str, Any], key: str, path: str, default: object) -> bool:
    """Whether ``key`` is given; a missing key without a default is an error naming it."""
    if key in o:
        return True
    if default is None:
        raise _fail(path, f"missing {key}")
    return False


def _int(o: dict[str, Any], key: str, path: str, default: int | None, minimum: int) -> int:
    """An integer option (a bool or a float is a mistake here, not a number) >= ``minimum``."""
    if not _present(o, key, path, default):
        assert default is not None  # _present raised otherwise
        return default
    where = _join(path, key)
    v = o[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(where, f"expected an integer, got {_kind(v)}")
    if v < minimum:
        raise _fail(where, f"must be >= {minimum}, got {v}")
    return v


def _number(
    o: dict[str, Any], key: str, path: str, default: float | None,
    minimum: float | None = None, maximum: float | None = None,
) -> float:  # fmt: skip
    if not _present(o, key, path, default):
        assert default is not None  # _present raised otherwise
        return default
    where = _join(path, key)
    v = o[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
        raise _fail(where, f"expected a number, got {_kind(v)}")
    if minimum is not None and v < minimum:
        raise _fail(where, f"must be >= {minimum:g}, got {v:g}")
    if maximum is not None and v > maximum:
        raise _fail(where, f"must be <= {maximum:g}, got {v:g}")
    return float(v)


def _bool(o: dict[str, Any], key: str, path: str, default: bool | None = False) -> bool:
    if not _present(o, key, path, default):
        return bool(default)
    v = o[key]
    if not isinstance(v, bool):
        raise _fail(_join(path, key), f"expected true or false, got {_kind(v)}")
    return v


def _str(o: dict[str, Any], key: str, path: str, default: str | None = None) -> str:
    if not _present(o, key, path, default):
        return str(default)
    v = o[key]
    if not isinstance(v, str):
        raise _fail(_join(path, key), f"expected a string, got {_kind(v)}")
    if default is None and not v:
        raise _fail(_join(path, key), "must not be empty")
    return v


def _list(o: dict[str, Any], key: str, path: str, required: bool = True) -> list[Any]:
    if key not in o:
        if required:
            raise _fail(path, f"missing {key}")
        return []
    v = o[key]
    if not isinstance(v, list) or (required and not v):
        raise _fail(_join(path, key), f"expected a non-empty list, got {_kind(v)}")
    return v


def _values(o: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
    """A non-empty list of strings; numbers are accepted as their text (YAML reads 200 as int)."""
    out = []
    for i, v in enumerate(_list(o, key, path)):
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise _fail(f"{_join(path, key)}[{i}]", f"expected a string, got {_kind(v)}")
        out.append(str(v))
    return tuple(out)


def parse_duration(value: Any, where: str) -> float:
    """Seconds (>= 0) from a number (seconds) or a string like ``500ms``, ``5s``, ``1m``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not value >= 0:
            raise _fail(where, f"must be >= 0, got {value!r}")
        return float(value)
    m = _DURATION.match(value) if isinstance(value, str) else None
    if not m:
        raise _fail(where, f"not a duration: {value!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]


def parse_size(value: Any, where: str) -> int:
    """Bytes from an integer or a string like ``64MiB`` (B/KiB/MiB/GiB)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(value) if isinstance(value, str) else None
    if not m:
        raise _fail(where, f"not a size: {value!r}")
    unit = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, None: 1}[m.group(2)]
    return int(m.group(1)) * unit


def build_policy(entry: Any, where: str, parent: str | None = None) -> p.Policy:
    """One policy entry (``name``, ``type`` and the block named after the type), strictly.

    ``parent`` is the type of the combining policy holding this one, if any: it may hold only
    the types the Collector lets it hold.
    """
    entry = _mapping(entry, where, (*POLICY, *OPTIONS))
    name = _str(entry, "name", where)
    kind = _str(entry, "type", where)
    types = tuple(OPTIONS) if parent is None else _SUB_TYPES[parent]
    if kind not in OPTIONS:
        raise _fail(_join(where, "type"), f"unknown policy type {kind!r}" + _suggest(kind, types))
    if kind not in types:
        allowed = ", ".join(types)
        raise _fail(
            _join(where, "type"), f"{kind} cannot be nested in {parent}; allowed: {allowed}"
        )
    for key in entry:
        if key not in POLICY and key != kind:
            raise _fail(_join(where, key), f"does not apply to a policy of type {kind}")
    opts_path = _join(where, kind)
    o = _mapping(entry.get(kind), opts_path, OPTIONS[kind])
    return _build(kind, name, o, opts_path)


def _subs(o: dict[str, Any], key: str, path: str, parent: str) -> list[p.Policy]:
    where = _join(path, key)
    subs = [build_policy(s, f"{where}[{i}]", parent) for i, s in enumerate(_list(o, key, path))]
    _unique([s.name for s in subs], where)
    return subs


def _unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise _fail(f"{where}[{i}].name", f"duplicate policy name {n!r}")
        seen.add(n)


def _build(kind: str, name: str, o: dict[str, Any], where: str) -> p.Policy:
    if kind == "always_sample":
        return p.AlwaysSample(name)
    if kind == "latency":
        lo = _number(o, "threshold_ms", where, None, minimum=0)
        hi = _number(o, "upper_threshold_ms", where, 0, minimum=0)
        if hi and hi < lo:
            raise _fail(_join(where, "upper_threshold_ms"), f"must be 0 or >= threshold_ms {lo:g}")
        return p.Latency(name, lo, hi)
    if kind == "status_code":
        codes = _values(o, "status_codes", where)
        for i, c in enumerate(codes):
            if c.upper() not in p.STATUS_CODES:
                raise _fail(
                    f"{_join(where, 'status_codes')}[{i}]",
                    f"unknown status code {c!r}; valid: {', '.join(p.STATUS_CODES)}",
                )
        return p.StatusCode(name, frozenset(p.STATUS_CODES[c.upper()] for c in codes))
    if kind == "probabilistic":
        pct = _number(o, "sampling_percentage", where, None, minimum=0, maximum=100)
        return p.Probabilistic(name, pct, _str(o, "hash_salt", where, ""))
    invert = _bool(o, "invert_match", where) if "invert_match" in OPTIONS[kind] else False
    if kind == "string_attribute":
        values = _values(o, "values", where)
        regex = _bool(o, "enabled_regex_matching", where)
        _int(o, "cache_max_size", where, 0, 0)  # accepted for Collector files; no cache needed
        if regex:
            for i, v in enumerate(values):
                try:
                    re.compile(v)
                except re.error as exc:
                    raise _fail(f"{_join(where, 'values')}[{i}]", f"bad regex: {exc}") from exc
        return p.StringAttribute(name, _str(o, "key", where), values, regex, invert)
    if kind == "numeric_attribute":
        key = _str(o, "key", where)
        low = _number(o, "min_value", where, None) if "min_value" in o else None
        high = _number(o, "max_value", where, None) if "max_value" in o else None
        if low is None and high is None:
            raise _fail(where, "set min_value and/or max_value")
        if low is not None and high is not None and high < low:
            raise _fail(_join(where, "max_value"), f"must be >= min_value {low:g}")
        return p.NumericAttribute(name, key, low, high, invert)
    if kind == "boolean_attribute":
        return p.BooleanAttribute(
            name, _str(o, "key", where), _bool(o, "value", where, None), invert
        )
    if kind == "span_count":
        lo_n = _int(o, "min_spans", where, None, 0)
        hi_n = _int(o, "max_spans", where, 0, 0)
        if hi_n and hi_n < lo_n:
            raise _fail(_join(where, "max_spans"), f"must be 0 or >= min_spans {lo_n}")
        return p.SpanCount(name, lo_n, hi_n, invert)
    if kind == "trace_state":
        return p.TraceState(name, _str(o, "key", where), _values(o, "values", where))
    if kind == "rate_limiting":
        return p.RateLimiting(name, _int(o, "spans_per_second", where, None, 1))
    if kind == "and":
        return p.And(name, _subs(o, "and_sub_policy", where, kind))
    if kind == "drop":
        return p.Drop(name, _subs(o, "drop_sub_policy", where, kind))
    return _composite(name, o, where)


def _composite(name: str, o: dict[str, Any], where: str) -> p.Composite:
    total = _int(o, "max_total_spans_per_second", where, None, 1)
    subs = _subs(o, "composite_sub_policy", where, "composite")
    by_name = {s.name: s for s in subs}
    order_path = _join(where, "policy_order")
    order = list(_values(o, "policy_order", where)) if "policy_order" in o else list(by_name)
    for i, n in enumerate(order):
        if n not in by_name:
            raise _fail(
                f"{order_path}[{i}]", f"no sub-policy named {n!r}" + _suggest(n, _names(subs))
            )
    _unique(order, order_path)
    alloc: dict[str, float] = {}
    alloc_path = _join(where, "rate_allocation")
    for i, raw in enumerate(_list(o, "rate_allocation", where, required=False)):
        at = f"{alloc_path}[{i}]"
        a = _mapping(raw, at, RATE_ALLOCATION)
        pol = _str(a, "policy", at)
        if pol not in by_name:
            raise _fail(
                _join(at, "policy"),
                f"no sub-policy named {pol!r}" + _suggest(pol, _names(subs)),
            )
        if pol in alloc:
            raise _fail(_join(at, "policy"), f"{pol!r} already has an allocation")
        alloc[pol] = _number(a, "percent", at, None, minimum=0, maximum=100)
    return p.Composite(name, total, [by_name[n] for n in order], alloc)


def _names(subs: list[p.Policy]) -> list[str]:
    return [s.name for s in subs]


def parse_config(doc: Any) -> SamplingConfig:
    """Validated settings from a parsed policy file; the first problem raises, naming its key.

    Top-level drop policies are moved to the front (keeping their relative order), as the
    Collector does, so a dropped trace stops evaluation before any rate limit spends budget.
    """
    cfg = SamplingConfig()
    if doc is None:
        return cfg
    doc = _mapping(doc, "", TOP_LEVEL)
    if "decision_wait" in doc:
        cfg.decision_wait = parse_duration(doc["decision_wait"], "decision_wait")
    if "root_span_wait" in doc:
        cfg.root_span_wait = parse_duration(doc["root_span_wait"], "root_span_wait")
    cfg.num_traces = _int(doc, "num_traces", "", cfg.num_traces, 1)
    if "max_buffer_bytes" in doc:
        cfg.max_buffer_bytes = parse_size(doc["max_buffer_bytes"], "max_buffer_bytes")
        if cfg.max_buffer_bytes < 1:
            raise _fail("max_buffer_bytes", "must be > 0")
    cache = _mapping(doc.get("decision_cache"), "decision_cache", DECISION_CACHE)
    cfg.sampled_cache_size = _int(
        cache, "sampled_cache_size", "decision_cache", cfg.sampled_cache_size, 0
    )
    cfg.non_sampled_cache_size = _int(
        cache, "non_sampled_cache_size", "decision_cache", cfg.non_sampled_cache_size, 0
    )
    cfg.decide_on_root_span = _bool(doc, "decide_on_root_span", "", False)
    if "policies" in doc:
        entries = _list(doc, "policies", "")
        policies = [build_policy(e, f"policies[{i}]") for i, e in enumerate(entries)]
        _unique([pol.name for pol in policies], "policies")
        drops = [pol for pol in policies if isinstance(pol, p.Drop)]
        cfg.policies = drops + [pol for pol in policies if not isinstance(pol, p.Drop)]
    return cfg


def load_config(path: str | Path | None) -> SamplingConfig:
    """The sampler settings from ``path``; an empty path means the keep-everything default.

    Errors are prefixed with the file's path, so the worker's start-up failure says which file
    and which key.
    """
    if not path:
        return SamplingConfig()
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise SamplingConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return parse_config(doc)
    except SamplingConfigError as exc:
        raise SamplingConfigError(f"{path}: {exc}") from exc
