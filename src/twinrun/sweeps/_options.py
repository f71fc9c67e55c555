"""What ``run_sweep`` and ``analyze_sweep`` accept, checked before anything runs."""

from __future__ import annotations

from twinrun.errors import ConfigError
from twinrun.stats import DEPLOY

__all__ = ["BACKENDS", "check_options"]

BACKENDS = ("local", "inprocess", "ray")


def check_options(backend: str, address: str | None, deploy: str, confidence: float, n_resamples: int) -> None:
    if backend not in BACKENDS:
        raise ConfigError(
            f"backend {backend!r} is not one of {', '.join(BACKENDS)}",
            fix="pass --backend local (this machine) or --backend ray (a Ray cluster)",
        )
    if address is not None and backend != "ray":
        raise ConfigError(
            f"--address {address} names a Ray cluster, but the backend is {backend!r}",
            fix=f"add --backend ray to run on the cluster at {address}",
        )
    if deploy not in DEPLOY:
        raise ConfigError(
            f"deploy={deploy!r} is not one of {', '.join(DEPLOY)}",
            fix="pass --deploy ensemble, --deploy single, or leave it out for both",
        )
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError(f"confidence={confidence!r} must be between 0 and 1", fix="pass 0.95")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 100:
        raise ConfigError(f"n_resamples={n_resamples!r} must be an integer of at least 100", fix="pass 10000")
