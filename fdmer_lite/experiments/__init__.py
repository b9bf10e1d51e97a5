"""The experiments layer: ``runstore`` (run folders that never lie, one lock each) and ``runs``
(``find`` a finished run, here or bundled; ``obtain`` it, training it if need be; ``run_grid``
over this process, worker processes or Ray; the one thread policy).

This file imports nothing, so that the command line can check a folder without importing torch.
"""
