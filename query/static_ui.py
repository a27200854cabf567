"""Where the web UIs are served: the own UI, and optionally a user's Jaeger UI build at ``/``.

Users who know the Jaeger UI can build it from Jaeger's public source and point
``query.ui_dir`` at the build (docs/jaeger-ui.md); the project never ships Jaeger's code.
The query service then does for that build what Jaeger's own query service does:

- ``/static/...`` are the build's files; a missing one is a 404, never index.html (a script
  tag answered with HTML fails with a confusing MIME error instead of a plain 404);
- every other GET that no route answers, outside ``/api/``, is index.html, so the UI's own
  routes (``/search``, ``/trace/<id>``, ``/monitor``, ...) survive a reload. Unknown ``/api/``
  paths stay 404s from the API;
- index.html has the placeholders Jaeger's query service fills replaced: the UI config file
  (``query.ui_config``, JSON object or JS ``function UIConfig()``), the backend capabilities
  (both the ``JAEGER_STORAGE_CAPABILITIES`` of UIs before v2.15 and the
  ``JAEGER_BACKEND_CAPABILITIES`` of later ones) and ``JAEGER_VERSION``.

The capabilities say what this server really answers: ``archiveStorage`` when an
``/api/archive/...`` route is registered and ``metricsStorage`` when ``/api/metrics/latencies``
is, read from the router at startup; so the UI offers Archive and Monitor exactly when they
work. The base path (``<base href="/"``) is left alone: the UI is mounted at ``/``, which is
what the build assumes, and the API is not served under any other prefix either.

The own UI is always at ``/tracehouse/`` and its assets at ``/ui/``; without a Jaeger UI it is
also ``/``. The unknown-path fallback is a middleware that asks the router's verdict
(``match_info.http_exception``) instead of a catch-all route, so it works whatever order
other routes are registered in and never shadows one.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from aiohttp import web

from core.jaeger_ui_files import (
    MAX_INDEX_HTML_BYTES,
    UiConfig,
    html_safe_json,
    load_ui_config,
    ui_dir_problem,
)

OWN_UI_DIR = Path(str(resources.files("query").joinpath("ui")))
OWN_UI_PATH = "/tracehouse/"
API_PREFIX = "/api/"
STATIC_PREFIX = "/static/"
# Routes whose presence means the UI may offer the matching screen.
ARCHIVE_ROUTE_PREFIX = "/api/archive/"
METRICS_ROUTE = "/api/metrics/latencies"

# The placeholders, as Jaeger's query service matches them (spaces around '=' optional).
_CONFIG = re.compile(r"JAEGER_CONFIG *= *DEFAULT_CONFIG;")
_CONFIG_JS = re.compile(r"^[ \t]*//[ \t]*JAEGER_CONFIG_JS[^\n]*\n[^\n]*", re.MULTILINE)
_STORAGE_CAPS = re.compile(r"JAEGER_STORAGE_CAPABILITIES *= *DEFAULT_STORAGE_CAPABILITIES;")
_BACKEND_CAPS = re.compile(r"JAEGER_BACKEND_CAPABILITIES *= *DEFAULT_BACKEND_CAPABILITIES;")
_VERSION = re.compile(r"JAEGER_VERSION *= *DEFAULT_VERSION;")

log = logging.getLogger("query.static_ui")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Capabilities:
    """What the UI may offer, as Jaeger's UI reads it from index.html."""

    archive: bool = False
    metrics: bool = False

    @classmethod
    def of(cls, app: web.Application) -> Capabilities:
        paths = {r.canonical for r in app.router.resources()}
        return cls(
            archive=any(p.startswith(ARCHIVE_ROUTE_PREFIX) for p in paths),
            metrics=METRICS_ROUTE in paths,
        )


def inject(index_html: str, caps: Capabilities, version: str, config: UiConfig | None) -> str:
    """index.html with every placeholder Jaeger's query service fills, filled.

    A pure function of its inputs; placeholders a build does not have are simply absent
    (v2.14 has no backend capabilities, v2.20 has both kinds).
    """
    out = index_html
    if config is not None and config.kind == "json":
        out = _CONFIG.sub(lambda _m: f"JAEGER_CONFIG = {config.text};", out)
    elif config is not None:
        out = _CONFIG_JS.sub(lambda _m: config.text, out, count=1)
    storage = {"archiveStorage": caps.archive, "metricsStorage": caps.metrics}
    backend = {**storage, "aiAssistant": False}
    out = _STORAGE_CAPS.sub(
        lambda _m: f"JAEGER_STORAGE_CAPABILITIES = {html_safe_json(storage)};", out
    )
    out = _BACKEND_CAPS.sub(
        lambda _m: f"JAEGER_BACKEND_CAPABILITIES = {html_safe_json(backend)};", out
    )
    version_info = {"gitCommit": "", "gitVersion": version, "buildDate": ""}
    return _VERSION.sub(lambda _m: f"JAEGER_VERSION = {html_safe_json(version_info)};", out)


def tracehouse_version() -> str:
    try:
        return f"tracehouse {metadata.version('tracehouse')}"
    except metadata.PackageNotFoundError:
        return "tracehouse"


class JaegerIndex:
    """The served index.html: read once, re-derived when the UI config file changes.

    Jaeger re-reads its UI config every 10 s; here a stat per page load notices an edit at
    once. A config that turns bad while running is logged and the last good one kept, so a
    typo never takes the UI down.
    """

    def __init__(self, ui_dir: Path, config_file: str) -> None:
        if problem := ui_dir_problem(str(ui_dir)):
            raise ValueError(problem)
        raw = (ui_dir / "index.html").read_bytes()[:MAX_INDEX_HTML_BYTES]
        self.raw = raw.decode("utf-8", errors="replace")
        self.config_file = config_file
        self.config = load_ui_config(config_file) if config_file else None
        self.config_stamp = self._stamp()
        self.caps = Capabilities()
        self.version = tracehouse_version()
        self.body = b""

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.config_file)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def derive(self, caps: Capabilities) -> None:
        self.caps = caps
        self.body = inject(self.raw, caps, self.version, self.config).encode("utf-8")

    def current(self) -> bytes:
        if self.config_file and (stamp := self._stamp()) != self.config_stamp:
            self.config_stamp = stamp
            try:
                self.config = load_ui_config(self.config_file)
            except ValueError as exc:
                log.error("keeping the previous UI config: %s", exc)
            self.derive(self.caps)
        return self.body


def _reserved(path: str) -> bool:
    """Paths the fallback never answers with index.html: the API's and the build's files."""
    return path.startswith((API_PREFIX, STATIC_PREFIX)) or path in ("/api", "/static")


def mount_ui(app: web.Application, jaeger_ui_dir: str = "", jaeger_ui_config: str = "") -> None:
    """Register the UI routes on ``app``: the own UI, and the Jaeger UI build if one is given.

    Raises ValueError if the build or config file is unusable (the settings check them too;
    this covers embedders passing paths directly).
    """

    async def own_index(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(OWN_UI_DIR / "index.html")

    app.router.add_get(OWN_UI_PATH, own_index)
    app.router.add_static("/ui/", OWN_UI_DIR)
    if not jaeger_ui_dir:
        app.router.add_get("/", own_index)
        return
    ui_dir = Path(jaeger_ui_dir)
    index = JaegerIndex(ui_dir, jaeger_ui_config)

    async def jaeger_index(_request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=index.current(),
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @web.middleware
    async def spa_fallback(request: web.Request, handler: Handler) -> web.StreamResponse:
        unmatched = isinstance(request.match_info.http_exception, web.HTTPNotFound)
        if unmatched and request.method in ("GET", "HEAD") and not _reserved(request.path):
            return await jaeger_index(request)
        return await handler(request)

    async def capabilities(app: web.Application) -> None:
        index.derive(Capabilities.of(app))

    app.router.add_get("/", jaeger_index)
    if (ui_dir / "static").is_dir():
        app.router.add_static(STATIC_PREFIX, ui_dir / "static")
    app.middlewares.append(spa_fallback)
    app.on_startup.append(capabilities)
    index.derive(Capabilities())
