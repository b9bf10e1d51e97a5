"""One training run on several processes (GPUs, or CPU cores) with DistributedDataParallel.

Launch with PyTorch's own launcher, ``torchrun`` (= ``python -m torch.distributed.run``), and the
options of ``fdmer-lite train`` (:func:`main` takes them from ``fdmer_lite.cli``)::

    torchrun --nproc_per_node 2 -m fdmer_lite.distributed --dataset synthetic --preset synthetic \
        --out runs/ddp

Backend: ``nccl`` with one GPU per process on CUDA, ``gloo`` on the CPU (``--device cpu``). Rank 0
writes the run's files (``metrics.json``, ``history.json``, ``config.json``, ``model.pt``, plus
``distributed.json``); the other ranks write nothing. Without torchrun the module runs as a world
of one process.

What makes W processes train the SAME model as one process (FDMER, Yang et al., ACM MM 2022,
Eq. 18, with the batch size of the configuration):

* Batches. Every rank draws the global batch exactly as the one-process ``Trainer`` does (the
  same seeded ``RandomSampler``) and keeps its interleaved share ``batch[rank::W]``
  (:class:`ShardedBatchSampler`). So the union of the W shards of step k IS the one-process batch
  of step k. A global batch with fewer than W samples (a tiny last batch) is skipped.
* Per-sample terms (L_task, L_ami, L_ams): each rank takes the mean over its shard and weights it
  by n_rank * W / n_global; DDP averages gradients over ranks, so the result is the gradient of
  the mean over the global batch, also when shards differ in size.
* Batch-level terms (L_con, Eq. 5, compares B x B similarity matrices; L_dis, Eq. 6-7, HSIC over
  the batch): these are NOT means over samples, so shards cannot stand in for the batch. The
  common and private representations of all ranks are gathered with a differentiable all-gather
  (``torch.distributed.nn.functional.all_gather``, on a separate process group) and the two terms
  are computed on the whole global batch on every rank. The all-gather's backward sums the
  gradients of all ranks, which DDP's average turns back into the exact gradient.
* The optional centring of C_m (``ModelConfig.common_centring``) subtracts the global batch's
  per-modality mean: each rank's sum is all-reduced with a gradient, by the same argument.
* Evaluation. Each rank predicts an interleaved shard of the split (no padding, so no duplicates);
  the predictions are gathered (``all_gather_object``), put back in split order, and the metrics
  and the validation task loss (which drives early stopping, so every rank must agree on it) are
  computed on the WHOLE split. The other validation loss terms in the history are averages over
  the ranks' evaluation batches; L_con and L_dis there are computed per rank batch (B / W samples),
  so they are comparable between epochs of one run, not with a one-process history.
* Seeds. All ranks start from the same seed (identical initial weights; DDP also broadcasts rank 0's
  weights). Ranks above 0 then reseed their dropout stream (seed + 7919 * rank), so shards do not
  share dropout masks.

With dropout 0 the W-process run therefore follows the one-process run up to floating-point
reordering (tests/test_distributed.py states the tolerance).
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler

from . import cli
from .collectives import gather_rows, global_mean
from .config import Config
from .data.base import MultimodalData, SplitDataset
from .experiments.runs import obtain
from . import losses as L
from .losses import task_loss
from .model import build_model
from .train import NonFiniteLoss, Trainer

# --------------------------------------------------------------------------------- setup


def init_process_group(backend: str | None = None) -> tuple[int, int, int]:
    """Join the process group torchrun set up (env:// rendezvous), or make a world of one.

    Returns (rank, world_size, local_rank). Backend: nccl when CUDA is present, else gloo.
    """
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            dist.init_process_group(backend, timeout=timedelta(minutes=30))
        else:                                              # a world of one, without torchrun
            store = dist.FileStore(tempfile.mktemp(prefix="fdmer-ddp-"), 1)
            dist.init_process_group(backend, store=store, rank=0, world_size=1)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))


class ShardedBatchSampler(Sampler[list[int]]):
    """Yields this rank's interleaved share ``batch[rank::world]`` of every global batch."""

    def __init__(self, batch_sampler, rank: int, world: int):
        self.batch_sampler, self.rank, self.world = batch_sampler, rank, world

    def __iter__(self):
        for batch in self.batch_sampler:
            if len(batch) >= self.world:                    # every rank must get a sample
                yield batch[self.rank::self.world]

    def __len__(self) -> int:
        return len(self.batch_sampler)


def unused_parameters(trainer: Trainer) -> list[str]:
    """Names of the parameters the objective gives no gradient (e.g. the discriminator without
    L_ami and L_ams: it still runs in forward, but nothing in the loss uses its output). One
    forward/backward on two training samples; the random stream and the model's buffers (the
    running means of ``common_centring``) are restored afterwards.

    DDP must not wait for their gradients. ``find_unused_parameters`` does not help here (it
    counts a module as used when its output is returned, even if the loss ignores it), so the
    trainer sets ``requires_grad=False`` on them, which DDP leaves out of its synchronisation:
    their gradients stay None on every rank, exactly as in one process (Adam then skips them,
    weight decay included)."""
    state = torch.get_rng_state()
    model, was_training = trainer.model, trainer.model.training
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.train()
    ds = SplitDataset(trainer.data.splits["train"], trainer.data.task)
    batch = ds.collate(list(range(min(2, len(ds))))).to(trainer.device)
    out = model(batch.features, batch.masks)
    loss = L.fdmer_objective(out, batch.label, trainer.config.loss, trainer.task)["all"]
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    model.train(was_training)
    torch.set_rng_state(state)
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return [n for (n, _), g in zip(named, grads) if g is None]


# ------------------------------------------------------------------------------- trainer


def shard_objective(out, label, cfg, task: str, gather, share: float) -> dict:
    """Eq. 18 on one rank's shard of a global batch. L_task, L_ami and L_ams are means over the
    rank's own samples, weighted by ``share`` = n_rank * W / n_global, so that averaging the W
    ranks' gradients gives Eq. 18's on the global batch. L_con, L_dis (and the alignment) are
    terms of the whole batch: ``gather`` maps the rank's (n_rank, d) rows of C_m and P_m to the
    global batch's rows, with gradients, and they are computed on those."""
    terms = L.sample_terms(out, label, cfg, task)
    C, P = L.representations(out)
    terms.update(L.batch_terms([gather(c) for c in C], [gather(p) for p in P], cfg,
                               out.prediction.new_zeros((), dtype=torch.float32)))
    terms["all"] = L.total(terms, cfg, sample_weight=share)
    return terms


class DistributedTrainer(Trainer):
    """:class:`~fdmer_lite.train.Trainer` for one rank of a DDP run (see the module docstring).

    Create it in every process after :func:`init_process_group`; call ``fit`` and ``evaluate`` in
    every process (they communicate). ``model`` stays the plain module (for analysis and
    checkpoints); ``ddp`` is the DistributedDataParallel wrapper used for training steps.
    """

    def __init__(self, config: Config, data: MultimodalData, progress: bool = True):
        if not dist.is_initialized():
            raise RuntimeError("call fdmer_lite.distributed.init_process_group() first")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        on_cuda = dist.get_backend() == "nccl"
        device = f"cuda:{local_rank}" if on_cuda else "cpu"
        if on_cuda:
            torch.cuda.set_device(local_rank)
        self.rep_group = dist.new_group(backend="gloo" if not on_cuda else "nccl")
        super().__init__(config.replace(train={"device": device}), data, progress=progress)
        if self.rank > 0:                                     # own dropout stream per rank
            torch.manual_seed(config.train.seed + 7919 * self.rank)
        self.unused = unused_parameters(self)
        parameters = dict(self.model.named_parameters())
        for name in self.unused:                              # e.g. "discriminator.weight"
            parameters[name].requires_grad_(False)
        self.ddp = DistributedDataParallel(self.model, device_ids=[local_rank] if on_cuda else None)

    def new_model(self) -> torch.nn.Module:
        """The model, with the optional centring of C_m on the GLOBAL batch's means."""
        return build_model(self.config, self.data.widths, self.data.output_dim,
                           max_len=max(self.data.seq_lengths.values()),
                           batch_mean=functools.partial(global_mean, group=self.rep_group))

    # -- data ---------------------------------------------------------------------------------
    def loader(self, split: str, shuffle: bool = False):
        if not (split == "train" and shuffle):
            return super().loader(split, shuffle)
        t = self.config.train
        ds = SplitDataset(self.data.splits[split], self.data.task)
        gen = torch.Generator().manual_seed(t.seed)     # the same stream as the one-process loader
        global_batches = BatchSampler(RandomSampler(ds, generator=gen), t.batch_size, drop_last=False)
        return DataLoader(ds, batch_sampler=ShardedBatchSampler(global_batches, self.rank, self.world),
                          collate_fn=ds.collate, generator=gen, pin_memory=self.device.type == "cuda")

    # -- training step ------------------------------------------------------------------------
    def _forward(self, batch, grl_coeff: float = 1.0):
        if not self.model.training:
            return super()._forward(batch)
        batch = batch.to(self.device, non_blocking=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            out = self.ddp(batch.features, batch.masks, grl_coeff=grl_coeff)
        n = torch.tensor([len(batch)], device=self.device)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        dist.all_gather(sizes, n, group=self.rep_group)
        sizes = [int(s) for s in sizes]
        terms = shard_objective(out, batch.label, self.config.loss, self.task,
                                gather=lambda rows: gather_rows(rows, sizes, self.rep_group),
                                share=len(batch) * self.world / sum(sizes))
        return out, terms, batch

    def _check_finite(self, values, epoch, step):
        bad = torch.tensor([0.0 if all(math.isfinite(v) for v in values.values()) else 1.0],
                           device=self.device)
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)            # every rank stops together
        if bad.item() > 0:
            super()._check_finite(values, epoch, step)        # raises here with the details...
            self.restore_best()
            raise NonFiniteLoss(f"non-finite loss on another rank at epoch {epoch}, step {step}; "
                                f"training stopped on every rank")

    # -- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, split: str) -> tuple[np.ndarray, dict[str, float]]:
        """Predictions for the WHOLE split in split order, gathered from every rank's shard."""
        self.model.eval()
        sp = self.data.splits[split]
        ds = SplitDataset(sp, self.data.task)
        shard = list(range(self.rank, len(sp), self.world))                # no padding
        loader = DataLoader(ds, batch_size=max(1, self.config.train.batch_size // self.world),
                            sampler=shard, collate_fn=ds.collate)
        preds, index, sums = [], [], dict.fromkeys(self.terms, 0.0)
        for batch in loader:
            out, terms, batch = self._forward(batch)
            preds.append(out.prediction.float().cpu().numpy())
            index.append(batch.index.cpu().numpy())
            for k in self.terms:
                sums[k] += float(terms[k]) * len(batch) if k in terms else 0.0
        mine = (np.concatenate(preds) if preds else None, np.concatenate(index) if index else None, sums)
        everyone = [None] * self.world
        dist.all_gather_object(everyone, mine)
        n = len(sp)
        parts = [(p, i) for p, i, _ in everyone if p is not None]
        shape = (n,) + parts[0][0].shape[1:]
        pred = np.empty(shape, dtype=np.float32)
        seen = np.zeros(n, dtype=bool)
        for p, i in parts:
            pred[i] = p
            seen[i] = True
        assert seen.all(), "every sample of the split must be predicted exactly once"
        losses = {k: sum(s[k] for _, _, s in everyone) / n for k in self.terms}
        # the task loss on the whole split, exactly (it drives early stopping on every rank)
        exact = float(task_loss(torch.from_numpy(pred), torch.from_numpy(np.asarray(sp.labels)), self.task))
        losses["all"] += exact - losses["task"]
        losses["task"] = exact
        return pred, losses


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """``torchrun ... -m fdmer_lite.distributed [the options of fdmer-lite train]``: the run
    ``fdmer-lite train`` would train, on every process of the world (``fdmer_lite.cli`` parses,
    checks and answers bad input). Backend: gloo with ``--device cpu``, else nccl when CUDA is
    present. Rank 0 writes ``--out`` (default ``runs/ddp``), with ``distributed.json``."""
    args = cli.build_parser().parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    return cli.run(_train, args)


def _train(args) -> int:
    cli.check_train(args)
    rank, world, _ = init_process_group("gloo" if args.device == "cpu" else None)
    try:
        cfg = cli.configure(args)
        data = cli.load_data(args, cfg)
        trainer = DistributedTrainer(cfg, data, progress=rank == 0)
        out = Path(args.out or "runs/ddp") if rank == 0 else Path(tempfile.mkdtemp(prefix=f"fdmer-rank{rank}-"))
        if rank == 0:
            print(f"DDP: {world} process(es), backend {dist.get_backend()}, global batch "
                  f"{cfg.train.batch_size} ({cfg.train.batch_size / world:g} per rank); writing {out}",
                  flush=True)
        info = {"world_size": world, "backend": dist.get_backend(), "global_batch": cfg.train.batch_size,
                "per_rank_batch": cfg.train.batch_size / world}
        metrics = obtain(trainer.config, data, out, retrain=True, trainer=trainer, scores=rank == 0,
                         extra={"distributed.json": info}).metrics
        if rank == 0:
            print("test metrics (checkpoint best on validation):")
            cli.print_metrics(metrics)
        dist.barrier()
        if rank > 0:
            shutil.rmtree(out, ignore_errors=True)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
