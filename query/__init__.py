"""Read side: SQL helpers over ClickHouse used by `tracehouse status` (and the query API)."""
