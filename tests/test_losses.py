"""Each equation of the objective against an independent computation (loops, closed forms)."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from fdmer_lite import losses
from fdmer_lite.config import LossConfig

torch.manual_seed(0)


def cos_sim_loop(c):
    n = c.shape[0]
    S = torch.empty(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            a, b = c[i].double(), c[j].double()
            S[i, j] = (a @ b) / (a.norm() * b.norm())
    return S


def test_similarity_matrix_is_cosine_similarity():
    c = torch.randn(5, 7)
    torch.testing.assert_close(losses.similarity_matrix(c).double(), cos_sim_loop(c), atol=1e-6, rtol=1e-6)


def test_consistency_loss_three_modalities_by_loops():
    c_t, c_a, c_v = (torch.randn(6, 4) for _ in range(3))
    S = [cos_sim_loop(c) for c in (c_t, c_a, c_v)]
    expected = 0.0
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        for r in range(6):
            for s in range(6):
                expected += float(S[i][r, s] - S[j][r, s]) ** 2        # a SUM over entries
    expected /= 3
    assert losses.consistency_loss(c_t, c_a, c_v).item() == pytest.approx(expected, rel=1e-5)


def test_consistency_loss_is_zero_for_identical_directions_and_two_modalities():
    c = torch.randn(5, 3)
    assert losses.consistency_loss(c, 2.5 * c, c).item() == pytest.approx(0.0, abs=1e-6)
    c2 = torch.randn(5, 3)
    S1, S2 = cos_sim_loop(c), cos_sim_loop(c2)
    assert losses.consistency_loss(c, c2).item() == pytest.approx(float(((S1 - S2) ** 2).sum()), rel=1e-5)
    assert losses.consistency_loss(c).item() == 0.0


def test_centred_similarity_is_the_cosine_of_batch_centred_samples():
    c = torch.randn(6, 5, dtype=torch.float64)
    got = losses.similarity_matrix(c, centre=True)
    x = c - c.mean(dim=0)                                       # subtract the batch mean, by hand
    torch.testing.assert_close(got, cos_sim_loop(x), atol=1e-12, rtol=1e-12)


def test_centred_consistency_ignores_a_shared_constant_that_fools_the_plain_one():
    c_t, c_a = torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 4, dtype=torch.float64)
    big = 1e4 * torch.randn(4, dtype=torch.float64)
    # Two unrelated modalities: a clearly positive loss. Plain Eq. 4-5: a huge vector shared by
    # every sample makes every cosine ~1 and the loss all but vanishes. Centred, the constant is
    # gone before S is built: the loss is that of the explicitly centred inputs.
    assert losses.consistency_loss(c_t, c_a).item() > 1.0
    assert losses.consistency_loss(c_t + big, c_a + big).item() < 1e-4
    assert losses.consistency_loss(c_t + big, c_a - big, centre=True).item() == pytest.approx(
        losses.consistency_loss(c_t - c_t.mean(0), c_a - c_a.mean(0)).item(), rel=1e-9)


def test_hsic_linear_kernel_closed_form():
    # tr(U X X^T U Y Y^T) = ||Xc^T Yc||_F^2 with Xc, Yc column-centred.
    x, y = torch.randn(9, 4, dtype=torch.float64), torch.randn(9, 3, dtype=torch.float64)
    xc, yc = x - x.mean(0), y - y.mean(0)
    expected = float((xc.T @ yc).pow(2).sum()) / (9 - 1) ** 2
    assert losses.hsic(x, y).item() == pytest.approx(expected, rel=1e-10)


def test_hsic_zero_for_independent_constructions_and_positive_for_dependent():
    x = torch.randn(50, 3, dtype=torch.float64)
    assert losses.hsic(x, torch.ones(50, 2, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-10)
    assert losses.hsic(x, x).item() > 0.5


def test_disparity_loss_is_mean_of_pairwise_hsic():
    p = [torch.randn(8, 5, dtype=torch.float64) for _ in range(3)]
    def closed(a, b):
        ac, bc = a - a.mean(0), b - b.mean(0)
        return float((ac.T @ bc).pow(2).sum()) / 49
    expected = sum(closed(a, b) for a, b in itertools.combinations(p, 2)) / 3
    assert losses.disparity_loss(*p).item() == pytest.approx(expected, rel=1e-10)


def test_angular_margin_with_zero_margin_and_unit_scale_is_cross_entropy():
    cos = torch.rand(10, 3) * 2 - 1
    y = torch.randint(0, 3, (10,))
    expected = F.cross_entropy(cos, y)
    torch.testing.assert_close(losses.angular_margin_loss(cos, y, scale=1.0, margin=0.0), expected)


def test_angular_margin_matches_explicit_formula():
    cos = torch.tensor([[0.9, 0.1, -0.3], [0.2, 0.5, 0.4], [-0.5, 0.3, 0.99]], dtype=torch.float64)
    y = torch.tensor([0, 2, 1])
    a, tau = 4.0, 0.5
    total = 0.0
    for i in range(3):
        theta = math.acos(cos[i, y[i]].item())
        target = math.exp(a * math.cos(theta + tau))
        others = sum(math.exp(a * cos[i, m].item()) for m in range(3) if m != y[i])
        total += -math.log(target / (target + others))
    got = losses.angular_margin_loss(cos, y, scale=a, margin=tau).item()
    assert got == pytest.approx(total / 3, rel=1e-9)


def test_angular_margin_is_finite_with_gradients_at_the_poles():
    cos = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]], requires_grad=True)
    loss = losses.angular_margin_loss(cos, torch.tensor([0, 0]), scale=72.0, margin=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(cos.grad).all()


def test_angular_margin_monotone_past_pi_minus_margin():
    # Target logit must keep decreasing as theta grows, also where theta + tau > pi.
    thetas = torch.linspace(0.0, math.pi, 200)
    cos = torch.stack([torch.cos(thetas), torch.zeros(200), torch.zeros(200)], dim=1)
    per = [losses.angular_margin_loss(cos[i:i + 1], torch.tensor([0]), 8.0, 0.5).item() for i in range(200)]
    assert all(b >= a - 1e-6 for a, b in zip(per, per[1:]))


def test_modality_loss_is_sum_over_modalities_mean_over_samples():
    cos = torch.rand(4, 3, 3) * 2 - 1
    expected = 0.0
    for b in range(4):
        for m in range(3):
            expected += losses.angular_margin_loss(cos[b, m][None], torch.tensor([m]), 72.0, 0.5).item()
    assert losses.modality_loss(cos, 72.0, 0.5).item() == pytest.approx(expected / 4, rel=1e-5)


def test_confusion_loss_minimal_at_uniform():
    uniform = torch.zeros(4, 3, 3)
    assert losses.confusion_loss(uniform, 72.0).item() == pytest.approx(3 * math.log(3), rel=1e-6)
    assert losses.confusion_loss(torch.rand(4, 3, 3), 72.0).item() > 3 * math.log(3)


class _Out:
    def __init__(self, B=6, M=3, d=5, reg=True):
        self.modalities = "tav"[:M]
        self.prediction = torch.randn(B) if reg else torch.randn(B, 2)
        self.common = {m: torch.randn(B, d) for m in self.modalities}
        self.private = {m: torch.randn(B, d) for m in self.modalities}
        self.disc_logits_common = torch.rand(B, M, M) * 2 - 1
        self.disc_logits_private = torch.rand(B, M, M) * 2 - 1
        self.disc_logits_common_frozen = None


def test_objective_eq18_combines_terms_with_beta_and_gamma():
    out, y = _Out(), torch.randn(6)
    cfg = LossConfig(beta=0.3, gamma=0.7)
    t = losses.fdmer_objective(out, y, cfg, "regression")
    mse = float(((out.prediction - y) ** 2).mean())
    assert t["task"].item() == pytest.approx(mse, rel=1e-6)
    C = [out.common[m] for m in "tav"]
    P = [out.private[m] for m in "tav"]
    # the default reading builds S_m from batch-centred C_m: the plain Eq. 5 on centred inputs
    assert t["con"].item() == pytest.approx(losses.consistency_loss(*[c - c.mean(0) for c in C]).item())
    raw = losses.fdmer_objective(out, y, LossConfig(beta=0.3, gamma=0.7, con_centre=False), "regression")
    assert raw["con"].item() == pytest.approx(losses.consistency_loss(*C).item())
    assert t["dis"].item() == pytest.approx(losses.disparity_loss(*P).item())
    expected = mse + 0.3 * (t["ami"] + t["ams"]).item() + 0.7 * (t["con"] + t["dis"]).item()
    assert t["all"].item() == pytest.approx(expected, rel=1e-5)
    assert set(t) == {"task", "ami", "ams", "con", "dis", "all"}


def test_the_confusion_adversary_reports_its_loss_under_its_own_key():
    """L_ami stays Eq. 10 on D's logits; the confusion loss (on the frozen D's logits, towards
    uniform, written out here with log_softmax) has its own term and joins Eq. 18 beside L_ami."""
    out, y = _Out(), torch.randn(6)
    out.disc_logits_common_frozen = torch.rand(6, 3, 3) * 2 - 1
    cfg = LossConfig(beta=0.3, gamma=0.7, adversary="confusion")
    t = losses.fdmer_objective(out, y, cfg, "regression")
    assert t["ami"].item() == pytest.approx(losses.modality_loss(out.disc_logits_common, 72.0, 0.5).item(), rel=1e-6)
    logp = torch.log_softmax(72.0 * out.disc_logits_common_frozen, dim=-1)
    assert t["confusion"].item() == pytest.approx(-(logp.mean(-1).sum(1).mean()).item(), rel=1e-6)
    expected = t["task"] + 0.3 * (t["ami"] + t["confusion"] + t["ams"]) + 0.7 * (t["con"] + t["dis"])
    assert t["all"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert losses.reported_terms(cfg) == (*losses.TERMS, "confusion")
    off = losses.fdmer_objective(out, y, LossConfig(adversary="confusion", aux_losses="con+dis"), "regression")
    assert off["confusion"].item() == 0.0 and off["ami"].item() == 0.0     # Table 4's row turns both off


@pytest.mark.parametrize("term, form", [("align", "sample"), ("align_mean", "mean")])
def test_the_alignment_extension_is_a_term_of_aux_losses_weighted_by_align_weight(term, form):
    out, y = _Out(), torch.randn(6)
    plain = losses.fdmer_objective(out, y, LossConfig(beta=0.3, gamma=0.7), "regression")
    cfg = LossConfig(beta=0.3, gamma=0.7, aux_losses=f"ami+ams+con+dis+{term}", align_weight=2.5)
    t = losses.fdmer_objective(out, y, cfg, "regression")
    C = [out.common[m].float() for m in "tav"]
    assert t["align"].item() == pytest.approx(losses.alignment_loss(*C, form=form).item(), rel=1e-9)
    assert t["all"].item() == pytest.approx(plain["all"].item() + 2.5 * t["align"].item(), rel=1e-6)
    assert "align" not in plain
    with pytest.raises(ValueError, match=r"aux_losses 'ami\+alig'.*\['alig'\] unknown"):
        losses.fdmer_objective(out, y, LossConfig(aux_losses="ami+alig"), "regression")
    with pytest.raises(ValueError, match="one alignment term at most"):            # not one silently
        losses.fdmer_objective(out, y, LossConfig(aux_losses="align+align_mean"), "regression")


def test_objective_switches_and_classification():
    out, y = _Out(reg=False), torch.randint(0, 2, (6,))
    cfg = LossConfig(aux_losses="ams+dis", margin_loss="cosine_ce")
    t = losses.fdmer_objective(out, y, cfg, "classification")
    assert t["task"].item() == pytest.approx(F.cross_entropy(out.prediction, y).item(), rel=1e-6)
    assert t["ami"].item() == 0.0 and t["con"].item() == 0.0
    assert t["ams"].item() == pytest.approx(losses.modality_loss(out.disc_logits_private, 72.0, 0.0).item(), rel=1e-6)


def test_cross_entropy_ablation_is_the_conventional_softmax_loss_on_raw_logits():
    # Table 4's "Cross-Entropy Loss": -log softmax(W_D^T F(h))_y, no scale, no margin, summed
    # over the modalities and averaged over the samples, written out with exp and log.
    out = _Out(B=4)
    raw = torch.randn(4, 3, 3) * 5.0                      # logits, not confined to [-1, 1]
    out.disc_logits_common, out.disc_logits_private = raw, 2.0 * raw
    t = losses.fdmer_objective(out, torch.randn(4), LossConfig(margin_loss="ce"), "regression")
    for got, logits in ((t["ami"], raw), (t["ams"], 2.0 * raw)):
        expected = 0.0
        for b in range(4):
            for m in range(3):
                z = logits[b, m].double()
                expected += -(z[m] - torch.log(torch.exp(z).sum())).item()
        assert got.item() == pytest.approx(expected / 4, rel=1e-5)
    with pytest.raises(ValueError, match="margin_loss"):
        losses.fdmer_objective(out, torch.randn(4), LossConfig(margin_loss="arc"), "regression")


def test_alignment_loss_matches_numpy_mahalanobis_and_ignores_scale():
    import numpy as np
    torch.manual_seed(0)
    B, d = 12, 3
    C = [torch.randn(B, d, dtype=torch.float64) for _ in range(3)]
    X = [c.numpy() for c in C]
    # pooled within-modality covariance by explicit sums
    S = np.zeros((d, d))
    for x in X:
        mu = x.mean(axis=0)
        for b in range(B):
            S += np.outer(x[b] - mu, x[b] - mu)
    S /= 3 * B
    S += 1e-3 * np.trace(S) / d * np.eye(d)
    Sinv = np.linalg.inv(S)
    pair_means = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        pair_means.append(np.mean([(X[i][b] - X[j][b]) @ Sinv @ (X[i][b] - X[j][b]) for b in range(B)]))
    expected = np.mean(pair_means) / (2 * d)
    assert float(losses.alignment_loss(*C)) == pytest.approx(expected, rel=1e-9)
    assert float(losses.alignment_loss(*[10 * c for c in C])) == pytest.approx(expected, rel=1e-9)
    same = torch.randn(B, d)
    assert float(losses.alignment_loss(same, same.clone(), same.clone())) == pytest.approx(0.0, abs=1e-6)
    # unrelated samples from one distribution sit near 1
    big = [torch.randn(20000, 8) for _ in range(2)]
    assert float(losses.alignment_loss(*big)) == pytest.approx(1.0, abs=0.03)


def test_alignment_loss_sees_a_small_offset_in_a_quiet_direction():
    # C varies a lot along x and hardly along y; a 0.05 offset along y is tiny in raw distance
    # but separates the modalities perfectly for a linear probe. Whitening makes it count.
    torch.manual_seed(0)
    x = torch.randn(4000, 1)
    quiet = 0.01 * torch.randn(4000, 1)
    Ct = torch.cat([x, quiet], dim=1)
    Ca = torch.cat([x, quiet + 0.05], dim=1)
    raw_ratio = float(((Ct - Ca) ** 2).sum(1).mean() / (2 * ((Ct - Ct.mean(0)) ** 2).sum(1).mean()))
    assert raw_ratio < 0.01                                   # invisible to a raw distance
    assert float(losses.alignment_loss(Ct, Ca)) > 1.0        # 25 (0.05/0.01)^2 / 4 ~ 6
    # gradients flow into the representations, not into the whitening
    Ct.requires_grad_(True)
    losses.alignment_loss(Ct, Ca).backward()
    assert Ct.grad is not None and torch.isfinite(Ct.grad).all()


def test_alignment_loss_mean_form_matches_numpy_and_ignores_within_modality_differences():
    import numpy as np
    torch.manual_seed(1)
    B, d = 10, 3
    C = [torch.randn(B, d, dtype=torch.float64) + k for k in range(3)]
    X = [c.numpy() for c in C]
    S = sum(np.cov(x.T, bias=True) for x in X) / 3            # pooled within-modality covariance
    S += 1e-3 * np.trace(S) / d * np.eye(d)
    means = [x.mean(axis=0) for x in X]
    expected = np.mean([np.linalg.solve(S, means[i] - means[j]) @ (means[i] - means[j])
                        for i, j in ((0, 1), (0, 2), (1, 2))]) / (2 * d)
    assert float(losses.alignment_loss(*C, form="mean")) == pytest.approx(expected, rel=1e-9)
    # same means, unrelated samples: the mean form is ~0 where the sample form is ~1
    a = torch.randn(B, d, dtype=torch.float64)
    b = torch.randn(B, d, dtype=torch.float64)
    b = b - b.mean(0) + a.mean(0)
    assert float(losses.alignment_loss(a, b, form="mean")) == pytest.approx(0.0, abs=1e-12)
    assert float(losses.alignment_loss(a, b, form="sample")) > 0.3
    with pytest.raises(ValueError, match="form must be"):
        losses.alignment_loss(a, b, form="median")




@pytest.mark.parametrize("norm, power", [("sum", 0), ("sample", 1), ("entry", 2)])
def test_consistency_loss_normalisations_divide_the_frobenius_sum_by_n_to_a_power(norm, power):
    torch.manual_seed(3)
    n = 7
    c = [torch.randn(n, 5) for _ in range(3)]
    total = 0.0                                       # Eq. 5 by loops over the n x n entries
    for i, j in ((0, 1), (0, 2), (1, 2)):
        for a in range(n):
            for b in range(n):
                s_i = float(c[i][a] @ c[i][b] / (c[i][a].norm() * c[i][b].norm()))
                s_j = float(c[j][a] @ c[j][b] / (c[j][a].norm() * c[j][b].norm()))
                total += (s_i - s_j) ** 2
    expected = total / 3 / n ** power
    assert float(losses.consistency_loss(*c, norm=norm)) == pytest.approx(expected, rel=1e-5)
    # doubling the batch by repeating it quadruples the sum, doubles "sample", keeps "entry"
    twice = float(losses.consistency_loss(*[torch.cat([x, x]) for x in c], norm=norm))
    assert twice == pytest.approx(expected * 4 / 2 ** power, rel=1e-5)
    with pytest.raises(ValueError, match="con_norm"):
        losses.consistency_loss(*c, norm="mean")


def test_hsic_of_a_single_sample_is_zero_and_a_one_sample_batch_trains(tiny_data, fast_config):
    x, y = torch.randn(1, 4, requires_grad=True), torch.randn(1, 4)
    value = losses.hsic(x, y)
    assert value.item() == 0.0
    value.backward()                                               # in the graph, with a zero gradient
    assert torch.equal(x.grad, torch.zeros_like(x))
    from fdmer_lite.train import Trainer
    n = len(tiny_data.splits["train"])
    cfg = fast_config.replace(train={"epochs": 1, "batch_size": n - 1})   # the last batch holds one sample
    history = Trainer(cfg, tiny_data).fit()
    assert all(math.isfinite(v) for v in history[0]["train"].values())
