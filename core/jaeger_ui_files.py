"""What makes a directory a servable Jaeger UI build, and what a Jaeger UI config file holds.

Users may point the query service at a Jaeger UI they built themselves (``query.ui_dir``) and
at the UI configuration file Jaeger's own query service takes as ``--query.ui-config``
(``query.ui_config``). Both are checked when the settings load, so ``tracehouse config`` and
every process report a wrong path or a broken config file by its setting name at start instead
of the UI failing later in a browser. The query service reads the config file with the same
function (:func:`load_ui_config`), so what is accepted and what is injected cannot drift.

Config file formats, as Jaeger defines them: ``.json`` holds one JSON object (the UI's
configuration); ``.js`` holds JavaScript defining ``function UIConfig()`` that returns it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# A UI config is a few KB; the cap keeps a wrong path (a log file, a device) from being read
# into every process and every index.html.
MAX_UI_CONFIG_BYTES = 1024 * 1024
# Built index.html files are ~5 KB; anything near this is not a UI build's index.
MAX_INDEX_HTML_BYTES = 4 * 1024 * 1024
# How Jaeger recognises a JS config: the definition of the function the UI calls.
_UICONFIG_FUNCTION = re.compile(r"function\s+UIConfig\s?\(\s?\)\s?\{")
# The injected text sits inside an inline <script>; this would end that script early.
_SCRIPT_END = re.compile(r"</script", re.IGNORECASE)


@dataclass(frozen=True)
class UiConfig:
    """A loaded UI config: ``text`` is compact JSON (HTML-safe) or the trimmed JavaScript."""

    kind: Literal["json", "js"]
    text: str


def ui_dir_problem(value: str) -> str | None:
    """Why ``value`` is not a UI build directory to serve, or None (empty means unset)."""
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        return f"{value!r} is not a directory (expected a built Jaeger UI, holding index.html)"
    index = path / "index.html"
    if not index.is_file():
        return f"{value!r} has no index.html (point it at the build output, e.g. .../build)"
    try:
        size = index.stat().st_size
        with index.open("rb") as f:
            f.read(1)
    except OSError as exc:
        return f"{value!r}: cannot read index.html ({exc.strerror or exc})"
    if size > MAX_INDEX_HTML_BYTES:
        return f"{value!r}: index.html is {size} bytes, more than {MAX_INDEX_HTML_BYTES}"
    return None


def ui_config_problem(value: str) -> str | None:
    """Why ``value`` is not a usable UI config file, or None (empty means unset)."""
    if not value:
        return None
    try:
        load_ui_config(value)
    except ValueError as exc:
        return str(exc)
    return None


def load_ui_config(value: str) -> UiConfig:
    """Read and check a UI config file; raises ValueError saying what is wrong."""
    path = Path(value)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".js"):
        raise ValueError(f"{value!r}: a UI config file must end in .json or .js")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_UI_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{value!r}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_UI_CONFIG_BYTES:
        raise ValueError(f"{value!r} is larger than {MAX_UI_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{value!r} is not UTF-8 (byte {exc.start})") from None
    return parse_ui_config(value, suffix, text)


def parse_ui_config(name: str, suffix: str, text: str) -> UiConfig:
    """The config held by ``text``; ``suffix`` (.json or .js) says how to read it."""
    if suffix == ".js":
        js = text.strip()
        if not _UICONFIG_FUNCTION.search(js):
            raise ValueError(f"{name!r}: a .js UI config must define function UIConfig()")
        if _SCRIPT_END.search(js):
            raise ValueError(f"{name!r}: contains '</script', which would end the page's script")
        return UiConfig("js", js)
    try:
        parsed = json.loads(text, parse_constant=_no_constant)
        if not isinstance(parsed, dict):
            raise ValueError(f"a .json UI config must hold an object, not {_kind(parsed)}")
        return UiConfig("json", html_safe_json(parsed))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{name!r} is not a JSON UI config ({_short(exc)})") from None


def html_safe_json(value: object) -> str:
    """Compact JSON that can sit inside an inline <script> without ending or breaking it.

    ``<``, ``>`` and ``&`` only occur inside string literals, where their \\u escapes mean
    the same characters. Everything beyond ASCII is escaped too: U+2028/U+2029 are line
    breaks to older JavaScript parsers, and a lone surrogate (valid in JSON text) has no
    UTF-8 encoding.
    """
    out = json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _no_constant(word: str) -> None:
    raise ValueError(f"{word} is not JSON")


def _short(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
