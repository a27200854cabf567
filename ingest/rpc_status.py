"""Hand-encoded ``google.rpc.Status`` / ``RetryInfo`` protobufs for error responses.

OTLP/HTTP error bodies are a ``google.rpc.Status``, and gRPC throttling responses carry a
``RetryInfo`` detail so clients know when to come back. Four small messages do not justify a
runtime dependency on googleapis-common-protos, so they are encoded here by field number.
"""

from __future__ import annotations

RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def _field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def retry_info(seconds: float) -> bytes:
    """``google.rpc.RetryInfo{retry_delay: Duration}``."""
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9)
    duration = b""
    if whole:
        duration += _field_varint(1, whole)
    if nanos:
        duration += _field_varint(2, nanos)
    return _field_bytes(1, duration)


def status(code: int, message: str, retry_after: float | None = None) -> bytes:
    """``google.rpc.Status{code, message, details}`` with an optional RetryInfo detail."""
    out = b""
    if code:
        out += _field_varint(1, code)
    if message:
        out += _field_bytes(2, message.encode())
    if retry_after is not None:
        any_msg = _field_bytes(1, RETRY_INFO_TYPE.encode()) + _field_bytes(
            2, retry_info(retry_after)
        )
        out += _field_bytes(3, any_msg)
    return out
