"""``twinrun registry info | check | upgrade``: the registry file itself."""

from __future__ import annotations

import argparse

from twinrun.cli._common import RawHelp, add_json, add_registry, print_json
from twinrun.cli._runs import open_for_reading
from twinrun.errors import RegistryError
from twinrun.registry import (
    NotARegistryError,
    RegistryNotFoundError,
    SchemaVersionError,
    resolve_registry_path,
    upgrade_registry,
)

HELP = """\
The registry file itself: where it is, whether it is sound, and upgrading an
older one to this twinrun's schema.

examples:
  twinrun registry info
  twinrun registry check --registry runs/registry.sqlite
  twinrun registry upgrade            # writes a backup copy first

exit status: 0 ok, 1 the integrity check failed, 2 bad input (no registry,
not a twinrun registry, read-only, schema newer than this twinrun).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "registry", help="inspect, check or upgrade the run registry file", description=HELP, formatter_class=RawHelp
    )
    sub = p.add_subparsers(title="actions", metavar="ACTION")
    for name, handler, text in (
        ("info", run_info, "path, schema version, size and run counts"),
        ("check", run_check, "run SQLite's integrity check on the file"),
        ("upgrade", run_upgrade, "migrate an older registry to this twinrun's schema (backup first)"),
    ):
        a = sub.add_parser(
            name, help=text, description=text + ".\n\n" + HELP.split("\n\n", 1)[1], formatter_class=RawHelp
        )
        add_registry(a)
        add_json(a)
        a.set_defaults(handler=handler)

    def show_help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=show_help)


def run_info(args: argparse.Namespace) -> int:
    with open_for_reading(args.registry) as registry:
        info = registry.info()
    if args.json:
        print_json(info)
    else:
        counts = ", ".join(f"{n} {s}" for s, n in info["by_status"].items() if n)
        print(
            f"registry {info['path']}\nschema version {info['schema_version']} · "
            f"{info['bytes'] / 1024:.0f} KB · {info['runs']} run(s){': ' + counts if counts else ''} · "
            f"{info['metric_rows']} metric rows" + (" · opened read-only" if info["readonly"] else "")
        )
    return 0


def run_check(args: argparse.Namespace) -> int:
    try:
        with open_for_reading(args.registry) as registry:
            verdict = registry.integrity_check()
            path = registry.path
    except (RegistryNotFoundError, NotARegistryError, SchemaVersionError):
        raise  # bad input (exit 2): there is no file to check, or it needs `twinrun registry upgrade`
    except RegistryError as exc:  # the file is there but cannot even be opened: it is damaged
        path = resolve_registry_path(args.registry)
        verdict = exc.message
    ok = verdict == "ok"
    if args.json:
        print_json({"path": str(path), "ok": ok, "integrity_check": verdict})
    else:
        print(f"{path}: {'ok' if ok else 'DAMAGED: ' + verdict}")
    return 0 if ok else 1


def run_upgrade(args: argparse.Namespace) -> int:
    report = upgrade_registry(args.registry)
    if args.json:
        print_json(report.to_dict())
    elif report.changed:
        print(
            f"upgraded {report.path} from schema {report.from_version} to {report.to_version}; "
            f"backup of the old file: {report.backup}"
        )
    else:
        print(f"{report.path} already has schema version {report.to_version}; nothing to do")
    return 0
