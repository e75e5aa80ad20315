"""The import graph of the project's own modules goes one way (docs/DESIGN.md, "Layers").

Every import is counted, also those inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("iab", "generation", "harness", "methods", "leaderboard")
# Folders that are installed under another name (pyproject's package-dir).
RENAMED = {"dataset_card": "iab.dataset_card", "prompts": "iab.prompt_set"}
CORE = "imageattributionbench"


def _modules() -> dict[str, Path]:
    found = {CORE: ROOT / f"{CORE}.py"}
    for folder in PACKAGES + tuple(RENAMED):
        base = RENAMED.get(folder, folder)
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((base,) + parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


def test_the_definition_imports_no_project_module():
    assert GRAPH[CORE] == set()


def test_no_import_cycles():
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in GRAPH[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(m for m in GRAPH if m in reach(m))
    assert cycles == [], f"modules on an import cycle: {cycles}"


def test_nothing_imports_the_command_and_harness_and_generation_stay_apart():
    for name, deps in GRAPH.items():
        assert "iab.cli" not in deps, f"{name} imports the iab command (use iab.scripts)"
        top = name.split(".")[0]
        if top == "harness":
            assert not any(d.startswith("generation") for d in deps), name
        if top == "generation":
            assert not any(d.startswith(("harness", "leaderboard")) for d in deps), name
        if top in ("iab", "methods") and name != "iab.cli":
            assert not any(d.split(".")[0] in ("generation", "harness", "leaderboard")
                           for d in deps), f"{name} imports a layer above it: {sorted(deps)}"


def test_the_graph_is_read_correctly():
    """The checks above mean something only if imports are found: a few known edges."""
    assert "iab.scripts" in GRAPH["harness.run"]
    assert "iab.build" in GRAPH["iab.cli"]
    assert "harness.results" in GRAPH["leaderboard.data"]
