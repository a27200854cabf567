"""Sink workers: Kafka consumer group -> batched, idempotent ClickHouse inserts."""
