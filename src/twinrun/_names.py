"""The one rule for names that become paths: experiments, candidates, run ids.

A name is letters, digits and ``_ . + -``, starting with a letter or digit: it
cannot hold a path separator, cannot be ``.`` or ``..``, and so can never
reach outside the folder it names a child of (TensorBoard's ``logdir/<candidate>``,
``runs/<run id>``). Every place that turns a name into a path calls
:func:`check_name` first, the library's entry points (``Twin``, sinks) as much
as experiment files.
"""

from __future__ import annotations

import re

from twinrun.errors import ConfigError

__all__ = ["check_name", "is_valid_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name)) and len(name) <= 200


def check_name(name: object, what: str) -> str:
    """``name`` if it is a valid name, else :class:`ConfigError` naming ``what`` it was for."""
    if not is_valid_name(name):
        raise ConfigError(
            f"{what} {name!r} is not a valid name: it names a folder, so it may only hold letters, "
            "digits and _ . + - (starting with a letter or digit, at most 200 characters)",
            fix=f"rename it, e.g. {_suggest(name)!r}",
        )
    return str(name)


def _suggest(name: object) -> str:
    text = re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(name)).strip("._+-")
    return text[:200] or "candidate"
