"""The written-out transformer layer against an independent reference: PyTorch's own
``nn.TransformerEncoderLayer`` (same weights)."""

import pytest
import torch
from torch import nn

from fdmer_lite.model.layers import TransformerEncoder, TransformerLayer


def _reference_layer(ours: TransformerLayer, dim, heads, ff_dim) -> nn.TransformerEncoderLayer:
    ref = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=ff_dim, dropout=0.0, activation="gelu",
                                     batch_first=True, norm_first=ours.norm_first)
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(ours.qkv.bias)
        ref.self_attn.out_proj.weight.copy_(ours.out.weight)
        ref.self_attn.out_proj.bias.copy_(ours.out.bias)
        ref.linear1.weight.copy_(ours.ff[0].weight)
        ref.linear1.bias.copy_(ours.ff[0].bias)
        ref.linear2.weight.copy_(ours.ff[3].weight)
        ref.linear2.bias.copy_(ours.ff[3].bias)
        for a, b in ((ref.norm1, ours.norm1), (ref.norm2, ours.norm2)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    return ref


@pytest.mark.parametrize("norm_first", [True, False])      # pre-norm (our reading), post-norm (Sec. 3.2)
def test_transformer_layer_matches_pytorch_reference_with_padding(norm_first):
    torch.manual_seed(0)
    dim, heads, ff = 16, 4, 32
    ours = TransformerLayer(dim, heads, ff, dropout=0.0, norm_first=norm_first)
    with torch.no_grad():                          # non-trivial LayerNorm parameters
        for norm in (ours.norm1, ours.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
    ref = _reference_layer(ours, dim, heads, ff)
    x = torch.randn(3, 7, dim)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 5:] = True
    pad[2, 2:] = True
    ours.train(), ref.train()                     # training mode: PyTorch's plain (non-fast) path
    expected = ref(x, src_key_padding_mask=pad)
    got = ours(x, pad)
    keep = ~pad
    assert torch.allclose(got[keep], expected[keep], atol=1e-5)
    assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_padded_steps_do_not_change_valid_steps():
    torch.manual_seed(0)
    enc = TransformerEncoder(8, 2, 16, layers=2, dropout=0.0).eval()
    x = torch.randn(2, 6, 8)
    pad = torch.tensor([[False] * 4 + [True] * 2, [False] * 6])
    y = x.clone()
    y[0, 4:] = 100 * torch.randn(2, 8)
    assert torch.allclose(enc(x, pad)[0, :4], enc(y, pad)[0, :4], atol=1e-5)
    assert torch.isfinite(enc(x, torch.ones(2, 6, dtype=torch.bool))).all()  # all padded: no NaN


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="divisible"):
        TransformerLayer(10, 3, 20)


def test_attention_dropout_is_its_own_setting_and_drops_weights_in_training():
    torch.manual_seed(0)
    layer = TransformerLayer(8, 2, 16, dropout=0.0, attn_dropout=0.5)
    assert layer.drop_attn.p == 0.5 and layer.drop1.p == 0.0
    assert TransformerLayer(8, 2, 16, dropout=0.2).drop_attn.p == 0.2      # None: same as dropout
    x = torch.randn(2, 6, 8)
    layer.train()
    torch.manual_seed(1)
    got = layer.attention(x, None)
    torch.manual_seed(1)                               # the same draws, by hand
    B, L, D = x.shape
    q, k, v = layer.qkv(x).view(B, L, 3, 2, D // 2).permute(2, 0, 3, 1, 4)
    scores = torch.softmax(q @ k.transpose(-2, -1) / (D // 2) ** 0.5, dim=-1)
    by_hand = layer.out((layer.drop_attn(scores) @ v).transpose(1, 2).reshape(B, L, D))
    assert torch.allclose(got, by_hand, atol=1e-6)
    assert not torch.allclose(got, layer.eval().attention(x, None), atol=1e-3)


def test_post_norm_stack_has_no_extra_final_norm_and_pre_norm_stack_has_one():
    from fdmer_lite.model.layers import TransformerEncoder
    pre, post = TransformerEncoder(8, 2, 16, 2, 0.0), TransformerEncoder(8, 2, 16, 2, 0.0, norm_first=False)
    assert isinstance(pre.norm, nn.LayerNorm) and isinstance(post.norm, nn.Identity)
    x = torch.randn(2, 5, 8) * 10 + 3
    z = post(x)                                   # a post-norm layer ends with LayerNorm
    torch.testing.assert_close(z.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)


def test_a_pre_norm_stack_without_final_norm_is_pytorchs_stack_and_keeps_each_steps_size():
    from fdmer_lite.model.layers import TransformerEncoder
    torch.manual_seed(5)
    dim, heads, ff = 8, 2, 16
    ours = TransformerEncoder(dim, heads, ff, 2, 0.0, final_norm=False).eval()
    assert isinstance(ours.norm, nn.Identity)
    assert isinstance(TransformerEncoder(dim, heads, ff, 2, 0.0, norm_first=False, final_norm=False).norm, nn.Identity)
    ref = nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, heads, ff, 0.0, activation="gelu", batch_first=True,
                                                           norm_first=True), 2, enable_nested_tensor=False).eval()
    for i, layer in enumerate(ours.layers):           # PyTorch's stack, no norm= given: no final LayerNorm
        ref.layers[i] = _reference_layer(layer, dim, heads, ff).eval()
    x = torch.randn(3, 6, dim)
    x[:, 2] *= 20.0                                    # one loud time step
    with torch.no_grad():
        got, want = ours(x), ref(x)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        size = got.norm(dim=-1)                        # the loud step stays loud ...
        assert (size[:, 2] > 5 * size[:, [0, 1, 3, 4, 5]].max(dim=1).values).all()
        normed = TransformerEncoder(dim, heads, ff, 2, 0.0).eval()
        normed.load_state_dict(ours.state_dict(), strict=False)
        size = normed(x).norm(dim=-1)                  # ... a final LayerNorm makes every step one size
        torch.testing.assert_close(size, torch.full_like(size, dim ** 0.5), atol=1e-3, rtol=1e-3)
