"""The reproducibility side of a run in its folder: environment, ledger, checkpoints, resume.

``compare()`` hands a run's folder and resolved experiment to a
:class:`RunRecorder`, puts :attr:`RunRecorder.sinks` first among the engine's
sinks, lets it :meth:`~RunRecorder.attach` to the engine (which loads a
checkpoint when resuming) and :meth:`~RunRecorder.finish` the result. Files:

* ``<run>/ledger.jsonl``: the ledger (``ledger_every`` setting; ``None``: none);
* ``<run>/checkpoints/step-NNNNNNNN.ckpt``: every ``checkpoint_every`` steps, the last few kept,
  and the step an interrupted run stopped at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twinrun.checkpoint import CHECKPOINT_DIR, CheckpointSink, ResumePlan
from twinrun.engine import Sink, TwinEngine, TwinResult
from twinrun.env import capture_environment
from twinrun.ledger import LEDGER_FILE, Ledger, LedgerSink, ledger_config_hash
from twinrun.proof._cost import measure_determinism_cost
from twinrun.proof._factors import bitexact_factors
from twinrun.spec import ResolvedExperiment, jsonable

__all__ = ["RunRecorder", "run_request"]


def run_request(resolved: ResolvedExperiment) -> dict[str, Any]:
    """How a run was asked for: what resuming needs to resolve the same experiment again."""
    return {
        "experiment_path": resolved.source.path if resolved.source is not None else None,
        "overrides": {k: jsonable(v) for k, v in resolved.overrides.items()},
        "candidates": list(resolved.candidates),
        "reference": resolved.reference,
    }


class RunRecorder:
    """Environment, ledger and checkpoints of one run (see the module docstring).

    Args:
        run_dir: the run's folder.
        resolved: what the run trains.
        resume: a checked :class:`~twinrun.checkpoint.ResumePlan` to continue from.
        keep_checkpoints: how many checkpoints to keep.
        environment: ``capture_environment()`` of this process (captured if ``None``).
        determinism_cost: measure the cost of deterministic mode on the run's own
            candidates before training (see ``_cost``); reported with the run.
    """

    def __init__(
        self,
        run_dir: str | Path,
        resolved: ResolvedExperiment,
        *,
        resume: ResumePlan | None = None,
        keep_checkpoints: int = 2,
        environment: Mapping[str, Any] | None = None,
        determinism_cost: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.determinism_cost = determinism_cost
        self.cost: dict[str, Any] | None = None
        self.resolved = resolved
        self.resume = resume
        settings = resolved.settings
        code = resolved.source.path if resolved.source is not None else None
        self.environment = dict(environment) if environment is not None else capture_environment(code_path=code)
        self.factors = bitexact_factors(self.environment, device=settings.device, deterministic=settings.deterministic)
        self.engine: TwinEngine | None = None
        self.notes: list[str] = []
        self.ledger_sink: LedgerSink | None = None
        if settings.ledger_every is not None:
            previous = self._resumed_ledger()
            if resume is None or previous is not None:
                self.ledger_sink = LedgerSink(
                    self.run_dir / LEDGER_FILE, every=settings.ledger_every, ledger=previous, factors=self.factors
                )
            else:
                self.notes.append("no ledger: the checkpoint resumed from holds none")
        # always there: without a cadence it writes only the final checkpoint of an interrupted run
        self.checkpoint_sink = CheckpointSink(
            self.run_dir / CHECKPOINT_DIR,
            every=settings.checkpoint_every,
            keep=keep_checkpoints,
            snapshot=self.snapshot,
        )

    def _resumed_ledger(self) -> Ledger | None:
        if self.resume is None:
            return None
        text = self.resume.checkpoint.payload.get("ledger")
        if not text:
            return None
        ledger = Ledger.from_lines(text.splitlines(), source="the checkpoint's ledger")
        self._extended(ledger)
        return ledger

    def _extended(self, ledger: Ledger) -> None:
        """A finished run continued for more steps (``--extend``) is now the longer plan: its ledger says
        so, and loses the weights recorded only because the run ended there (off the cadence)."""
        old, new = ledger.header.get("steps"), self.resolved.settings.steps
        if not isinstance(old, int) or old == new:
            return
        config = self.resolved.to_config()
        config["settings"]["steps"] = old
        if "steps" in config.get("overrides", {}):
            config["overrides"]["steps"] = old
        if ledger_config_hash(config) != ledger.config_hash:
            return  # more than the length changed (a forced resume): the header keeps the original plan
        every = ledger.header.get("ledger_every") or 1
        if old % every:
            ledger.records = [r for r in ledger.records if not (r.step == old and r.kind in ("weights", "rng"))]
        ledger.header.update(steps=new, config_hash=ledger_config_hash(self.resolved.to_config()), extended_from=old)

    @property
    def sinks(self) -> list[Sink]:
        """Ledger first, then checkpoints (a checkpoint holds the ledger up to its step)."""
        return [s for s in (self.ledger_sink, self.checkpoint_sink) if s is not None]

    def attach(self, engine: TwinEngine) -> None:
        """Bind to the engine; when resuming, load the checkpoint's state into it."""
        self.engine = engine
        if self.resume is not None:
            engine.load_state_dict(self.resume.checkpoint.payload["engine"])
        if self.determinism_cost:
            self.cost = measure_determinism_cost(engine)

    def last_step(self) -> int | None:
        """The last step the attached engine completed."""
        return None if self.engine is None else self.engine.step

    def snapshot(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The checkpoint payload and header for the engine's current step."""
        if self.engine is None:
            raise RuntimeError("RunRecorder.snapshot() before attach()")
        ledger = self.ledger_sink.ledger if self.ledger_sink is not None else None
        payload = {
            "engine": self.engine.state_dict(),
            "ledger": "\n".join(ledger.to_lines()) if ledger is not None else None,
            "config_json": json.dumps(self.resolved.to_config(), sort_keys=True),
            "request_json": json.dumps(run_request(self.resolved), sort_keys=True),
            "environment_json": json.dumps(self.environment, sort_keys=True, default=str),
        }
        header = {
            "experiment": self.resolved.name,
            "run_id": self.engine.run_id,
            "config_hash": self.resolved.config_hash(),
            "ledger_config_hash": ledger_config_hash(self.resolved.to_config()),
        }
        return payload, header

    def finish(self, result: TwinResult) -> None:
        """Record where the ledger and checkpoints are and what can break bit-exactness."""
        info: dict[str, Any] = {"factors": self.factors}
        if self.ledger_sink is not None and self.ledger_sink.path is not None:
            result.artifacts["ledger"] = str(self.ledger_sink.path)
            info["ledger_every"] = self.ledger_sink.every
            info["ledger_records"] = len(self.ledger_sink.ledger or [])
        if self.checkpoint_sink.every is not None or self.checkpoint_sink.written:
            result.artifacts["checkpoints"] = str(self.checkpoint_sink.folder)
        if self.resume is not None:
            info["resumed_from"] = {
                "checkpoint": str(self.resume.checkpoint.path),
                "step": self.resume.step,
                "forced": list(self.resume.forced),
            }
        if self.cost is not None:
            info["determinism_cost"] = self.cost
        if self.notes:
            info["notes"] = list(self.notes)
        result.reproducibility.update(info)
