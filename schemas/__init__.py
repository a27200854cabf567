"""Versioned contracts: Avro schemas of the internal Kafka topics and the ClickHouse DDL."""
