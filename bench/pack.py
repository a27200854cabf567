"""The compiled span-batch packer against the Python packer it replaced, in one process.

Streams packs every kept span into ``span_batch`` v3 columns (under keep-all, every span), so
the packer's cost per span is paid once per span stored. This measures, on the views of
``bench.streams``' messages (the loadgen's trace shapes, scanned once before timing, in
messages of ``--spans`` views as the worker packs them):

- **python + fastavro** (the baseline): ``streams.packed_batch._columns`` + ``_pack``, the
  reference packer, then the framed Avro message by ``avro_codec.encode`` (fastavro): what
  the worker ran before ADR 0019;
- **compiled + fastavro**: ``streams/_pack_columns.pyx``'s record, framed by fastavro;
- **compiled, framed**: ``encode_views``, the compiled walk writing the framed message
  itself (what the worker runs now).

Rounds alternate the sides, so a busy machine slows both alike; the collector stays on (tuned
as the worker tunes it), since allocation is part of the cost. Prints ns per span (median and
min over rounds) and the median of the per-round ratios.

    .venv/bin/python -m bench.pack [--messages 40] [--spans 50] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable

from bench.streams import build_messages
from schemas import avro_codec
from schemas.span_batch_v3 import VERSION
from streams import otlp_scan, packed_batch
from streams.gc_tuning import tune_gc
from streams.span_views import SpanView


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=40)
    ap.add_argument("--spans", type=int, default=50, help="spans per packed message")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    compiled = packed_batch._COMPILED
    if compiled is None:
        sys.exit("the compiled packer is not built: make setup")
    tune_gc()
    batches: list[list[SpanView]] = []
    for payload in build_messages(args.messages, args.spans):
        views = otlp_scan.scan_views(payload)
        assert views is not None
        batches.append(views)
    spans = sum(len(b) for b in batches)
    assert [packed_batch.encode_views(v) for v in batches] == [
        avro_codec.encode("span_batch", packed_batch._pack(packed_batch._columns(v)), VERSION)
        for v in batches
    ], "both sides make the same messages"

    def python_fastavro() -> None:
        for views in batches:
            record = packed_batch._pack(packed_batch._columns(views))
            avro_codec.encode("span_batch", record, VERSION)

    def compiled_fastavro() -> None:
        for views in batches:
            record = compiled.pack(views, packed_batch.rendered, packed_batch.attributes_of)
            avro_codec.encode("span_batch", record, VERSION)

    def compiled_framed() -> None:
        for views in batches:
            packed_batch.encode_views(views)

    baseline = "python + fastavro"
    sides: dict[str, Callable[[], None]] = {
        baseline: python_fastavro,
        "compiled + fastavro": compiled_fastavro,
        "compiled, framed": compiled_framed,
    }
    timers = {label: timeit.Timer(fn, "gc.enable()") for label, fn in sides.items()}
    loops = {label: max(1, int(0.05 / t.timeit(1))) for label, t in timers.items()}
    ns: dict[str, list[float]] = {label: [] for label in sides}
    ratios: dict[str, list[float]] = {label: [] for label in sides if label != baseline}
    for _ in range(args.rounds):
        for label, timer in timers.items():
            ns[label].append(timer.timeit(loops[label]) / loops[label] / spans * 1e9)
        for label, rs in ratios.items():
            rs.append(ns[label][-1] / ns[baseline][-1])
    print(f"spans={spans} in {len(batches)} messages, rounds={args.rounds}")
    print(f"{'':24} {'median':>8} {'min':>8}  ns/span")
    for label, samples in ns.items():
        print(f"{label:24} {statistics.median(samples):8.1f} {min(samples):8.1f}")
    print(f"against {baseline}: median of per-round ratios (range)")
    for label, rs in ratios.items():
        print(f"  {label:22} {statistics.median(rs):.3f} ({min(rs):.3f}-{max(rs):.3f})")


if __name__ == "__main__":
    main()
