"""``twinrun env``: what twinrun records about this machine with every run."""

from __future__ import annotations

import argparse

from twinrun.cli._common import RawHelp, add_json, print_json
from twinrun.cli._tables import format_table
from twinrun.env import capture_environment

HELP = """\
Print the environment twinrun records with every run: Python, torch, CUDA and
cuDNN, devices, thread counts, the environment variables that change numerics,
and the git state of the current folder.

examples:
  twinrun env
  twinrun env --json > env.json
  twinrun env --packages          # also list every installed distribution
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "env", help="show the environment recorded with every run", description=HELP, formatter_class=RawHelp
    )
    p.add_argument("--packages", action="store_true", help="list every installed distribution too")
    add_json(p)
    p.set_defaults(handler=run_env)


def run_env(args: argparse.Namespace) -> int:
    env = capture_environment()
    if args.json:
        print_json(env)
        return 0
    t, d, g = env["torch"], env["devices"], env.get("git", {})
    rows = [
        ["python", f"{env['python']['version']} ({env['python']['implementation']})"],
        ["os", f"{env['os']['system']} {env['os']['release']} {env['os']['machine']}"],
        ["cpu", f"{d['cpu_model']} · {d['cpu_count']} cores ({d['cpu_affinity']} usable)"],
        ["gpus", ", ".join(f"{x['name']} (driver {x['driver']})" for x in d["gpus"]) or "none"],
        ["torch", f"{t['version']} · CUDA {t['cuda'] or '-'} · cuDNN {t['cudnn'] or '-'}"],
        ["threads", f"{t['num_threads']} intra-op, {t['num_interop_threads']} inter-op"],
        [
            "deterministic",
            (
                f"algorithms={t['deterministic_algorithms']} cudnn={t['cudnn_deterministic']} "
                f"benchmark={t['cudnn_benchmark']}"
            ),
        ],
    ]
    rows += [[k, v] for k, v in env["env_vars"].items() if v is not None]
    if g.get("repository"):
        rows.append(["git", f"{g['branch']} @ {(g['commit'] or '')[:12]}" + (" (dirty)" if g["dirty"] else "")])
    if args.packages:
        rows += [[name, version] for name, version in env["packages"].items()]
    else:
        rows.append(["packages", f"{len(env['packages'])} installed (--packages to list)"])
    print(format_table(["fact", "value"], rows))
    return 0
