"""What a durable local broker would cost: Tansu on memory storage vs its S3 engine.

The local broker (deploy/local/broker.py) keeps everything in memory, so a restart loses every
unconsumed span. The Tansu binary in the pinned wheel has its S3 engine compiled in; this
runs it against a local S3-compatible server from PyPI (``moto[server]``, not a dependency of
the project: ``pip install 'moto[server]==5.2.5'`` first) and measures, per engine, the
latency of one acknowledged 100 KB produce (acks=all, idempotent, like ingest) and the
pipelined throughput, then restarts the S3 broker and reads everything back.

    .venv/bin/python -m bench.broker_storage [--messages 2000] [--size 100000]
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.local.broker import tansu_binary
from deploy.local.ports import free_port, wait_for_tcp

PARTITIONS = 4
TOPIC = "bench"


def start_tansu(port: int, storage: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    command = [str(tansu_binary()), "broker", "--listener-url", url,
               "--advertised-listener-url", url, "--storage-engine", storage]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    if not wait_for_tcp("127.0.0.1", port, 15):
        proc.kill()
        raise RuntimeError("Tansu did not start")
    return proc


def measure(port: int, messages: int, size: int) -> dict[str, float]:
    bootstrap = f"127.0.0.1:{port}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(10)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0}
    )
    payload = b"x" * size
    latencies = []
    for i in range(201):  # the first one warms up the connection
        started = time.perf_counter()
        producer.produce(TOPIC, payload, partition=i % PARTITIONS)
        producer.flush(30)
        latencies.append(time.perf_counter() - started)
    latencies = sorted(latencies[1:])
    started = time.perf_counter()
    for i in range(messages):
        producer.produce(TOPIC, payload, partition=i % PARTITIONS)
    if producer.flush(120) != 0:
        raise RuntimeError("messages left unacknowledged")
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(latencies[100] * 1000, 1),
        "p99_ms": round(latencies[198] * 1000, 1),
        "msgs_per_s": round(messages / elapsed),
        "mb_per_s": round(messages * size / elapsed / 1e6, 1),
        "written": 201 + messages,
    }


def read_back(port: int, want: int, timeout: float = 60) -> int:
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": "bench-read"})
    consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got, deadline = 0, time.monotonic() + timeout
    try:
        while got < want and time.monotonic() < deadline:
            got += sum(1 for m in consumer.consume(500, 1.0) if m.error() is None)
    finally:
        consumer.close()
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    moto: Any = importlib.import_module("moto.server")  # optional: see the docstring
    boto3: Any = importlib.import_module("boto3")
    s3_port = free_port()
    server = moto.ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{s3_port}"
    creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds).create_bucket(
        Bucket="tansu"
    )
    env = dict(
        os.environ,
        AWS_ENDPOINT=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
    )
    try:
        for storage in ("memory://tansu/", "s3://tansu/"):
            port = free_port()
            proc = start_tansu(port, storage, env)
            try:
                result = measure(port, args.messages, args.size)
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
                proc = start_tansu(port, storage, env)  # a restart: what survives it?
                result["read_back_after_restart"] = read_back(port, int(result["written"]), 20)
            finally:
                proc.terminate()
                proc.wait(30)
            print(storage, result, flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
