"""CPU and ratio of each Kafka compression on what streams produces (packed ``span_batch`` v3).

The streams worker compresses every ``spans.sampled`` message it sends, through aiokafka, on its
event loop. aiokafka's ``lz4`` is level 9 (LZ4 HC) with no way to choose a level, so this
measures the codecs as aiokafka calls them (cramjam) on messages of demo traces encoded by
streams' own encoder. The baseline, measured in the same run, is aiokafka's lz4 (the
worker's compression before ``streams.compression`` existed); each row prints its cost as a
ratio to it.

    .venv/bin/python -m bench.compression [--traces 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from aiokafka.codec import gzip_encode, lz4_encode, snappy_encode, zstd_encode
from opentelemetry.proto.trace.v1 import trace_pb2

from streams.span_batch_messages import encode_span_batches
from streams.span_views import span_views
from tracehouse.demo_traces import make_request

CODECS: dict[str, Callable[[bytes], bytes]] = {
    "lz4 (aiokafka: level 9)": lz4_encode,
    "zstd (aiokafka: level 3)": zstd_encode,
    "snappy": snappy_encode,
    "gzip": gzip_encode,
}


def best_seconds(codec: Callable[[bytes], bytes], payloads: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for payload in payloads:
            codec(payload)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="best of N")
    args = parser.parse_args()
    data = trace_pb2.TracesData.FromString(make_request(args.traces, seed=1).SerializeToString())
    views = span_views(data)
    payloads = encode_span_batches(views, max_bytes=900_000).payloads
    raw = sum(len(p) for p in payloads)
    print(
        f"{len(views):,} spans in {len(payloads)} span_batch v3 messages,"
        f" {raw / len(views):.0f} B/span before compression"
    )
    baseline = best_seconds(CODECS["lz4 (aiokafka: level 9)"], payloads, args.repeat)
    for name, codec in CODECS.items():
        seconds = best_seconds(codec, payloads, args.repeat)
        compressed = sum(len(codec(p)) for p in payloads)
        print(
            f"{name:26} {seconds * 1e6 / len(views):6.2f} us/span"
            f"  ratio {raw / compressed:5.2f}  {raw / seconds / 1e6:6.0f} MB/s"
            f"  cost vs baseline {seconds / baseline:5.2f}"
        )


if __name__ == "__main__":
    main()
