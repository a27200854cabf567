"""Remote sampling strategies: Jaeger's strategies-file format in, Jaeger's responses out.

SDKs with a remote sampler (Jaeger clients, OTel's ``jaeger_remote`` samplers) ask
``/sampling?service=X`` and apply what comes back. The answer is api_v2's
``SamplingStrategyResponse`` (jaeger-idl proto/api_v2/sampling.proto): a probabilistic rate, a
rate limit, or per-operation probabilities with a default probability and a lower bound of
traces per second that every operation keeps even when its probability is tiny.

The file is the one Jaeger's file-based provider reads::

    {"default_strategy": {"type": "probabilistic", "param": 0.5,
                          "operation_strategies": [...]},
     "service_strategies": [{"service": "foo", "type": "ratelimiting", "param": 2,
                             "operation_strategies": [{"operation": "op", "type":
                                                       "probabilistic", "param": 0.2}]}]}

with the resolution rules Jaeger applies: an unknown service gets the default strategy; a
service without operation strategies inherits the default's, with its own probability as the
default probability when it is probabilistic; a service with its own operation strategies gets
the default's for operations it does not name. Two additions, both optional:
``default_lower_bound_traces_per_second`` (and ``..._upper_bound...``) on a service or the
default (Jaeger's file format cannot set them; the proto has them), and a top-level
``tenants`` map of tenant -> a document of the same format, used when auth is on.

Unlike Jaeger, which logs and skips what it cannot use, parsing is strict: an unknown key, a
wrong type, a probability outside [0, 1], a rate limit an int32 cannot hold, a rate-limiting
operation strategy (the proto has no field for it) or a duplicate service or operation is a
:class:`StrategyFileError` naming where it is, so a typo never silently samples at the default.

Everything here is pure: documents in, immutable strategies out, JSON-ready dicts on request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROBABILISTIC = "probabilistic"
RATE_LIMITING = "ratelimiting"
# Jaeger's default probability when nothing else says (its file provider's constant).
DEFAULT_PROBABILITY = 0.001
INT32_MAX = 2**31 - 1
MAX_NAME_CHARS = 1024

_TOP_KEYS = frozenset({"default_strategy", "service_strategies", "tenants"})
_TENANT_TOP_KEYS = _TOP_KEYS - {"tenants"}
_BOUND_KEYS = frozenset(
    {"default_lower_bound_traces_per_second", "default_upper_bound_traces_per_second"}
)
_STRATEGY_KEYS = frozenset({"type", "param", "operation_strategies"}) | _BOUND_KEYS
_SERVICE_KEYS = _STRATEGY_KEYS | {"service"}
_OPERATION_KEYS = frozenset({"operation", "type", "param"})


class StrategyFileError(ValueError):
    """A strategies document that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class OperationProbability:
    operation: str
    probability: float


@dataclass(frozen=True)
class PerOperation:
    """api_v2 PerOperationSamplingStrategies."""

    default_probability: float
    lower_bound_per_second: float = 0.0
    upper_bound_per_second: float = 0.0
    operations: tuple[OperationProbability, ...] = ()

    def names(self) -> set[str]:
        return {o.operation for o in self.operations}


@dataclass(frozen=True)
class Strategy:
    """One service's answer: probabilistic or rate limiting, plus optional per-operation."""

    kind: str  # PROBABILISTIC or RATE_LIMITING
    param: float  # probability, or traces per second (an int32 for rate limiting)
    per_operation: PerOperation | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON Jaeger's HTTP endpoint writes: protobuf JSON names, every scalar present
        (``strategyType`` included although PROBABILISTIC is the enum's zero, as jaeger-client
        requires it), absent sub-messages left out."""
        doc: dict[str, Any] = {
            "strategyType": "PROBABILISTIC" if self.kind == PROBABILISTIC else "RATE_LIMITING"
        }
        if self.kind == PROBABILISTIC:
            doc["probabilisticSampling"] = {"samplingRate": self.param}
        else:
            doc["rateLimitingSampling"] = {"maxTracesPerSecond": int(self.param)}
        if self.per_operation is not None:
            p = self.per_operation
            doc["operationSampling"] = {
                "defaultSamplingProbability": p.default_probability,
                "defaultLowerBoundTracesPerSecond": p.lower_bound_per_second,
                "perOperationStrategies": [
                    {
                        "operation": o.operation,
                        "probabilisticSampling": {"samplingRate": o.probability},
                    }
                    for o in p.operations
                ],
                "defaultUpperBoundTracesPerSecond": p.upper_bound_per_second,
            }
        return doc


@dataclass(frozen=True)
class StrategyBook:
    """The resolved strategies of one tenant: a default and one entry per named service."""

    default: Strategy
    services: Mapping[str, Strategy] = field(default_factory=dict)

    def for_service(self, service: str) -> Strategy:
        return self.services.get(service, self.default)


@dataclass(frozen=True)
class Strategies:
    """A whole file: the book for requests without a tenant, and one per named tenant."""

    base: StrategyBook
    tenants: Mapping[str, StrategyBook] = field(default_factory=dict)

    def book(self, tenant: str) -> StrategyBook:
        return self.tenants.get(tenant, self.base) if tenant else self.base


def default_strategies(probability: float = DEFAULT_PROBABILITY) -> Strategies:
    """What is served with no file: every service probabilistic at ``probability``."""
    return Strategies(StrategyBook(Strategy(PROBABILISTIC, probability)))


def parse_strategies(doc: Any, default_probability: float = DEFAULT_PROBABILITY) -> Strategies:
    """A parsed JSON document -> :class:`Strategies`; raises :class:`StrategyFileError`."""
    base = _parse_book(doc, "", _TOP_KEYS, default_probability)
    tenants: dict[str, StrategyBook] = {}
    raw_tenants = doc.get("tenants")
    if raw_tenants is not None:
        if not isinstance(raw_tenants, dict):
            raise StrategyFileError("tenants: expected an object of tenant -> strategies")
        for tenant, tdoc in raw_tenants.items():
            _check_name(tenant, f"tenants: key {tenant!r}")
            tenants[tenant] = _parse_book(
                tdoc, f"tenants.{tenant}.", _TENANT_TOP_KEYS, default_probability
            )
    return Strategies(base, tenants)


def _parse_book(
    doc: Any, where: str, allowed: frozenset[str], default_probability: float
) -> StrategyBook:
    if not isinstance(doc, dict):
        raise StrategyFileError(f"{where or 'document'}: expected a JSON object")
    _check_keys(doc, allowed, where.rstrip(".") or "top level")
    default = Strategy(PROBABILISTIC, default_probability)
    raw_default = doc.get("default_strategy")
    if raw_default is not None:
        default = _parse_service(
            raw_default, f"{where}default_strategy", default_probability, False
        )
    services: dict[str, Strategy] = {}
    raw_services = doc.get("service_strategies")
    if raw_services is not None:
        if not isinstance(raw_services, list):
            raise StrategyFileError(f"{where}service_strategies: expected a list")
        for i, raw in enumerate(raw_services):
            at = f"{where}service_strategies[{i}]"
            strategy = _parse_service(raw, at, default_probability, True)
            name = raw["service"]
            if name in services:
                raise StrategyFileError(f"{at}.service: {name!r} appears twice")
            services[name] = _inherit(strategy, default)
    return StrategyBook(default, services)


def _inherit(own: Strategy, default: Strategy) -> Strategy:
    """Jaeger's merge of a service's strategy with the default's operation strategies."""
    base_ops = default.per_operation
    if base_ops is None:
        return own
    if own.per_operation is None:
        probability = own.param if own.kind == PROBABILISTIC else base_ops.default_probability
        return Strategy(
            own.kind,
            own.param,
            PerOperation(
                probability,
                base_ops.lower_bound_per_second,
                base_ops.upper_bound_per_second,
                base_ops.operations,
            ),
        )
    mine = own.per_operation
    named = mine.names()
    extra = tuple(o for o in base_ops.operations if o.operation not in named)
    return Strategy(
        own.kind,
        own.param,
        PerOperation(
            mine.default_probability,
            mine.lower_bound_per_second,
            mine.upper_bound_per_second,
            mine.operations + extra,
        ),
    )


def _parse_service(raw: Any, at: str, default_probability: float, named: bool) -> Strategy:
    if not isinstance(raw, dict):
        raise StrategyFileError(f"{at}: expected a JSON object")
    _check_keys(raw, _SERVICE_KEYS if named else _STRATEGY_KEYS, at)
    if named:
        if "service" not in raw:
            raise StrategyFileError(f"{at}: missing key 'service'")
        _check_name(raw["service"], f"{at}.service")
    kind, param = _parse_type_param(raw, at)
    lower = _bound(raw, "default_lower_bound_traces_per_second", at)
    upper = _bound(raw, "default_upper_bound_traces_per_second", at)
    raw_ops = raw.get("operation_strategies")
    if raw_ops is None:
        if lower or upper:
            raise StrategyFileError(
                f"{at}: the traces-per-second bounds apply to operation strategies;"
                " add operation_strategies (an empty list is fine)"
            )
        return Strategy(kind, param)
    if not isinstance(raw_ops, list):
        raise StrategyFileError(f"{at}.operation_strategies: expected a list")
    ops: list[OperationProbability] = []
    seen: set[str] = set()
    for i, op in enumerate(raw_ops):
        op_at = f"{at}.operation_strategies[{i}]"
        if not isinstance(op, dict):
            raise StrategyFileError(f"{op_at}: expected a JSON object")
        _check_keys(op, _OPERATION_KEYS, op_at)
        if "operation" not in op:
            raise StrategyFileError(f"{op_at}: missing key 'operation'")
        _check_name(op["operation"], f"{op_at}.operation")
        op_kind, op_param = _parse_type_param(op, op_at)
        if op_kind != PROBABILISTIC:
            raise StrategyFileError(
                f"{op_at}.type: operation strategies can only be probabilistic"
                " (api_v2 has no per-operation rate limit)"
            )
        if op["operation"] in seen:
            raise StrategyFileError(f"{op_at}.operation: {op['operation']!r} appears twice")
        seen.add(op["operation"])
        ops.append(OperationProbability(op["operation"], op_param))
    default_p = param if kind == PROBABILISTIC else default_probability
    return Strategy(kind, param, PerOperation(default_p, lower, upper, tuple(ops)))


def _parse_type_param(raw: dict[str, Any], at: str) -> tuple[str, float]:
    for key in ("type", "param"):
        if key not in raw:
            raise StrategyFileError(f"{at}: missing key {key!r}")
    kind = raw["type"]
    if kind not in (PROBABILISTIC, RATE_LIMITING):
        raise StrategyFileError(
            f"{at}.type: {kind!r} is not {PROBABILISTIC!r} or {RATE_LIMITING!r}"
        )
    param = _number(raw["param"], f"{at}.param")
    if kind == PROBABILISTIC and not 0.0 <= param <= 1.0:
        raise StrategyFileError(f"{at}.param: probability {param!r} is outside [0, 1]")
    if kind == RATE_LIMITING and (param != int(param) or not 0 <= param <= INT32_MAX):
        raise StrategyFileError(
            f"{at}.param: traces per second {param!r} must be a whole number"
            f" in [0, {INT32_MAX}] (api_v2 sends an int32)"
        )
    return kind, param


def _bound(raw: dict[str, Any], key: str, at: str) -> float:
    if key not in raw:
        return 0.0
    value = _number(raw[key], f"{at}.{key}")
    if value < 0:
        raise StrategyFileError(f"{at}.{key}: {value!r} is negative")
    return value


def _number(value: Any, at: str) -> float:
    # bool is an int in Python; true/false are not numbers in a strategies file.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StrategyFileError(f"{at}: expected a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise StrategyFileError(f"{at}: {value!r} is not finite")
    return out


def _check_keys(raw: dict[str, Any], allowed: frozenset[str], at: str) -> None:
    for key in raw:
        if key not in allowed:
            raise StrategyFileError(
                f"{at}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})"
            )


def _check_name(value: Any, at: str) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        raise StrategyFileError(
            f"{at}: expected a non-empty string of at most {MAX_NAME_CHARS} characters"
        )
