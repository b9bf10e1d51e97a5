"""Differentiable collectives for DistributedDataParallel (the floor: imports torch only).

L_con (Eq. 4-5) and L_dis (Eq. 6-7) are not means over samples, so a process holding a shard of
the batch needs the whole batch's representations, with gradients that flow back to its own rows:
``gather_rows`` and ``global_mean``, which ``distributed.DistributedTrainer`` hands to the loss and
to the model's centring (nothing in the model or the losses imports this module).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


class _AllGather(torch.autograd.Function):
    """all_gather with a gradient: forward stacks every rank's (n, d) tensor into (W, n, d);
    backward sums the gradients over ranks (each rank's loss used every piece) and returns the
    slice of this rank's piece."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group, ctx.rank = group, dist.get_rank(group)
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.stack(parts)                                         # (W, n, d)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)      # (W, n, d)
        return grad[ctx.rank], None


class _AllReduceSum(torch.autograd.Function):
    """all_reduce (sum) with a gradient: every rank's output is the sum of all ranks' inputs, so
    the gradient of an input is the sum over ranks of the gradients of the output."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        total = x.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        return total

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def global_mean(x: torch.Tensor, group=None) -> torch.Tensor:
    """The mean over the first axis of the GLOBAL batch from each rank's (n_rank, ...) share,
    differentiable (``model.encoders.ModalityCentring`` under DDP)."""
    count = torch.tensor([float(x.shape[0])], dtype=x.dtype, device=x.device)
    dist.all_reduce(count, op=dist.ReduceOp.SUM, group=group)
    return _AllReduceSum.apply(x.sum(dim=0), group) / count


def gather_rows(x: torch.Tensor, sizes: list[int], group=None) -> torch.Tensor:
    """Differentiable all-gather of (n_rank, d) tensors of different lengths -> (n_global, d)."""
    pad = F.pad(x, (0, 0, 0, max(sizes) - x.shape[0]))                     # (n_max, d)
    parts = _AllGather.apply(pad, group)                                  # (W, n_max, d)
    return torch.cat([p[:n] for p, n in zip(parts, sizes)], dim=0)        # (n_global, d)
