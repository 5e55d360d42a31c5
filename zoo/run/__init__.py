"""What serves a run, with no model or data code: what a run writes and how it survives.

A ``zoo.fit`` run writes ``<root>/<name>/version_N/``: ``config.yaml`` (the resolved recipe),
``metrics.csv`` (``loggers``), ``checkpoints/`` (written atomically by ``faults``, with the
random generators' states, so ``--ckpt_path last`` continues exactly), ``curves.png`` and
``metrics.json`` (``callbacks``). Every file a user keeps goes through ``io.atomic_write``, so
a crash leaves the old file or the new one, never half of one; every checkpoint a command reads
goes through ``checkpoint.load_checkpoint`` (``weights_only=True``), so a file cannot run code;
and every command reports a user's mistake as one line through ``errors``.
"""
