"""House rules of the source: one atomic writer for JSON files, one process launcher, no module over 400 lines."""

from __future__ import annotations

import re
from pathlib import Path

import twinrun

SRC = Path(twinrun.__file__).parent


def test_no_module_writes_json_or_renames_files_on_its_own():
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "_atomic.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"write_text\(json\.dumps|json\.dump\((?!data, sys\.stdout)|os\.replace\(|\.replace\(path\)", line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_no_source_file_is_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_every_child_process_is_started_by_the_one_launcher():
    """``twinrun._launch.launch`` starts every ``python -m`` child (tools such as git and nvidia-smi are run, not
    launched: ``subprocess.run`` with a time limit)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "_launch.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"subprocess\.Popen\(|os\.exec[lv]|\[sys\.executable", line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
