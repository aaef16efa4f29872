"""Imports point down only and form no cycle: the Dagster layer over Dagster-free domain packages.

Read from the source (every import statement, `if TYPE_CHECKING:` blocks and function-local imports
included), so the test sees every import a reader sees, not only the ones a particular run executes.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "jutsu_pipeline"
# Lower layers first; a module may import its own layer's peers only where listed in PEERS, and any lower layer.
LAYERS: list[set[str]] = [
    {"timeframes", "faultpoints", "storage", "scripts", "lazy"},
    {"calendars", "providers", "indicators", "backtest", "actions", "configfile"},
    {"config"},
    {"partitions"},
    {"quality", "sync", "report", "derive"},
    {"instance", "instance_storage", "status", "resources", "assets", "downstream", "schedules", "sensors",
     "definitions", "adopt", "cli", "console"},
]
# The Dagster layer: Dagster definitions, instance access, the CLI over them.
DAGSTER_LAYER = LAYERS[-1]
# The domain packages, usable without Dagster (a notebook, a test, another orchestrator).
DAGSTER_FREE = {"lazy", "timeframes", "storage", "calendars", "providers", "indicators", "backtest", "config", "configfile",
                "partitions", "quality", "report", "sync", "derive", "actions"}
PEERS = {("sync", "quality"), ("report", "quality"), ("cli", "console"), ("definitions", "console"),
         ("assets", "resources"), ("assets", "instance"), ("sensors", "instance"),
         ("definitions", "assets"), ("definitions", "resources"), ("definitions", "schedules"),
         ("definitions", "sensors"), ("cli", "instance"), ("cli", "definitions"), ("cli", "assets"),
         ("cli", "sensors"), ("schedules", "assets"), ("sensors", "assets"), ("resources", "instance"),
         ("derive", "quality"), ("backtest", "indicators"), ("providers", "actions"),
         ("status", "instance"), ("sensors", "status"), ("schedules", "status"), ("cli", "status"),
         ("cli", "downstream"), ("cli", "adopt"), ("adopt", "assets"), ("adopt", "status"),
         ("cli", "resources"), ("console", "instance"), ("status", "assets")}


def _unit(path: Path) -> str:
    """The top-level unit of a module: `quality` for quality/stored.py, `config` for config.py."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "jutsu_pipeline":
                found.update(f"jutsu_pipeline.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@cache
def _graph() -> dict[str, set[str]]:
    """unit -> units it imports (jutsu_pipeline.* and 'dagster')."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        unit = _unit(path)
        if unit in ("__init__", "__main__"):
            continue
        targets = graph.setdefault(unit, set())
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "dagster" or parts[0].startswith("dagster_"):
                targets.add("dagster")
            elif parts[0] == "jutsu_pipeline" and len(parts) > 1 and parts[1] != unit:
                targets.add(parts[1])
    return graph


def _layer(unit: str) -> int:
    for level, units in enumerate(LAYERS):
        if unit in units:
            return level
    raise AssertionError(f"jutsu_pipeline/{unit} is in no layer: add it to LAYERS in {__file__}")


@pytest.mark.parametrize("unit", sorted(_graph()))
def test_imports_point_down(unit: str) -> None:
    level = _layer(unit)
    upward = sorted(t for t in _graph()[unit] - {"dagster"}
                    if _layer(t) > level or (_layer(t) == level and (unit, t) not in PEERS))
    assert not upward, f"jutsu_pipeline/{unit} imports {upward} from its own or a higher layer"


def _reached(unit: str) -> set[str]:
    """Every unit `unit` imports directly or through others (`dagster` included)."""
    seen: set[str] = set()
    todo = [unit]
    while todo:
        for target in _graph().get(todo.pop(), set()) - seen:
            seen.add(target)
            todo.append(target)
    return seen


@pytest.mark.parametrize("unit", sorted(DAGSTER_FREE))
def test_domain_packages_do_not_import_dagster(unit: str) -> None:
    """Neither Dagster nor the Dagster layer, directly or through another package."""
    assert "dagster" not in _graph().get(unit, set()), f"jutsu_pipeline/{unit} imports Dagster"
    layer = sorted(_reached(unit) & DAGSTER_LAYER)
    assert not layer, f"jutsu_pipeline/{unit} imports the Dagster layer {layer}"
    assert "dagster" not in _reached(unit), f"jutsu_pipeline/{unit} imports a package that imports Dagster"


def test_the_import_graph_sees_dagster_and_function_local_imports() -> None:
    """The checks above can fail: the graph finds Dagster where it is imported, also inside functions."""
    graph = _graph()
    assert "dagster" in graph["assets"] and "dagster" in _reached("cli")
    assert "dagster" in graph["console"]  # console.py imports dagster only inside functions
    assert {"assets", "definitions"} <= graph["cli"]


def test_no_import_cycle_between_packages() -> None:
    graph = _graph()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(unit: str) -> None:
        if unit in visiting:
            raise AssertionError("import cycle: " + " -> ".join([*visiting[visiting.index(unit):], unit]))
        if unit in done:
            return
        visiting.append(unit)
        for target in sorted(graph.get(unit, set()) - {"dagster"}):
            visit(target)
        visiting.pop()
        done.add(unit)

    for unit in sorted(graph):
        visit(unit)
