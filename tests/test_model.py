"""The network: shapes, gradient reversal, discriminator cosines, CMAF against explicit loops."""

import math

import pytest
import torch

from fdmer_lite.config import get_preset
from fdmer_lite.model import FDMER, CMAF, ModalityDiscriminator, build_model, grad_reverse
from fdmer_lite.model.encoders import ModalityCentring, temporal_pool

WIDTHS = {"t": 12, "a": 5, "v": 7}


def batch(B=4, L=9, widths=WIDTHS):
    g = torch.Generator().manual_seed(0)
    return {m: torch.randn(B, L, d, generator=g) for m, d in widths.items()}


def small(**model):
    return get_preset("fast").replace(model=model)


def test_gradient_reversal_flips_gradient_and_keeps_value():
    x = torch.randn(3, 4, requires_grad=True)
    w = torch.randn(3, 4)
    y = grad_reverse(x, 1.0)
    torch.testing.assert_close(y, x)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -w)
    x.grad = None
    (grad_reverse(x, 0.5) * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * w)


def test_discriminator_cosines_match_explicit_formula():
    torch.manual_seed(1)
    D = ModalityDiscriminator(d_k=6, d=4, n_modalities=3)
    h = torch.randn(5, 6)
    with torch.no_grad():
        got = D(h)
        f = h @ D.project.weight.T + D.project.bias
    for i in range(5):
        for m in range(3):
            w = D.class_weights[:, m].detach()
            expected = float(f[i] @ w) / (float(f[i].norm()) * float(w.norm()))
            assert got[i, m].item() == pytest.approx(expected, abs=1e-6)
    assert got.abs().max() <= 1 + 1e-6


def test_forward_output_shapes_and_psi_sums_to_one():
    cfg = small()
    model = build_model(cfg, WIDTHS, 1)
    out = model(batch())
    assert out.prediction.shape == (4,)
    assert out.psi.shape == (4, 4) and out.psi_names == ("C", "P_t", "P_a", "P_v")
    torch.testing.assert_close(out.psi.sum(1), torch.ones(4))
    assert out.disc_logits_common.shape == (4, 3, 3) and out.disc_logits_private.shape == (4, 3, 3)
    prob = model.discriminator.probability(out.disc_logits_common)
    torch.testing.assert_close(prob, torch.softmax(72.0 * out.disc_logits_common.detach(), dim=-1))
    torch.testing.assert_close(prob.sum(-1), torch.ones(4, 3))
    for m in "tav":
        assert out.common[m].shape == (4, cfg.model.d_k) and out.private[m].shape == (4, cfg.model.d_k)


def test_common_encoder_is_shared_private_encoders_are_not():
    model = build_model(small(common_centring=False), WIDTHS, 1)          # Eq. 2 as the paper has it
    out = model(batch())
    for m in "tav":
        torch.testing.assert_close(out.common[m], model.common_encoder(out.features[m]))
        torch.testing.assert_close(out.private[m], model.private_encoders[m](out.features[m]))
    assert len({id(e) for e in model.private_encoders.values()}) == 3


def test_gradient_reversal_sits_between_common_and_discriminator():
    torch.manual_seed(0)
    model = build_model(small(dropout=0.0), WIDTHS, 1).eval()
    x = batch()
    # gradient of sum(cos_common) with respect to C_t through the model's path ...
    out = model(x)
    C_t = out.common["t"]
    g_model = torch.autograd.grad(out.disc_logits_common.sum(), C_t, retain_graph=True)[0]
    # ... equals minus the gradient through the discriminator called directly (no reversal).
    C = torch.stack([out.common[m] for m in "tav"], dim=1)
    direct = torch.autograd.grad(model.discriminator(C).sum(), C_t)[0]
    torch.testing.assert_close(g_model, -direct)
    # grl_coeff scales the reversed gradient (the DANN ramp passes values in [0, 1])
    out = model(x, grl_coeff=0.25)
    g_quarter = torch.autograd.grad(out.disc_logits_common.sum(), out.common["t"], retain_graph=True)[0]
    torch.testing.assert_close(g_quarter, -0.25 * direct)
    # the private branch is NOT reversed
    P_t = out.private["t"]
    g_p = torch.autograd.grad(out.disc_logits_private.sum(), P_t, retain_graph=True)[0]
    P = torch.stack([out.private[m] for m in "tav"], dim=1)
    torch.testing.assert_close(g_p, torch.autograd.grad(model.discriminator(P).sum(), P_t)[0])


def test_confusion_adversary_outputs_frozen_cosines():
    cfg = small(aux_scope="all").replace(loss={"adversary": "confusion"})
    model = build_model(cfg, WIDTHS, 1)
    out = model(batch())
    assert out.disc_logits_common_frozen is not None
    out.disc_logits_common_frozen.sum().backward()
    assert model.discriminator.class_weights.grad is None          # the frozen copy does not train D
    assert model.encoders["t"].to_model.weight.grad is not None     # but it reaches the encoders


def layer_norm_by_hand(x, ln):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance)."""
    mean = sum(x) / len(x)
    var = sum((xi - mean) ** 2 for xi in x) / len(x)
    return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def cmaf_by_loops(f: CMAF, tokens, scaled: bool = True):
    """Eq. 12-17 as the paper writes them, sample by sample and target by target:
    G_ta = LN(F_ta) W_G, Q_so = LN(F_so) W_Q, U_so = LN(F_so) W_U with F_so one T*d_k vector."""
    B, T, D = tokens.shape
    out, psis = [], []
    for b in range(B):
        source = layer_norm_by_hand(tokens[b].reshape(T * D), f.norm_source)
        Q = (f.to_q.weight @ source + f.to_q.bias).reshape(T, D)
        U = (f.to_u.weight @ source + f.to_u.bias).reshape(T, D)
        Ys = []
        for j in range(T):
            target = layer_norm_by_hand(tokens[b, j], f.norm_in[j])          # LN(F_ta)
            G = target @ f.to_g[j]
            scores = torch.stack([G @ Q[k] / (math.sqrt(D) if scaled else 1.0) for k in range(T)])
            a = torch.exp(scores) / torch.exp(scores).sum()
            cross = sum(a[k] * U[k] for k in range(T))
            Y = target + cross                                               # Eq. 13
            Ys.append(f.f_delta(layer_norm_by_hand(Y, f.norm_mid[j])) + Y)   # Eq. 14
        mu = torch.stack([f.q @ torch.tanh(f.to_score[j].weight @ Ys[j] + f.to_score[j].bias) for j in range(T)])
        psi = torch.exp(mu) / torch.exp(mu).sum()
        out.append(sum(psi[j] * Ys[j] for j in range(T)))
        psis.append(psi)
    return torch.stack(out), torch.stack(psis)


@pytest.mark.parametrize("scaled", [True, False])
def test_cmaf_matches_explicit_loops(scaled):
    torch.manual_seed(3)
    f = CMAF(d_k=6, n_tokens=4, attn_scale=scaled).double().eval()
    for ln in [f.norm_source, *f.norm_in, *f.norm_mid]:                    # not the identity init
        torch.nn.init.normal_(ln.weight, 1.0, 0.3)
        torch.nn.init.normal_(ln.bias, 0.0, 0.3)
    tokens = torch.randn(3, 4, 6, dtype=torch.float64)
    fused, psi = f(tokens)
    fused_ref, psi_ref = cmaf_by_loops(f, tokens, scaled)
    torch.testing.assert_close(fused, fused_ref)
    torch.testing.assert_close(psi, psi_ref)


def test_cmaf_phase1_is_unchanged_when_every_token_is_scaled():
    # Every input of Eq. 12-13 is layer-normalised, so one positive factor on all the tokens
    # cancels; without the LayerNorms of Eq. 12 the attention scores would grow with its square.
    torch.manual_seed(4)
    f = CMAF(d_k=8, n_tokens=4).double().eval()
    tokens = torch.randn(5, 4, 8, dtype=torch.float64)
    Y, attn = f.cross_attention(tokens)
    for factor in (0.5, 7.0, 300.0):             # (LayerNorm's eps = 1e-5 is all that differs)
        Y_s, attn_s = f.cross_attention(factor * tokens)
        torch.testing.assert_close(attn_s, attn, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(Y_s, Y, atol=1e-4, rtol=1e-4)
    one = tokens.clone()
    one[:, 0] *= 3.0                             # one token alone: LN(F_so) sees a new vector
    assert not torch.allclose(f.cross_attention(one)[1], attn, atol=1e-3)


def test_cmaf_without_phases():
    tokens = torch.randn(2, 4, 6)
    f = CMAF(6, 4, phase1=False, phase2=False)
    fused, psi = f(tokens)
    torch.testing.assert_close(fused, tokens.mean(1))
    torch.testing.assert_close(psi, torch.full((2, 4), 0.25))


def test_padding_does_not_change_the_output():
    torch.manual_seed(0)
    model = build_model(small(dropout=0.0), WIDTHS, 1).eval()
    x = batch(B=2, L=6)
    mask = {m: torch.ones(2, 6, dtype=torch.bool) for m in "tav"}
    ref = model(x, mask).prediction
    padded = {m: torch.cat([v, 100 * torch.randn(2, 3, v.shape[2])], dim=1) for m, v in x.items()}
    pmask = {m: torch.cat([mask[m], torch.zeros(2, 3, dtype=torch.bool)], dim=1) for m in "tav"}
    torch.testing.assert_close(model(padded, pmask).prediction, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "last", "attention"])
def test_poolings_run(pooling):
    model = build_model(small(pooling=pooling), WIDTHS, 1)
    assert model(batch()).prediction.shape == (4,)


@pytest.mark.parametrize("mods", ["ta", "tv", "av", "t"])
def test_any_subset_of_modalities(mods):
    model = build_model(small(modalities=mods), WIDTHS, 2)
    out = model({m: v for m, v in batch().items() if m in mods})
    assert out.prediction.shape == (4, 2)
    assert out.psi.shape == (4, 1 + len(mods))
    if len(mods) > 1:
        assert out.disc_logits_common.shape == (4, len(mods), len(mods))
    else:
        assert out.disc_logits_common is None


def test_missing_width_is_a_clear_error():
    with pytest.raises(ValueError, match="input widths"):
        FDMER(small().model, {"t": 3}, 1)


def test_modality_centring_subtracts_batch_means_in_training_and_running_means_in_eval():
    torch.manual_seed(0)
    model = build_model(small(common_centring=True), WIDTHS, 1)
    means = []
    for seed in (1, 2, 3):
        x = {m: torch.randn(6, 9, d, generator=torch.Generator().manual_seed(seed)) for m, d in WIDTHS.items()}
        out = model(x)
        raw = {m: model.common_encoder(out.features[m]) for m in "tav"}          # E_c(h_m), uncentred
        for m in "tav":
            torch.testing.assert_close(out.common[m], raw[m] - raw[m].mean(dim=0))
        means.append(torch.stack([raw[m].mean(dim=0) for m in "tav"]).detach())
    # The running mean is the plain average of the first batch means (fewer than 1/momentum).
    torch.testing.assert_close(model.centring.running_mean, sum(means) / 3)
    model.eval()
    x = batch(B=1)
    out = model(x)
    for i, m in enumerate("tav"):
        torch.testing.assert_close(out.common[m], model.common_encoder(out.features[m]) - sum(means)[i] / 3)


def test_modality_centring_reaches_everything_that_reads_c():
    model = build_model(small(common_centring=True), WIDTHS, 1).eval()
    model.centring.running_mean.normal_()
    out = model(batch())
    C = torch.stack([out.common[m] for m in "tav"], dim=1)
    torch.testing.assert_close(out.disc_logits_common, model.discriminator(C))
    plain = build_model(small(common_centring=False), WIDTHS, 1)
    assert not any(isinstance(m, ModalityCentring) for m in plain.modules()) and "centring.running_mean" not in plain.state_dict()
    state = model.state_dict()
    again = build_model(small(common_centring=True), WIDTHS, 1)
    again.load_state_dict(state)                                   # the running mean is saved
    torch.testing.assert_close(again.centring.running_mean, model.centring.running_mean)


def _pool_by_loop(x, mask, stride):
    B, L, D = x.shape
    n = -(-L // stride)
    out, keep = torch.zeros(B, n, D), torch.zeros(B, n, dtype=torch.bool)
    for b in range(B):
        for w in range(n):
            steps = [t for t in range(w * stride, min(L, (w + 1) * stride)) if mask is None or mask[b, t]]
            if steps:
                out[b, w] = torch.stack([x[b, t] for t in steps]).mean(dim=0)
                keep[b, w] = True
    return out, keep


@pytest.mark.parametrize("L, stride, masked", [(8, 2, False), (9, 2, False), (9, 3, True), (7, 2, True)])
def test_temporal_pool_averages_the_valid_steps_of_each_window(L, stride, masked):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, L, 4, generator=g)
    mask = None
    if masked:
        mask = torch.ones(3, L, dtype=torch.bool)
        mask[1, L - 3:] = False                          # a padded tail
        mask[2, 1] = False                               # a hole inside a window
    pooled, keep = temporal_pool(x, mask, stride)
    expected, expected_keep = _pool_by_loop(x, mask, stride)
    torch.testing.assert_close(pooled * expected_keep[..., None], expected)
    if keep is None:
        assert expected_keep.all()
    else:
        assert torch.equal(keep, expected_keep)


def test_time_stride_feeds_the_transformer_the_pooled_sequence():
    torch.manual_seed(0)
    strided = build_model(small(time_stride=2), WIDTHS, 1).eval()
    plain = build_model(small(time_stride=1), WIDTHS, 1).eval()
    plain.load_state_dict(strided.state_dict())
    x = batch(L=10)
    pooled = {m: temporal_pool(v, None, 2)[0] for m, v in x.items()}
    torch.testing.assert_close(strided(x).prediction, plain(pooled).prediction)
    with pytest.raises(ValueError, match="time_stride"):
        build_model(small(time_stride=0), WIDTHS, 1)


def test_head_count_is_the_largest_divisor_not_above_the_limit():
    from fdmer_lite.model.encoders import head_count
    for width, most in [(300, 8), (74, 8), (47, 8), (768, 8), (5, 8), (20, 8), (16, 4)]:
        expected = max(h for h in range(1, most + 1) if width % h == 0)
        assert head_count(width, most) == expected
        assert width % head_count(width, most) == 0
    assert head_count(47, 8) == 1 and head_count(300, 8) == 6


def test_model_dim_none_runs_each_transformer_at_its_input_width():
    model = build_model(small(model_dim=None, heads=4), WIDTHS, 1)   # widths 12 / 5 / 7
    for m, width in WIDTHS.items():
        enc = model.encoders[m]
        assert isinstance(enc.to_model, torch.nn.Identity)
        layer = enc.transformer.layers[0]
        assert layer.qkv.in_features == width
        assert layer.heads == {12: 4, 5: 1, 7: 1}[width]
    assert model(batch()).prediction.shape == (4,)


def test_cross_entropy_variant_gives_raw_discriminator_logits():
    cfg = small().replace(loss={"margin_loss": "ce"})
    model = build_model(cfg, WIDTHS, 1).eval()
    out = model(batch())
    D = model.discriminator
    C = torch.stack([out.common[m] for m in "tav"], dim=1)
    raw = (C @ D.project.weight.T + D.project.bias) @ D.class_weights      # W_D^T F(h)
    torch.testing.assert_close(out.disc_logits_common, raw)
    torch.testing.assert_close(model.discriminator.probability(out.disc_logits_common), torch.softmax(raw, dim=-1))   # no alpha
    assert not build_model(small(), WIDTHS, 1).eval()(batch()).disc_logits_common.abs().gt(1 + 1e-6).any()


def test_scaled_mlp_init_keeps_the_scale_and_starts_without_offset():
    from fdmer_lite.model.encoders import MLPEncoder
    torch.manual_seed(0)
    x = torch.randn(8192, 64)
    with torch.no_grad():
        scaled, default = MLPEncoder(64, init="scaled"), MLPEncoder(64)
        y, y0 = scaled(x), default(x)
    # Independent figure: z ~ N(0, 2) after He init, E[gelu(z)^2] estimated by sampling, times
    # 64 * (1 / 64) from the LeCun second layer: the output variance the init aims at.
    z = torch.randn(1_000_000) * math.sqrt(2.0)
    want = float(torch.nn.functional.gelu(z).pow(2).mean())
    assert y.var(0).mean().item() == pytest.approx(want, rel=0.25)
    assert all(float(layer.bias.abs().max()) == 0.0 for layer in (scaled.net[0], scaled.net[3]))
    assert y0.std(0).mean() < 0.4 * y.std(0).mean()                        # PyTorch's default shrinks


def test_scaled_mlp_has_no_dropout_and_zero_biases_and_the_rest_keeps_dropout():
    model = build_model(small(dropout=0.3, mlp="scaled"), WIDTHS, 1)
    for mlp in (model.common_encoder, *model.private_encoders.values()):
        assert mlp.net[2].p == 0.0
        assert float(mlp.net[0].bias.abs().max()) == 0.0
    assert model.head[2].p == 0.3
    assert build_model(small(dropout=0.3), WIDTHS, 1).common_encoder.net[2].p == 0.3   # default: dropout
    with pytest.raises(ValueError, match="mlp must be"):
        build_model(small(mlp="xavier"), WIDTHS, 1)


def _grad_norms(model, loss):
    parts = {"transformers": model.encoders, "common": model.common_encoder,
             "private": model.private_encoders, "discriminator": model.discriminator}
    grads = torch.autograd.grad(loss, [p for m in parts.values() for p in m.parameters()],
                                retain_graph=True, allow_unused=True)
    out, i = {}, 0
    for name, module in parts.items():
        n = len(list(module.parameters()))
        out[name] = sum(float(g.abs().sum()) for g in grads[i:i + n] if g is not None)
        i += n
    return out


def test_aux_scope_encoders_keeps_the_auxiliary_losses_out_of_the_transformers():
    from fdmer_lite.losses import fdmer_objective
    torch.manual_seed(0)
    cfg = small(dropout=0.0, aux_scope="encoders")
    model = build_model(cfg, WIDTHS, 1).eval()
    reference = build_model(small(dropout=0.0, aux_scope="all"), WIDTHS, 1).eval()
    reference.load_state_dict(model.state_dict())
    x, y = batch(), torch.randn(4)
    out, ref = model(x), reference(x)
    # the same numbers either way: only where the gradients go differs
    torch.testing.assert_close(out.prediction, ref.prediction)
    for m in "tav":
        torch.testing.assert_close(out.common[m], ref.common[m])
        torch.testing.assert_close(out.private[m], ref.private[m])
    terms = fdmer_objective(out, y, cfg.loss)
    ref_terms = fdmer_objective(ref, y, cfg.loss)
    for term in ("ami", "ams", "con", "dis"):
        scoped, everywhere = _grad_norms(model, terms[term]), _grad_norms(reference, ref_terms[term])
        assert scoped["transformers"] == 0.0 and everywhere["transformers"] > 0, term
        for part in ("common", "private", "discriminator"):       # the encoders and D: unchanged
            assert scoped[part] == pytest.approx(everywhere[part], rel=1e-5), (term, part)
    task = _grad_norms(model, terms["task"])
    assert task["transformers"] == pytest.approx(_grad_norms(reference, ref_terms["task"])["transformers"], rel=1e-5)
    with pytest.raises(ValueError, match="aux_scope"):
        build_model(small(aux_scope="none"), WIDTHS, 1)


def test_forward_reads_like_figure_1_with_at_most_two_branch_points():
    """The parts are chosen when the model is built: forward's own branch points (if, for
    comprehensions' conditions, conditional expressions) number at most two."""
    import ast
    import inspect
    import textwrap
    tree = ast.parse(textwrap.dedent(inspect.getsource(FDMER.forward)))
    branches = [n for n in ast.walk(tree) if isinstance(n, (ast.If, ast.IfExp, ast.While))]
    branches += [c for n in ast.walk(tree) if isinstance(n, ast.comprehension) for c in n.ifs]
    assert len(branches) <= 2, [ast.unparse(b)[:60] for b in branches]


@pytest.mark.parametrize("change", [{"fusion_targets": "P"}, {"fusion_targets": "C"}, {"fusion_targets": "h"}])
def test_a_table4_part_left_out_gives_the_tokens_it_names(change):
    """Each Table-4 row's fusion input, checked against the representations themselves."""
    model = build_model(small(dropout=0.0, **change), WIDTHS, 1).eval()
    seen = {}
    model.fusion.register_forward_hook(lambda mod, args, out: seen.update(tokens=args[0]))
    out = model(batch())
    if change["fusion_targets"] == "h":
        expected = torch.stack([out.features[m] for m in "tav"], dim=1)
    elif change["fusion_targets"] == "P":
        expected = torch.stack([out.private[m] for m in "tav"], dim=1)
    else:
        expected = sum(out.common[m] for m in "tav")[:, None]
    torch.testing.assert_close(seen["tokens"], expected)
