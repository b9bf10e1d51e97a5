"""The FDMER objective (Yang et al., ACM MM 2022, Section 3.2-3.5, Eq. 4-11 and 18).

Pure functions of tensors: nothing here imports the model. Each function names its equation.

* Consistency (Eq. 4-5): S_m = norm(C_m) norm(C_m)^T is the batch cosine-similarity matrix of the
  common representations of modality m; L_con is the mean over modality pairs of the squared
  Frobenius norm ||S_m1 - S_m2||_F^2 (a SUM over the B x B entries, not a mean). With three
  modalities that is (1/3) * (sum over (t,a), (t,v), (a,v)).
* HSIC (Eq. 6): HSIC(X, Y) = (n-1)^-2 tr(U K_X U K_Y), K = X X^T, U = I - (1/n) e e^T.
  L_dis (Eq. 7) is the mean of HSIC over the private pairs.
* Additive angular margin (Eq. 9): with theta_m the angle between the normalised feature F(h)
  and the normalised class weight, L = -log e^{a cos(theta_y + tau)} /
  (e^{a cos(theta_y + tau)} + sum_{m != y} e^{a cos theta_m}).
* L_ami (Eq. 10) and L_ams (Eq. 11): the mean over samples of the SUM over modalities of Eq. 9
  for C_m (behind gradient reversal, inside the model) and P_m, with y_m the modality's index.
* Eq. 18: L_all = L_task + beta (L_ami + L_ams) + gamma (L_con + L_dis).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from .config import ALIGN_TERMS
from .config import ALPHA, TAU  # noqa: F401  (Eq. 9's constants, read here as losses.ALPHA, losses.TAU)

TERMS = ("task", "ami", "ams", "con", "dis", "all")


def reported_terms(cfg) -> tuple[str, ...]:
    """The terms a run reports: :data:`TERMS`, and "confusion" with the confusion adversary."""
    return TERMS + (("confusion",) if cfg.adversary == "confusion" else ())


MARGIN_LOSSES = ("angular", "cosine_ce", "ce")
AUX_TERMS = ("ami", "ams", "con", "dis", *ALIGN_TERMS, "none")   # what loss.aux_losses may list


def _pairs(items):
    return list(itertools.combinations(items, 2))


def similarity_matrix(c: torch.Tensor, centre: bool = False) -> torch.Tensor:
    """Eq. 4: S = norm(C) norm(C)^T, the (B, B) cosine similarities within the batch.

    ``centre=True`` subtracts the batch mean of C first (S becomes the matrix of Pearson
    correlations between samples): the *batch-centred* L_con of ``LossConfig.con_centre``, not
    the in-model centring of ``ModelConfig.common_centring``. Uncentred, one large vector shared by every sample makes every
    cosine close to 1, whatever the samples' own variation: see ``consistency_loss``.
    """
    if centre:
        c = c - c.mean(dim=0, keepdim=True)
    z = F.normalize(c, dim=-1)
    return z @ z.T


CON_NORMS = {"sum": 0, "sample": 1, "entry": 2}        # Eq. 5 divided by n to this power


def consistency_loss(*common: torch.Tensor, centre: bool = False, norm: str = "sum") -> torch.Tensor:
    """Eq. 5 for any number of modalities: mean over pairs of ||S_i - S_j||_F^2.

    ``consistency_loss(c_t, c_a, c_v)`` with three; zero with fewer than two. ``centre``: build
    each S_m from the batch-centred C_m (see ``similarity_matrix``). ``norm``: Eq. 5 as written
    sums the n x n entries (``"sum"``), so its size grows with the square of the batch; ``"sample"``
    divides by n (the mean over samples of each sample's row, as Eq. 10-11 average over
    samples), ``"entry"`` by n^2 (the mean over entries, as Eq. 6 divides HSIC's n x n trace by
    (n-1)^2).
    """
    if norm not in CON_NORMS:
        raise ValueError(f"con_norm must be one of {sorted(CON_NORMS)}, got {norm!r}")
    pairs = _pairs([similarity_matrix(c, centre) for c in common])
    if not pairs:
        return common[0].new_zeros(()) if common else torch.zeros(())
    n = common[0].shape[0]
    return torch.stack([((si - sj) ** 2).sum() for si, sj in pairs]).mean() / n ** CON_NORMS[norm]


def hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. 6 with inner-product kernels: (n-1)^-2 tr(U K_X U K_Y). Zero for a single sample,
    from which no dependence can be measured (a batch of one, the last of a split)."""
    n = x.shape[0]
    if n < 2:
        return (x.sum() + y.sum()) * 0.0                                    # zero, in the graph
    U = torch.eye(n, device=x.device, dtype=x.dtype) - 1.0 / n              # (n, n) centring
    K_x, K_y = x @ x.T, y @ y.T                                              # (n, n)
    return torch.trace(U @ K_x @ U @ K_y) / (n - 1) ** 2


def disparity_loss(*private: torch.Tensor) -> torch.Tensor:
    """Eq. 7: mean of HSIC over the pairs of private representations (zero with fewer than two)."""
    pairs = _pairs(private)
    if not pairs:
        return private[0].new_zeros(()) if private else torch.zeros(())
    return torch.stack([hsic(p, q) for p, q in pairs]).mean()


def angular_margin_loss(cosine: torch.Tensor, labels: torch.Tensor, scale: float = 72.0,
                        margin: float = 0.5) -> torch.Tensor:
    """Eq. 9, averaged over the batch. cosine (n, M) in [-1, 1], labels (n,) class ids.

    cos(theta_y + tau) is computed as cos theta cos tau - sin theta sin tau, with sin theta from a
    clamped square root (arccos has an infinite derivative at +-1). Where theta_y + tau would pass
    pi, cos(theta + tau) stops decreasing; there, as in ArcFace, the target logit continues
    linearly as cos theta - tau sin tau so the loss stays monotone in theta.
    """
    cos_y = cosine.gather(1, labels[:, None]).squeeze(1).clamp(-1.0, 1.0)    # (n,)
    sin_y = torch.sqrt((1.0 - cos_y ** 2).clamp_min(1e-7))
    with_margin = cos_y * math.cos(margin) - sin_y * math.sin(margin)        # cos(theta_y + tau)
    fallback = cos_y - margin * math.sin(margin)
    target = torch.where(cos_y > math.cos(math.pi - margin), with_margin, fallback)
    logits = cosine.scatter(1, labels[:, None], target[:, None].to(cosine.dtype))
    return F.cross_entropy(scale * logits, labels)


def modality_loss(cos: torch.Tensor, scale: float, margin: float) -> torch.Tensor:
    """Eq. 10/11 body: cos (B, M, M), row i of each sample has true class i.

    The mean over samples of the sum over the M modalities of Eq. 9. With ``margin = 0`` it is
    the softmax cross-entropy of ``scale * cos``; with ``scale = 1, margin = 0`` and raw logits
    in place of cosines it is the conventional cross-entropy (no clamping then).
    """
    B, M, _ = cos.shape
    labels = torch.arange(M, device=cos.device).repeat(B)                    # (B*M,)
    if margin == 0.0:
        return M * F.cross_entropy(scale * cos.reshape(B * M, M), labels)
    return M * angular_margin_loss(cos.reshape(B * M, M), labels, scale, margin)


def confusion_loss(cos: torch.Tensor, scale: float) -> torch.Tensor:
    """Cross-entropy of the discriminator's probabilities to the uniform distribution, summed over
    modalities and averaged over samples (the "confusion" adversary, an option beyond the paper)."""
    B, M, _ = cos.shape
    logp = torch.log_softmax(scale * cos, dim=-1)                            # (B, M, M)
    return -(logp.mean(dim=-1)).sum(dim=1).mean()


def alignment_loss(*common: torch.Tensor, shrink: float = 1e-3, form: str = "sample") -> torch.Tensor:
    """Extension beyond the paper: how far apart the modalities' common representations are, in
    the units a linear probe would see them.

        S     = within-modality covariance of the C_m (each modality centred on its own batch
                mean, pooled), plus shrink * tr(S)/d * I; treated as a constant (no gradient)
        form "sample": mean over pairs (i, j) of  mean_b (C_i[b] - C_j[b])^T S^-1 (C_i[b] - C_j[b]) / (2 d)
        form "mean":   mean over pairs (i, j) of  (m_i - m_j)^T S^-1 (m_i - m_j) / (2 d),
                       m_i = mean_b C_i[b]  (first-moment matching, as the central moment
                       discrepancy that MISA uses for its shared space, whitened)

    "sample" is 0 when C_t, C_a, C_v are identical for every sample and about 1 when they are no
    closer than two unrelated samples. "mean" only asks the modalities' *average* C to coincide:
    a per-modality offset is the one thing the linear modality probe of
    ``analysis.disentanglement_scores`` reads (centre each modality on its own mean and the probe
    falls to chance), and offsets carry nothing about the label.

    Measuring the gaps after whitening by S matters: a small but steady offset between
    modalities along a direction in which C hardly varies is all a linear probe needs to tell
    the modalities apart (Fisher's discriminant), and whitening makes exactly that offset large.
    It also makes the term blind to the scale of C.
    """
    if form not in ("sample", "mean"):
        raise ValueError(f"alignment form must be 'sample' or 'mean', got {form!r}")
    pairs = _pairs(common)
    if not pairs:
        return common[0].new_zeros(())
    d = common[0].shape[-1]
    with torch.no_grad():
        centred = torch.cat([c - c.mean(dim=0) for c in common]).double()   # (M*B, d)
        S = centred.T @ centred / centred.shape[0]                          # (d, d)
        S = S + shrink * S.trace() / d * torch.eye(d, dtype=S.dtype, device=S.device)
        L = torch.linalg.cholesky(S)                                         # S = L L^T
        W = torch.linalg.solve_triangular(L, torch.eye(d, dtype=S.dtype, device=S.device),
                                          upper=False).to(common[0].dtype)   # L^(-1)
    if form == "mean":
        gaps = [((ci.mean(dim=0) - cj.mean(dim=0)) @ W.T).pow(2).sum() for ci, cj in pairs]
    else:
        gaps = [((ci - cj) @ W.T).pow(2).sum(dim=-1).mean() for ci, cj in pairs]
    return torch.stack(gaps).mean() / (2 * d)


def task_loss(prediction: torch.Tensor, label: torch.Tensor, task: str) -> torch.Tensor:
    """MSE for regression, cross-entropy for classification (Eq. 18's L_task)."""
    if task == "regression":
        return F.mse_loss(prediction.float(), label.float())
    return F.cross_entropy(prediction.float(), label.long())


def sample_terms(out, label: torch.Tensor, cfg, task: str = "regression") -> dict[str, torch.Tensor]:
    """The terms of Eq. 18 that are means over samples: L_task, L_ami (Eq. 10), L_ams (Eq. 11),
    and, with the confusion adversary (an extension), its loss under its own key "confusion"."""
    zero = out.prediction.new_zeros((), dtype=torch.float32)
    terms = {"task": task_loss(out.prediction, label, task)}
    listed = set(cfg.aux_losses.split("+"))
    if not listed <= set(AUX_TERMS) or set(ALIGN_TERMS) <= listed:
        raise ValueError(f"loss.aux_losses {cfg.aux_losses!r}: expected terms from {AUX_TERMS} joined by "
                         f"'+' (one alignment term at most), or 'none'; "
                         f"got {sorted(listed - set(AUX_TERMS))} unknown")
    if cfg.margin_loss not in MARGIN_LOSSES:
        raise ValueError(f"margin_loss must be one of {MARGIN_LOSSES}, got {cfg.margin_loss!r}")
    # "angular": Eq. 9. "cosine_ce": the same scaled cosines, no margin. "ce": the conventional
    # softmax cross-entropy on the raw logits W_D^T F(h) (no normalisation, scale or margin).
    scale, margin = (1.0, 0.0) if cfg.margin_loss == "ce" else \
        (ALPHA, TAU if cfg.margin_loss == "angular" else 0.0)
    has_disc = out.disc_logits_common is not None
    terms["ami"] = modality_loss(out.disc_logits_common.float(), scale, margin) if (has_disc and cfg.uses("ami")) else zero
    terms["ams"] = modality_loss(out.disc_logits_private.float(), scale, margin) if (has_disc and cfg.uses("ams")) else zero
    if out.disc_logits_common_frozen is not None:
        terms["confusion"] = confusion_loss(out.disc_logits_common_frozen.float(), scale) if cfg.uses("ami") else zero
    return terms


def batch_terms(C: list[torch.Tensor], P: list[torch.Tensor], cfg, zero: torch.Tensor) -> dict[str, torch.Tensor]:
    """The terms of Eq. 18 over the whole batch: L_con (Eq. 4-5) of the C_m, L_dis (Eq. 6-7) of the
    P_m, and the alignment extension when ``cfg.aux_losses`` lists "align" or "align_mean"."""
    terms = {"con": consistency_loss(*C, centre=cfg.con_centre, norm=cfg.con_norm) if (cfg.uses("con") and C) else zero,
             "dis": disparity_loss(*P) if (cfg.uses("dis") and P) else zero}
    for term, form in ALIGN_TERMS.items():
        if cfg.uses(term) and C:
            terms["align"] = alignment_loss(*C, form=form)
    return terms


def total(terms: dict[str, torch.Tensor], cfg, sample_weight: float = 1.0) -> torch.Tensor:
    """Eq. 18: L_all = L_task + beta (L_ami + L_ams) + gamma (L_con + L_dis) (+ the confusion
    loss with L_ami, + the alignment extension). ``sample_weight`` multiplies the per-sample
    terms (the distributed trainer's share of a global batch; 1 in one process)."""
    adversarial = terms["ami"] + terms["confusion"] if "confusion" in terms else terms["ami"]
    per_sample = terms["task"] + cfg.beta * (adversarial + terms["ams"])
    if sample_weight != 1.0:
        per_sample = sample_weight * per_sample
    out = per_sample + cfg.gamma * (terms["con"] + terms["dis"])
    if "align" in terms:
        out = out + cfg.align_weight * terms["align"]
    return out


def representations(out) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The C_m and P_m of a model output, in its modality order, as float32 (empty lists when
    the model does not disentangle)."""
    C = [out.common[m].float() for m in out.modalities] if out.common else []
    P = [out.private[m].float() for m in out.modalities] if out.private else []
    return C, P


def fdmer_objective(out, label: torch.Tensor, cfg, task: str = "regression") -> dict[str, torch.Tensor]:
    """Eq. 18 with every term: ``{"task", "ami", "ams", "con", "dis", "all"}`` (plus
    ``"confusion"`` with the confusion adversary and ``"align"`` with the alignment extension).
    ``out`` is the model's FDMEROutput, ``cfg`` a LossConfig."""
    terms = sample_terms(out, label, cfg, task)
    terms.update(batch_terms(*representations(out), cfg, out.prediction.new_zeros((), dtype=torch.float32)))
    terms["all"] = total(terms, cfg)
    return terms
