"""The examples in the statistics docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["_bootstrap", "_ensemble", "_improvement", "_paired", "_power", "_summary", "_intervals"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"twinrun.stats.{module}"))
    assert result.attempted > 0 and result.failed == 0
