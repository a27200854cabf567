"""Probe, not a pipeline path: what if span_batch columns travelled in Arrow layout?

Measures, on the ``bench/sink.py`` spans, a layout where every column of the v2 record is an
Avro ``bytes`` field holding Arrow buffers (UTF-8 data + int32 offsets for strings,
little-endian int64 for numbers) against the committed typed-array v2: packing from column
lists, fastavro encode/decode, and rebuilding Arrow arrays (zero-copy). The figures feed the
"next step" in docs/adr/0002-columnar-span-batches.md, since built as span_batch v3 (ADR 0003).

    .venv/bin/python bench/packed_probe.py
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastavro
import numpy as np
import pyarrow as pa

from bench.sink import make_span
from schemas import avro_codec
from sinks.columnar_spans import otel_traces_from_columns
from tests.span_batch_rows import columns_from_rows


def pack(rec: dict[str, list[Any]], strings: set[str]) -> dict[str, bytes]:
    out = {}
    for f, v in rec.items():
        if f in strings:
            joined = "".join(v)
            data = joined.encode()
            if len(data) == len(joined):  # ASCII: characters are bytes
                lengths = np.fromiter(map(len, v), np.int32, len(v))
            else:
                lengths = np.fromiter((len(s.encode()) for s in v), np.int32, len(v))
            offsets = np.zeros(len(v) + 1, np.int32)
            np.cumsum(lengths, out=offsets[1:])
            out[f], out[f + "_offsets"] = data, offsets.tobytes()
        else:
            out[f] = np.asarray(v, np.int64).tobytes()
    return out


def unpack(rec: dict[str, bytes], fields: list[str], strings: set[str]) -> dict[str, pa.Array]:
    cols = {}
    for f in fields:
        if f in strings:
            offsets = rec[f + "_offsets"]
            n = len(offsets) // 4 - 1
            cols[f] = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(rec[f]))
        else:
            cols[f] = pa.array(np.frombuffer(rec[f], np.int64))
    return cols


def main() -> None:
    spans = [make_span(i) for i in range(100_000)]
    recs = [columns_from_rows(spans[i : i + 1000]) for i in range(0, len(spans), 1000)]
    v2 = avro_codec.schema_json("span_batch", 2)["fields"]
    fields = [f["name"] for f in v2]
    strings = {f["name"] for f in v2 if f["type"]["items"] == "string"}
    avro_fields = [{"name": f, "type": "bytes"} for f in fields]
    avro_fields += [{"name": f + "_offsets", "type": "bytes"} for f in fields if f in strings]
    schema = fastavro.parse_schema({"type": "record", "name": "Packed", "fields": avro_fields})
    for _ in range(3):
        print(measure(recs, fields, strings, schema, len(spans)))


def measure(
    recs: list[dict[str, list[Any]]], fields: list[str], strings: set[str], schema: Any, n: int
) -> str:
    def timed(fn: Any) -> tuple[Any, float]:
        started = time.perf_counter()
        result = fn()
        return result, n / (time.perf_counter() - started)

    def enc(packed: list[dict[str, bytes]]) -> list[bytes]:
        out = []
        for p in packed:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, schema, p)
            out.append(buf.getvalue())
        return out

    packed, pack_rate = timed(lambda: [pack(r, strings) for r in recs])
    msgs, enc_rate = timed(lambda: enc(packed))
    dec, dec_rate = timed(lambda: [fastavro.schemaless_reader(io.BytesIO(m), schema) for m in msgs])
    _, arrow_rate = timed(lambda: [unpack(d, fields, strings) for d in dec])
    typed, typed_enc = timed(lambda: [avro_codec.encode("span_batch", r, 2) for r in recs])
    td, typed_dec = timed(lambda: [avro_codec.decode_as_written("span_batch", m)[1] for m in typed])
    _, typed_build = timed(lambda: [otel_traces_from_columns(x) for x in td])
    return (
        f"packed: pack {pack_rate:,.0f}/s, encode {enc_rate:,.0f}/s, decode {dec_rate:,.0f}/s,"
        f" Arrow arrays {arrow_rate:,.0f}/s, {sum(map(len, msgs)) / n:.0f} B/span | typed v2:"
        f" encode {typed_enc:,.0f}/s, decode {typed_dec:,.0f}/s, table {typed_build:,.0f}/s,"
        f" {sum(map(len, typed)) / n:.0f} B/span"
    )


if __name__ == "__main__":
    main()
