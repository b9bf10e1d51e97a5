"""nbval runs the notebooks in this folder. Like tests/conftest.py, default to FAST mode, so that
`python -m pytest notebooks/` on its own does not train for real (set FDMER_LITE_FAST=0 for that),
and run the exercises' solutions, which a student's "Run all" skips (``%%solution``: see
``fdmer_lite.exercises``). The kernel nbval starts inherits both."""

import os

os.environ.setdefault("FDMER_LITE_FAST", "1")
os.environ.setdefault("FDMER_LITE_SOLUTIONS", "1")
