"""What sweeps need from the registry: ids by prefix, listing, configs and analyses kept apart."""

from __future__ import annotations

import pytest

from twinrun.errors import RegistryError
from twinrun.registry import Registry, UnknownRunError


def test_sweeps_are_listed_found_by_prefix_and_keep_their_analysis(tmp_path):
    with Registry.open(tmp_path / "registry.sqlite") as reg:
        a = reg.create_sweep("toy", experiment="toy", config={"seeds": [0, 1]}, sweep_id="ab12" + "0" * 28)
        b = reg.create_sweep("toy", experiment="toy", config={"seeds": [5]}, sweep_id="ab34" + "0" * 28)
        c = reg.create_sweep("digits", experiment="digits", config={}, sweep_id="cd56" + "0" * 28)
        run = reg.create_run(name="toy", config={}, candidates=["x"], seed=0, sweep_id=a)
        assert reg.resolve_sweep("ab1") == a and reg.resolve_sweep(c.upper()) == c
        with pytest.raises(UnknownRunError, match="ambiguous"):
            reg.resolve_sweep("ab")
        with pytest.raises(UnknownRunError, match="no sweep 'ff'"):
            reg.resolve_sweep("ff")
        assert [s.id for s in reg.list_sweeps()] == [c, b, a]  # newest first
        assert [s.id for s in reg.list_sweeps(experiment="toy")] == [b, a]
        assert reg.list_sweeps(experiment="toy")[1].runs == (run,)

        reg.update_sweep(a, status="partial", analysis={"k": 2, "recommendation": "cnn"})
        reg.update_sweep(a, config={"seeds": [0, 1, 2]})  # a new config keeps the analysis
        sweep = reg.get_sweep("ab1")
        assert sweep.status == "partial" and sweep.config == {"seeds": [0, 1, 2]}
        assert sweep.analysis == {"k": 2, "recommendation": "cnn"}
        assert "analysis" not in reg.list_sweeps(experiment="toy")[1].config
        reg.update_sweep(a, analysis={"k": 3})  # replaced, not merged
        assert reg.get_sweep(a).analysis == {"k": 3} and reg.get_sweep(b).analysis is None

        with pytest.raises(RegistryError, match="cannot hold the key 'analysis'"):
            reg.update_sweep(a, config={"analysis": 1})
        with pytest.raises(RegistryError, match="cannot hold the key 'analysis'"):
            reg.create_sweep("toy", config={"analysis": 1})
        with pytest.raises(UnknownRunError):
            reg.update_sweep("f" * 32, status="finished")
        with pytest.raises(RegistryError, match="not valid JSON"):
            reg.update_sweep(a, analysis={"x": float("nan")})  # JSON has no NaN
