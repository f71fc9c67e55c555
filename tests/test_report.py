"""`twinrun report`: one self-contained HTML file, its figures' numbers the registry's, opened in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TOY
from scipy import stats

import twinrun
import twinrun.sweeps
from twinrun.registry import open_registry
from twinrun.report import (
    build_report,
    new_axes,
    plot_curves,
    plot_interval_estimates,
    plot_paired_difference,
    plot_probability_of_improvement,
    plot_scores,
)


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def sweep(home):
    return twinrun.run_sweep(TOY, seeds=3, execution="inprocess", home=home, progress=False,
                             analysis=twinrun.sweeps.Analysis(n_resamples=500))


@pytest.fixture
def run(home):
    return twinrun.compare(TOY, home=home, progress=False, logdir=None)


def _registry(home):
    return open_registry(home / "registry.sqlite")


def _self_contained(text: str) -> None:
    assert "<script" not in text and "<link" not in text
    assert not re.search(r'(src|href)="(?!data:|#)', text), re.search(r'(src|href)="(?!data:|#)[^"]*', text)
    assert not re.search(r"url\((?!#)", text)


def test_a_run_report_is_one_self_contained_file_with_the_registrys_numbers(run, home, tmp_path):
    with _registry(home) as reg:
        page = build_report(reg, [run.run_id])
        record = reg.get_run(run.run_id)
    text = page.render()
    _self_contained(text)
    assert text.count('data-figure="curves"') >= 3  # train loss, val loss, val accuracy
    assert text.count('data-figure="paired-difference"') >= 2
    ref = record.reference
    assert f"{record.candidates[ref].final['accuracy']:.4g}" in text  # the verdict table: the registry's values
    assert "these trained weights on this validation set" in text  # what a one-run verdict may claim
    assert text.count("<details><summary>resolved config of ") == len(record.candidates)
    path = page.write(tmp_path / "r.html")
    assert path.stat().st_size < 2_000_000


def test_a_sweep_report_shows_seeds_intervals_and_probabilities(sweep, home):
    with _registry(home) as reg:
        text = build_report(reg, sweep=sweep.sweep_id).render()
    _self_contained(text)
    for kind in ("scores", "interval-estimates", "paired-intervals", "probability-of-improvement", "curves",
                 "paired-difference", "ensemble-gain"):
        assert f'data-figure="{kind}"' in text, kind
    assert "band over 3 seeds" in text
    assert "paired across seeds" in text  # the text report of twinrun seeds


def test_what_is_missing_is_said(run, home):
    with _registry(home) as reg:
        text = build_report(reg, ["ffffffff", run.run_id]).render()
    assert "missing: ffffffff" in text
    assert f"run {run.run_id[:8]}" in text


def test_two_runs_get_their_diff(home):
    a = twinrun.compare(TOY, home=home, progress=False, logdir=None)
    b = twinrun.compare(TOY, home=home, progress=False, logdir=None, overrides={"steps": 16})
    with _registry(home) as reg:
        text = build_report(reg, [a.run_id, b.run_id]).render()
    assert f"diff {a.run_id[:8]}" in text and "steps" in text


def test_figures_take_an_axes_and_return_it():
    ax = new_axes()
    assert plot_curves({"a": ([0, 1, 2], np.array([1.0, 0.5, 0.2]))}, ax=ax) is ax
    for draw, data in [(plot_interval_estimates, {"a": (0.5, 0.4, 0.6)}),
                       (plot_probability_of_improvement, {"a": (0.7, 0.3, 0.9)}),
                       (plot_scores, {"a": [0.9, 0.8, 0.85]})]:
        made = draw(data)
        assert made is not None and made.figure is not None
        assert draw(data, ax=ax) is ax


def test_the_band_of_a_paired_difference_is_the_t_interval_across_replicas():
    rng = np.random.default_rng(0)
    diffs = rng.normal(0.1, 0.3, size=(5, 4))
    ax = plot_paired_difference([1, 2, 3, 4], diffs)
    band = ax.collections[0].get_paths()[0].vertices  # fill_between's polygon: lows, then highs reversed
    lows = band[1:5, 1]
    expected = [stats.t.interval(0.95, 4, loc=diffs[:, j].mean(), scale=stats.sem(diffs[:, j]))[0] for j in range(4)]
    np.testing.assert_allclose(lows, expected, rtol=1e-9)


def test_scores_are_jittered_with_a_seeded_generator():
    a = plot_scores({"a": [1.0, 2.0, 3.0]}, seed=3).lines[0].get_ydata()
    b = plot_scores({"a": [1.0, 2.0, 3.0]}, seed=3).lines[0].get_ydata()
    c = plot_scores({"a": [1.0, 2.0, 3.0]}, seed=4).lines[0].get_ydata()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.slow
def test_the_command_writes_the_report_into_the_run_folder(run, home):
    out = subprocess.run([sys.executable, "-m", "twinrun", "report", run.run_id[:8], "--home", str(home)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    path = Path(re.search(r"report: (\S+)", out.stdout).group(1))
    assert path == home / "runs" / run.run_id / "report.html" and path.stat().st_size > 10_000


def _browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(_browser() is None, reason="no headless Chromium here (.ci/run installs it with apt-get)")
def test_the_report_opens_in_a_headless_browser_offline(sweep, home, tmp_path):
    with _registry(home) as reg:
        page = build_report(reg, sweep=sweep.sweep_id)
    path = page.write(tmp_path / "sweep.html")
    base = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<figure") == page.figures  # every figure element is there once loaded
    assert dom.stdout.count("<svg") >= page.figures - 1
    assert "CONSOLE" not in dom.stderr  # nothing logged by the page (it has no script, and loads nothing)
    shot = tmp_path / "sweep.png"
    subprocess.run([*base, "--window-size=1200,3000", f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.stat().st_size > 50_000


@pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")
def test_a_run_report_shows_baselines_best_steps_and_data(home):
    r = twinrun.compare(TOY, home=home, progress=False, logdir=None, candidates=["small", "wide"],
                        overrides={"steps": 16, "eval_every": 4, "select_by": "accuracy"})
    with _registry(home) as reg:
        text = build_report(reg, [r.run_id]).render()
    assert "Baselines, trained on the same batches" in text
    assert f"{r.baselines['scores']['linear']['accuracy']:.4f}" in text
    assert "Best steps by accuracy (chosen on 64 validation examples, judged on the other 64)" in text
    assert r.data["train"]["sha256"][:16] in text
