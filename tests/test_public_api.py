"""The lean public API: verbs and core types at the top, everything else in its namespace."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

import twinrun


def test_the_top_level_is_small_and_every_name_resolves():
    assert len(twinrun.__all__) <= 30
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in twinrun.__all__:
            assert getattr(twinrun, name) is not None, name
        for namespace in twinrun.NAMESPACES:
            assert getattr(twinrun, namespace).__name__ == f"twinrun.{namespace}"
    assert twinrun.events.StepDone is twinrun.engine.StepDone and twinrun.events.Sink is twinrun.Sink


def test_a_name_that_moved_is_found_with_a_warning_naming_its_namespace():
    with pytest.warns(DeprecationWarning, match=r"twinrun.run_checks is twinrun.checks.run_checks now"):
        assert twinrun.run_checks is twinrun.checks.run_checks
    with pytest.warns(DeprecationWarning, match=r"twinrun.StepDone is twinrun.events.StepDone now"):
        assert twinrun.StepDone is twinrun.events.StepDone
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        twinrun.nope  # noqa: B018


def test_every_moved_name_is_in_its_namespace():
    for name, module in twinrun._MOVED.items():
        namespace = "events" if name in twinrun._EVENTS else module.removeprefix("twinrun.")
        assert hasattr(getattr(twinrun, namespace), name), (name, namespace)


@pytest.mark.slow
def test_importing_twinrun_imports_neither_torch_nor_a_namespace():
    code = "import sys, twinrun; print(sorted(m for m in sys.modules if m.startswith(('torch', 'twinrun.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_every_sink_twinrun_defines_is_in_the_sinks_namespace():
    """``twinrun.sinks`` is the one place to find a sink, wherever it is defined (found by reading the source)."""
    import ast
    from pathlib import Path

    import twinrun.sinks
    from twinrun.engine import Sink

    source = Path(twinrun.__file__).parent
    defined = {
        node.name
        for path in source.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) == "Sink" for b in node.bases)
    }
    assert {"RegistrySink", "CheckpointSink", "LedgerSink", "TensorBoardSink"} <= defined
    assert defined == set(twinrun.sinks.__all__)
    for name in defined:
        assert issubclass(getattr(twinrun.sinks, name), Sink)
