"""Autograd's advice on gradient layouts, silenced where a batched group's layout is chosen on purpose.

A vectorised group's gradients are views of one flat tensor per parameter
group (for the stacked, foreach update), so autograd's accumulator advises
once that "grad and param do not obey the gradient layout contract". The
advice does not apply. Torch gives it at most once per process
(``TORCH_WARN_ONCE``), so only the steps up to the first completed one pay
for a warnings filter: after it, :func:`layout_advice_silenced` is a no-op.

Side effects: the filter lives only inside the block (``warnings.catch_warnings``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

__all__ = ["layout_advice_silenced"]

_ADVICE = "grad and param do not obey the gradient layout contract"
_given: list[bool] = []  # a block with a backward has run silenced: torch will not advise again


@contextmanager
def _silenced(backward: bool) -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_ADVICE)
        yield
    if backward:
        _given.append(True)


def layout_advice_silenced(backward: bool = True) -> AbstractContextManager[None]:
    """A block in which the advice is not shown (``backward``: it runs a backward, after which the advice
    is not given again in this process)."""
    return nullcontext() if _given else _silenced(backward)
