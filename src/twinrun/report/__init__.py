"""Reports and figures: ``twinrun report`` (one self-contained HTML file), rliable-style plots, and the plain
text the terminal shows (``format_show``, ``format_diff``, ``format_sweep``: the report embeds the same).

The figures draw on a matplotlib ``Axes`` (``ax=None`` makes one) and return it,
for notebooks as for the report. Plotting stack: matplotlib, written into the page
as SVG. It is already a dependency (the checks draw with it), the page needs no
script and no network, vector figures stay sharp when zoomed, and the numbers on
them are the registry's, drawn once; interactive hover would need a JavaScript
library inlined into every file (Plotly's is about 3.5 MB), too heavy to mail.

The text formatters load with the package; the page builder and the figures
(numpy, matplotlib) on first use, so ``twinrun runs`` starts in a tenth of a second.
"""

from typing import TYPE_CHECKING, Any

from twinrun.report._numbers import difference, interval, number, percent
from twinrun.report._sweep_text import format_sweep, format_sweep_list
from twinrun.report._text import (
    duration,
    format_diff,
    format_show,
    format_table,
    format_wrapped_table,
    when,
)

if TYPE_CHECKING:
    from twinrun.report._build import build_report, default_path
    from twinrun.report._figures import (
        new_axes,
        plot_curves,
        plot_ensemble_gain,
        plot_interval_estimates,
        plot_paired_difference,
        plot_probability_of_improvement,
        plot_scores,
        plot_search,
    )
    from twinrun.report._page import Page
    from twinrun.report._search import search_report

__all__ = [
    "Page",
    "build_report",
    "default_path",
    "difference",
    "duration",
    "format_diff",
    "format_show",
    "format_sweep",
    "format_sweep_list",
    "format_table",
    "format_wrapped_table",
    "interval",
    "new_axes",
    "number",
    "percent",
    "plot_curves",
    "plot_ensemble_gain",
    "plot_interval_estimates",
    "plot_paired_difference",
    "plot_probability_of_improvement",
    "plot_scores",
    "plot_search",
    "search_report",
    "when",
]

_LAZY = {"Page": "_page", "build_report": "_build", "default_path": "_build", "search_report": "_search"}


def __getattr__(name: str) -> Any:
    """The page builder and the figures on first use (they import numpy and the registry's diff)."""
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f"twinrun.report.{_LAZY[name]}"), name)
    if name in __all__:
        return getattr(importlib.import_module("twinrun.report._figures"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
