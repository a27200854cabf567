"""Adaptive sampling through ClickHouse: RED rows in, probabilities out, two replicas agreeing.

A simulated fleet samples two operations 100x apart in rate at whatever probabilities the
replicas serve; each calculation interval its sampled spans land in red_metrics as streams
would write them. Both operations must settle within 20 % of the target traces/s, both
replicas must serve the same strategies, and the history must be one row per operation and
interval in SQL.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from query.adaptive_calculator import AdaptiveKnobs
from query.adaptive_sampling import AdaptiveSampling
from query.sampling_strategies import PROBABILISTIC, Strategy
from schemas.migrations import migrate
from tests.conftest import isolated_settings

RED_COLUMNS = [
    "TimeUnix",
    "WindowEnd",
    "TenantId",
    "ServiceName",
    "SpanName",
    "SpanKind",
    "StatusCode",
    "Overflow",
    "Calls",
    "Errors",
    "DurationSumNs",
    "DurationMaxNs",
    "BucketBoundsMs",
    "BucketCounts",
    "Source",
]
RATES = {"GET /busy": 500.0, "GET /rare": 5.0}
FALLBACK = Strategy(PROBABILISTIC, 0.001)


def served_probability(replica: AdaptiveSampling, op: str, knobs: AdaptiveKnobs) -> float:
    strategy = replica.strategy("acme", "shop", FALLBACK)
    if strategy is None or strategy.per_operation is None:
        return knobs.initial_probability
    for o in strategy.per_operation.operations:
        if o.operation == op:
            return o.probability
    return strategy.per_operation.default_probability


def test_two_replicas_converge_on_shared_clickhouse_state(services: LocalStack) -> None:
    settings = isolated_settings(services)
    migrate(connect(settings.clickhouse_url, "default"), settings.clickhouse_database)
    client = connect(settings.clickhouse_url, settings.clickhouse_database, session=False)
    knobs = AdaptiveKnobs(
        target_per_second=1.0, delta_tolerance=0.1, interval_seconds=60, buckets=3
    )
    replicas = [
        AdaptiveSampling(
            connect(settings.clickhouse_url, settings.clickhouse_database, session=False), knobs, 0
        )
        for _ in range(2)
    ]
    rng = random.Random(7)
    t0 = 1_800_000_000  # a fixed, interval-aligned start; the calculation takes "now" as input
    interval = int(knobs.interval_seconds)
    observed: dict[str, list[float]] = {op: [] for op in RATES}
    for i in range(30):
        start = t0 + i * interval
        rows = []
        for op, rate in RATES.items():
            p = served_probability(replicas[i % 2], op, knobs)
            n = rate * interval
            sampled = max(0, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p)))))
            # The SDKs' lower-bound sampler keeps lower_bound_per_second of what the
            # probability dropped (that is how a rare operation is ever seen at 0.1 %).
            spare = min(n - sampled, knobs.lower_bound_per_second * interval)
            sampled += int(spare) + (rng.random() < spare - int(spare))
            observed[op].append(sampled / interval)
            if sampled:
                # Two RED windows per interval, as two streams partitions would write them.
                for half in (0, 1):
                    rows.append(
                        [
                            datetime.fromtimestamp(start + half * 30, UTC),
                            datetime.fromtimestamp(start + half * 30 + 30, UTC),
                            "acme",
                            "shop",
                            op,
                            "SPAN_KIND_SERVER",
                            "STATUS_CODE_UNSET",
                            False,
                            sampled // 2 + (sampled % 2 if half else 0),
                            0,
                            0,
                            0,
                            [],
                            [],
                            f"p{half}",
                        ]
                    )
        if rows:
            client.insert("red_metrics", rows, column_names=RED_COLUMNS)
        now = start + interval
        # Both replicas step; whichever is second loads the first one's rows.
        for r in replicas if i % 2 else reversed(replicas):
            assert r.step(now)
        a, b = (r.strategy("acme", "shop", FALLBACK) for r in replicas)
        assert a == b
    for op in RATES:
        p = served_probability(replicas[0], op, knobs)
        assert abs(p * RATES[op] - 1.0) <= 0.2, (op, p)
        recent = sum(observed[op][-8:]) / 8
        assert abs(recent - 1.0) <= 0.2, (op, recent)
    assert sum(r.calculations for r in replicas) == 30  # one calculation per interval in all
    history = client.query(
        "SELECT SpanName, count(), uniqExact(IntervalEnd) FROM sampling_probabilities FINAL"
        " GROUP BY SpanName ORDER BY SpanName"
    ).result_rows
    # One row per operation and interval, however many replicas calculated or loaded it.
    assert (history[0][0], history[0][1]) == ("GET /busy", 30)
    assert all(n == u for _op, n, u in history) and len(history) == 2
    client.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
