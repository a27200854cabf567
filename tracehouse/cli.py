"""The `tracehouse` command: run the local stack or any single component.

Configuration: TRACEHOUSE_* environment variables, or a YAML file (`--config FILE` or
TRACEHOUSE_CONFIG) that they override; `tracehouse config` prints the result. Invalid
configuration stops every command with exit status 2 and a message naming the variable or key.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import CONFIG_ENV
from core.settings import ConfigError, Settings

# Remote-sampling strategies of the demo shop (`up --demo` uses them unless a file is set).
DEMO_STRATEGIES = Path(__file__).with_name("demo_strategies.json")

# Exit status of a configuration error (argparse uses 2 for usage errors too).
LOGIN_ERROR_EXIT = 3  # Kafka or ClickHouse refused the configured login / TLS
CONFIG_ERROR_EXIT = 2


def _auto_ports(settings: Settings) -> tuple[Settings, int]:
    from deploy.local.ports import free_component_ports, free_port

    return settings.with_(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        clickhouse_url=f"http://127.0.0.1:{free_port()}",
        **free_component_ports(),
    ), free_port()


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """Start the stack and supervise it until Ctrl-C/SIGTERM (or ``--exit-after``).

    A component that dies is restarted alone, with backoff (``deploy.local.supervisor``);
    nothing else is stopped, so the in-memory broker keeps what it holds. Only a signal
    stops the stack, in reverse order.
    """
    from deploy.local.stack import LocalStack, StackStoppingError
    from deploy.local.supervisor import STATE_FILE, Supervisor
    from tracehouse import status

    ch_tcp = args.clickhouse_tcp_port
    if args.auto_ports:
        settings, ch_tcp = _auto_ports(settings)
    shop_demo = args.demo and not args.demo_synthetic
    if shop_demo and not settings.sampling_strategies_file:
        # The shop's frontend samples its entry operations by these remote strategies.
        settings = settings.with_(sampling_strategies_file=str(DEMO_STRATEGIES))
    run_dir = Path(args.run_dir).resolve()
    stack = LocalStack(settings, run_dir, ch_tcp)
    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True
        stack.stop_requested = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except StackStoppingError:
        print("stopped while starting")
        return 0
    except Exception as exc:
        print(f"tracehouse up failed: {exc}", file=sys.stderr)
        return 1
    supervisor = Supervisor(
        stack.children,
        run_dir / STATE_FILE,
        say=lambda msg: print(msg, flush=True),
        stopping=lambda: stopping,
    )
    supervisor.write()
    print(f"logs: {stack.logs}")
    print(f"UI and Jaeger API: http://127.0.0.1:{settings.query_http_port}/")
    if settings.sampling_http_port:
        print(
            f"remote sampling: http://127.0.0.1:{settings.sampling_http_port}/sampling?service=NAME"
        )
    print(f"send OTLP/HTTP to http://127.0.0.1:{settings.ingest_http_port}/v1/traces")
    if settings.ingest_grpc_port:
        print(f"send OTLP/gRPC to 127.0.0.1:{settings.ingest_grpc_port}")
    if settings.ingest_zipkin_port:
        print(f"send Zipkin v2 JSON to http://127.0.0.1:{settings.ingest_zipkin_port}/api/v2/spans")
    if settings.ingest_jaeger_enabled:
        for what, port, where in (
            (
                "Jaeger Thrift/HTTP",
                settings.ingest_jaeger_http_port,
                "http://127.0.0.1:{}/api/traces",
            ),
            ("Jaeger gRPC", settings.ingest_jaeger_grpc_port, "127.0.0.1:{}"),
            ("Jaeger agent UDP compact", settings.ingest_jaeger_compact_port, "127.0.0.1:{}"),
            ("Jaeger agent UDP binary", settings.ingest_jaeger_binary_port, "127.0.0.1:{}"),
        ):
            if port:
                print(f"send {what} to {where.format(port)}")
    print(f"supervising: crashed components restart with backoff; state in {supervisor.state_path}")
    shop = None
    if shop_demo:
        shop = _start_shop(settings, run_dir, args.demo_rate)
    elif args.demo:
        from tracehouse.demo_traces import send_demo_load

        endpoint = f"http://127.0.0.1:{settings.ingest_http_port}/v1/traces"
        sent = send_demo_load(endpoint, args.demo_requests, args.demo_traces)
        print(f"demo: sent {sent} spans; waiting for them in ClickHouse ...")
        _wait_for_rows(settings, sent, timeout=60)
        print(status.render(status.collect(settings, run_dir)))
    started = time.monotonic()
    while not stopping:
        supervisor.tick()
        if args.exit_after and time.monotonic() - started >= args.exit_after:
            break
        stack.apply_scale_requests()
        time.sleep(0.5)
    print("stopping ...")
    if shop is not None:
        shop.stop()
    stack.stop()
    supervisor.stopped()
    return 0


def _start_shop(settings: Settings, run_dir: Path, rate: float) -> Any:
    """The demo shop's services and a background load at ``rate`` requests/s until stopped."""
    import threading

    from tracehouse.shop_demo import Shop

    shop = Shop(
        f"http://127.0.0.1:{settings.ingest_http_port}",
        f"http://127.0.0.1:{settings.sampling_http_port or settings.query_http_port}"
        + ("" if settings.sampling_http_port else "/api"),
        run_dir / "logs",
    )
    shop.start()
    print(f"demo: shop services up ({', '.join(shop.ports)}); frontend at {shop.frontend}")
    print(f"demo: {rate:g} requests/s on the frontend")
    print(f"demo: sampling strategies from {settings.sampling_strategies_file}")

    def load() -> None:
        while shop.processes:
            shop.drive(int(rate * 10), rate)

    threading.Thread(target=load, name="shop-load", daemon=True).start()
    return shop


def _wait_for_rows(settings: Settings, expected: int, timeout: float) -> int:
    from core.clickhouse import connect
    from query.counts import span_count

    client = connect(settings.clickhouse, settings.clickhouse_database)
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    count = 0
    while time.monotonic() < deadline:
        count = span_count(client, settings.clickhouse_database)
        if count >= expected:
            print(f"demo: {count} spans in ClickHouse after {time.monotonic() - started:.1f} s")
            return count
        time.sleep(0.5)
    print(f"demo: only {count}/{expected} spans in ClickHouse after {timeout} s", file=sys.stderr)
    return count


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from tracehouse import status

    report = status.collect(settings, Path(args.run_dir))
    print(status.to_json(report) if args.json else status.render(report))
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.migrations import render_all

    s = settings
    if args.print_sql or args.cluster:
        # Render only: a cluster's DDL is reviewed and applied by its operators.
        statements = render_all(s.clickhouse_database, s.retention_days(), args.cluster)
        print(";\n\n".join(statements) + ";")
        return 0
    return _apply_migrations(s)


def _apply_migrations(s: Settings) -> int:
    from schemas.apply import apply_migrations

    applied = apply_migrations(s)  # every shard when clickhouse.shards is set
    print(f"applied migrations: {applied or 'none (up to date)'}")
    return 0


def cmd_topics(_args: argparse.Namespace, settings: Settings) -> int:
    from core.topics import ensure_topics

    for topic, outcome in ensure_topics(settings).items():
        print(f"{topic}: {outcome}")
    return 0


def cmd_scale(args: argparse.Namespace, _settings: Settings) -> int:
    """Ask a running `tracehouse up` to run N instances of a consumer-group component."""
    import json

    from deploy.local.stack import SCALABLE, SCALE_FILE

    run_dir = Path(args.run_dir)
    if args.component not in SCALABLE:
        print(f"only {', '.join(sorted(SCALABLE))} can be scaled", file=sys.stderr)
        return 2
    if not (run_dir / "logs").is_dir():
        print(f"no local stack found in {run_dir} (start it with `tracehouse up`)", file=sys.stderr)
        return 1
    path = run_dir / SCALE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({args.component: args.count}))
    tmp.replace(path)  # atomic: `up` never reads half a request
    print(
        f"requested {args.count} x {args.component}; `tracehouse up` applies it within 1 s "
        f"(its output says when)"
    )
    return 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    """Topics and tables in one step: what a deployment runs once before the pipeline starts.

    `init` has none of `migrate`'s render-only flags: it always applies the migrations.
    """
    return cmd_topics(args, settings) or _apply_migrations(settings)


def _backup_step(
    verb: str, name: str, args: argparse.Namespace, settings: Settings
) -> tuple[str, list[str]] | None:
    """Run ``tracehouse.backup.<verb>`` against ``name``: (destination SQL, tables), or None
    after printing why it failed (a BackupError is an operator's problem, not a traceback)."""
    from core.clickhouse import connect
    from tracehouse import backup as bk

    step = bk.backup if verb == "backup" else bk.restore
    try:
        dest = bk.Destination(name, args.disk, args.s3 or "")
        tables = step(connect(settings.clickhouse, "default"), settings.clickhouse_database, dest)
    except bk.BackupError as exc:
        print(f"tracehouse {verb}: {exc}", file=sys.stderr)
        return None
    return dest.sql(), list(tables)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """BACKUP the stored tables to the server's backups disk or an S3 prefix."""
    from tracehouse.backup import default_name

    name = args.name or default_name()
    done = _backup_step("backup", name, args, settings)
    if done is None:
        return 1
    print(f"backed up {', '.join(done[1])} to {done[0]}")
    print(f"restore with: tracehouse restore {name}" + _dest_flags(args))
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """RESTORE the stored tables from a backup into missing or empty tables."""
    done = _backup_step("restore", args.name, args, settings)
    if done is None:
        return 1
    print(f"restored {', '.join(done[1])} from {done[0]}")
    return 0


def _dest_flags(args: argparse.Namespace) -> str:
    if args.s3:
        return f" --s3 {args.s3}"
    return "" if args.disk == "backups" else f" --disk {args.disk}"


def _add_destination(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--disk",
        default="backups",
        help="ClickHouse disk declared for backups (default: backups, the local server's)",
    )
    parser.add_argument(
        "--s3",
        metavar="URL",
        help="S3 prefix instead of a disk (https://bucket.s3.region.amazonaws.com/tracehouse); "
        "the ClickHouse server's own credentials are used",
    )


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """Print the configuration (validated) as a YAML config file."""
    if args.defaults:
        print(Settings().to_yaml(), end="")
        return 0
    shown, hidden = settings.without_secrets()
    print(shown.to_yaml(docs=args.docs), end="")
    if hidden:
        print(f"tracehouse: not shown (set, secret): {', '.join(hidden)}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from tracehouse.demo_traces import send_demo_load

    s = settings
    endpoint = args.endpoint or f"http://127.0.0.1:{s.ingest_http_port}/v1/traces"
    sent = send_demo_load(endpoint, args.requests, args.traces, seed=args.seed)
    print(f"sent {sent} spans to {endpoint}")
    return 0


def cmd_component(args: argparse.Namespace, settings: Settings) -> int:
    run: Callable[[Settings], None]
    if args.command == "ingest":
        from ingest.server import main as run
    elif args.command == "streams":
        from streams.app import main as run_streams
        from tracehouse.raw_decoders import raw_decoders

        run_streams(settings, raw_decoders())
        return 0
    elif args.command == "query":
        from query.server import main as run
    else:
        from sinks.worker import main as run
    run(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, built without running anything (tests parse manifests with it)."""
    parser = argparse.ArgumentParser(
        prog="tracehouse",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML config file (also ${CONFIG_ENV}); TRACEHOUSE_* variables override it. "
        "See deploy/tracehouse.example.yaml",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start broker, ClickHouse and the pipeline locally")
    up.add_argument("--run-dir", default=".tracehouse/run", help="logs and ClickHouse data")
    up.add_argument("--auto-ports", action="store_true", help="pick free ports")
    up.add_argument("--clickhouse-tcp-port", type=int, default=9000)
    up.add_argument(
        "--demo", action="store_true", help="run the demo shop (real instrumented services) once up"
    )
    up.add_argument(
        "--demo-synthetic",
        action="store_true",
        help="with --demo: send synthetic OTLP batches instead of running the demo shop",
    )
    up.add_argument("--demo-rate", type=float, default=20.0, help="shop requests per second")
    up.add_argument("--demo-requests", type=int, default=20)
    up.add_argument("--demo-traces", type=int, default=100, help="traces per request")
    up.add_argument("--exit-after", type=float, default=0, help="stop after N seconds (0: never)")
    up.set_defaults(func=cmd_up)
    for name, text in (
        ("ingest", "run an ingest node"),
        ("streams", "run a streams worker"),
        ("sink", "run a sink worker"),
        ("query", "run the Jaeger-compatible query API and web UI"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=cmd_component)
    status = sub.add_parser("status", help="topics, lag, row counts, throughput and drops")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--run-dir", default=".tracehouse/run", help="where `tracehouse up` keeps its state"
    )
    status.set_defaults(func=cmd_status)
    mig = sub.add_parser("migrate", help="apply ClickHouse migrations (and the TTL setting)")
    mig.add_argument("--print-sql", action="store_true", help="print the DDL, run nothing")
    mig.add_argument(
        "--cluster",
        help="print ReplicatedMergeTree + Distributed DDL for this cluster name (no run)",
    )
    mig.set_defaults(func=cmd_migrate)
    sub.add_parser("topics", help="create Kafka topics").set_defaults(func=cmd_topics)
    scale = sub.add_parser("scale", help="run N streams or sink workers in a running `up`")
    scale.add_argument("component", choices=["streams", "sink"])
    scale.add_argument("count", type=int)
    scale.add_argument("--run-dir", default=".tracehouse/run")
    scale.set_defaults(func=cmd_scale)
    sub.add_parser("init", help="create topics and apply migrations").set_defaults(func=cmd_init)
    bkp = sub.add_parser("backup", help="BACKUP the stored tables (ClickHouse-native)")
    bkp.add_argument("name", nargs="?", help="backup name (default: tracehouse-<UTC time>)")
    _add_destination(bkp)
    bkp.set_defaults(func=cmd_backup)
    rst = sub.add_parser("restore", help="RESTORE the stored tables into empty tables")
    rst.add_argument("name", help="the name `tracehouse backup` printed")
    _add_destination(rst)
    rst.set_defaults(func=cmd_restore)
    cfg = sub.add_parser(
        "config", help="validate the configuration and print it as a YAML config file"
    )
    cfg.add_argument(
        "--defaults", action="store_true", help="print the documented defaults instead"
    )
    cfg.add_argument(
        "--no-docs", dest="docs", action="store_false", help="values only, no comments"
    )
    cfg.set_defaults(func=cmd_config)
    demo = sub.add_parser("demo", help="send synthetic traces over OTLP/HTTP")
    demo.add_argument("--endpoint")
    demo.add_argument("--requests", type=int, default=20)
    demo.add_argument("--traces", type=int, default=100)
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=cmd_demo)
    return parser


def load_settings(args: argparse.Namespace) -> Settings:
    """The validated settings for parsed ``args``; ``--config`` also reaches child processes."""
    if args.config:
        # Through the environment, so the processes `up` starts read the same file.
        os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
    return Settings.from_env()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args)
    except ConfigError as exc:
        print("tracehouse: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT)
    from core.clickhouse import ClickHouseLoginError
    from core.kafka import KafkaLoginError

    try:
        sys.exit(args.func(args, settings))
    except (KafkaLoginError, ClickHouseLoginError) as exc:
        # A refused login is a settings problem: say which settings, without a traceback.
        print(f"tracehouse: {exc}", file=sys.stderr)
        sys.exit(LOGIN_ERROR_EXIT)


if __name__ == "__main__":
    main()
