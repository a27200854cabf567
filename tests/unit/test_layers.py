"""The layers of docs/architecture.md, enforced: an import against them fails here.

- ``core`` (settings, configuration, logging, Kafka and ClickHouse clients, topic admin,
  tenancy, shared errors) and ``schemas`` (the contracts) are the base: they import no
  component, no deployment and not the CLI;
- the components ``ingest``, ``streams``, ``sinks`` and ``query`` import the base only, never
  each other (what two of them share belongs in the base);
- ``deploy`` holds deployment only: it imports the base, and no component imports it;
- ``tracehouse`` (the CLI, status, demo and load generators) is the top and may import
  anything; ``bench`` may import anything but ``tests``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = {"core", "schemas"}
COMPONENTS = {"ingest", "streams", "sinks", "query"}
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "schemas": {"schemas", "core"},
    **{c: {c} | BASE for c in COMPONENTS},
    "deploy": {"deploy"} | BASE,
    "tracehouse": {"tracehouse", "deploy"} | BASE | COMPONENTS,
    "bench": {"bench", "tracehouse", "deploy"} | BASE | COMPONENTS,
}
OURS = set(ALLOWED) | {"tests"}


def imported_packages(path: Path) -> set[tuple[int, str]]:
    """(line, top-level package) of every absolute import of one of our packages."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in OURS:
                found.add((node.lineno, top))
    return found


def test_every_package_has_a_layer() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(ALLOWED), f"no layer for {sorted(packages - set(ALLOWED))}"


def test_imports_follow_the_layers() -> None:
    violations = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, top in sorted(imported_packages(path)):
                if top not in allowed:
                    rel = path.relative_to(ROOT)
                    violations.append(f"{rel}:{line} imports {top} (layer {package} may import "
                                      f"{', '.join(sorted(allowed))})")  # fmt: skip
    assert not violations, "\n".join(violations)
