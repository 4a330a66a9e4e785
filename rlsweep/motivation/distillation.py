"""The distillation machinery RND and every SND variant share: frame selection, input normalisation, the
predictor and its masked loss, the intrinsic reward, the running statistics and checkpoint state.

A subclass decides only what RND and SND disagree on: whether and how the target trains (RND freezes it; SND
trains it with a self-supervised loss in ``update``). Details and sources: the package docstring.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from rlsweep.compute.perf import Stats, adam, autocast, prepare_modules, unit_frames
from rlsweep.compute.stacked import SeedStack, load_seed_states, seed_mean, seed_rand, seed_rows, seed_states
from rlsweep.config.schema import MotivationConfig, PerfConfig
from rlsweep.models import build_distillation_nets
from rlsweep.motivation.base import MotivationBatch, check_frame_channels
from rlsweep.motivation.normalizers import RunningMeanStd

# The seed's predictor mask: 32 envs' worth of samples train the predictor whatever the number of envs.
SEED_MASK_ENVS = 32
# perf.target_features_per_update: states per seed in one target pass at the update's start. Large enough to keep
# a GPU busy, small enough that the pass's activations (about 0.2 MB a state for arch "a") stay modest.
TARGET_CHUNK = 1024


def keep_fraction(update_proportion: float | None, num_envs: int) -> float:
    """The predictor mask's keep probability: fixed when set, else the seed's min(1, 32 / num_envs)."""
    if update_proportion is not None:
        return update_proportion
    return min(1.0, SEED_MASK_ENVS / num_envs)


class Distillation:
    """Target and predictor on the newest frame; r_int = scale * error, optionally / running std, clipped."""

    name = "distillation"
    frozen_target = True
    author_stats_from_next = False  # the author's agent fed s_{t+1} to its statistics (RND) or s_t (CND/SND)

    def __init__(
        self,
        cfg: MotivationConfig,
        obs_shape: tuple[int, int, int],
        device: torch.device,
        frame_channels: int = 1,
        perf: PerfConfig | None = None,
        num_envs: int = 128,
    ) -> None:
        check_frame_channels(obs_shape, frame_channels)
        self.cfg = cfg
        self.device = device
        self.perf = perf or PerfConfig()
        self.frame_channels = frame_channels
        self.num_envs = num_envs  # per seed: a rollout's rows are t (k N) + j N + n (rlsweep.compute.stacked)
        # Several seeds trained together in this process (rlsweep.compute.stacked): each one's own draws. None: one
        # seed, drawing from the global generator.
        self.generators: list[torch.Generator] | None = None
        self.keep = keep_fraction(cfg.update_proportion, num_envs)
        # Without input statistics in use, random warm-up steps would only cost time (paper SND: raw input).
        self.needs_warmup = cfg.obs_norm != "none"
        self.stats_from_next = cfg.stats_state == "author" and self.author_stats_from_next
        self.frame_shape = (frame_channels, obs_shape[1], obs_shape[2])
        target, predictor = build_distillation_nets(cfg.network, self.frame_shape, coupled_init=cfg.coupled_init)
        self.target = target.to(device)
        self.predictor = predictor.to(device)
        if self.frozen_target:
            for p in self.target.parameters():
                p.requires_grad_(False)  # the RND target is a fixed random function
        self.optimizer = adam(self.predictor.parameters(), cfg.learning_rate, fused=self.perf.fused_adam)
        prepare_modules([self.target, self.predictor], self.perf.channels_last, self.perf.compile)
        self.obs_rms = RunningMeanStd(self.frame_shape, device)
        self.reward_rms = RunningMeanStd((), device)
        # perf.reuse_target_features: a frozen target's features of the rollout's states, computed for r_int(s_t)
        # during collection, are kept by step and reused by the predictor's update instead of a second forward
        # pass per minibatch. Only for a frozen target: SND's target changes while it trains.
        self.reuse_targets = self.perf.reuse_target_features and self.frozen_target
        # perf.target_features_per_update: otherwise a frozen target's features are computed once per update, by
        # begin_update, for every epoch's minibatches (the update's statistics do not change within it).
        self.targets_per_update = self.perf.target_features_per_update and self.frozen_target and not self.reuse_targets
        self._step_targets: dict[int, torch.Tensor] = {}  # rollout step -> (N, F), filled by reward()
        # (T * N, F) in rollout row order: built from _step_targets at the first update, or by begin_update
        self._targets: torch.Tensor | None = None

    @property
    def seeds(self) -> int:
        """Seeds trained together here (``seeds_per_process``; one unless :meth:`stack` added more)."""
        return 1 if self.generators is None else len(self.generators)

    # ---- inputs ------------------------------------------------------------------------------------------------
    def _frame(self, obs: torch.Tensor) -> torch.Tensor:
        """Newest frame in [0, 1], shape (B, frame_channels, H, W)."""
        return unit_frames(obs[:, -self.frame_channels :])

    def _normalise(self, frame: torch.Tensor) -> torch.Tensor:
        if self.cfg.obs_norm == "none":
            return frame
        rms, rows = self.obs_rms, frame.shape[0]
        centred = frame - rms.per_sample(rms.mean, rows).float()
        if self.cfg.obs_norm == "mean":
            return centred
        clip = self.cfg.obs_norm_clip
        if self.cfg.obs_var_floor > 0:
            std = rms.per_sample(rms.var.clamp(min=self.cfg.obs_var_floor).sqrt(), rows).float()
        else:
            std = rms.per_sample(rms.std, rows).float() + 1e-8
        return (centred / std).clamp(-clip, clip)

    def inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """What both networks read: the newest frame of uint8 observations, normalised as configured."""
        return self._normalise(self._frame(obs))

    def update_stats(self, obs: torch.Tensor) -> None:
        self._drop_update_targets()
        self.obs_rms.update(self._frame(obs))

    # ---- reward ------------------------------------------------------------------------------------------------
    def _error(
        self, obs: torch.Tensor, precision: str = "none", target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Element-wise squared distillation error (B, features), gradient to the predictor only, and the target
        features it used (``target`` when given: features kept from collection, so the target does not run).

        ``precision`` is the autocast mode of the forward passes (``perf.autocast``, training only).
        """
        x = self.inputs(obs)
        with autocast(self.device, precision):
            if target is None:
                with torch.no_grad():
                    target = self.target(x)
            prediction = self.predictor(x)
        return (target.float() - prediction.float()) ** 2, target

    @torch.no_grad()
    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Target features (B, feature_dim) of uint8 observations (for analysis)."""
        return self.target(self.inputs(obs))

    @torch.no_grad()
    def reward(self, obs: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """r_int of the states ``obs`` (N, ...); ``step`` = their rollout step, so that reused target features
        (``perf.reuse_target_features``) land in the rows the update reads (step t: rows t N ... t N + N - 1)."""
        # Always in float32, whatever perf.autocast says: the reward is a small difference of two networks'
        # outputs, and bf16's 8-bit mantissa would put a noise floor under it once the predictor has learned.
        err, target = self._error(obs)
        self._drop_update_targets()
        if self.reuse_targets and step is not None:
            if step == 0:  # a new rollout: the previous one's features are stale
                self._step_targets, self._targets = {}, None
            self._step_targets[step] = target
        r = err.sum(dim=1) / 2 if self.cfg.reward_reduction == "sum_half" else err.mean(dim=1)
        r = self.cfg.reward_scale * r
        if self.cfg.normalise_int_reward:
            self.reward_rms.update(r)
            r = r / (self.reward_rms.per_sample(self.reward_rms.std, r.shape[0]).float() + 1e-8)
        if self.cfg.reward_clip > 0:
            r = r.clamp(0.0, self.cfg.reward_clip)
        return r

    # ---- predictor ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def begin_update(self, rollout_obs: torch.Tensor) -> None:
        """An update on the rollout ``rollout_obs`` (uint8 (T k N, ...), rollout row order) starts. With
        ``perf.target_features_per_update`` a frozen target's features of every state are computed here, once,
        for the minibatches of all epochs; a new rollout or new statistics drop them (:meth:`update_stats`,
        :meth:`reward`). Each pass takes the same rows of every seed, seed-major, as :class:`SeedStack` reads."""
        if not self.targets_per_update:
            return
        k = self.seeds
        size = rollout_obs.shape[0] // k  # each seed's samples
        targets: torch.Tensor | None = None
        with autocast(self.device, self.perf.autocast):  # the precision the update's own target pass would use
            for start in range(0, size, TARGET_CHUNK):
                local = torch.arange(start, min(start + TARGET_CHUNK, size), device=rollout_obs.device)
                rows = seed_rows([local] * k, self.num_envs)
                features = self.target(self.inputs(rollout_obs[rows]))
                if targets is None:
                    targets = features.new_empty((rollout_obs.shape[0], features.shape[1]))
                targets[rows] = features
        self._targets = targets

    def _drop_update_targets(self) -> None:
        if self.targets_per_update:
            self._targets = None

    def kept_targets(self, rows: torch.Tensor | None) -> torch.Tensor | None:
        """The target features computed before the update for rollout ``rows`` (kept from collection with
        ``perf.reuse_target_features``, or by :meth:`begin_update`); None when there are none."""
        if rows is None:
            return None
        if self._step_targets:  # the first update after a rollout: one (T N, F) tensor in row order
            self._targets = torch.cat([self._step_targets[t] for t in sorted(self._step_targets)])
            self._step_targets = {}
        return None if self._targets is None else self._targets[rows]

    def predictor_loss(self, obs: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked mean squared error and the mask's kept fraction; ``rows`` are ``obs``'s rows of the rollout.

        With several seeds, both per seed (shape (k,)): each seed's loss over its own block of the minibatch.
        """
        targets = self.kept_targets(rows)
        if self.cfg.mask == "sample" and self.perf.predictor_kept_rows:
            return self._kept_rows_loss(obs, targets)
        err, _ = self._error(obs, self.perf.autocast, targets)
        shape = err.shape if self.cfg.mask == "element" else (err.shape[0], 1)
        mask = (self._mask_draw(shape, err.device) < self.keep).float()
        mask = mask.expand_as(err)
        if self.seeds == 1:
            loss = (err * mask).sum() / mask.sum().clamp(min=1.0)
        else:
            k = self.seeds
            loss = (err * mask).reshape(k, -1).sum(dim=1) / mask.reshape(k, -1).sum(dim=1).clamp(min=1.0)
        return loss, seed_mean(mask, self.seeds)

    def _mask_draw(self, shape: tuple[int, ...] | torch.Size, device: torch.device) -> torch.Tensor:
        """Uniform [0, 1) draws of the predictor mask: from the global generator for one seed, else each seed's
        block from its own generator (both loss paths draw here, so they keep the same rows)."""
        if self.generators is None:
            return torch.rand(shape, device=device)
        return seed_rand(shape, self.generators, device)

    def _kept_rows_loss(self, obs: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`predictor_loss` of a sample mask (``perf.predictor_kept_rows``): the networks run on the rows the
        mask keeps only. A dropped row adds exactly zero to the masked loss and its gradient, so this is the same
        loss and the same gradient as running every row, up to the order of float sums, for update_proportion
        of the compute (CleanRL and OpenAI's RND run all rows and zero three quarters of them). The mask is drawn
        first, from the same generator and with the same shape as the all-rows path, so both keep the same rows.
        """
        keep = self._mask_draw((obs.shape[0], 1), obs.device)[:, 0] < self.keep
        if self.seeds == 1:
            kept = keep.nonzero()[:, 0]  # one device read (the number of kept rows)
            err, _ = self._error(obs[kept], self.perf.autocast, None if targets is None else targets[kept])
            # The all-rows loss divides by the kept elements, at least 1 (no kept row: loss 0, no gradient)
            loss = err.sum() / max(err.numel(), 1)
            return loss, torch.tensor(kept.numel() / obs.shape[0], device=obs.device)
        # Several seeds keep different numbers of rows, which one vmapped pass over equal blocks cannot take: each
        # seed's kept rows go through its own slice of the stacked networks (SeedStack.each), which is a lone
        # run's pass on those rows, so a seed's numbers stay independent of the seeds beside it.
        k, size = self.seeds, obs.shape[0] // self.seeds
        x = self.inputs(obs)  # every row, each seed's block with its own statistics; then each seed's kept rows
        rows = [block.nonzero()[:, 0] + j * size for j, block in enumerate(keep.reshape(k, size))]  # k reads
        inputs = [x[r] for r in rows]
        predictor = cast(SeedStack, self.predictor)
        with autocast(self.device, self.perf.autocast):
            predictions = predictor.each("forward", inputs)
            if targets is None:
                with torch.no_grad():
                    kept_targets = cast(SeedStack, self.target).each("forward", inputs)
            else:
                kept_targets = [targets[r] for r in rows]
        losses = [((t.float() - p.float()) ** 2).sum() / max(p.numel(), 1)
                  for t, p in zip(kept_targets, predictions, strict=True)]  # fmt: skip
        return torch.stack(losses), keep.reshape(k, size).float().mean(dim=1)

    def predictor_step(self, obs: torch.Tensor, rows: torch.Tensor | None = None) -> Stats:
        loss, kept = self.predictor_loss(obs, rows)
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # the seeds' losses summed: each seed's parameters get its own loss's gradient
        self.optimizer.step()
        return {"loss/motivation": loss.detach(), "motivation/mask_kept": kept}

    def update(self, batch: MotivationBatch) -> Stats:
        return self.predictor_step(batch.obs, batch.indices)

    # ---- checkpoint --------------------------------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module | torch.optim.Optimizer | RunningMeanStd]:
        """Everything with state, by checkpoint key; subclasses add theirs."""
        return {
            "target": self.target,
            "predictor": self.predictor,
            "optimizer": self.optimizer,
            "obs_rms": self.obs_rms,
            "reward_rms": self.reward_rms,
        }

    def state_dict(self) -> dict[str, Any]:
        return {key: part.state_dict() for key, part in self._modules().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_state_dicts([state])

    # ---- several seeds in one process (seeds_per_process) ----------------------------------------------------------
    def stack(self, others: list[Distillation], generators: list[torch.Generator]) -> None:
        """Take on the networks of ``others`` (the same motivation built for the group's other seeds) as extra
        seeds: target and predictor become :class:`~rlsweep.compute.stacked.SeedStack` s with one Adam over the stacked
        predictor (k independent Adams, element-wise), the running statistics are kept per seed, and each
        seed's predictor mask is drawn from its generator. (SND adds its target's training: SND.stack.)"""
        members = [self, *others]
        self.generators = generators
        # A SeedStack answers forward calls as the network does; other methods through SeedStack.call.
        self.target = SeedStack([m.target for m in members])  # type: ignore[assignment]
        self.predictor = SeedStack([m.predictor for m in members])  # type: ignore[assignment]
        self.optimizer = adam(self.predictor.parameters(), self.cfg.learning_rate, fused=self.perf.fused_adam)
        self.obs_rms = RunningMeanStd(self.frame_shape, self.device, seeds=self.seeds)
        self.reward_rms = RunningMeanStd((), self.device, seeds=self.seeds)

    def state_dicts(self) -> list[dict[str, Any]]:
        """One lone run's :meth:`state_dict` per seed (for one seed, ``[self.state_dict()]``)."""
        parts = {key: seed_states(part, self.seeds) for key, part in self._modules().items()}
        return [{key: states[j] for key, states in parts.items()} for j in range(self.seeds)]

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        """Load one lone run's :meth:`state_dict` per seed."""
        self._drop_update_targets()
        for key, part in self._modules().items():
            load_seed_states(part, [s[key] for s in states])
