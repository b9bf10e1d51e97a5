"""The experiments layer: one run store and one grid runner over it.

* ``runstore``: run folders that never lie (written aside, sealed with ``complete.json``,
  published by one rename, checked on every read; one lock per folder).
* ``runs``: :func:`~fdmer_lite.experiments.runs.find` (the finished run of (config, data), in a
  folder or among the runs bundled with the package), :func:`~fdmer_lite.experiments.runs.obtain`
  (find it, or train it there: every training run that reaches the disk goes through it),
  :func:`~fdmer_lite.experiments.runs.run_grid` (any list of runs, in this process, in worker
  processes or on Ray) and the one thread policy.

This file imports nothing, so that the command line can check a folder (``runstore``) without
importing torch.
"""
