from query.jaeger_model import envelope, error_envelope, traces_json

ROW = [
    "0af7651916cd43dd8448eb211c80319c",
    "b7ad6b7169203331",
    "",
    "GET /",
    "Server",
    "web",
    {"service.name": "web", "host.name": "h1"},
    "scope",
    "1.0",
    {"http.route": "/"},
    1_700_000_000_123_456_789,
    2_500_000,
    "Error",
    "boom",
    [1_700_000_000_124_000_000],
    ["exception"],
    [{"exception.type": "E"}],
    ["1" * 32],
    ["2" * 16],
    "",
]
CHILD = list(ROW)
CHILD[1], CHILD[2], CHILD[4], CHILD[12], CHILD[13] = (
    "c" * 16,
    "b7ad6b7169203331",
    "Client",
    "Unset",
    "",
)
CHILD[14], CHILD[15], CHILD[16], CHILD[17], CHILD[18] = [], [], [], [], []


def test_trace_shape_matches_jaeger_api() -> None:
    [trace] = traces_json([ROW, CHILD])
    assert set(trace) == {"traceID", "spans", "processes", "warnings"}
    assert trace["processes"] == {
        "p1": {
            "serviceName": "web",
            "tags": [{"key": "host.name", "type": "string", "value": "h1"}],
        }
    }
    root, child = trace["spans"]
    assert set(root) == {
        "traceID",
        "spanID",
        "operationName",
        "references",
        "startTime",
        "duration",
        "tags",
        "logs",
        "processID",
        "warnings",
        "flags",
    }
    assert root["startTime"] == 1_700_000_000_123_456 and root["duration"] == 2500
    assert root["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": "1" * 32, "spanID": "2" * 16}
    ]
    tags = {t["key"]: t for t in root["tags"]}
    assert tags["span.kind"]["value"] == "server"
    assert tags["error"] == {"key": "error", "type": "bool", "value": True}
    assert tags["otel.status_description"]["value"] == "boom"
    assert root["logs"] == [
        {
            "timestamp": 1_700_000_000_124_000,
            "fields": [
                {"key": "event", "type": "string", "value": "exception"},
                {"key": "exception.type", "type": "string", "value": "E"},
            ],
        }
    ]
    assert child["references"][0] == {
        "refType": "CHILD_OF",
        "traceID": ROW[0],
        "spanID": "b7ad6b7169203331",
    }
    assert child["processID"] == "p1"
    assert trace["warnings"] is None


def test_missing_parent_is_a_warning() -> None:
    [trace] = traces_json([CHILD])
    assert trace["warnings"] and "b7ad6b7169203331" in trace["warnings"][0]


def test_envelopes() -> None:
    assert envelope(["a", "b"]) == {
        "data": ["a", "b"],
        "total": 2,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }
    assert error_envelope(404, "trace not found")["errors"] == [
        {"code": 404, "msg": "trace not found"}
    ]


def test_one_span_with_typed_tags_sorted_and_bad_links_dropped() -> None:
    from query.jaeger_model import span_json

    row = list(ROW)
    row[9] = {"z": "1", "a": "true", "m": "2.5", "s": "007"}
    row[17], row[18] = ["0" * 32, "1" * 32], ["2" * 16, "0" * 16]  # both links point nowhere
    span = span_json(row, "p1")
    keys = [t["key"] for t in span["tags"]]
    assert keys == sorted(keys)
    typed = {t["key"]: (t["type"], t["value"]) for t in span["tags"]}
    assert typed["z"] == ("int64", 1) and typed["a"] == ("bool", True)
    assert typed["m"] == ("float64", 2.5) and typed["s"] == ("string", "007")
    assert span["references"] == []
    assert span["warnings"] == ["Invalid span link removed"] * 2  # Jaeger's words, per link
