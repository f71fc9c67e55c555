"""Randomness under control: named isolated streams derived from one seed."""

from twinrun.rng._streams import STREAMS, RngStreams, derive_seed, isolated_global_rng

__all__ = ["STREAMS", "RngStreams", "derive_seed", "isolated_global_rng"]
