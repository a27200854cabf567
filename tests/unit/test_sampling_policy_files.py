"""Every policy file the repository ships or documents still loads under the strict parser.

Strict parsing turns a silently ignored key into a start-up failure, so an example that drifted
from the option names would now stop a worker. This finds the examples instead of listing them:
YAML files under streams/, deploy/ and docs/ that hold ``policies``, the YAML policy blocks in
the Markdown docs (placeholders replaced), and the policy documents the benches and integration
tests run with.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.sampling_config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
DIRS = ("streams", "deploy", "docs")


def _yaml_files() -> list[Path]:
    """YAML files whose documents look like policy files (a mapping with ``policies``)."""
    found = []
    for d in DIRS:
        for path in sorted((ROOT / d).rglob("*.y*ml")):
            docs = list(yaml.safe_load_all(path.read_text()))
            if len(docs) == 1 and isinstance(docs[0], dict) and "policies" in docs[0]:
                found.append(path)
    return found


_FENCE = re.compile(r"```ya?ml\n(.*?)```", re.S)


def _markdown_blocks() -> list[tuple[str, str]]:
    """(where, YAML text) of fenced YAML blocks with a top-level ``policies:`` in the docs."""
    blocks = []
    for d in DIRS:
        for path in sorted((ROOT / d).rglob("*.md")):
            for i, m in enumerate(_FENCE.finditer(path.read_text())):
                if re.search(r"^policies:", m.group(1), re.M):
                    blocks.append((f"{path.relative_to(ROOT)}#{i}", m.group(1)))
    return blocks


def _fill_placeholders(text: str) -> str:
    """The docs write sub-policies as ``<policy>``/``<policy named X>``: make them real ones."""
    n = itertools.count()
    text = re.sub(r"<policy named ([\w.-]+)>", r"{name: \1, type: always_sample}", text)
    text = re.sub(r",\s*\.\.\.\]", "]", text)
    return re.sub(r"<policy>", lambda _: f"{{name: sub{next(n)}, type: always_sample}}", text)


# (file relative to the repository, attribute): policy documents code and tests run with.
PY_DOCS = [
    ("bench/streams.py", "TAIL_POLICY"),
    ("tests/integration/test_streams_sampling.py", "POLICY"),
    ("tests/integration/test_query_red.py", "DROP_MOST"),
]


def _attribute(rel: str, name: str) -> Any:
    if rel.startswith("tests/"):
        module = importlib.import_module(rel.removesuffix(".py").replace("/", "."))
    else:
        spec = importlib.util.spec_from_file_location(Path(rel).stem, ROOT / rel)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    value = getattr(module, name)
    return yaml.safe_load(value) if isinstance(value, str) else value


def test_shipped_yaml_policy_files_load() -> None:
    # None ship today (deploy/ sets no policy file: keep everything); any added must load.
    for path in _yaml_files():
        assert load_config(path).policies, path


@pytest.mark.parametrize(("where", "text"), _markdown_blocks(), ids=lambda x: x)
def test_documented_policy_blocks_load(where: str, text: str) -> None:
    cfg = parse_config(yaml.safe_load(_fill_placeholders(text)))
    assert cfg.policies, where


def test_the_readme_example_is_found() -> None:
    """Guards the two discoveries above against silently finding nothing."""
    assert any(w.startswith("streams/README.md") for w, _ in _markdown_blocks())


@pytest.mark.parametrize(("rel", "name"), PY_DOCS, ids=[f"{r}:{n}" for r, n in PY_DOCS])
def test_policy_documents_in_code_load(rel: str, name: str) -> None:
    assert parse_config(_attribute(rel, name)).policies
