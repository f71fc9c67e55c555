"""``twinrun ledger``: read a run's ledger, or find where two runs parted."""

from __future__ import annotations

import argparse
from pathlib import Path

from twinrun._home import twinrun_home
from twinrun.cli._common import RawHelp, add_home, add_json, add_registry, print_json
from twinrun.cli._tables import format_table

HELP = """\
Read the ledger of a run (control sums of initial weights, batches, losses,
weights and RNG states, in <TWINRUN_HOME>/runs/<run id>/ledger.jsonl), or compare
the ledgers of two runs of the same experiment and print the first record on
which they disagree. A data-parallel run (torchrun) has a ledger per rank; two
such runs are compared rank by rank and the divergence names its rank.

examples:
  twinrun ledger latest
  twinrun ledger 1a2b3c4d --step 10                        # the records of one step
  twinrun ledger latest~1 latest                           # where did they part?
  twinrun ledger .twinrun/runs/RUN_ID/ledger.jsonl         # a folder or a file works too

exit status: 0 (with two runs: identical), 1 the runs diverged, 2 bad input.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "ledger", help="read a run's ledger, or compare two runs' ledgers", description=HELP, formatter_class=RawHelp
    )
    p.add_argument(
        "runs",
        metavar="RUN",
        nargs="+",
        help="a run id (a prefix, latest, latest~1), a run folder or a ledger file (two to compare)",
    )
    p.add_argument("--step", type=int, metavar="N", help="list the records of step N")
    add_home(p)
    add_registry(p)
    add_json(p)
    p.set_defaults(handler=run_ledger)


def run_ledger(args: argparse.Namespace) -> int:
    if len(args.runs) > 2:
        from twinrun.errors import ConfigError

        raise ConfigError(
            f"twinrun ledger takes one or two runs, got {len(args.runs)}",
            fix="twinrun ledger RUN, or twinrun ledger RUN_A RUN_B",
        )
    # imported here: the ledger reads torch's RNG states
    from twinrun.ledger import KINDS, Ledger, compare_runs, rank_ledgers

    paths = [_ledger_path(query, args) for query in args.runs]
    if len(paths) == 2:
        comparison = compare_runs(*paths)
        if args.json:
            print_json(comparison.to_dict())
        elif comparison.divergence is not None:
            print(f"first divergence: {comparison.divergence.describe()}")
            print(
                f"({comparison.compared} records compared; tensor values are not in a ledger: "
                "`twinrun repro FILE` reruns to measure them)"
            )
        elif comparison.identical:
            ranks = f" over {comparison.ranks} ranks" if comparison.ranks > 1 else ""
            print(f"bit-identical ({comparison.compared} records compared{ranks})")
        else:
            print(
                f"the records both have agree ({comparison.compared} compared), but run A reached step "
                f"{comparison.last_step_a} and run B step {comparison.last_step_b}"
            )
        return 0 if comparison.identical else 1
    ledger = Ledger.load(paths[0])
    rank_files = rank_ledgers(paths[0])
    if args.step is not None:
        records = ledger.at(args.step)
        if args.json:
            print_json([r.to_json() for r in records])
        else:
            print(
                format_table(
                    ["candidate", "kind", "name", "control sum", "value"],
                    [[r.candidate, r.kind, r.name, r.hash, "" if r.value is None else repr(r.value)] for r in records],
                )
            )
        return 0
    summary = ledger.summary()
    if args.json:
        print_json(summary)
        return 0
    header = ledger.header
    rows = [
        ["experiment", ledger.experiment],
        ["config", ledger.config_hash],
        ["run", str(header.get("run_id", ""))],
        ["seed", str(header.get("seed"))],
        ["steps", f"{ledger.last_step} recorded of {header.get('steps')}"],
        ["cadence", f"weights and RNG states every {header.get('ledger_every')} steps; batches and losses every step"],
        ["records", ", ".join(f"{summary['by_kind'][k]} {k}" for k in KINDS)],
        ["candidates", ", ".join(summary["candidates"])],
    ]
    if len(rank_files) > 1:
        rows.append(["ranks", f"{len(rank_files)} (rank 0's records shown; the others in rank-R/ledger.jsonl)"])
    for key, value in (header.get("factors") or {}).items():
        if isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items() if v is not None) or "-"
        rows.append([f"factor {key}", str(value)])
    print(format_table(["fact", "value"], rows))
    return 0


def _ledger_path(query: str, args: argparse.Namespace) -> Path:
    """A ledger file or run folder as given; else the folder of the run the id names."""
    if Path(query).exists() or "/" in query:
        return Path(query)
    from twinrun._runfolder import find_run_folder
    from twinrun.cli._runs import open_for_reading
    from twinrun.errors import CheckpointError, LedgerError

    root = twinrun_home(args.home)
    with open_for_reading(args.registry or (str(root / "registry.sqlite") if args.home else None)) as store:
        try:
            return find_run_folder(query, root, store)
        except CheckpointError as exc:
            raise LedgerError(
                exc.message.replace("nothing to resume at", "no ledger for"),
                fix="pass a run id from `twinrun runs`, a run folder or a ledger file",
            ) from None
