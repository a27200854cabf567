"""The demo shop's fixed topology: who calls whom, with which dependencies, errors and slow paths.

One definition serves the real demo application (tracehouse/shop_service.py runs each service
as its own process, instrumented with the OpenTelemetry SDK) and the synthetic generator of
tracehouse/demo_traces.py, so both draw the same service map: an entry service fanning out to
a handful of backends, with a database and a cache behind some of them, and no service
calling every other.

Each route lists its calls in order. A call is either another service's route over HTTP, or a
dependency (``db:`` / ``cache:``) that the service calls in process, recorded as a CLIENT span
with ``db.system`` so the service graph shows it as a node of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    calls: tuple[str, ...] = ()  # "service METHOD /path", "db:<system> <statement>", "cache:<op>"
    work_ms: float = 2.0  # own time
    error_rate: float = 0.0  # share of requests answered 500
    slow_rate: float = 0.0  # share of requests taking slow_ms more
    slow_ms: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Service:
    name: str
    routes: tuple[Route, ...] = field(default_factory=tuple)

    def route(self, method: str, path: str) -> Route | None:
        for r in self.routes:
            if r.method == method and r.path == path:
                return r
        return None


DB = "postgresql"
CACHE = "redis"

SHOP: tuple[Service, ...] = (
    Service(
        "frontend",
        (
            Route("GET", "/", ("catalog GET /products", "recommendation GET /recommendations")),
            Route("GET", "/product", ("catalog GET /product", "reviews GET /reviews")),
            Route(
                "POST",
                "/checkout",
                ("cart GET /cart", "checkout POST /orders"),
                work_ms=3,
            ),
        ),
    ),
    Service(
        "catalog",
        (
            Route("GET", "/products", ("cache:GET products", "db:SELECT products"), work_ms=1),
            Route("GET", "/product", ("cache:GET product", "db:SELECT product")),
        ),
    ),
    Service(
        "recommendation",
        (
            Route(
                "GET", "/recommendations", ("catalog GET /products",), slow_rate=0.05, slow_ms=300
            ),
        ),
    ),
    Service("reviews", (Route("GET", "/reviews", ("db:SELECT reviews",), error_rate=0.02),)),
    Service("cart", (Route("GET", "/cart", ("cache:GET cart",), work_ms=1),)),
    Service(
        "checkout",
        (
            Route(
                "POST",
                "/orders",
                ("payment POST /charge", "db:INSERT orders", "shipping POST /quote"),
                work_ms=4,
            ),
        ),
    ),
    Service("payment", (Route("POST", "/charge", (), work_ms=8, error_rate=0.05),)),
    Service(
        "shipping", (Route("POST", "/quote", ("db:SELECT rates",), slow_rate=0.1, slow_ms=150),)
    ),
)
# Entry routes the load generator calls, with their share of the traffic.
ENTRY_MIX: tuple[tuple[str, str, float], ...] = (
    ("GET", "/", 0.6),
    ("GET", "/product", 0.3),
    ("POST", "/checkout", 0.1),
)
BY_NAME = {s.name: s for s in SHOP}


def parse_call(call: str) -> tuple[str, str, str]:
    """("service", METHOD, path) for a service call, ("db"|"cache", system, statement) else."""
    if call.startswith("db:"):
        return "db", DB, call[3:]
    if call.startswith("cache:"):
        return "cache", CACHE, call[6:]
    service, method, path = call.split(" ")
    return service, method, path


def edges() -> set[tuple[str, str]]:
    """(caller, callee) pairs of the topology, dependencies named by their system."""
    out = set()
    for s in SHOP:
        for r in s.routes:
            for call in r.calls:
                target, system, _ = parse_call(call)
                out.add((s.name, system if target in ("db", "cache") else target))
    return out
