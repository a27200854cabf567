"""Upstream compatibility on the real server (issue 19, ADR 0010).

1. The OTel Collector ClickHouse exporter's own tables (tests/data/upstream_exporter_traces.sql,
   written from its templates) and tracehouse's hold the same spans; every query of
   tests/data/upstream_query_corpus.sql (exporter README and Grafana plugin shapes) returns the
   same rows from both, and ``SELECT *`` copies work in both directions.
2. Migration 0008 on a database populated under 0001..0007 loses nothing: every column of every
   row (tenants included) is unchanged and the lookup table holds one row per trace.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.clickhouse import connect
from deploy.local.stack import LocalStack
from query.store import sql
from schemas.migrations import MIGRATIONS_TABLE_DDL, Layout, load_migrations, migrate, render
from sinks.batching import PartitionBatch
from sinks.clickhouse_store import BatchStore
from sinks.otel_names import OTEL_TRACES_COLUMNS
from tracehouse.demo_traces import make_request
from tracehouse.span_tables import otel_traces_table, span_facts

DATA = Path(__file__).resolve().parents[1] / "data"
NOW_NS = 1_764_000_000_000_000_000  # 2025-11-24 16:00 UTC
EDGE_TRACE = "ed" * 16


def corpus() -> dict[str, str]:
    text = (DATA / "upstream_query_corpus.sql").read_text()
    out = {}
    for block in re.split(r"\n(?=-- query: )", text):
        name = re.match(r"-- query: (\w+)\n", block)
        if name:
            out[name.group(1)] = block[name.end() :].strip()
    return out


def _av(**kw: Any) -> common_pb2.AnyValue:
    return common_pb2.AnyValue(**kw)


def edge_traces() -> trace_pb2.TracesData:
    """Spans with every AnyValue type, events and links: where renderings used to differ."""
    data = trace_pb2.TracesData()
    rs = data.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=_av(string_value="edge"))
    rs.resource.attributes.add(key="service.version", value=_av(string_value="2.0.1"))
    rs.resource.attributes.add(key="deployment.environment", value=_av(string_value="demo"))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "edge.lib", "0.1"
    payload = _av(
        kvlist_value=common_pb2.KeyValueList(
            values=[
                common_pb2.KeyValue(key="b", value=_av(bool_value=True)),
                common_pb2.KeyValue(
                    key="a",
                    value=_av(
                        array_value=common_pb2.ArrayValue(
                            values=[_av(int_value=1), _av(double_value=2.5), _av(string_value="x")]
                        )
                    ),
                ),
            ]
        )
    )
    values = [
        ("ratio", _av(double_value=1.5e-7)),
        ("nan", _av(double_value=math.nan)),
        ("inf", _av(double_value=-math.inf)),
        ("big", _av(double_value=1e21)),
        ("whole", _av(double_value=3.0)),
        ("bytes", _av(bytes_value=b"\x00\xff")),
        ("payload", payload),
        ("http.route", _av(string_value="GET /edge")),
    ]
    for i in range(3):
        span = ss.spans.add()
        span.trace_id = bytes.fromhex(EDGE_TRACE)
        span.span_id = bytes([0xE0 + i]) * 8
        span.parent_span_id = b"" if i == 0 else bytes([0xE0]) * 8
        span.name = f"GET edge {i}"
        span.kind = trace_pb2.Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = NOW_NS - 3_000_000_000 + i * 700_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + 25_000_000 * (i + 1)
        for key, value in values[i:]:
            span.attributes.add(key=key, value=value)
        event = span.events.add(name="retry", time_unix_nano=span.start_time_unix_nano + 5)
        event.attributes.add(key="attempt", value=_av(int_value=i))
        link = span.links.add(trace_id=bytes(range(16)), span_id=bytes(range(8)))
        link.trace_state = "k=v"
        link.attributes.add(key="why", value=_av(string_value="batch"))
        if i == 2:
            span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
            span.status.message = "boom"
    return data


def store(client: Any, data: trace_pb2.TracesData, tenant: str = "", seq: int = 0) -> None:
    """Insert as the sink does (its settings, one batch per call)."""
    records = span_facts(data)
    batch = PartitionBatch("t", 0, seq)
    batch.add(seq, records, len(records))
    BatchStore(client, "test").insert("otel_traces", otel_traces_table(data, tenant), batch)


def split_demo() -> tuple[trace_pb2.TracesData, trace_pb2.TracesData]:
    """Demo traces in two inserts, the first trace's spans spread over both."""
    whole = trace_pb2.TracesData.FromString(
        make_request(traces=30, seed=19, now_ns=NOW_NS).SerializeToString()
    )
    first, second = trace_pb2.TracesData(), trace_pb2.TracesData()
    for rs in whole.resource_spans:
        for half in (first, second):
            out = half.resource_spans.add()
            out.resource.CopyFrom(rs.resource)
            out.scope_spans.add().scope.CopyFrom(rs.scope_spans[0].scope)
        for n, span in enumerate(rs.scope_spans[0].spans):
            target = first if n % 2 == 0 else second
            target.resource_spans[-1].scope_spans[0].spans.add().CopyFrom(span)
    return first, second


def _fresh_db(client: Any, prefix: str) -> str:
    db = f"{prefix}_{uuid.uuid4().hex[:8]}"
    client.command(f"CREATE DATABASE `{db}`")
    return db


def _normal(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def both(services: LocalStack) -> tuple[Any, Any, str]:
    admin = connect(services.settings.clickhouse_url, "default")
    ours = f"th_up_{uuid.uuid4().hex[:8]}"
    migrate(admin, ours)
    upstream = _fresh_db(admin, "upstream")
    for statement in (DATA / "upstream_exporter_traces.sql").read_text().split(";\n"):
        lines = [ln for ln in statement.splitlines() if not ln.startswith("--")]
        if "".join(lines).strip():
            admin.command("\n".join(lines).replace("{db}", f"`{upstream}`"))
    ours_client = connect(services.settings.clickhouse_url, ours)
    first, second = split_demo()
    store(ours_client, first, seq=0)
    store(ours_client, second, seq=1)
    store(ours_client, edge_traces(), seq=2)
    # The same spans into the exporter's table: a SELECT *-shaped copy, in the same two halves
    # (so the lookup tables see the split trace twice on both sides).
    for half in (0, 1, 2):
        admin.command(
            f"INSERT INTO `{upstream}`.otel_traces SELECT * FROM `{ours}`.otel_traces "
            f"WHERE cityHash64(SpanId) % 3 = {half}"
        )
    return ours_client, connect(services.settings.clickhouse_url, upstream), ours


PARAMS = {
    "trace_id": EDGE_TRACE,
    "t0": "2025-11-24 15:50:00",
    "t1": "2025-11-24 16:10:00",
    "service": "frontend",
}


@pytest.mark.parametrize("name", sorted(corpus()))
def test_upstream_queries_answer_the_same_on_both_schemas(
    both: tuple[Any, Any, str], name: str
) -> None:
    ours, upstream, _db = both
    sql = corpus()[name]
    params = {k: v for k, v in PARAMS.items() if "{" + k + ":" in sql}
    got = ours.query(sql, parameters=params)
    want = upstream.query(sql, parameters=params)
    assert got.column_names == want.column_names
    assert want.result_rows, f"{name}: the corpus query must select something"
    assert _normal(got.result_rows) == _normal(want.result_rows)


def test_the_data_is_rendered_as_the_exporter_would(both: tuple[Any, Any, str]) -> None:
    ours, _upstream, _db = both
    rows = ours.query(
        "SELECT SpanAttributes FROM otel_traces WHERE TraceId = {t:String} ORDER BY SpanId",
        parameters={"t": EDGE_TRACE},
    ).result_rows
    attrs = rows[0][0]
    assert attrs["ratio"] == "1.5e-7" and attrs["nan"] == "NaN" and attrs["inf"] == "-Infinity"
    assert attrs["big"] == "1e+21" and attrs["whole"] == "3" and attrs["bytes"] == "AP8="
    assert attrs["payload"] == '{"a":[1,2.5,"x"],"b":true}'


def test_a_trace_written_in_two_inserts_is_one_lookup_row(both: tuple[Any, Any, str]) -> None:
    ours, _upstream, _db = both
    split = ours.query(
        "SELECT TraceId FROM otel_traces GROUP BY TraceId ORDER BY TraceId LIMIT 1"
    ).result_rows[0][0]
    final = ours.command(
        "SELECT count() FROM otel_traces_trace_id_ts FINAL WHERE TraceId = {t:String}",
        parameters={"t": split},
    )
    assert final == 1
    traces = ours.command("SELECT uniqExact(TraceId) FROM otel_traces")
    assert ours.command("SELECT count() FROM otel_traces_trace_id_ts FINAL") == traces


def test_select_star_copies_back_into_tracehouse(
    services: LocalStack, both: tuple[Any, Any, str]
) -> None:
    ours, upstream, _db = both
    admin = connect(services.settings.clickhouse_url, "default")
    back = f"th_back_{uuid.uuid4().hex[:8]}"
    migrate(admin, back)
    up_db = upstream.database
    admin.command(f"INSERT INTO `{back}`.otel_traces SELECT * FROM `{up_db}`.otel_traces")
    order = " ORDER BY TraceId, SpanId, SpanKind"
    assert admin.query(f"SELECT * FROM `{back}`.otel_traces{order}").result_rows == (
        ours.query("SELECT * FROM otel_traces" + order).result_rows
    )
    # A copy from upstream carries no tenant: it lands in the default tenant.
    tenants = admin.query(f"SELECT DISTINCT TenantId FROM `{back}`.otel_traces").result_rows
    assert tenants == [("",)]
    assert "TenantId" not in ours.query("SELECT * FROM otel_traces LIMIT 1").column_names


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"


def grafana_sql(sql: str, selected: list[str] | None) -> str:
    """Expand the ClickHouse plugin's macros the way it does for a 16:50..17:10 UTC range on
    2025-11-24 and a one-minute interval; ``services=None`` is the "All" selection."""
    t0, t1 = 1_763_999_400, 1_764_000_600

    def conditional_all(m: re.Match[str]) -> str:
        return m.group(1) if selected is not None else "1=1"

    sql = re.sub(r"\$__conditionalAll\((.*?), \$service\)", conditional_all, sql)
    sql = re.sub(
        r"\$__timeFilter\(([\w.]+)\)",
        lambda m: f"{m.group(1)} >= toDateTime({t0}) AND {m.group(1)} <= toDateTime({t1})",
        sql,
    )
    sql = re.sub(
        r"\$__timeInterval\(([\w.]+)\)",
        lambda m: f"toStartOfInterval(toDateTime({m.group(1)}), INTERVAL 60 second)",
        sql,
    )
    quoted = ",".join(f"'{s}'" for s in selected or [])
    sql = sql.replace("$__interval_s", "60").replace("${service:singlequote}", quoted)
    assert "$" not in sql, sql
    return sql


def dashboard_queries() -> dict[str, str]:
    out = {}
    for path in sorted(DASHBOARD.glob("*.json")):
        doc = json.loads(path.read_text())
        for var in doc["templating"]["list"]:
            if var["type"] == "query":
                out[f"{path.stem}: variable {var['name']}"] = var["query"]
        for panel in doc["panels"]:
            for target in panel["targets"]:
                out[f"{path.stem}: {panel['title']}"] = target["rawSql"]
    return out


@pytest.mark.parametrize("selected", [None, ["frontend", "cart"]], ids=["all", "two"])
def test_trace_dashboards_answer_the_same_on_both_schemas(
    both: tuple[Any, Any, str], selected: list[str] | None
) -> None:
    ours, upstream, _db = both
    queries = dashboard_queries()
    assert len(queries) >= 8
    for name, raw in queries.items():
        sql = grafana_sql(raw, selected)
        got, want = ours.query(sql), upstream.query(sql)
        assert got.column_names == want.column_names, name
        assert _normal(got.result_rows) == _normal(want.result_rows), name
        if selected is None:  # (the two-service selection has no error spans)
            assert got.result_rows, f"{name}: no rows for the fixture spans"


def _apply_up_to(client: Any, db: str, last: int) -> None:
    """The schema as a server that ran migrations 1..``last`` had it."""
    layout = Layout(db)
    client.command(f"CREATE DATABASE IF NOT EXISTS `{db}`")
    for statement in render(MIGRATIONS_TABLE_DDL, layout):
        client.command(statement)
    for mig in load_migrations():
        if mig.version > last:
            break
        for statement in mig.statements(db, 0):
            client.command(statement)
        client.insert(
            f"`{db}`.schema_migrations", [[mig.version, mig.name]], column_names=["version", "name"]
        )


# Every stored column by name (before 0008 SELECT * includes TenantId, after it does not).
SNAPSHOT = (
    f"SELECT {', '.join(f'`{c}`' for c in OTEL_TRACES_COLUMNS)} FROM otel_traces"
    " ORDER BY TenantId, TraceId, SpanId, SpanKind, Timestamp"
)


def test_migration_0008_on_a_populated_database_loses_nothing(services: LocalStack) -> None:
    admin = connect(services.settings.clickhouse_url, "default")
    db = f"th_mig_{uuid.uuid4().hex[:8]}"
    _apply_up_to(admin, db, 7)
    client = connect(services.settings.clickhouse_url, db)
    first, second = split_demo()
    store(client, first, tenant="acme", seq=0)
    store(client, second, tenant="acme", seq=1)
    store(client, edge_traces(), tenant="", seq=2)
    store(client, first, tenant="globex", seq=3)
    before = client.query(SNAPSHOT).result_rows
    old_lookup = client.query(
        "SELECT TraceId, toDateTime(min(Start)), toDateTime(max(End)) FROM "
        "otel_traces_trace_id_ts GROUP BY TraceId ORDER BY TraceId"
    ).result_rows
    assert client.command("SELECT count() FROM otel_traces_trace_id_ts") > len(old_lookup)

    assert migrate(admin, db) == [m.version for m in load_migrations() if m.version > 7]
    assert client.query(SNAPSHOT).result_rows == before
    new_lookup = client.query(
        "SELECT TraceId, Start, End FROM otel_traces_trace_id_ts FINAL ORDER BY TraceId"
    ).result_rows
    assert [tuple(r) for r in new_lookup] == [tuple(r) for r in old_lookup]
    assert client.command("SELECT count() FROM otel_traces_trace_id_ts") == len(new_lookup)
    # New writes keep their tenant, and the lookup keeps following them.
    store(client, edge_traces(), tenant="initech", seq=4)
    assert client.command("SELECT count() FROM otel_traces WHERE TenantId = 'initech'") == 3
    assert client.command(
        "SELECT count() FROM otel_traces_trace_id_ts FINAL WHERE TraceId = {t:String}",
        parameters={"t": EDGE_TRACE},
    ) == 1
    # Re-running every statement of 0008 (a run that died before recording it) is harmless.
    [mig] = [m for m in load_migrations() if m.version == 8]
    for statement in mig.statements(db, 0):
        admin.command(statement)
    after = client.query(SNAPSHOT).result_rows
    assert [r for r in after if r[-1] != "initech"] == before
    assert client.command("SELECT count() FROM otel_traces") == len(before) + 3
    assert client.query(
        "SELECT TraceId, Start, End FROM otel_traces_trace_id_ts FINAL ORDER BY TraceId"
    ).result_rows == new_lookup


def test_lookup_bounds_at_the_ends_of_storable_time(services: LocalStack) -> None:
    """The lookup's DateTime bounds cannot hold DateTime64(9)'s range: the view clamps them and
    the readers' range still covers the spans (none is lost to a wrapped bound)."""
    admin = connect(services.settings.clickhouse_url, "default")
    db = f"th_edge_{uuid.uuid4().hex[:8]}"
    migrate(admin, db)
    client = connect(services.settings.clickhouse_url, db)
    client.command(
        "INSERT INTO otel_traces (Timestamp, TraceId, SpanId) VALUES "
        "('1970-01-01 00:00:00.5', 'early', '1'), ('2000-01-01 00:00:00.75', 'early', '2'),"
        "('2200-01-01 00:00:00', 'late', '1'), ('2262-04-11 23:47:16.854775807', 'late', '2')"
    )
    # The readers' own prefix (query/sql/trace_bounds.sql), without the clock-skew slack.
    bounds = sql("trace_bounds") + "SELECT bounds"
    rows = {
        trace: tuple(
            client.query(bounds, parameters={"range_ids": [trace], "slack_ns": 0}).result_rows[0][0]
        )
        for trace in ("early", "late")
    }
    spans = {
        r[0]: (r[1], r[2])
        for r in client.query(
            "SELECT TraceId, min(toUnixTimestamp64Nano(Timestamp)),"
            " max(toUnixTimestamp64Nano(Timestamp)) FROM otel_traces GROUP BY TraceId"
        ).result_rows
    }
    for trace in ("early", "late"):
        start, end = rows[trace]
        assert start <= spans[trace][0] and spans[trace][1] <= end, (trace, rows, spans)
    assert rows["late"][1] == 2**63 - 1  # clamped: open-ended
    assert rows["early"] == (0, 946_684_800_999_999_999)  # floor, and the last ns of the second
