"""A remote sampler for the OpenTelemetry Python SDK that follows tracehouse's strategies.

The Python SDK ships no Jaeger remote sampler, so the demo services carry this small one: it
polls ``<endpoint>/sampling?service=<name>`` (Jaeger's JSON, served by the query process) and
samples root spans by the operation's probability (``perOperationStrategies``, else the
default probability). Decisions use the SDK's consistent-probability samplers, which write
the ``ot=th`` threshold into the W3C tracestate; children follow their parent's decision and
carry the threshold, so streams can weight every span by its adjusted count.

A rate-limiting strategy has no probability: the sampler then keeps everything and says so
once in the log (the demo's strategies are probabilistic). A failed poll keeps the last
strategy.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace._sampling_experimental import (
    composable_parent_threshold,
    composable_traceid_ratio_based,
    composite_sampler,
)
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

log = logging.getLogger("tracehouse.shop")


def ratio_sampler(probability: float) -> Sampler:
    p = min(1.0, max(0.0, probability))
    return composite_sampler(composable_parent_threshold(composable_traceid_ratio_based(p)))


def strategy_probabilities(doc: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """(default probability, operation -> probability) of a Jaeger strategy response."""
    ops_doc = doc.get("operationSampling")
    if ops_doc:
        per_op = {
            o["operation"]: float(o["probabilisticSampling"]["samplingRate"])
            for o in ops_doc.get("perOperationStrategies", [])
        }
        return float(ops_doc.get("defaultSamplingProbability", 0.001)), per_op
    if doc.get("strategyType") == "PROBABILISTIC":
        return float(doc["probabilisticSampling"]["samplingRate"]), {}
    log.warning("rate-limiting strategy cannot be applied by probability; keeping everything")
    return 1.0, {}


class RemoteStrategySampler(Sampler):
    def __init__(
        self, endpoint: str, service: str, interval: float = 5.0, initial: float = 1.0
    ) -> None:
        self._url = f"{endpoint.rstrip('/')}/sampling?" + urllib.parse.urlencode(
            {"service": service}
        )
        self._interval = interval
        self._default = ratio_sampler(initial)
        self._per_op: dict[str, Sampler] = {}
        self._stop = threading.Event()
        self.polls = 0
        self.poll()
        threading.Thread(target=self._loop, name="strategy-poll", daemon=True).start()

    def poll(self) -> None:
        try:
            with urllib.request.urlopen(self._url, timeout=2) as resp:
                default, per_op = strategy_probabilities(json.loads(resp.read()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("sampling strategy poll failed, keeping the last one: %s", exc)
            return
        self._default = ratio_sampler(default)
        self._per_op = {op: ratio_sampler(p) for op, p in per_op.items()}
        self.polls += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def close(self) -> None:
        self._stop.set()

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        sampler = self._per_op.get(name, self._default)
        return sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RemoteStrategySampler({self._url})"
