"""One training run on several processes (GPUs, or CPU cores) with DistributedDataParallel.

Launch with ``torchrun`` and the options of ``fdmer-lite train``::

    torchrun --nproc_per_node 2 -m fdmer_lite.distributed --dataset synthetic --preset synthetic \
        --out runs/ddp

Backend: ``nccl`` with one GPU per process on CUDA, ``gloo`` on the CPU (``--device cpu``). Rank 0
writes the run's files (those of ``fdmer-lite train``, plus ``distributed.json``); the other ranks
write nothing. Without torchrun the module runs as a world of one process.

Why W processes train the SAME model as one process (FDMER, Yang et al., ACM MM 2022, Eq. 18):

* Batches. Every rank draws the one-process ``Trainer``'s global batch (the same seeded sampler)
  and keeps its share ``batch[rank::W]``, so the W shards of step k ARE the one-process batch of
  step k. A global batch with fewer than W samples is skipped.
* Per-sample terms (L_task, L_ami, L_ams): shard means weighted by n_rank * W / n_global; DDP's
  average of the ranks' gradients is then the gradient of the global batch's mean.
* Batch-level terms (L_con, Eq. 4-5; L_dis, Eq. 6-7) are not means over samples: every rank
  gathers all ranks' C_m and P_m (``collectives.gather_rows``, differentiable) and computes them on
  the whole batch. The gather's backward sums the ranks' gradients, which DDP's average turns back
  into the exact gradient. The optional centring of C_m uses the global batch's mean
  (``collectives.global_mean``), by the same argument.
* Evaluation. Metrics and the validation task loss (it drives early stopping, so every rank must
  agree) are computed on the whole split from every rank's gathered predictions. The other
  validation terms are per-rank batches' averages (L_con, L_dis on B / W samples): comparable
  between epochs of one run, not with a one-process history.
* Seeds. All ranks start from the same seed (same initial weights); ranks above 0 then reseed
  their dropout stream (seed + 7919 * rank).

With dropout 0 the W-process run follows the one-process run up to floating-point reordering
(tests/test_distributed.py states the tolerance).
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
from .model import build_model
from .train import NonFiniteLoss, Trainer

# --------------------------------------------------------------------------------- setup


def init_process_group(backend: str | None = None) -> tuple[int, int, int]:
    """Join the process group torchrun set up (env:// rendezvous), or make a world of one.
    Returns (rank, world_size, local_rank). Backend: nccl when CUDA is present, else gloo."""
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
    L_ami and L_ams), from one forward/backward on two training samples; the random stream and
    the model's buffers are restored. DDP must not wait for their gradients, and
    ``find_unused_parameters`` counts a module whose output is returned as used, so the trainer
    sets ``requires_grad=False`` on them: their gradients stay None, as in one process."""
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
    """Eq. 18 on one rank's shard (module docstring): the per-sample terms weighted by ``share``
    = n_rank * W / n_global; L_con, L_dis (and the alignment) on ``gather``'s global rows of the
    rank's (n_rank, d) C_m and P_m."""
    terms = L.sample_terms(out, label, cfg, task)
    C, P = L.representations(out)
    terms.update(L.batch_terms([gather(c) for c in C], [gather(p) for p in P], cfg,
                               out.prediction.new_zeros((), dtype=torch.float32)))
    terms["all"] = L.total(terms, cfg, sample_weight=share)
    return terms


class DistributedTrainer(Trainer):
    """:class:`~fdmer_lite.train.Trainer` for one rank of a DDP run (see the module docstring).
    Create it, and call ``fit`` and ``evaluate``, in every process after
    :func:`init_process_group` (they communicate). ``model`` is the plain module (analysis,
    checkpoints); ``ddp`` its DistributedDataParallel wrapper for training steps."""

    def __init__(self, config: Config, data: MultimodalData, progress: bool | None = None):
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
        everyone = [None] * self.world
        dist.all_gather_object(everyone, (preds, index, sums))
        n = len(sp)
        order = np.concatenate([i for _, rank_index, _ in everyone for i in rank_index])
        assert np.array_equal(np.sort(order), np.arange(n)), "every sample must be predicted exactly once"
        pred = np.concatenate([p for rank_preds, _, _ in everyone for p in rank_preds])[np.argsort(order)]
        losses = {k: sum(s[k] for _, _, s in everyone) / n for k in self.terms}
        # the task loss on the whole split, exactly (it drives early stopping on every rank)
        labels = torch.from_numpy(np.asarray(sp.labels))
        exact = float(L.task_loss(torch.from_numpy(pred), labels, self.task))
        losses["all"] += exact - losses["task"]
        losses["task"] = exact
        return pred, losses


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """``torchrun ... -m fdmer_lite.distributed [the options of fdmer-lite train]``: that run on
    every process (``fdmer_lite.cli`` parses, checks and answers bad input); returns the exit
    status. Rank 0 writes ``--out`` (default ``runs/ddp``), with ``distributed.json``."""
    args = cli.build_parser().parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    return cli.run(_train, args)


def _train(args) -> int:
    cli.check_train(args)
    rank, world, _ = init_process_group("gloo" if args.device == "cpu" else None)
    try:
        cfg = cli.configure(args)
        data = cli.load_data(args, cfg)
        trainer = DistributedTrainer(cfg, data, progress=None if rank == 0 else False)
        if rank > 0:
            out = Path(tempfile.mkdtemp(prefix=f"fdmer-rank{rank}-"))
        else:
            out = Path(args.out or "runs/ddp")
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
