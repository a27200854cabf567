"""The tail sampler's YAML file -> validated settings and policy objects.

The file mirrors the OTel Collector's ``tail_sampling`` configuration (same policy types and
option names), so a Collector user can bring their policy set over unchanged. Without a file
the sampler keeps every trace, which is the safe default for a new installation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streams import policies as p


class SamplingConfigError(ValueError):
    """The policy file is invalid; the message names the offending option."""


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


_DURATION = re.compile(r"^\s*([0-9.]+)\s*(ms|s|m)?\s*$")
_SIZE = re.compile(r"^\s*([0-9]+)\s*(B|KiB|MiB|GiB)?\s*$")


def parse_duration(value: Any, where: str) -> float:
    """Seconds from a number (seconds) or a string like ``500ms``, ``5s``, ``1m``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise SamplingConfigError(f"{where}: not a duration: {value!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]


def parse_size(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise SamplingConfigError(f"{where}: not a size: {value!r}")
    unit = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, None: 1}[m.group(2)]
    return int(m.group(1)) * unit


def _opts(entry: dict[str, Any], kind: str, where: str) -> dict[str, Any]:
    opts = entry.get(kind, {})
    if not isinstance(opts, dict):
        raise SamplingConfigError(f"{where}.{kind}: expected a mapping")
    return opts


def _req(opts: dict[str, Any], key: str, where: str) -> Any:
    if key not in opts:
        raise SamplingConfigError(f"{where}: missing {key!r}")
    return opts[key]


def build_policy(entry: Any, where: str) -> p.Policy:
    if not isinstance(entry, dict):
        raise SamplingConfigError(f"{where}: a policy must be a mapping")
    name = str(_req(entry, "name", where))
    kind = str(_req(entry, "type", where))
    where = f"{where}[{name}]"
    o = _opts(entry, kind, where)
    try:
        return _build(kind, name, o, where)
    except (TypeError, ValueError, re.error) as exc:
        if isinstance(exc, SamplingConfigError):
            raise
        raise SamplingConfigError(f"{where}: {exc}") from exc


def _subs(o: dict[str, Any], key: str, where: str) -> list[p.Policy]:
    subs = _req(o, key, where)
    if not isinstance(subs, list) or not subs:
        raise SamplingConfigError(f"{where}: {key} must be a non-empty list")
    return [build_policy(s, f"{where}.{key}[{i}]") for i, s in enumerate(subs)]


def _build(kind: str, name: str, o: dict[str, Any], where: str) -> p.Policy:
    invert = bool(o.get("invert_match", False))
    if kind == "always_sample":
        return p.AlwaysSample(name)
    if kind == "latency":
        return p.Latency(
            name, float(_req(o, "threshold_ms", where)), float(o.get("upper_threshold_ms", 0))
        )
    if kind == "status_code":
        codes = _req(o, "status_codes", where)
        unknown = [c for c in codes if str(c).upper() not in p.STATUS_CODES]
        if unknown:
            raise SamplingConfigError(f"{where}: unknown status codes {unknown}")
        return p.StatusCode(name, frozenset(p.STATUS_CODES[str(c).upper()] for c in codes))
    if kind == "probabilistic":
        pct = float(_req(o, "sampling_percentage", where))
        if not 0 <= pct <= 100:
            raise SamplingConfigError(f"{where}: sampling_percentage must be within 0..100")
        return p.Probabilistic(name, pct, str(o.get("hash_salt", "")))
    if kind == "string_attribute":
        values = tuple(str(v) for v in _req(o, "values", where))
        return p.StringAttribute(
            name, str(_req(o, "key", where)), values,
            bool(o.get("enabled_regex_matching", False)), invert,
        )  # fmt: skip
    if kind == "numeric_attribute":
        lo, hi = o.get("min_value"), o.get("max_value")
        if lo is None and hi is None:
            raise SamplingConfigError(f"{where}: set min_value and/or max_value")
        return p.NumericAttribute(
            name, str(_req(o, "key", where)),
            None if lo is None else float(lo), None if hi is None else float(hi), invert,
        )  # fmt: skip
    if kind == "boolean_attribute":
        return p.BooleanAttribute(
            name, str(_req(o, "key", where)), bool(_req(o, "value", where)), invert
        )
    if kind == "span_count":
        return p.SpanCount(
            name, int(_req(o, "min_spans", where)), int(o.get("max_spans", 0)), invert
        )
    if kind == "trace_state":
        return p.TraceState(
            name, str(_req(o, "key", where)), tuple(str(v) for v in _req(o, "values", where))
        )
    if kind == "rate_limiting":
        return p.RateLimiting(name, int(_req(o, "spans_per_second", where)))
    if kind == "and":
        return p.And(name, _subs(o, "and_sub_policy", where))
    if kind == "drop":
        return p.Drop(name, _subs(o, "drop_sub_policy", where))
    if kind == "composite":
        subs = _subs(o, "composite_sub_policy", where)
        by_name = {s.name: s for s in subs}
        order = o.get("policy_order") or list(by_name)
        missing = [n for n in order if n not in by_name]
        if missing:
            raise SamplingConfigError(f"{where}: policy_order names unknown policies {missing}")
        alloc = {str(a["policy"]): float(a["percent"]) for a in o.get("rate_allocation", [])}
        return p.Composite(
            name,
            int(_req(o, "max_total_spans_per_second", where)),
            [by_name[n] for n in order],
            alloc,
        )
    raise SamplingConfigError(f"{where}: unknown policy type {kind!r}")


def parse_config(doc: Any) -> SamplingConfig:
    if doc is None:
        return SamplingConfig()
    if not isinstance(doc, dict):
        raise SamplingConfigError("policy file: expected a mapping at the top level")
    known = {
        "decision_wait", "num_traces", "max_buffer_bytes", "decision_cache",
        "decide_on_root_span", "root_span_wait", "policies",
    }  # fmt: skip
    unknown = set(doc) - known
    if unknown:
        raise SamplingConfigError(f"policy file: unknown options {sorted(unknown)}")
    cfg = SamplingConfig()
    if "decision_wait" in doc:
        cfg.decision_wait = parse_duration(doc["decision_wait"], "decision_wait")
    if "root_span_wait" in doc:
        cfg.root_span_wait = parse_duration(doc["root_span_wait"], "root_span_wait")
    if "num_traces" in doc:
        cfg.num_traces = int(doc["num_traces"])
    if "max_buffer_bytes" in doc:
        cfg.max_buffer_bytes = parse_size(doc["max_buffer_bytes"], "max_buffer_bytes")
    cache = doc.get("decision_cache") or {}
    cfg.sampled_cache_size = int(cache.get("sampled_cache_size", cfg.sampled_cache_size))
    cfg.non_sampled_cache_size = int(
        cache.get("non_sampled_cache_size", cfg.non_sampled_cache_size)
    )
    cfg.decide_on_root_span = bool(doc.get("decide_on_root_span", False))
    if cfg.num_traces < 1 or cfg.max_buffer_bytes < 1 or cfg.decision_wait < 0:
        raise SamplingConfigError("num_traces/max_buffer_bytes must be > 0, decision_wait >= 0")
    if "policies" in doc:
        entries = doc["policies"]
        if not isinstance(entries, list) or not entries:
            raise SamplingConfigError("policies: must be a non-empty list")
        cfg.policies = [build_policy(e, f"policies[{i}]") for i, e in enumerate(entries)]
        names = [pol.name for pol in cfg.policies]
        if len(set(names)) != len(names):
            raise SamplingConfigError(f"policies: duplicate names in {names}")
    return cfg


def load_config(path: str | Path | None) -> SamplingConfig:
    """The sampler settings from ``path``; an empty path means the keep-everything default."""
    if not path:
        return SamplingConfig()
    return parse_config(yaml.safe_load(Path(path).read_text()))
