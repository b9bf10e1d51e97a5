"""The experiments layer: one run store, one pool, and batches of runs built on them.

* ``runstore``: run folders that never lie (written aside, sealed with ``complete.json``,
  published by one rename, checked on every read; one lock per folder).
* ``runs``: :func:`~fdmer_lite.experiments.runs.obtain`, the finished run of (config, data) in a
  folder, or train it there. Every training run that reaches the disk goes through it.
* ``pool``: where independent work runs (this process, local worker processes, or Ray).
* ``specs``: runs described by specs (:class:`~fdmer_lite.experiments.specs.RunSpec`) and run in
  bulk (:func:`~fdmer_lite.experiments.specs.run_all`): the ablation grid.

This file imports nothing, so that the command line can check a folder (``runstore``) without
importing torch.
"""
