"""The base layer every component imports, and which imports none of them.

Settings and their validation, logging, topic administration, tenancy and the consistent
sampling rule shared by ingest and streams, the Kafka and ClickHouse client factories and the
errors more than one component raises. See docs/architecture.md, "Layers".
"""
