"""The one data type every loader produces, and the batch the model consumes.

A data set is a :class:`MultimodalData`: three :class:`Split` objects (``train``, ``valid``,
``test``), each holding per-modality feature arrays ``(N, L_m, d_m)``, optional valid lengths
``(N,)`` (padding is at the end), labels ``(N,)`` and sample ids. Modality keys are always
``"t"``, ``"a"``, ``"v"``. Loaders check their input and raise :class:`DataError`, whose message
names the file, the field and what was expected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import MODALITIES
from ..errors import DataError  # noqa: F401  (defined there, raised here and by every loader)

SPLITS = ("train", "valid", "test")

# the fewest samples a split may hold, and why
MIN_SAMPLES = {"train": 2, "valid": 1, "test": 1}
WHY_MIN_SAMPLES = {"train": "the disparity term, HSIC (Eq. 6), divides by n - 1 and needs two samples to compare",
                   "valid": "the checkpoint is chosen on it", "test": "the metrics are computed on it"}

# The largest feature magnitude training can take: (2**58)**2 = 2**116, and 2,048 such squares sum
# to 2**127 < float32's max, so a layer norm's variance or an inner product over up to 2,048 units
# stays finite (benchmarks/results/hostile-inputs.md). Real features are far smaller.
FEATURE_LIMIT = 2.0 ** 58                            # about 2.9e17


def check_split_size(source: str, split: str, n: int, field: str | None = None) -> None:
    """Refuse a split with fewer than :data:`MIN_SAMPLES` samples, saying why they are needed."""
    need = MIN_SAMPLES.get(split, 1)
    if n < need:
        raise DataError(source, field or split, f"at least {need} sample{'s' if need > 1 else ''} in the "
                        f"{split} split ({WHY_MIN_SAMPLES.get(split, 'it is used')})", str(n))


def check_magnitude(x: np.ndarray, source: str, field: str) -> None:
    """Refuse finite feature values beyond :data:`FEATURE_LIMIT` (NaN and inf are left to the
    loaders' non-finite policy)."""
    if x.size == 0 or x.dtype.kind not in "fiu":
        return
    big = max(abs(float(np.max(x))), abs(float(np.min(x))))
    if big > FEATURE_LIMIT:                              # False for NaN
        count = int(np.count_nonzero(np.abs(x) > FEATURE_LIMIT))
        raise DataError(source, field, f"feature values of magnitude at most 2**58 = {FEATURE_LIMIT:.2g} "
                        "(beyond it, sums of squares overflow float32 and training cannot run)",
                        f"{count} value(s) beyond it, the largest of magnitude {big:.3g}")


@dataclass
class Split:
    features: dict[str, np.ndarray]                  # m -> (N, L_m, d_m) float32
    labels: np.ndarray                               # (N,) float32 or int64
    ids: list[str]
    lengths: dict[str, np.ndarray] = field(default_factory=dict)   # m -> (N,) valid steps
    extras: dict[str, np.ndarray] = field(default_factory=dict)    # e.g. ground-truth latents

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def validate(self, source: str, name: str, task: str) -> None:
        """Check shapes, dtypes, finiteness and lengths; raise DataError naming what is wrong."""
        n = len(self)
        if self.labels.ndim != 1:
            raise DataError(source, f"{name}.labels", "a 1-d array", f"shape {self.labels.shape}")
        if len(self.ids) != n:
            raise DataError(source, f"{name}.ids", f"{n} ids (one per label)", str(len(self.ids)))
        if task == "regression":
            if not np.all(np.isfinite(self.labels)):
                bad = int((~np.isfinite(self.labels)).sum())
                raise DataError(source, f"{name}.labels", "finite values", f"{bad} NaN/inf")
        else:
            if self.labels.dtype.kind not in "iu" or (n and self.labels.min() < 0):
                raise DataError(source, f"{name}.labels", "non-negative integer class ids",
                                f"dtype {self.labels.dtype}")
        for m, x in self.features.items():
            f = f"{name}.{m}"
            if x.ndim != 3:
                raise DataError(source, f, "a 3-d array (N, length, width)", f"shape {x.shape}")
            if x.shape[0] != n:
                raise DataError(source, f, f"{n} samples (as many as labels)", str(x.shape[0]))
            if x.shape[1] == 0 or x.shape[2] == 0:
                raise DataError(source, f, "at least one time step and one feature per step",
                                f"shape {x.shape} (drop the stream with --modalities instead)")
            if not np.all(np.isfinite(x)):
                bad = int((~np.isfinite(x)).sum())
                raise DataError(source, f, "finite values", f"{bad} NaN/inf entries")
            check_magnitude(x, source, f)
            if m in self.lengths:
                ln = self.lengths[m]
                if ln.shape != (n,) or (n and (ln.min() < 1 or ln.max() > x.shape[1])):
                    raise DataError(source, f"{name}.{m}_lengths",
                                    f"{n} lengths between 1 and {x.shape[1]}",
                                    f"shape {ln.shape}, range [{ln.min() if n else '-'}, "
                                    f"{ln.max() if n else '-'}]")


@dataclass
class MultimodalData:
    name: str
    task: str                                        # "regression" | "classification"
    splits: dict[str, Split]
    n_classes: int = 0                               # classification only
    info: dict = field(default_factory=dict)         # source path, notes, Bayes floor, ...
    source: str = "<memory>"

    def __post_init__(self):
        if self.task not in ("regression", "classification"):
            raise DataError(self.source, "task", "'regression' or 'classification'", repr(self.task))
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise DataError(self.source, "splits", f"splits {SPLITS}", f"missing {missing}")
        mods = None
        for s in SPLITS:
            sp = self.splits[s]
            sp.validate(self.source, s, self.task)
            these = tuple(m for m in MODALITIES if m in sp.features)
            if mods is None:
                mods = these
            elif these != mods:
                raise DataError(self.source, f"{s} modalities", f"the same as train {mods}", str(these))
            for m in these:
                ref = self.splits["train"].features[m].shape[1:]
                if sp.features[m].shape[1:] != ref:
                    raise DataError(self.source, f"{s}.{m}", f"(length, width) {ref} as in train",
                                    str(sp.features[m].shape[1:]))
        if not mods:
            raise DataError(self.source, "features", "at least one of the modalities t, a, v", "none")
        for s in SPLITS:
            check_split_size(self.source, s, len(self.splits[s]))

    @property
    def modalities(self) -> str:
        return "".join(m for m in MODALITIES if m in self.splits["train"].features)

    @property
    def widths(self) -> dict[str, int]:
        return {m: int(x.shape[2]) for m, x in self.splits["train"].features.items()}

    @property
    def seq_lengths(self) -> dict[str, int]:
        return {m: int(x.shape[1]) for m, x in self.splits["train"].features.items()}

    @property
    def output_dim(self) -> int:
        return 1 if self.task == "regression" else self.n_classes

    def select(self, modalities: str) -> "MultimodalData":
        """A view that keeps only the given modality streams (e.g. ``"ta"``)."""
        unknown = [m for m in modalities if m not in MODALITIES]
        if unknown or not modalities:
            raise DataError(self.source, "modalities", "a non-empty subset of 'tav'", repr(modalities))
        absent = [m for m in modalities if m not in self.modalities]
        if absent:
            raise DataError(self.source, "modalities", f"streams present in the file ({self.modalities})",
                            f"{''.join(absent)} requested but absent")
        splits = {
            s: Split(features={m: sp.features[m] for m in modalities},
                     labels=sp.labels, ids=sp.ids,
                     lengths={m: v for m, v in sp.lengths.items() if m in modalities},
                     extras=sp.extras)
            for s, sp in self.splits.items()
        }
        return MultimodalData(self.name, self.task, splits, self.n_classes, dict(self.info), self.source)

    def fingerprint(self) -> str:
        """16 hex digits of sha256 over every split's labels, features and valid lengths (with
        shapes and dtypes, in a fixed order): equal fingerprints, equal numbers. The run store and
        the sweep cache key on it. Remembered while the object holds the same arrays; changing an
        array's values in place is not noticed."""
        splits = sorted(self.splits.items())
        key = tuple(id(a) for _, sp in splits
                    for a in (sp.labels, *sp.features.values(), *sp.lengths.values()))
        cached = self.__dict__.get("_fingerprint")
        if cached is not None and cached[0] == key:
            return cached[1]
        h = hashlib.sha256()
        for name, split in splits:
            h.update(f"{name}|{np.asarray(split.labels).dtype.str}".encode())
            h.update(np.ascontiguousarray(split.labels).tobytes())
            for m in sorted(split.features):
                x = np.ascontiguousarray(split.features[m])
                h.update(f"|{m}|{x.shape}|{x.dtype.str}".encode())
                h.update(x.tobytes())
            for m in sorted(split.lengths):                  # absent when nothing is padded
                ln = np.ascontiguousarray(split.lengths[m], dtype=np.int64)
                h.update(f"|{m}_lengths|{ln.shape}".encode())
                h.update(ln.tobytes())
        digest = h.hexdigest()[:16]
        self.__dict__["_fingerprint"] = (key, digest)
        return digest

    def summary(self) -> str:
        """A few lines: name, task, source, each stream's length and width, each split's size."""
        lines = [f"{self.name} ({self.task}) from {self.source}"]
        for m in self.modalities:
            lines.append(f"  {m}: length {self.seq_lengths[m]}, width {self.widths[m]}")
        for s in SPLITS:
            y = self.splits[s].labels
            lines.append(f"  {s}: {len(y)} samples, label mean {float(np.mean(y)):.3f}")
        return "\n".join(lines)


@dataclass
class Batch:
    """What the model and the losses see. Masks are True on valid (non-padded) steps."""

    features: dict[str, torch.Tensor]                # m -> (B, L_m, d_m)
    masks: dict[str, torch.Tensor]                   # m -> (B, L_m) bool; absent = all valid
    label: torch.Tensor                              # (B,) float (regression) or long
    index: torch.Tensor                              # (B,) position of each sample in its split

    def to(self, device, non_blocking: bool = False) -> "Batch":
        mv = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return Batch({m: mv(x) for m, x in self.features.items()},
                     {m: mv(x) for m, x in self.masks.items()}, mv(self.label), mv(self.index))

    def pin_memory(self) -> "Batch":
        """Called by DataLoader(pin_memory=True), for asynchronous host-to-GPU copies."""
        pin = lambda t: t.pin_memory()  # noqa: E731
        return Batch({m: pin(x) for m, x in self.features.items()},
                     {m: pin(x) for m, x in self.masks.items()}, pin(self.label), pin(self.index))

    def __len__(self) -> int:
        return int(self.label.shape[0])


class SplitDataset(Dataset):
    """Index-based view of a Split; ``collate`` builds a :class:`Batch`."""

    def __init__(self, split: Split, task: str):
        self.split = split
        self.task = task
        self.features = {m: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
                         for m, x in split.features.items()}
        self.lengths = {m: torch.from_numpy(np.asarray(v, dtype=np.int64)) for m, v in split.lengths.items()}
        dtype = np.float32 if task == "regression" else np.int64
        self.labels = torch.from_numpy(np.asarray(split.labels, dtype=dtype))

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> int:
        return i

    def __getitems__(self, indices: list[int]) -> list[int]:
        """A whole batch's indices at once (the DataLoader then skips a call per sample)."""
        return indices

    def collate(self, indices: list[int]) -> Batch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        # rows gathered from a 2-D view (N, L * d): several times faster than from (N, L, d)
        feats = {m: x.view(len(x), -1).index_select(0, idx).view(len(idx), *x.shape[1:])
                 for m, x in self.features.items()}                                   # (B, L_m, d_m)
        masks = {m: torch.arange(feats[m].shape[1])[None, :] < ln[idx][:, None]    # (B, L_m)
                 for m, ln in self.lengths.items()}
        return Batch(feats, masks, self.labels[idx], idx)


def make_loader(data: MultimodalData, split: str, batch_size: int, shuffle: bool = False,
                seed: int = 0, pin_memory: bool = False, num_workers: int = 0) -> DataLoader:
    """A DataLoader of :class:`Batch` over one split; ``seed`` fixes the shuffling order."""
    ds = SplitDataset(data.splits[split], data.task)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=ds.collate,
                      generator=gen, pin_memory=pin_memory, num_workers=num_workers)


def _row_digests(split: Split) -> list[bytes]:
    """One digest per sample of every feature stream (its valid steps as stored)."""
    out = []
    mods = sorted(split.features)
    for i in range(len(split)):
        h = hashlib.blake2b(digest_size=16)
        for m in mods:
            h.update(np.ascontiguousarray(split.features[m][i]).tobytes())
        out.append(h.digest())
    return out


def shared_samples(data: "MultimodalData", a: str = "train", b: str = "test") -> dict[str, int]:
    """Samples of split ``a`` that are also in split ``b``: ``{"ids": n, "features": n}`` (the
    same sample id, or identical features in every stream). A test set that shares samples
    with the training set measures memory, not generalisation."""
    sa, sb = data.splits[a], data.splits[b]
    ids = len({str(i) for i in sa.ids} & {str(i) for i in sb.ids})
    feats = len(set(_row_digests(sa)) & set(_row_digests(sb))) if len(sa) and len(sb) else 0
    return {"ids": ids, "features": feats}


def overlap_warning(data: "MultimodalData") -> str | None:
    """One line saying which splits share samples, or None."""
    parts = []
    for a, b in (("train", "test"), ("train", "valid"), ("valid", "test")):
        if a in data.splits and b in data.splits:
            n = shared_samples(data, a, b)
            if n["ids"] or n["features"]:
                parts.append(f"{a} and {b} share {n['ids']} sample id(s) and {n['features']} sample(s) "
                             "with identical features")
    if not parts:
        return None
    return f"{data.source}: field 'splits': expected disjoint splits, found: " + "; ".join(parts)
