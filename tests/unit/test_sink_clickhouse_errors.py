"""Which failed inserts the sink retries (outages) and which it splits or dead-letters.

Retrying a data error forever stops the worker (the issue: code 252 for 101 days in one
batch); dead-lettering an outage loses data. The table below pins the decision per error.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from sinks.clickhouse_errors import ErrorClass, classify, describe

OUTAGE, PARTITIONS, REJECTED = (
    ErrorClass.OUTAGE,
    ErrorClass.TOO_MANY_PARTITIONS,
    ErrorClass.REJECTED,
)


def server(code: int, text: str = "", name: str = "") -> DatabaseError:
    return DatabaseError(f"Code: {code}. DB::Exception: {text} ({name})", code=code, name=name)


PARTITION_TEXT = (
    "Too many partitions for single INSERT block (more than 100). The limit is controlled by "
    "'max_partitions_per_insert_block' setting."
)

CASES: list[tuple[str, BaseException, ErrorClass]] = [
    # transport: no server answer
    ("connection refused", OperationalError("Error executing HTTP request: refused"), OUTAGE),
    ("http 503 without a code", DatabaseError("HTTP 503 Service Unavailable"), OUTAGE),
    ("socket reset", ConnectionResetError(104, "reset by peer"), OUTAGE),
    ("client timeout", TimeoutError("timed out"), OUTAGE),
    # server outages and configuration the operator fixes
    ("159 TIMEOUT_EXCEEDED", server(159, name="TIMEOUT_EXCEEDED"), OUTAGE),
    ("209 SOCKET_TIMEOUT", server(209), OUTAGE),
    ("210 NETWORK_ERROR", server(210), OUTAGE),
    ("241 MEMORY_LIMIT_EXCEEDED", server(241), OUTAGE),
    ("242 TABLE_IS_READ_ONLY", server(242), OUTAGE),
    ("243 NOT_ENOUGH_SPACE", server(243), OUTAGE),
    ("252 too many parts: merges", server(252, "Too many parts (3001). Merges are slower"), OUTAGE),
    ("319 UNKNOWN_STATUS_OF_INSERT", server(319), OUTAGE),
    ("999 KEEPER_EXCEPTION", server(999), OUTAGE),
    ("60 UNKNOWN_TABLE (not migrated)", server(60), OUTAGE),
    ("81 UNKNOWN_DATABASE", server(81), OUTAGE),
    ("16 NO_SUCH_COLUMN_IN_TABLE", server(16), OUTAGE),
    ("497 ACCESS_DENIED", server(497), OUTAGE),
    ("516 AUTHENTICATION_FAILED", server(516), OUTAGE),
    ("202 TOO_MANY_SIMULTANEOUS_QUERIES", server(202), OUTAGE),
    ("394 QUERY_WAS_CANCELLED", server(394), OUTAGE),
    # the rows span too many partitions: same insert, check off
    ("252 too many partitions", server(252, PARTITION_TEXT, "TOO_MANY_PARTS"), PARTITIONS),
    # data ClickHouse refuses
    ("6 CANNOT_PARSE_TEXT", server(6), REJECTED),
    ("27 CANNOT_PARSE_INPUT_ASSERTION_FAILED", server(27), REJECTED),
    ("32 ATTEMPT_TO_READ_AFTER_EOF", server(32), REJECTED),
    ("41 CANNOT_PARSE_DATETIME", server(41), REJECTED),
    ("53 TYPE_MISMATCH", server(53), REJECTED),
    ("69 ARGUMENT_OUT_OF_BOUND", server(69), REJECTED),
    ("70 CANNOT_CONVERT_TYPE", server(70), REJECTED),
    ("72 CANNOT_PARSE_NUMBER", server(72), REJECTED),
    ("117 INCORRECT_DATA", server(117), REJECTED),
    ("131 TOO_LARGE_STRING_SIZE", server(131), REJECTED),
    ("190 SIZES_OF_ARRAYS_DONT_MATCH", server(190), REJECTED),
    ("321 VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE", server(321), REJECTED),
    ("349 CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN", server(349), REJECTED),
    ("407 DECIMAL_OVERFLOW", server(407), REJECTED),
    ("469 VIOLATED_CONSTRAINT", server(469), REJECTED),
    ("unknown server code", server(12345), REJECTED),
    # client side: the Arrow data itself
    ("arrow schema mismatch", pa.ArrowInvalid("Schema at index 1 was different"), REJECTED),
    ("overflow", OverflowError("int too big to convert"), REJECTED),
    # not evidence against the data
    ("unexpected exception", RuntimeError("?"), OUTAGE),
]


@pytest.mark.parametrize(("exc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(exc: BaseException, expected: ErrorClass) -> None:
    assert classify(exc) is expected


def test_describe_names_the_code_and_fits_a_header() -> None:
    text = describe(server(469, "Constraint `c` is violated at row 2", "VIOLATED_CONSTRAINT"))
    assert text.startswith("Code 469 VIOLATED_CONSTRAINT: ")
    assert "violated at row 2" in text
    assert len(describe(server(6, "x" * 10_000))) <= 2000
    assert describe(ValueError("bad")).startswith("ValueError: ")
