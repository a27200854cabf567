import pytest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from core.errors import RateLimited, Unauthenticated
from core.tenancy import (
    TENANT_ATTRIBUTE,
    Limit,
    TenantConfig,
    TokenBuckets,
    load_config,
    parse_tenant_file,
    parse_token_list,
    resolve_tenant,
    stamp_tenant,
    token_from_headers,
)


def test_token_sources() -> None:
    headers = {"authorization": "Bearer abc"}
    assert token_from_headers(headers.get) == "abc"
    assert token_from_headers({"x-api-key": " k1 "}.get) == "k1"
    assert token_from_headers({"authorization": "Basic xx"}.get) is None
    assert parse_token_list("a=acme, b = globex,") == {"a": "acme", "b": "globex"}
    with pytest.raises(ValueError):
        parse_token_list("nonsense")


def test_yaml_file_and_env_tokens(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "tenants.yaml"  # type: ignore[operator]
    path.write_text(
        "tenants:\n  acme:\n    tokens: [t1, t2]\n    spans_per_second: 10\n  globex:\n"
        "    tokens: [t3]\n"
    )
    config = load_config("t4=initech", str(path), default_rate=100, default_burst=0)
    assert config.tokens == {"t1": "acme", "t2": "acme", "t3": "globex", "t4": "initech"}
    assert config.limit_for("acme") == Limit(10, 20)
    assert config.limit_for("globex") == Limit(100, 200)


def test_resolve() -> None:
    assert resolve_tenant(TenantConfig(), None) == ""
    config = parse_tenant_file({"tenants": {"acme": {"tokens": ["t1"]}}})
    assert resolve_tenant(config, "t1") == "acme"
    with pytest.raises(Unauthenticated):
        resolve_tenant(config, "bad")
    with pytest.raises(Unauthenticated):
        resolve_tenant(config, None)


def test_stamp_overwrites_client_value() -> None:
    data = trace_pb2.TracesData()
    rs = data.resource_spans.add()
    rs.resource.attributes.append(
        common_pb2.KeyValue(key=TENANT_ATTRIBUTE, value=common_pb2.AnyValue(string_value="evil"))
    )
    data.resource_spans.add()
    stamp_tenant(data, "acme")
    for r in data.resource_spans:
        values = [
            kv.value.string_value for kv in r.resource.attributes if kv.key == TENANT_ATTRIBUTE
        ]
        assert values == ["acme"]
    stamp_tenant(data, "")
    assert all(not r.resource.attributes for r in data.resource_spans)


def test_token_bucket() -> None:
    now = [0.0]
    config = TenantConfig(limits={"a": Limit(100, 200)})
    buckets = TokenBuckets(config, clock=lambda: now[0])
    buckets.take("a", 150)
    with pytest.raises(RateLimited) as info:
        buckets.take("a", 100)
    assert info.value.retry_after == pytest.approx(0.5)
    now[0] = 0.5
    buckets.take("a", 100)
    buckets.take("unlimited", 10**9)
    # Bigger than the burst: admitted only from a full bucket.
    now[0] = 100
    buckets.take("a", 1000)
    with pytest.raises(RateLimited):
        buckets.take("a", 1)
