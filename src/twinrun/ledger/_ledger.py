"""The ledger: control sums of everything a run's trajectory depends on, in the order they occur.

One record is ``(step, candidate, kind, name, hash, value)``:

===========  =========================================================  ==================
kind         what was hashed                                            when
===========  =========================================================  ==================
``init``     each tensor of each model's ``state_dict`` (name: its key)  step 0
``rng``      ``global``: the global generators' states; ``init``,       step 0 and every
             ``augment``, ``dropout``: the stream seeds of that step     ``ledger_every``
``batch``    ``inputs`` and ``targets`` after augmentation               every step
``loss``     the training loss (``value`` holds it)                      every step
``weights``  each tensor of each model's ``state_dict``                  every ``ledger_every``
                                                                         steps and the last
===========  =========================================================  ==================

A ledger file (``ledger.jsonl`` in the run folder) is JSON lines: a header
object (experiment, configuration hash, seed, cadence, and the factors that can
break bit-exactness even in deterministic mode), then one JSON array per record.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from twinrun._atomic import atomic_write
from twinrun.errors import LedgerError
from twinrun.spec import EXECUTION_SETTINGS

__all__ = ["KINDS", "LEDGER_FILE", "Ledger", "Record", "find_ledger", "ledger_config_hash"]

#: Record kinds, in the order they occur within one step.
KINDS = ("init", "rng", "batch", "loss", "weights")
LEDGER_FILE = "ledger.jsonl"
_FORMAT = "twinrun-ledger"
_VERSION = 1


def ledger_config_hash(config: Mapping[str, Any]) -> str:
    """The hash of a resolved config without its seed and execution settings.

    Two runs whose ledgers can be compared have equal hashes: the same experiment,
    candidates, factories and settings, whatever their seed (a seed is a sample,
    which ``twinrun repro --vary seed`` varies on purpose), cadence or deterministic
    mode (see ``EXECUTION_SETTINGS``).
    """
    trimmed = copy.deepcopy(dict(config))
    settings = dict(trimmed.get("settings", {}))
    ignored = ("seed", *EXECUTION_SETTINGS)
    for name in ignored:
        settings.pop(name, None)
    trimmed["settings"] = settings
    trimmed["overrides"] = {k: v for k, v in dict(trimmed.get("overrides", {})).items() if k not in ignored}
    return hashlib.sha256(json.dumps(trimmed, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Record(NamedTuple):
    """One control sum: what (``kind``, ``name``) of which candidate at which step."""

    step: int
    candidate: str
    kind: str
    name: str
    hash: str
    value: float | int | None = None

    @property
    def key(self) -> tuple[int, str, str, str]:
        return (self.step, self.candidate, self.kind, self.name)

    def to_json(self) -> list[Any]:
        value: Any = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)  # "nan", "inf": JSON has no such numbers
        return [self.step, self.candidate, self.kind, self.name, self.hash, value]

    @classmethod
    def from_json(cls, row: Any) -> Record:
        if not isinstance(row, list) or len(row) != 6:
            raise ValueError("a record is [step, candidate, kind, name, hash, value]")
        step, candidate, kind, name, digest, value = row
        if not isinstance(step, int) or kind not in KINDS or not isinstance(digest, str):
            raise ValueError(f"not a record: {row!r}")
        if isinstance(value, str):
            value = float(value)
        return cls(step, str(candidate), kind, str(name), digest, value)


class Ledger:
    """Records of one run plus a header describing the run they belong to.

    Args:
        header: ``experiment``, ``config_hash`` (see :func:`ledger_config_hash`),
            ``seed``, ``steps``, ``ledger_every``, ``factors`` ... (JSON-ready).
        records: the records so far.
    """

    def __init__(self, header: Mapping[str, Any], records: Iterable[Record] = ()) -> None:
        self.header: dict[str, Any] = dict(header)
        self.records: list[Record] = list(records)

    # ------------------------------------------------------------- building
    def add(self, step: int, candidate: str, kind: str, name: str, digest: str, value: float | None = None) -> None:
        self.records.append(Record(step, candidate, kind, name, digest, value))

    def truncate(self, step: int) -> None:
        """Drop every record after ``step`` (a resumed run re-records them)."""
        self.records = [r for r in self.records if r.step <= step]

    # ------------------------------------------------------------- reading
    @property
    def config_hash(self) -> str:
        return str(self.header.get("config_hash", ""))

    @property
    def experiment(self) -> str:
        return str(self.header.get("experiment", ""))

    @property
    def last_step(self) -> int:
        return max((r.step for r in self.records), default=0)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def at(self, step: int) -> list[Record]:
        return [r for r in self.records if r.step == step]

    def summary(self) -> dict[str, Any]:
        kinds = {k: sum(1 for r in self.records if r.kind == k) for k in KINDS}
        return {
            "experiment": self.experiment,
            "config_hash": self.config_hash,
            "records": len(self.records),
            "last_step": self.last_step,
            "by_kind": kinds,
            "candidates": sorted({r.candidate for r in self.records}),
            "header": self.header,
        }

    # ------------------------------------------------------------- files
    def to_lines(self) -> Iterator[str]:
        yield json.dumps({"format": _FORMAT, "version": _VERSION, **self.header}, sort_keys=True, default=str)
        for record in self.records:
            yield json.dumps(record.to_json(), separators=(",", ":"))

    def save(self, path: str | Path) -> Path:
        """Write the ledger atomically (a temporary file in the same folder, then a rename)."""
        path = Path(path)
        atomic_write(path, ("\n".join(self.to_lines()) + "\n").encode())
        return path

    @classmethod
    def from_lines(cls, lines: Iterable[str], *, source: str = "ledger") -> Ledger:
        iterator = iter(lines)
        first = next(iterator, "")
        try:
            header = json.loads(first)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise LedgerError(
                f"{source} is not a twinrun ledger (its first line is not a ledger header)",
                fix="pass the ledger.jsonl of a run folder, or the run folder itself",
            )
        if header.get("version") != _VERSION:
            raise LedgerError(
                f"{source} is a ledger of format version {header.get('version')!r}; this twinrun "
                f"reads version {_VERSION}",
                fix="read it with the twinrun version that wrote it",
            )
        header.pop("format")
        header.pop("version")
        records = []
        for number, line in enumerate(iterator, start=2):
            if not line.strip():
                continue
            try:
                records.append(Record.from_json(json.loads(line)))
            except (json.JSONDecodeError, ValueError) as exc:
                raise LedgerError(
                    f"{source}, line {number}, is corrupt ({exc}); the file is truncated or was edited",
                    fix="re-create it by running the experiment again (twinrun repro FILE runs it twice)",
                ) from exc
        return cls(header, records)

    @classmethod
    def load(cls, path: str | Path) -> Ledger:
        """Read a ledger file, or the ledger of a run folder."""
        file = find_ledger(path)
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise LedgerError(f"cannot read ledger {str(file)!r}: {exc}") from exc
        return cls.from_lines(text.splitlines(), source=f"ledger {str(file)!r}")

    def __repr__(self) -> str:
        return f"Ledger(experiment={self.experiment!r}, records={len(self.records)}, last_step={self.last_step})"


def find_ledger(path: str | Path) -> Path:
    """``path`` if it is a file, else ``path/ledger.jsonl``; a clear error if neither exists."""
    p = Path(path)
    if p.is_dir():
        p = p / LEDGER_FILE
    if not p.is_file():
        raise LedgerError(
            f"no ledger at {str(path)!r}",
            fix="pass a run folder (<TWINRUN_HOME>/runs/<run id>) or its ledger.jsonl; runs record "
            "a ledger unless --set ledger_every=None",
        )
    return p
