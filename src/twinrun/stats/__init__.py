"""Statistics as small pure functions over documented array shapes."""

from twinrun.stats._intervals import auto_block_length, block_bootstrap_interval, paired_t_interval

__all__ = ["auto_block_length", "block_bootstrap_interval", "paired_t_interval"]
