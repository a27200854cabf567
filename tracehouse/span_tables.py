"""Spans for tests and benchmarks, made the way the pipeline makes them: OTLP in, v3 out.

Fixtures describe spans as OTLP (or as readable rows turned into OTLP by
:func:`tracehouse.span_specs.traces_from_rows`) and take the production path from there: streams'
encoder writes ``span_batch`` messages, the sink's decoder turns them into the ``otel_traces``
Arrow table. No second encoder exists to drift from the real one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from opentelemetry.proto.trace.v1 import trace_pb2

from sinks.decoding import decode_message
from streams.otlp_values import attributes_to_dict
from streams.packed_batch import encode_views
from streams.span_batch_messages import encode_span_batches
from streams.span_views import span_views
from tracehouse.span_specs import traces_from_rows


def span_messages(data: trace_pb2.TracesData, tenant_id: str = "") -> list[bytes]:
    """Every span of ``data`` as framed ``span_batch`` messages, as the streams worker cuts them."""
    encoded = encode_span_batches(span_views(data, tenant_id))
    assert not encoded.refused, encoded.refused
    return encoded.payloads


def span_message(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One ``span_batch`` message holding ``rows`` (see ``traces_from_rows``) in order."""
    [payload] = span_messages(traces_from_rows(rows))
    return payload


def otel_traces_table(data: trace_pb2.TracesData, tenant_id: str = "") -> pa.Table:
    """The ``otel_traces`` rows the sink would insert for ``data`` (every span kept)."""
    tables = []
    for payload in span_messages(data, tenant_id):
        decoded = decode_message("spans", payload)
        assert decoded.table is not None, decoded
        tables.append(decoded.table)
    if not tables:  # an empty message decodes to the (empty) table with the right schema
        empty = decode_message("spans", encode_empty())
        assert empty.table is not None
        return empty.table
    return pa.concat_tables(tables)


def encode_empty() -> bytes:
    """A v3 message of no spans (streams never writes one; the sink must still read it)."""
    return encode_views([])


def span_facts(data: trace_pb2.TracesData) -> list[dict[str, Any]]:
    """What tests expect to read back of each span, straight from the OTLP (ids as hex,
    attributes as strings, service from the resource): an oracle independent of the encoder."""
    out = []
    for rs in data.resource_spans:
        resource = attributes_to_dict(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "service_name": resource.get("service.name", ""),
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "status_code": span.status.code,
                        "attributes": attributes_to_dict(span.attributes),
                    }
                )
    return out
