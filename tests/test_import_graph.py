"""tools/import_graph.py: the subpackage graph, its cycles and private imports, against a baseline."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "import_graph.py"


def _tool():
    spec = importlib.util.spec_from_file_location("import_graph", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cycles_are_found_once_each():
    tool = _tool()
    graph = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}}
    assert tool._cycles(graph) == {"a -> b -> a", "a -> b -> c -> a"}


def test_private_imports_and_type_checking_blocks(tmp_path):
    tool = _tool()
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nfrom twinrun.engine._outputs import prediction\n"
                    "if TYPE_CHECKING:\n    from twinrun.spec._metrics import Metric\n"
                    "def f():\n    from twinrun.stats import _special\n")
    found = tool.imports_of(path)
    assert "twinrun.engine._outputs" in found and "twinrun.stats._special" in found
    assert not any("spec._metrics" in m for m in found)  # only for the type checker


def test_the_repository_has_no_new_cycle_or_private_import():
    out = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
