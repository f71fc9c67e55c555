"""The import graph of twinrun's subpackages: print it, and fail on a new cycle or a new private import.

    python tools/import_graph.py            # the graph, then the violations; exit 1 on any not in the baseline
    python tools/import_graph.py --write-baseline   # accept today's violations (the debt the architecture
                                                    # issue pays down), so that CI fails only on new ones

A node is a subpackage ``twinrun.<name>`` or a top-level module (``twinrun._home``, ``twinrun.errors``);
``twinrun/__init__.py``, which re-exports everything lazily, is left out. An import is private when it names a module starting with ``_`` inside *another*
subpackage (``from twinrun.engine._outputs import prediction`` in ``twinrun.checks``). Imports inside
functions count too (they are still dependencies), ``if TYPE_CHECKING`` ones do not. Cycles are cycles of the
subpackage graph.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "twinrun"
BASELINE = Path(__file__).with_name("import_graph_baseline.json")


def package_of(module: str) -> str | None:
    """The node of ``module``: its subpackage, or the top-level module itself (``_home``, ``errors``)."""
    parts = module.split(".")
    if parts[0] != "twinrun" or len(parts) < 2:
        return None
    return parts[1]


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append(child.module)
                found.extend(f"{child.module}.{a.name}" for a in child.names
                             if a.name.startswith("_") and not a.name.endswith("__"))
            elif isinstance(child, ast.Import):
                found.extend(a.name for a in child.names)
            visit(child)

    visit(tree)
    return found


def analyse() -> tuple[dict[str, set[str]], list[str], list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    private: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        if module == "twinrun" or module == "twinrun.__main__":
            continue  # the top level re-exports every package
        own = package_of(module)
        for target in imports_of(path):
            other = package_of(target)
            if other is None or own is None or other == own:
                continue
            graph[own].add(other)
            parts = target.split(".")
            if len(parts) > 2 and any(p.startswith("_") and not p.endswith("__") for p in parts[2:]):
                private.add(f"{module} -> {target}")
    cycles = sorted(_cycles(graph))
    return graph, cycles, sorted(private)


def _cycles(graph: dict[str, set[str]]) -> set[str]:
    """Every elementary cycle, as 'a -> b -> a' starting at its smallest name (small graph: plain DFS)."""
    found: set[str] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt == start:
                found.add(" -> ".join([*path, start]))
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-baseline", action="store_true")
    args = parser.parse_args()
    graph, cycles, private = analyse()
    print("subpackage imports:")
    for package in sorted(graph):
        print(f"  {package:<12} -> {', '.join(sorted(graph[package]))}")
    if args.write_baseline:
        BASELINE.write_text(json.dumps({"cycles": cycles, "private": private}, indent=2) + "\n")
        print(f"baseline written: {len(cycles)} cycle(s), {len(private)} private import(s)")
        return 0
    known = json.loads(BASELINE.read_text()) if BASELINE.exists() else {"cycles": [], "private": []}
    new_cycles = [c for c in cycles if c not in known["cycles"]]
    new_private = [p for p in private if p not in known["private"]]
    paid = [p for p in known["private"] if p not in private] + [c for c in known["cycles"] if c not in cycles]
    print(f"cycles: {len(cycles)} ({len(new_cycles)} new); private imports across packages: {len(private)} "
          f"({len(new_private)} new); paid off since the baseline: {len(paid)}")
    for line in new_cycles + new_private:
        print(f"  NEW: {line}")
    if new_cycles or new_private:
        print("fix: import the other package's public name (its __init__), or make it public there; "
              "a cycle: move the shared piece down into a package both may import", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
