"""The checks behind query.ui_dir / query.ui_config, and the HTML-safe JSON they inject.

Every bad input is a ValueError / ConfigError naming the path and the problem, never another
exception: the settings load in every process, and a crash there would take all of them down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.jaeger_ui_files import (
    MAX_UI_CONFIG_BYTES,
    html_safe_json,
    load_ui_config,
    parse_ui_config,
    ui_config_problem,
    ui_dir_problem,
)
from core.settings import ConfigError, Settings
from deploy.local.stack import absolute_paths

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _build(tmp_path: Path) -> Path:
    build = tmp_path / "build"
    build.mkdir()
    (build / "index.html").write_text("<html></html>")
    return build


def test_ui_dir_accepts_a_directory_with_index_html(tmp_path: Path) -> None:
    assert ui_dir_problem("") is None
    assert ui_dir_problem(str(_build(tmp_path))) is None


@pytest.mark.parametrize(
    ("layout", "words"),
    [
        ("missing", "is not a directory"),
        ("file", "is not a directory"),
        ("empty", "has no index.html"),
        ("index_is_dir", "has no index.html"),
        ("huge", "more than"),
    ],
)
def test_ui_dir_problems_are_named(tmp_path: Path, layout: str, words: str) -> None:
    target = tmp_path / "ui"
    if layout == "file":
        target.write_text("x")
    elif layout != "missing":
        target.mkdir()
    if layout == "index_is_dir":
        (target / "index.html").mkdir()
    if layout == "huge":
        with (target / "index.html").open("wb") as f:
            f.truncate(5 * 1024 * 1024)
    problem = ui_dir_problem(str(target))
    assert problem is not None and words in problem and str(target) in problem


def test_json_config_is_compacted_and_html_safe(tmp_path: Path) -> None:
    path = tmp_path / "ui.json"
    path.write_text('{\n  "menu": [{"label": "</script><b>", "url": "a&b"}],\n  "x": 1\n}\n')
    config = load_ui_config(str(path))
    assert config.kind == "json"
    assert config.text == (
        '{"menu":[{"label":"\\u003c/script\\u003e\\u003cb\\u003e","url":"a\\u0026b"}],"x":1}'
    )
    assert json.loads(config.text) == json.loads(path.read_text())


def test_js_config_is_trimmed_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "ui.JS"
    path.write_text("\n\nfunction UIConfig() { return {a: 1}; }\n\n")
    config = load_ui_config(str(path))
    assert (config.kind, config.text) == ("js", "function UIConfig() { return {a: 1}; }")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("ui.yaml", b"{}", "must end in .json or .js"),
        ("ui", b"{}", "must end in .json or .js"),
        ("ui.json", b"[1, 2]", "must hold an object, not an array"),
        ("ui.json", b"null", "not null"),
        ("ui.json", b'"text"', "not a string"),
        ("ui.json", b"3", "not a number"),
        ("ui.json", b"true", "not a boolean"),
        ("ui.json", b"", "not a JSON UI config"),
        ("ui.json", b'{"a": 1', "not a JSON UI config"),
        ("ui.json", b'{"a": NaN}', "NaN is not JSON"),
        ("ui.json", b'{"a": Infinity}', "Infinity is not JSON"),
        ("ui.json", b'{"a": 1e400}', "Out of range float"),
        ("ui.json", b"[" * 100_000 + b"]" * 100_000, "not a JSON UI config"),
        ("ui.json", b'{"a": "\xff"}', "is not UTF-8"),
        ("ui.json", b'{"a": "' + b"x" * MAX_UI_CONFIG_BYTES + b'"}', "is larger than"),
        ("ui.js", b"var config = {};", "must define function UIConfig()"),
        ("ui.js", b"function UIConfig() { return '</SCRIPT>'; }", "would end the page's script"),
    ],
)
def test_bad_config_files_are_named(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_ui_config(str(path))
    assert words in str(info.value) and str(path) in str(info.value)
    assert ui_config_problem(str(path)) == str(info.value)


def test_missing_and_directory_config_files(tmp_path: Path) -> None:
    assert "cannot read" in (ui_config_problem(str(tmp_path / "none.json")) or "")
    (tmp_path / "dir.json").mkdir()
    assert "cannot read" in (ui_config_problem(str(tmp_path / "dir.json")) or "")
    assert ui_config_problem("") is None


@given(JSON_VALUES)
@settings(max_examples=300)
def test_html_safe_json_round_trips_and_cannot_break_out(value: Any) -> None:
    out = html_safe_json(value)
    assert json.loads(out) == value
    assert not any(c in out for c in "<>&")
    assert out.isascii()  # U+2028/2029 and lone surrogates arrive escaped


@given(st.text(max_size=300), st.sampled_from([".json", ".js"]))
@settings(max_examples=300)
def test_any_text_is_a_config_or_a_value_error(text: str, suffix: str) -> None:
    try:
        config = parse_ui_config("f" + suffix, suffix, text)
    except ValueError:
        return
    if config.kind == "json":
        assert isinstance(json.loads(config.text), dict)
    else:
        assert "UIConfig" in config.text and "</script" not in config.text.lower()


def test_settings_check_both_paths_and_their_pairing(tmp_path: Path) -> None:
    build = _build(tmp_path)
    config = tmp_path / "ui.json"
    config.write_text('{"dependencies": {"menuEnabled": true}}')
    ok = Settings.from_env(
        {"TRACEHOUSE_QUERY_UI_DIR": str(build), "TRACEHOUSE_QUERY_UI_CONFIG": str(config)}
    )
    assert (ok.query_ui_dir, ok.query_ui_config) == (str(build), str(config))
    with pytest.raises(ConfigError, match=r"TRACEHOUSE_QUERY_UI_DIR.*has no index\.html"):
        Settings.from_env({"TRACEHOUSE_QUERY_UI_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"TRACEHOUSE_QUERY_UI_CONFIG.*must hold an object"):
        config.write_text("[]")
        Settings.from_env(
            {"TRACEHOUSE_QUERY_UI_DIR": str(build), "TRACEHOUSE_QUERY_UI_CONFIG": str(config)}
        )
    config.write_text("{}")
    with pytest.raises(ConfigError, match=r"query\.ui_config.*is set but.*query\.ui_dir"):
        Settings.from_env({"TRACEHOUSE_QUERY_UI_CONFIG": str(config)})


def test_settings_from_yaml(tmp_path: Path) -> None:
    build = _build(tmp_path)
    file = tmp_path / "tracehouse.yaml"
    file.write_text(f"query:\n  ui_dir: {json.dumps(str(build))}\n")
    assert Settings.from_file(file).query_ui_dir == str(build)
    file.write_text(f"query:\n  ui_dir: {json.dumps(str(tmp_path / 'nope'))}\n")
    with pytest.raises(ConfigError, match=r"query\.ui_dir.*is not a directory"):
        Settings.from_file(file)


def test_up_hands_children_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`up` starts its children in the project root: a relative path would name another file."""
    _build(tmp_path)
    (tmp_path / "ui.js").write_text("function UIConfig(){return {}}")
    monkeypatch.chdir(tmp_path)
    relative = Settings.from_env(
        {"TRACEHOUSE_QUERY_UI_DIR": "build", "TRACEHOUSE_QUERY_UI_CONFIG": "./ui.js"}
    )
    fixed = absolute_paths(relative)
    assert fixed.query_ui_dir == str(tmp_path.resolve() / "build")
    assert fixed.query_ui_config == str(tmp_path.resolve() / "ui.js")
    assert fixed.sampling_policy_file == "" and fixed.ingest_auth_file == ""
    assert absolute_paths(fixed) == fixed
