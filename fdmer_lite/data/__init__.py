"""Data loaders. Every source format produces a :class:`~fdmer_lite.data.base.MultimodalData`.

``load_dataset(name, path)`` is the one entry point the command line uses:

=================  ==============================================  ====================
name               source                                          module
=================  ==============================================  ====================
synthetic          the known-factor benchmark (generated)          ``synthetic``
mmsa               MMSA ``aligned_50.pkl`` / ``unaligned_50.pkl``  ``mmsa``
sdk                CMU-MultimodalSDK ``.csd`` files (HDF5)         ``sdk``
urfunny            UR-FUNNY v1 / v2 pickles                        ``urfunny``
mosi-text-audio    the real CMU-MOSI transcripts + 73-d audio      ``mosi_text_audio``
=================  ==============================================  ====================
"""

from __future__ import annotations

import importlib

from .base import Batch, DataError, MultimodalData, Split, make_loader

LOADERS = {
    "synthetic": "synthetic",
    "mmsa": "mmsa",
    "sdk": "sdk",
    "urfunny": "urfunny",
    "mosi-text-audio": "mosi_text_audio",
}


def load_dataset(name: str, path=None, **kwargs) -> MultimodalData:
    """Load a data set by name; ``path`` is the file or folder (unused for ``synthetic``)."""
    if name not in LOADERS:
        raise DataError("<command line>", "dataset", f"one of {sorted(LOADERS)}", repr(name))
    module = importlib.import_module(f".{LOADERS[name]}", __name__)
    return module.load(path, **kwargs)


__all__ = ["Batch", "DataError", "MultimodalData", "Split", "make_loader", "load_dataset", "LOADERS"]
