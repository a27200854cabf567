"""OTLP receivers: validate spans and publish them to Kafka, grouped by trace-id partition."""
