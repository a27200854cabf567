"""`tracehouse migrate` for the configured layout: one node, or every shard of a sharded one."""

from __future__ import annotations

from core.clickhouse import connect
from core.settings import Settings
from schemas.migrations import migrate, migrate_sharded


def apply_migrations(settings: Settings) -> list[int]:
    """Apply pending migrations, retention, the packed-part threshold and the span merge width
    where ``settings`` point; returns the versions applied."""
    s = settings
    if s.shard_addresses:
        clients = [connect(target, "default") for target in s.shard_targets()]
        return migrate_sharded(
            clients,
            s.shard_addresses,
            s.clickhouse_database,
            s.retention_days(),
            packed_part_bytes=s.clickhouse_packed_part_bytes,
            span_merge_base=s.clickhouse_span_merge_base,
        )
    return migrate(
        connect(s.clickhouse, "default"),
        s.clickhouse_database,
        s.retention_days(),
        packed_part_bytes=s.clickhouse_packed_part_bytes,
        span_merge_base=s.clickhouse_span_merge_base,
    )
