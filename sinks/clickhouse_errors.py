"""Which failed inserts are worth retrying: ClickHouse outages vs. data ClickHouse rejects.

A sink that retries every failure forever is stopped by one batch ClickHouse will never
accept (issue: 101 spans on 101 days fail every insert with code 252 and the worker stays
paused on all topics). A sink that dead-letters every failure loses a whole outage's data to
the DLQ. So each failure is put in one of three classes (:func:`classify`, pure, tested
table-driven in ``tests/unit/test_sink_clickhouse_errors.py``):

- ``OUTAGE``: the server, the network or the configuration is at fault and the same insert
  will succeed later (connection refused/reset, timeouts, memory, read-only, keeper, a missing
  table before ``tracehouse migrate``, auth). Retried with backoff, the partition paused.
- ``TOO_MANY_PARTITIONS``: code 252 with "Too many partitions for single INSERT block": the
  rows are fine, they only span more than ``max_partitions_per_insert_block`` partitions.
  The same insert (same dedup token) is repeated with
  ``throw_on_max_partitions_per_insert_block=0``.
- ``REJECTED``: this data cannot be stored (type/conversion/parse errors, constraint
  violations, sizes of Nested arrays, any server code not known as an outage, and client-side
  Arrow errors). The batch is bisected until the bad rows are isolated and dead-lettered
  (``sinks/isolation.py``); the good rows are stored.

Unknown server codes default to ``REJECTED``: ClickHouse has hundreds of codes and nearly all
of them describe the query or its data. Misclassifying a transient error as ``REJECTED`` is
cheap, because the bisection retries the halves: if the server is fine again they are
stored (with deterministic sub-tokens), and if it is still down the next insert fails with a
connection error, which is an ``OUTAGE`` and retries the whole batch. Misclassifying a data
error as ``OUTAGE`` blocks a partition forever, which is the failure this module exists to
prevent. Errors without a server code (transport failures, HTTP 5xx from a proxy) are
outages.
"""

from __future__ import annotations

import enum
import socket

import pyarrow as pa
from clickhouse_connect.driver.exceptions import ClickHouseError


class ErrorClass(enum.Enum):
    OUTAGE = "outage"
    TOO_MANY_PARTITIONS = "too_many_partitions"
    REJECTED = "rejected"


# Server error codes that say "try again later" (name as in system.errors / errorCodeToName).
OUTAGE_CODES: dict[int, str] = {
    3: "UNEXPECTED_END_OF_FILE",  # request body cut off in transit
    16: "NO_SUCH_COLUMN_IN_TABLE",  # schema behind the sink: run `tracehouse migrate`
    60: "UNKNOWN_TABLE",
    81: "UNKNOWN_DATABASE",
    115: "UNKNOWN_SETTING",
    159: "TIMEOUT_EXCEEDED",
    160: "TOO_SLOW",
    164: "READONLY",
    173: "CANNOT_ALLOCATE_MEMORY",
    192: "UNKNOWN_USER",
    193: "WRONG_PASSWORD",
    194: "REQUIRED_PASSWORD",
    195: "IP_ADDRESS_NOT_ALLOWED",
    198: "DNS_ERROR",
    201: "QUOTA_EXCEEDED",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    203: "NO_FREE_CONNECTION",
    209: "SOCKET_TIMEOUT",
    210: "NETWORK_ERROR",
    218: "TABLE_IS_DROPPED",
    225: "NO_ZOOKEEPER",
    236: "ABORTED",
    241: "MEMORY_LIMIT_EXCEEDED",
    242: "TABLE_IS_READ_ONLY",
    243: "NOT_ENOUGH_SPACE",
    244: "UNEXPECTED_ZOOKEEPER_ERROR",
    252: "TOO_MANY_PARTS",  # "merges are slower than inserts"; see TOO_MANY_PARTITIONS_TEXT
    254: "NO_ACTIVE_REPLICAS",
    279: "ALL_CONNECTION_TRIES_FAILED",
    285: "TOO_FEW_LIVE_REPLICAS",
    286: "UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE",
    289: "REPLICA_IS_NOT_IN_QUORUM",
    291: "DATABASE_ACCESS_DENIED",
    319: "UNKNOWN_STATUS_OF_INSERT",  # the dedup token makes the retry safe
    364: "RECEIVED_ERROR_TOO_MANY_REQUESTS",
    373: "SESSION_IS_LOCKED",
    384: "PART_IS_TEMPORARILY_LOCKED",
    394: "QUERY_WAS_CANCELLED",
    410: "EXTERNAL_SERVER_IS_NOT_RESPONDING",
    415: "ALL_REPLICAS_LOST",
    425: "SYSTEM_ERROR",
    439: "CANNOT_SCHEDULE_TASK",
    473: "DEADLOCK_AVOIDED",
    497: "ACCESS_DENIED",
    516: "AUTHENTICATION_FAILED",
    519: "NO_REMOTE_SHARD_AVAILABLE",
    574: "DISTRIBUTED_TOO_MANY_PENDING_BYTES",
    677: "THREAD_WAS_CANCELED",
    700: "USER_SESSION_LIMIT_EXCEEDED",
    733: "TABLE_IS_BEING_RESTARTED",
    735: "QUERY_WAS_CANCELLED_BY_CLIENT",
    745: "SERVER_OVERLOADED",
    749: "TCP_CONNECTION_LIMIT_REACHED",
    762: "HTTP_CONNECTION_LIMIT_REACHED",
    774: "TABLE_IS_PERMANENTLY_READ_ONLY",
    776: "RESOURCE_LIMIT_EXCEEDED",
    777: "MEMORY_RESERVATION_KILLED",
    778: "MEMORY_RESERVATION_FAILED",
    999: "KEEPER_EXCEPTION",
    1000: "POCO_EXCEPTION",  # network/IO inside the server
    1019: "QUERY_SLOT_ACQUISITION_TIMEOUT",
    1020: "MEMORY_RESERVATION_ACQUISITION_TIMEOUT",
}
TOO_MANY_PARTS = 252
# Code 252 means two things: this block spans too many partitions (a property of the rows,
# never fixed by waiting) or the table has too many active parts (back-pressure, transient).
TOO_MANY_PARTITIONS_TEXT = "too many partitions for single insert block"
# Python-side failures that come from the data being inserted, not from the connection.
_DATA_EXCEPTIONS = (pa.ArrowException, ValueError, TypeError, OverflowError, IndexError, KeyError)
# Transport failures: the server was not reached or the connection broke.
_TRANSPORT_EXCEPTIONS = (OSError, ConnectionError, TimeoutError, socket.timeout)


def server_code(exc: BaseException) -> int | None:
    """The ClickHouse server error code carried by ``exc`` (None: no server answer)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def classify(exc: BaseException) -> ErrorClass:
    """Outage (retry the same insert), too many partitions, or data ClickHouse rejects."""
    if isinstance(exc, ClickHouseError):
        code = server_code(exc)
        if code is None:
            # Connection refused/reset, timeouts, HTTP errors without a ClickHouse code.
            return ErrorClass.OUTAGE
        if code == TOO_MANY_PARTS and TOO_MANY_PARTITIONS_TEXT in str(exc).lower():
            return ErrorClass.TOO_MANY_PARTITIONS
        if code in OUTAGE_CODES:
            return ErrorClass.OUTAGE
        return ErrorClass.REJECTED
    if isinstance(exc, _TRANSPORT_EXCEPTIONS):
        return ErrorClass.OUTAGE
    if isinstance(exc, _DATA_EXCEPTIONS):
        return ErrorClass.REJECTED
    # Anything else (a bug, an interrupted thread) is not evidence against the data.
    return ErrorClass.OUTAGE


def describe(exc: BaseException) -> str:
    """``Code: N NAME: message`` for the DLQ ``error`` header (bounded, one line)."""
    code = server_code(exc)
    name = getattr(exc, "name", None) or ""
    text = " ".join(str(exc).split())
    head = f"{type(exc).__name__}" if code is None else f"Code {code} {name}".rstrip()
    return f"{head}: {text}"[:2000]
