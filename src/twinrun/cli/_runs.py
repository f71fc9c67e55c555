"""``twinrun runs``, ``show``, ``note``, ``tag`` and ``diff``: the run registry from the shell."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Mapping
from typing import Any

from twinrun.cli._common import RawHelp, add_json, add_registry, print_json
from twinrun.registry import (
    STATUSES,
    Registry,
    RegistryNotFoundError,
    RegistryReadOnlyError,
    RunRecord,
    diff_runs,
    resolve_registry_path,
)
from twinrun.report import duration, format_diff, format_show, format_table, number, when

__all__ = ["open_for_reading", "register"]

RUN_HELP = "a run id, abbreviated as in git (4+ characters usually suffice), or latest / latest~N"
EXIT_STATUS = "exit status: 0 ok, 2 bad input (unknown or ambiguous run, unreadable registry)."

RUNS_HELP = f"""\
List the runs in the registry, newest first.

examples:
  twinrun runs
  twinrun runs --name digits --status finished
  twinrun runs --tag baseline --limit 5
  twinrun runs --json | jq '.[0].id'

{EXIT_STATUS} An empty registry (or none yet) lists nothing and exits 0.
"""

SHOW_HELP = f"""\
Show one run: settings, candidates with their final metrics and verdict,
environment, git state, tags and notes.

examples:
  twinrun show 2f3323cb
  twinrun show latest --json
  twinrun show latest --source        # the experiment file as it was run

{EXIT_STATUS}
"""

NOTE_HELP = f"""\
Attach a free-text note to a run (notes accumulate; twinrun show lists them).

examples:
  twinrun note 2f3323cb "lr 0.3 diverges without warm-up"
  twinrun note latest "baseline for the paper"

{EXIT_STATUS}
"""

TAG_HELP = f"""\
Tag a run (or remove tags with --remove); filter by tag with twinrun runs --tag.

examples:
  twinrun tag 2f3323cb baseline
  twinrun tag latest paper fig3
  twinrun tag 2f3323cb baseline --remove

{EXIT_STATUS}
"""

DIFF_HELP = """\
Compare two runs: config differences, final validation metrics, training curves
step by step, environment differences, and a comparability verdict that says
which differences can change the numbers (library versions, device, thread
count, deterministic mode, dirty or changed code) and which cannot.

examples:
  twinrun diff 2f3323cb 9a1b7c0d
  twinrun diff latest~1 latest
  twinrun diff 2f33 9a1b --check && echo comparable
  twinrun diff 2f33 9a1b --source     # also the diff of the experiment files

exit status: 0 the diff was printed (comparable or not), 1 with --check when the
runs are not comparable, 2 bad input (unknown or ambiguous run, unreadable registry).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "runs", help="list recorded runs, newest first", description=RUNS_HELP, formatter_class=RawHelp
    )
    p.add_argument("--name", metavar="NAME", help="only runs of this experiment (wildcards: 'dig*')")
    p.add_argument("--tag", metavar="TAG", help="only runs with this tag")
    p.add_argument("--status", choices=STATUSES, help="only runs with this status")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="show at most N runs (default 20; 0: all)")
    add_registry(p)
    add_json(p)
    p.set_defaults(handler=run_runs)

    s = subparsers.add_parser("show", help="show one run in full", description=SHOW_HELP, formatter_class=RawHelp)
    s.add_argument("run", metavar="RUN", help=RUN_HELP)
    s.add_argument("--source", action="store_true", help="print the experiment file as it was run")
    s.add_argument("--metrics", action="store_true", help="with --json: include every per-step metric")
    s.add_argument(
        "--report", action="store_true", help="also write the run's HTML report (twinrun report) and print where it is"
    )
    add_registry(s)
    add_json(s)
    s.set_defaults(handler=run_show)

    n = subparsers.add_parser("note", help="attach a note to a run", description=NOTE_HELP, formatter_class=RawHelp)
    n.add_argument("run", metavar="RUN", help=RUN_HELP)
    n.add_argument("text", nargs="+", metavar="TEXT", help="the note (quote it, or several words)")
    add_registry(n)
    add_json(n)
    n.set_defaults(handler=run_note)

    t = subparsers.add_parser(
        "tag", help="tag a run (or untag it with --remove)", description=TAG_HELP, formatter_class=RawHelp
    )
    t.add_argument("run", metavar="RUN", help=RUN_HELP)
    t.add_argument("tags", nargs="+", metavar="TAG", help="one or more tags (single words)")
    t.add_argument("--remove", action="store_true", help="remove these tags instead")
    add_registry(t)
    add_json(t)
    t.set_defaults(handler=run_tag)

    d = subparsers.add_parser(
        "diff",
        help="compare two runs: config, metrics, environment, verdict",
        description=DIFF_HELP,
        formatter_class=RawHelp,
    )
    d.add_argument("run_a", metavar="RUN_A", help=RUN_HELP)
    d.add_argument("run_b", metavar="RUN_B", help=RUN_HELP)
    d.add_argument("--check", action="store_true", help="exit 1 when the runs are not comparable")
    d.add_argument(
        "--all", action="store_true", help="list every environment difference (default: at most 12 harmless ones)"
    )
    d.add_argument("--source", action="store_true", help="show the diff of the two experiment files")
    add_registry(d)
    add_json(d)
    d.set_defaults(handler=run_diff)


# ---------------------------------------------------------------------- opening
def open_for_reading(path: str | None) -> Registry:
    """Open read-write where possible (crash marking), else read-only; never create."""
    try:
        return Registry.open(path, create=False)
    except RegistryReadOnlyError:
        return Registry.open(path, create=False, readonly=True)


def _candidates(names: tuple[str, ...] | list[str], width: int = 3) -> str:
    shown = ", ".join(names[:width])
    return shown + (f", +{len(names) - width}" if len(names) > width else "")


def _best(best: Mapping[str, Any] | None) -> str:
    if not best:
        return "-"
    return f"{best['metric']} {number(best['value'])} ({best['candidate']})"


# ---------------------------------------------------------------------- runs
def run_runs(args: argparse.Namespace) -> int:
    try:
        registry = open_for_reading(args.registry)
    except RegistryNotFoundError:
        where = resolve_registry_path(args.registry)
        if args.json:
            print_json([])
        else:
            print(f"no runs recorded yet (no registry at {where}); `twinrun demo` makes one", file=sys.stderr)
        return 0
    with registry:
        runs = registry.list_runs(name=args.name, tag=args.tag, status=args.status, limit=args.limit)
        total = registry.count_runs(name=args.name, tag=args.tag, status=args.status)
    if args.json:
        print_json([r.to_dict() for r in runs])
        return 0
    rows = [
        [
            r.short_id,
            r.name,
            r.status,
            when(r.started_at),
            duration(r.duration, r.status),
            _candidates(list(r.candidates)),
            r.reference or "-",
            _best(r.best),
            ",".join(r.tags),
        ]
        for r in runs
    ]
    headers = ["id", "name", "status", "started", "duration", "candidates", "ref", "best (val)", "tags"]
    print(format_table(headers, rows, right=[4]))
    more = f" (showing {len(runs)}; --limit 0 for all)" if total > len(runs) else ""
    print(f"\n{total} run(s){more} · registry {registry.path} · details: twinrun show ID")
    return 0


# ---------------------------------------------------------------------- show
def run_show(args: argparse.Namespace) -> int:
    with open_for_reading(args.registry) as registry:
        record = registry.get_run(args.run)
        if args.json:
            data = record.to_dict(source=args.source)
            if args.metrics:
                data["metrics"] = registry.metrics(record.id)
            data["checks"] = registry.checks(record.id)
            print_json(data)
        elif args.source:
            sys.stdout.write(record.experiment_source or "")
        else:
            print(format_show(record, registry))
            _report_line(record, args)
    return 0


def _report_line(record: RunRecord, args: argparse.Namespace) -> None:
    """Where the run's HTML report is (``--report``: make it first)."""
    from twinrun._home import runs_dir, twinrun_home

    path = runs_dir(twinrun_home(getattr(args, "home", None))) / record.id / "report.html"
    if getattr(args, "report", False):
        from twinrun.cli._report import make_report

        path, _ = make_report([record.id], None, None, home=getattr(args, "home", None), registry=args.registry)
    if path.is_file():
        print(f"report: {path}")
    else:
        print(f"report: none yet (twinrun show {record.id[:8]} --report, or twinrun report {record.id[:8]})")


# ---------------------------------------------------------------------- note and tag
def run_note(args: argparse.Namespace) -> int:
    with Registry.open(args.registry, create=False) as registry:
        run_id = registry.resolve(args.run)
        note = registry.add_note(run_id, " ".join(args.text))
        notes = registry.get_run(run_id).notes
    if args.json:
        print_json({"run_id": run_id, "note": note.to_dict(), "notes": [n.to_dict() for n in notes]})
    else:
        print(f"noted on run {run_id[:8]} ({len(notes)} note(s))")
    return 0


def run_tag(args: argparse.Namespace) -> int:
    with Registry.open(args.registry, create=False) as registry:
        run_id = registry.resolve(args.run)
        if args.remove:
            tags = registry.remove_tags(run_id, *args.tags)
        else:
            tags = registry.add_tags(run_id, *args.tags)
    if args.json:
        print_json({"run_id": run_id, "tags": list(tags)})
    else:
        print(f"run {run_id[:8]} tags: {', '.join(tags) if tags else '-'}")
    return 0


# ---------------------------------------------------------------------- diff
def source_diff(a: RunRecord, b: RunRecord) -> str:
    lines = difflib.unified_diff(
        (a.experiment_source or "").splitlines(keepends=True),
        (b.experiment_source or "").splitlines(keepends=True),
        fromfile=f"a/{a.short_id}:{a.experiment_path}",
        tofile=f"b/{b.short_id}:{b.experiment_path}",
    )
    return "".join(lines) or "(the experiment files are identical)\n"


def run_diff(args: argparse.Namespace) -> int:
    with open_for_reading(args.registry) as registry:
        a = registry.get_run(args.run_a)
        b = registry.get_run(args.run_b)
        result = diff_runs(a, b, registry.metrics(a.id), registry.metrics(b.id))
    if args.json:
        data = result.to_dict()
        if args.source:
            data["source_diff"] = source_diff(a, b)
        print_json(data)
    else:
        print(format_diff(result, show_all=args.all))
        if args.source:
            print()
            sys.stdout.write(source_diff(a, b))
    return 1 if (args.check and not result.verdict.comparable) else 0
