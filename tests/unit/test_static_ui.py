"""Serving a user's Jaeger UI build: routes, SPA fallback and the index.html injection.

No Jaeger code is used: FAKE_INDEX below is written for these tests and holds the same
placeholder lines a Jaeger UI build's index.html has (both the pre-v2.15 storage capabilities
and the later backend capabilities), which is all the query service looks at.
tests/integration/test_jaeger_ui_real.py runs the same against a real build when given one.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from core.jaeger_ui_files import UiConfig, html_safe_json
from query.api import build_app
from query.static_ui import Capabilities, inject, mount_ui

FAKE_INDEX = """<!doctype html>
<html><head><base href="/" data-inject-target="BASE_URL" />
<script>
  // JAEGER_CONFIG_JS
  var replacedByJs = true;
  function getConfig() {
    const DEFAULT_CONFIG = null;
    const JAEGER_CONFIG = DEFAULT_CONFIG;
    return JAEGER_CONFIG;
  }
  function getStorage() {
    const DEFAULT_STORAGE_CAPABILITIES = { archiveStorage: false };
    const JAEGER_STORAGE_CAPABILITIES   =   DEFAULT_STORAGE_CAPABILITIES;
    return JAEGER_STORAGE_CAPABILITIES;
  }
  function getBackend() {
    const DEFAULT_BACKEND_CAPABILITIES = {};
    const JAEGER_BACKEND_CAPABILITIES = DEFAULT_BACKEND_CAPABILITIES;
    return JAEGER_BACKEND_CAPABILITIES;
  }
  function getVersion() {
    const DEFAULT_VERSION = {};
    const JAEGER_VERSION = DEFAULT_VERSION;
    return JAEGER_VERSION;
  }
</script>
<script type="module" src="./static/app.js"></script>
</head><body><div id="root"></div></body></html>
"""


def _assigned(page: str, name: str) -> Any:
    """The JSON value ``const NAME = ...;`` assigns in ``page``."""
    m = re.search(rf"{name} = (.*);\n", page)
    assert m, f"{name} not injected"
    return json.loads(m.group(1))


def test_inject_fills_every_placeholder() -> None:
    config = UiConfig("json", html_safe_json({"monitor": {"menuEnabled": True}}))
    page = inject(FAKE_INDEX, Capabilities(archive=True, metrics=False), "tracehouse 1.2", config)
    assert _assigned(page, "JAEGER_CONFIG") == {"monitor": {"menuEnabled": True}}
    assert _assigned(page, "JAEGER_STORAGE_CAPABILITIES") == {
        "archiveStorage": True,
        "metricsStorage": False,
    }
    assert _assigned(page, "JAEGER_BACKEND_CAPABILITIES") == {
        "archiveStorage": True,
        "metricsStorage": False,
        "aiAssistant": False,
    }
    assert _assigned(page, "JAEGER_VERSION") == {
        "gitCommit": "",
        "gitVersion": "tracehouse 1.2",
        "buildDate": "",
    }
    assert "DEFAULT_CONFIG;" not in page.replace("DEFAULT_CONFIG = null;", "")
    assert '<base href="/"' in page  # mounted at /: the base stays


def test_inject_js_config_replaces_the_marker_and_the_line_after_it() -> None:
    js = "function UIConfig() {\n  return { search: { maxLimit: 7 } };\n}"
    page = inject(FAKE_INDEX, Capabilities(), "v", UiConfig("js", js))
    assert js in page
    assert "JAEGER_CONFIG_JS" not in page and "replacedByJs" not in page
    assert "const JAEGER_CONFIG = DEFAULT_CONFIG;" in page  # the JS path leaves the JSON one


def test_inject_without_config_leaves_the_ui_default() -> None:
    page = inject(FAKE_INDEX, Capabilities(), "v", None)
    assert "const JAEGER_CONFIG = DEFAULT_CONFIG;" in page and "// JAEGER_CONFIG_JS" in page
    assert _assigned(page, "JAEGER_BACKEND_CAPABILITIES")["metricsStorage"] is False


def test_inject_leaves_a_page_without_placeholders_alone() -> None:
    page = "<html><body>no placeholders</body></html>"
    assert inject(page, Capabilities(True, True), "v", UiConfig("json", "{}")) == page


@given(
    st.dictionaries(
        st.text(max_size=20),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=40),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=8,
        ),
        max_size=6,
    ),
    st.text(max_size=30),
)
@settings(max_examples=200)
def test_no_config_or_version_text_breaks_out_of_the_script(
    config: dict[str, Any], version: str
) -> None:
    page = inject(FAKE_INDEX, Capabilities(), version, UiConfig("json", html_safe_json(config)))
    assert page.lower().count("</script") == FAKE_INDEX.count("</script")
    assert _assigned(page, "JAEGER_CONFIG") == config
    assert _assigned(page, "JAEGER_VERSION")["gitVersion"] == version


# --- served by the query application ---------------------------------------------------------


@pytest.fixture
def build(tmp_path: Path) -> Path:
    root = tmp_path / "jaeger-ui-build"
    (root / "static").mkdir(parents=True)
    (root / "index.html").write_text(FAKE_INDEX)
    (root / "static" / "app.js").write_text("console.log('fake ui');")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


def _app(ui_dir: str = "", ui_config: str = "") -> web.Application:
    """The query application without a store: the UI routes need none."""
    return build_app(store=None, jaeger_ui_dir=ui_dir, jaeger_ui_config=ui_config)  # type: ignore[arg-type]


def _run(app: web.Application, go: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            await go(client)

    asyncio.run(main())


def test_without_a_jaeger_ui_the_own_ui_is_at_root() -> None:
    async def go(client: TestClient[Any, Any]) -> None:
        for path in ("/", "/tracehouse/"):
            resp = await client.get(path)
            assert resp.status == 200 and "<title>tracehouse</title>" in await resp.text()
        assert (await client.get("/ui/app.js")).status == 200
        assert (await client.get("/search")).status == 404  # no SPA fallback
        assert (await client.get("/static/app.js")).status == 404

    _run(_app(), go)


def test_jaeger_ui_at_root_with_spa_fallback(build: Path) -> None:
    async def go(client: TestClient[Any, Any]) -> None:
        for path in ("/", "/search", "/trace/abc123", "/monitor", "/a/b/c?x=1"):
            resp = await client.get(path)
            assert resp.status == 200, path
            assert resp.content_type == "text/html" and resp.headers["Cache-Control"] == "no-cache"
            page = await resp.text()
            assert "JAEGER_VERSION = {" in page, path
        head = await client.head("/trace/abc123")
        assert head.status == 200
        js = await client.get("/static/app.js")
        assert js.status == 200 and await js.text() == "console.log('fake ui');"
        # a missing asset is a 404, not index.html; the asset directory is not listed
        assert (await client.get("/static/missing.js")).status == 404
        assert (await client.get("/static")).status in (403, 404)
        assert (await client.get("/static/")).status in (403, 404)
        # unknown API paths stay API 404s
        for path in ("/api/nope", "/api", "/api/v3/unknown"):
            resp = await client.get(path)
            assert resp.status == 404 and "JAEGER" not in await resp.text(), path
        # nothing outside the build directory is reachable
        for raw in ("/static/../../secret.txt", "/static/%2e%2e/%2e%2e/secret.txt"):
            resp = await client.get(URL(raw, encoded=True))
            assert "outside the build" not in await resp.text(), raw
        # a POST to a UI path is not answered with the page
        assert (await client.post("/search")).status in (404, 405)
        # the own UI moved to /tracehouse/ and the API is unchanged
        own = await client.get("/tracehouse/")
        assert "<title>tracehouse</title>" in await own.text()
        assert (await client.get("/ui/style.css")).status == 200
        assert await (await client.get("/health")).json() == {"status": "ok"}

    _run(_app(str(build)), go)


def test_capabilities_follow_the_routes_the_server_has(build: Path) -> None:
    """On bare applications, so the test holds whatever routes build_app has today."""

    async def ok(_request: web.Request) -> web.StreamResponse:
        return web.json_response({})

    plain, full = web.Application(), web.Application()
    full.router.add_get("/api/metrics/latencies", ok)
    full.router.add_post("/api/archive/{trace_id}", ok)
    for app in (plain, full):
        mount_ui(app, str(build))
    seen: list[dict[str, bool]] = []

    async def go(client: TestClient[Any, Any]) -> None:
        seen.append(_assigned(await (await client.get("/")).text(), "JAEGER_BACKEND_CAPABILITIES"))

    _run(plain, go)
    _run(full, go)
    assert seen == [
        {"archiveStorage": False, "metricsStorage": False, "aiAssistant": False},
        {"archiveStorage": True, "metricsStorage": True, "aiAssistant": False},
    ]


def test_ui_config_is_injected_and_reread_when_it_changes(build: Path, tmp_path: Path) -> None:
    config = tmp_path / "ui.json"
    config.write_text('{"archiveEnabled": false}')
    app = _app(str(build), str(config))

    async def go(client: TestClient[Any, Any]) -> None:
        async def current() -> Any:
            return _assigned(await (await client.get("/search")).text(), "JAEGER_CONFIG")

        assert await current() == {"archiveEnabled": False}
        config.write_text('{"archiveEnabled": true, "menu": []}')
        assert await current() == {"archiveEnabled": True, "menu": []}
        config.write_text("[not json at all")  # a typo while running keeps the last good one
        assert await current() == {"archiveEnabled": True, "menu": []}
        config.unlink()
        assert await current() == {"archiveEnabled": True, "menu": []}

    _run(app, go)


def test_an_unusable_build_is_refused_at_build_time(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"has no index\.html"):
        _app(str(tmp_path))
    (tmp_path / "index.html").write_text(FAKE_INDEX)
    (tmp_path / "ui.json").write_text("[]")
    with pytest.raises(ValueError, match="must hold an object"):
        _app(str(tmp_path), str(tmp_path / "ui.json"))


_SEGMENT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#%\x00"), min_size=1, max_size=12
).filter(lambda s: s.strip(".") != "")  # "." and ".." are resolved by the URL layer first


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "api/", "static/", "tracehouse/", "trace/", "api", "static"]),
            st.lists(_SEGMENT, max_size=4),
        ),
        min_size=1,
        max_size=15,
    )
)
@settings(max_examples=25, deadline=None)
def test_any_path_gets_the_page_or_a_plain_answer(tmp_path_factory: Any, paths: Any) -> None:
    """Whatever the path: index.html outside /api/ and /static/, never the page inside them,
    never a server error."""
    root = tmp_path_factory.mktemp("ui")
    (root / "index.html").write_text(FAKE_INDEX)
    (root / "static").mkdir()

    async def go(client: TestClient[Any, Any]) -> None:
        for prefix, segments in paths:
            path = "/" + prefix + "/".join(segments)
            resp = await client.get(URL.build(path=path))
            body = await resp.text(errors="replace")
            assert resp.status < 500, path
            reserved = path.startswith(("/api/", "/static/")) or path in ("/api", "/static")
            if reserved:
                assert "JAEGER_VERSION" not in body, path
            elif not path.startswith("/tracehouse/"):
                assert resp.status == 200 and "JAEGER_VERSION = {" in body, path

    _run(_app(str(root)), go)
