"""The CPU speed devices (fdmer_lite/model/cpu_speed.py) against what they stand in for:
nn.Dropout's statistics, a loop over the attention sum, the fused kernel."""

import math

import pytest
import torch

from fdmer_lite.model.cpu_speed import PackedDropout, attention, attention_reference, dropout_mask


def test_dropout_mask_drops_at_the_requested_rate_and_is_unbiased():
    torch.manual_seed(0)
    p = 0.1
    mask = dropout_mask((400, 1000), p)                                     # 400,000 draws
    dropped = (mask == 0).float().mean().item()
    # Binomial standard error sqrt(p (1 - p) / n) = 4.7e-4; allow 5 of them.
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / mask.numel())
    assert abs(mask.mean().item() - 1.0) < 5e-3                              # E[mask] = 1
    kept = mask[mask > 0]
    assert torch.allclose(kept, torch.full_like(kept, kept[0].item()))
    assert kept[0].item() == pytest.approx(1 / (1 - p), rel=1e-3)


def test_dropout_mask_uses_every_bit_slice_evenly():
    # The four 15-bit slices of each 64-bit draw land on elements 4i, 4i+1, 4i+2, 4i+3: each
    # slice must drop at the same rate (a biased slice would show up here).
    torch.manual_seed(1)
    p = 0.3
    mask = dropout_mask((100_000, 4), p)
    rates = (mask == 0).float().mean(dim=0)
    se = math.sqrt(p * (1 - p) / 100_000)
    assert torch.all((rates - p).abs() < 5 * se), rates
    # and neighbouring elements are independent: P(both dropped) = p^2
    both = ((mask[:, 0] == 0) & (mask[:, 1] == 0)).float().mean().item()
    assert abs(both - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / 100_000)


def test_dropout_is_seeded_and_off_in_eval_mode():
    drop = PackedDropout(0.5)
    x = torch.ones(8, 16)
    torch.manual_seed(3)
    a = drop(x)
    torch.manual_seed(3)
    b = drop(x)
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 2.0}
    drop.eval()
    assert torch.equal(drop(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        PackedDropout(1.0)


def test_dropout_gradient_is_the_mask():
    torch.manual_seed(4)
    x = torch.randn(32, 8, requires_grad=True)
    y = PackedDropout(0.25)(x)
    y.sum().backward()
    # d(sum(x * mask))/dx = mask, and y = x * mask
    assert torch.allclose(y, x.detach() * x.grad)


def _loop_attention(q, k, v, pad):
    """softmax(q k^T / sqrt(d)) v one (sample, head, query) at a time, padded keys left out."""
    B, H, L, d = q.shape
    out = torch.zeros_like(q)
    for b in range(B):
        valid = ~pad[b] if (~pad[b]).any() else torch.ones(L, dtype=torch.bool)
        for h in range(H):
            for i in range(L):
                s = torch.stack([q[b, h, i] @ k[b, h, j] / d ** 0.5 for j in range(L) if valid[j]])
                w = torch.softmax(s, dim=0)
                out[b, h, i] = sum(wj * v[b, h, j] for wj, j in zip(w, [j for j in range(L) if valid[j]]))
    return out


def test_attention_reference_and_fused_kernel_match_a_loop():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 5, 4) for _ in range(3))
    pad = torch.zeros(3, 5, dtype=torch.bool)
    pad[1, 3:] = True
    pad[2, :] = True                                   # no valid step: attend to all of it
    keep = (~pad | pad.all(dim=1, keepdim=True))[:, None, None, :]
    expected = _loop_attention(q, k, v, pad)
    assert torch.allclose(attention_reference(q, k, v, keep), expected, atol=1e-5)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    assert torch.allclose(fused, expected, atol=1e-5)


def test_attention_dispatch_gives_the_reference_sum_with_and_without_weight_dropout():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 4) for _ in range(3))
    keep = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    keep[0, ..., 3:] = False
    drop = PackedDropout(0.5).eval()                                   # no dropout: the fused kernel
    torch.testing.assert_close(attention(q, k, v, keep, drop), attention_reference(q, k, v, keep), atol=1e-5, rtol=1e-5)
    drop.train()                                                       # on the CPU: the reference, same draws
    torch.manual_seed(1)
    ours = attention(q, k, v, keep, drop)
    torch.manual_seed(1)
    torch.testing.assert_close(ours, attention_reference(q, k, v, keep, drop))
