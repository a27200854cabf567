"""tracehouse: an OTLP tracing backend built as a Kafka streaming pipeline into ClickHouse."""

__version__ = "0.1.0"
