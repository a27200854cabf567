"""The OpenAPI spec documents every API route the application serves, and nothing else."""

from importlib import resources

import yaml

from query.api import build_app, no_auth
from query.sampling_overview_http import add_overview_routes


def test_every_api_route_is_documented() -> None:
    spec = yaml.safe_load(resources.files("query").joinpath("openapi.yaml").read_text())
    assert spec["openapi"].startswith("3.")
    documented = {p.replace("{traceID}", "{trace_id}") for p in spec["paths"]}
    app = build_app(store=None)  # type: ignore[arg-type]
    # The server adds the sampling overview next to the v1 API (query/server.py).
    add_overview_routes(app, None, None, no_auth)  # type: ignore[arg-type]
    served = {
        r.resource.canonical
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith(("/api", "/health"))
    }
    assert served == documented
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert "200" in op["responses"], path
