"""The self-supervised pieces SND trains its target with, as plain functions of tensors (method.md §4.6-4.8).

Owns the three target losses (SND-V contrastive MSE with the magnitude hinge, VICReg, ST-DIM InfoNCE), SND-V's
pair sampling from the rollout and its augmentations (tile mask, uniform noise). Nothing here knows about
networks' parameters or optimisers, so each piece is tested at hand-checked points in tests/unit/test_snd.py.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Tile sides of the paper's mask augmentation: 12 only exists for 96-px frames (it does not divide 64).
TILE_SIZES: tuple[int, ...] = (1, 2, 4, 8, 12, 16)


# ---- SND-V ---------------------------------------------------------------------------------------------------
def sample_pairs(
    count: int, size: int, far_prob: float, device: torch.device, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(idx_a, idx_b, labels)`` for ``count`` pairs from a rollout of ``size`` states.

    Anchor a is uniform; with probability ``far_prob`` the partner is another uniform state (label 1, "far"; it
    can rarely be the anchor itself, as in the paper), otherwise the anchor again (label 0, "close").
    """
    idx_a = torch.randint(0, size, (count,), device=device, generator=generator)
    idx_far = torch.randint(0, size, (count,), device=device, generator=generator)
    far = torch.rand(count, device=device, generator=generator) < far_prob
    return idx_a, torch.where(far, idx_far, idx_a), far.float()


def contrastive_mse_loss(za: Tensor, zb: Tensor, labels: Tensor, threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """SND-V: ``(loss, loss_sim, magnitude)`` with d = mean_k (za - zb)^2, loss_sim = mean((y - d)^2),
    magnitude = mean(za^2) + mean(zb^2) and loss = loss_sim + ReLU(magnitude - threshold)."""
    distance = ((za - zb) ** 2).mean(dim=1)
    loss_sim = ((labels - distance) ** 2).mean()
    magnitude = (za**2).mean() + (zb**2).mean()
    return loss_sim + F.relu(magnitude - threshold), loss_sim, magnitude


def mask_tiles(x: Tensor, drop: float, tile: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Zero square tiles of side ``tile`` (default: one drawn from TILE_SIZES that divides the frame), each with
    probability ``drop``; one mask per sample, shared by its channels."""
    b, _, h, w = x.shape
    if tile is None:
        sizes = [t for t in TILE_SIZES if h % t == 0 and w % t == 0]
        # Drawn where the frames are, from the generator of the other draws (a seed's own, rlsweep.compute.stacked): one
        # host read of the choice, as the mask's shape depends on it.
        tile = sizes[int(torch.randint(0, len(sizes), (1,), device=x.device, generator=generator))]
    keep = torch.rand((b, 1, h // tile, w // tile), device=x.device, generator=generator) >= drop
    keep = keep.repeat_interleave(tile, dim=2).repeat_interleave(tile, dim=3)
    return x * keep.to(x.dtype)


def uniform_noise(x: Tensor, scale: float, generator: torch.Generator | None = None) -> Tensor:
    """``x + U(-scale, scale)`` element-wise."""
    return x + scale * (2.0 * torch.rand(x.shape, device=x.device, generator=generator) - 1.0)


def random_apply(
    x: Tensor, prob: float, fn: Callable[[Tensor], Tensor], generator: torch.Generator | None = None
) -> Tensor:
    """Apply ``fn`` to each sample independently with probability ``prob``."""
    chosen = torch.rand(x.shape[0], device=x.device, generator=generator) < prob
    return torch.where(chosen.view(-1, 1, 1, 1), fn(x), x)


def augment(
    x: Tensor, kinds: str, prob: float, tile_drop: float, noise: float, generator: torch.Generator | None = None
) -> Tensor:
    """The SND-V view: tile mask then noise, each per sample with ``prob`` (``kinds``: mask+noise | mask | noise
    | none). The result carries no gradient (the views are data)."""
    with torch.no_grad():
        if "mask" in kinds:
            x = random_apply(x, prob, lambda v: mask_tiles(v, tile_drop, generator=generator), generator)
        if "noise" in kinds:
            x = random_apply(x, prob, lambda v: uniform_noise(v, noise, generator), generator)
    return x


# ---- SND-VIC ---------------------------------------------------------------------------------------------------
def vicreg_loss(
    za: Tensor, zb: Tensor, inv: float = 1.0, var: float = 1.0, cov: float = 1.0 / 25
) -> tuple[Tensor, dict[str, Tensor]]:
    """VICReg as the paper's ``VICRegEncoderAtari.loss_function``: inv * MSE(za, zb) + var * sum over views of
    mean ReLU(1 - sqrt(Var_batch + 1e-4)) + cov * sum over views of (sum of squared off-diagonal Cov) / dim."""
    n, d = za.shape
    inv_loss = F.mse_loss(za, zb)
    var_loss = sum(F.relu(1.0 - torch.sqrt(z.var(dim=0) + 1e-4)).mean() for z in (za, zb))
    off_diagonal = ~torch.eye(d, dtype=torch.bool, device=za.device)
    cov_loss = za.new_zeros(())
    for z in (za, zb):
        centred = z - z.mean(dim=0)
        c = centred.T @ centred / (n - 1)
        cov_loss = cov_loss + c[off_diagonal].pow(2).sum() / d
    total = inv * inv_loss + var * var_loss + cov * cov_loss
    return total, {"inv": inv_loss.detach(), "var": torch.as_tensor(var_loss).detach(), "cov": cov_loss.detach()}


# ---- SND-STD ---------------------------------------------------------------------------------------------------
class STDIMHeads(nn.Module):
    """ST-DIM's two bilinear scorers: global (feature_dim) -> local depth, local -> local (the paper's
    ``classifier1`` / ``classifier2``; PyTorch default init, as there)."""

    def __init__(self, feature_dim: int, local_depth: int) -> None:
        super().__init__()
        self.global_local = nn.Linear(feature_dim, local_depth)
        self.local_local = nn.Linear(local_depth, local_depth)

    def forward(self, global_next: Tensor, local_t: Tensor, local_next: Tensor) -> tuple[Tensor, Tensor]:
        """:func:`stdim_loss` with these scorers (a module call, so that k seeds' heads run stacked)."""
        return stdim_loss(global_next, local_t, local_next, self)


def stdim_loss(global_next: Tensor, local_t: Tensor, local_next: Tensor, heads: STDIMHeads) -> tuple[Tensor, Tensor]:
    """``(infonce, logit_norm)`` of ST-DIM between consecutive states (paper ``loss_function_crossentropy``).

    ``global_next`` (N, D) are the target features of s_{t+1}; ``local_t`` / ``local_next`` (N, C, h, w) the
    conv maps of s_t / s_{t+1}. For every patch p: logits[p, i, j] = score(i of s_{t+1}, patch p of s_t of j),
    cross-entropy over i with the positive on the diagonal (i == j), averaged over patches and samples;
    (1) global-local, (2) local-local. ``logit_norm`` is the sum over both of the mean Frobenius norm per patch.
    """
    n = global_next.shape[0]
    positives = local_t.flatten(2).permute(2, 1, 0)  # (P, C, N): column j is sample j's patch p
    target = torch.arange(n, device=global_next.device).expand(positives.shape[0], n)
    logits1 = heads.global_local(global_next) @ positives  # (N, C) @ (P, C, N) -> (P, N, N)
    logits2 = heads.local_local(local_next.flatten(2).permute(2, 0, 1)) @ positives  # (P, N, C) @ (P, C, N)
    infonce = F.cross_entropy(logits1, target) + F.cross_entropy(logits2, target)
    norms = torch.linalg.matrix_norm(logits1).mean() + torch.linalg.matrix_norm(logits2).mean()
    return infonce, norms
