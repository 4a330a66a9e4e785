"""Self-supervised Network Distillation: RND whose target is trained by a self-supervised loss (SND-V,
SND-VIC, SND-STD). Details and sources: the package docstring.

Each ``update`` makes one predictor step (the shared masked distillation loss; the target's features are
computed without gradient, so the predictor never trains the target) and one target step with the target's own
Adam on the variant's loss. Both follow ``motivation.predictor_updates`` (per PPO minibatch, or one pass).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import partial
from typing import cast

import torch
from torch import nn

from rlsweep.compute.perf import Stats, adam
from rlsweep.compute.stacked import SeedStack, per_seed, seed_mean, seed_rows
from rlsweep.config.schema import MotivationConfig, PerfConfig
from rlsweep.motivation.base import MotivationBatch, register_motivation
from rlsweep.motivation.distillation import Distillation
from rlsweep.motivation.normalizers import RunningMeanStd
from rlsweep.motivation.ssl import STDIMHeads, augment, contrastive_mse_loss, sample_pairs, vicreg_loss

#: ST-DIM's local features: the activated output of the third conv (64 channels) of the ST_DIM_CNN.
_STDIM_LOCAL_CONV = 2


class SND(Distillation, ABC):
    """Shared SND behaviour: a trainable target with its own optimiser; subclasses define ``target_loss``."""

    name = "snd"
    frozen_target = False

    def __init__(
        self,
        cfg: MotivationConfig,
        obs_shape: tuple[int, int, int],
        device: torch.device,
        frame_channels: int = 1,
        perf: PerfConfig | None = None,
        num_envs: int = 128,
    ) -> None:
        super().__init__(cfg, obs_shape, device, frame_channels, perf, num_envs)
        self.heads = self._heads().to(device)
        params = [*self.target.parameters(), *self.heads.parameters()]
        self.target_optimizer = adam(params, cfg.target_learning_rate, fused=self.perf.fused_adam)

    def _heads(self) -> nn.Module:
        """Extra trainable modules of the target loss (none by default)."""
        return nn.Identity()

    @abstractmethod
    def target_loss(self, batch: MotivationBatch) -> tuple[torch.Tensor, Stats]: ...

    def update(self, batch: MotivationBatch) -> Stats:
        stats = self.predictor_step(batch.obs)
        loss, extra = self.target_loss(batch)
        self.target_optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # several seeds: each seed's target and heads get their own loss's gradient
        self.target_optimizer.step()
        return {**stats, "loss/motivation_target": loss.detach(), **extra}

    def vicreg(self, za: torch.Tensor, zb: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        """VICReg with the configured weights, per seed, and its three terms as statistics."""
        cfg = self.cfg
        weighted = partial(vicreg_loss, inv=cfg.vicreg_inv, var=cfg.vicreg_var, cov=cfg.vicreg_cov)
        loss, parts = per_seed(weighted, self.seeds, za, zb)
        return loss, {f"motivation/vicreg_{k}": v.detach() for k, v in parts.items()}

    def _modules(self) -> dict[str, nn.Module | torch.optim.Optimizer | RunningMeanStd]:
        return {**super()._modules(), "heads": self.heads, "target_optimizer": self.target_optimizer}

    def stack(self, others: list[Distillation], generators: list[torch.Generator]) -> None:
        """As :meth:`Distillation.stack`, and the target's loss heads stacked too, with one Adam over the stacked
        target and heads (k independent Adams, as for the predictor). The target losses are per seed: each
        seed's views, pairs and batch statistics come from its own block of the minibatch and its generator."""
        super().stack(others, generators)
        self.heads = SeedStack([m.heads for m in cast(list[SND], [self, *others])])
        params = [*self.target.parameters(), *self.heads.parameters()]
        self.target_optimizer = adam(params, self.cfg.target_learning_rate, fused=self.perf.fused_adam)


@register_motivation
class SNDV(SND):
    """SND-V: contrastive MSE on augmented pairs drawn from the current rollout (method.md §4.6, §4.8).

    ``target_loss=vicreg`` is the author's other option: VICReg between two augmented views of the same states.
    """

    name = "snd_v"

    def _pairs(
        self, size: int, device: torch.device, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(idx_a, idx_b, labels)`` of one seed's pairs, rows of its own rollout of ``size`` states."""
        cfg = self.cfg
        count = cfg.target_batch_size
        if cfg.target_loss == "vicreg":
            idx_a = torch.randint(0, size, (count,), device=device, generator=generator)
            return idx_a, idx_a, torch.zeros(count, device=device)
        return sample_pairs(count, size, cfg.pair_far_prob, device, generator)

    def views(self, batch: MotivationBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_a, x_b, labels)``: augmented, normalised newest frames of sampled pairs (labels 0 close, 1 far).

        Several seeds: each seed's pairs come from its own rollout and generator, in a lone run's order (pairs,
        then view a, then view b), joined seed-major.
        """
        cfg = self.cfg
        rollout = batch.rollout_obs
        generators: list[torch.Generator | None] = [None] if self.generators is None else list(self.generators)
        pairs = [self._pairs(rollout.shape[0] // self.seeds, rollout.device, g) for g in generators]
        idx_a, idx_b = (seed_rows([p[i] for p in pairs], self.num_envs) for i in (0, 1))
        labels = torch.cat([p[2] for p in pairs])

        def view(idx: torch.Tensor) -> torch.Tensor:
            blocks = self.inputs(rollout[idx]).chunk(self.seeds)
            return torch.cat([augment(x, cfg.augmentations, cfg.aug_prob, cfg.aug_tile_drop, cfg.aug_noise, g)
                              for x, g in zip(blocks, generators, strict=True)])  # fmt: skip

        return view(idx_a), view(idx_b), labels

    def target_loss(self, batch: MotivationBatch) -> tuple[torch.Tensor, Stats]:
        cfg = self.cfg
        xa, xb, labels = self.views(batch)
        za, zb = self.target(xa), self.target(xb)
        if cfg.target_loss == "vicreg":
            return self.vicreg(za, zb)
        contrastive = partial(contrastive_mse_loss, threshold=cfg.magnitude_threshold)
        loss, loss_sim, magnitude = per_seed(contrastive, self.seeds, za, zb, labels)
        return loss, {"motivation/target_sim": loss_sim.detach(), "motivation/target_magnitude": magnitude.detach()}


@register_motivation
class SNDVIC(SND):
    """SND-VIC: VICReg between consecutive states (s_t, s_{t+1}), no augmentation (method.md §4.7)."""

    name = "snd_vic"

    def target_loss(self, batch: MotivationBatch) -> tuple[torch.Tensor, Stats]:
        return self.vicreg(self.target(self.inputs(batch.obs)), self.target(self.inputs(batch.next_obs)))


@register_motivation
class SNDSTD(SND):
    """SND-STD: ST-DIM InfoNCE between s_{t+1}'s global and local features and s_t's local ones, plus the
    paper's two small regularisers (method.md §4.7)."""

    name = "snd_std"

    def _heads(self) -> nn.Module:
        local_depth = self.target.conv_layers()[_STDIM_LOCAL_CONV].out_channels
        feature_dim = self.target.linear_layers()[-1].out_features
        return STDIMHeads(feature_dim, local_depth)

    def _with_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The target's features and its local map (ST-DIM's third conv), for one network or k stacked."""
        if isinstance(self.target, SeedStack):
            out: tuple[torch.Tensor, torch.Tensor] = self.target.call("forward_with_map", x,
                                                                      conv_index=_STDIM_LOCAL_CONV)  # fmt: skip
            return out
        return self.target.forward_with_map(x, _STDIM_LOCAL_CONV)

    def target_loss(self, batch: MotivationBatch) -> tuple[torch.Tensor, Stats]:
        cfg = self.cfg
        z_t, local_t = self._with_map(self.inputs(batch.obs))
        z_next, local_next = self._with_map(self.inputs(batch.next_obs))
        infonce, logit_norm = self.heads(z_next, local_t, local_next)  # STDIMHeads: stdim_loss, per seed
        # The paper's "uniformity" term: -mean over samples of the std across one sample's features.
        spread = -seed_mean(z_t.std(dim=1), self.seeds)
        loss = infonce + cfg.stdim_norm_coef * logit_norm + cfg.stdim_std_coef * spread
        return loss, {"motivation/stdim_infonce": infonce.detach(), "motivation/stdim_logit_norm": logit_norm.detach()}
