"""twinrun inside other frameworks' training loops: Lightning and the Hugging Face Trainer.

Each integration is its own module and imports its framework; ``import twinrun``
and ``import twinrun.integrations`` import neither::

    from twinrun.integrations.lightning import TwinrunCallback, TwinModule   # pip install twinrun[lightning]
    from twinrun.integrations.huggingface import TwinrunTrainerCallback      # pip install twinrun[hf]

Both record the run in the registry (environment, the resolved configuration,
per-step metrics), write a ledger of control sums (initial weights, every batch,
every loss, weights every ``ledger_every`` steps) and run twinrun's checks on a
copy of the model before the first step. What resumes bit for bit is stated in
each module and tested.
"""

__all__: list[str] = []
