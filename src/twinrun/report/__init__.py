"""Reports and figures: ``twinrun report`` (one self-contained HTML file) and rliable-style plots.

The figures draw on a matplotlib ``Axes`` (``ax=None`` makes one) and return it,
for notebooks as for the report. Plotting stack: matplotlib, written into the page
as SVG. It is already a dependency (the checks draw with it), the page needs no
script and no network, vector figures stay sharp when zoomed, and the numbers on
them are the registry's, drawn once; interactive hover would need a JavaScript
library inlined into every file (Plotly's is about 3.5 MB), too heavy to mail.
"""

from twinrun.report._build import build_report, default_path
from twinrun.report._figures import (
    new_axes,
    plot_curves,
    plot_ensemble_gain,
    plot_interval_estimates,
    plot_paired_difference,
    plot_probability_of_improvement,
    plot_scores,
)
from twinrun.report._page import Page

__all__ = [
    "Page",
    "build_report",
    "default_path",
    "new_axes",
    "plot_curves",
    "plot_ensemble_gain",
    "plot_interval_estimates",
    "plot_paired_difference",
    "plot_probability_of_improvement",
    "plot_scores",
]
