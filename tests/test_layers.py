"""The package's layers, read from the imports themselves: a module may import its own layer and
the ones below it, never above (README, "Layout"). Catches the cycles a restructuring reopens."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rmdaemon"

# Bottom to top. A name is a top-level module or package of rmdaemon.
LAYERS: list[set[str]] = [
    {"__init__", "errors", "clock", "logsetup", "names", "model", "atomic"},
    {"config"},
    {"roster"},
    {"planning", "itip", "compose", "phrases", "templatecheck", "template_vars", "replies", "authres"},
    {"store", "records", "secret"},
    {"backends"},
    {"programme"},
    {"report"},  # the digest job attaches it
    {"jobs"},
    {"daemon"},
    {"commands"},
    {"cli", "__main__"},
    {"demo"},  # plays the users: drives the CLI as a person would
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}
RUNS_JOBS = {"jobs", "daemon"}  # the jobs are run by the daemon's loop; nobody else reaches into them


def unit(module: Path) -> str:
    """The top-level room a file belongs to: ``backends`` for backends/exchange.py."""
    rel = module.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, room) of every rmdaemon import, at any depth (lazy imports inside functions count)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and (node.module == "rmdaemon" or node.module.startswith("rmdaemon.")):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.append((node.lineno, parts[1]))
            else:  # from rmdaemon import compose, __version__
                found += [(node.lineno, a.name if a.name in LEVEL else "__init__") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("rmdaemon.")]
    return found


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = unit(path)
        assert here in LEVEL, f"{path.relative_to(PACKAGE)}: add '{here}' to a layer in LAYERS and to the README's layout"
        for line, target in imported(ast.parse(path.read_text(), str(path))):
            where = f"rmdaemon/{path.relative_to(PACKAGE)}:{line}"
            assert target in LEVEL, f"{where}: imports unknown room {target!r}"
            if LEVEL[target] > LEVEL[here]:
                found.append(f"{where}: {here} imports {target}, which sits above it")
            if target == "jobs" and here not in RUNS_JOBS:
                found.append(f"{where}: {here} imports jobs; only the daemon runs jobs")
    return found


def test_imports_point_down_the_layers_and_only_the_daemon_imports_jobs():
    assert violations() == []


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: a planted upward import is reported."""
    fake = tmp_path / "rmdaemon"
    (fake / "programme").mkdir(parents=True)
    (fake / "store.py").write_text("def f():\n    from rmdaemon.jobs import agendas\n")
    (fake / "programme" / "x.py").write_text("from rmdaemon import cli\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = violations()
    assert any("store.py:2: store imports jobs, which sits above it" in f for f in found)
    assert any("only the daemon runs jobs" in f for f in found)
    assert any("programme/x.py:1: programme imports cli" in f for f in found)
