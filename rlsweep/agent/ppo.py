"""The PPO loss terms and the epoch x minibatch update."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Categorical

from rlsweep.agent.gae import compute_gae
from rlsweep.compute.perf import Stats, adam, autocast, mean_stats, prepare_modules, runs_nhwc, unit_frames
from rlsweep.compute.stacked import clip_grad_norm_per_seed, seed_mean, seed_minibatches
from rlsweep.config.schema import PerfConfig, PPOConfig
from rlsweep.models.policy import PolicyOutput
from rlsweep.storage import RolloutStorage


@dataclass
class PPOLossTerms:
    total: torch.Tensor
    policy: torch.Tensor
    value_ext: torch.Tensor
    value_int: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor
    clipfrac: torch.Tensor


def ppo_loss(
    logits: torch.Tensor,
    value_ext: torch.Tensor,
    value_int: torch.Tensor,
    actions: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    returns_ext: torch.Tensor,
    returns_int: torch.Tensor,
    clip_coef: float,
    ent_coef: float,
    vf_coef: float,
    seeds: int = 1,
) -> PPOLossTerms:
    """L = L_actor + vf_coef * (MSE_ext + MSE_int) - ent_coef * entropy (method.md §4.1).

    With ``seeds`` > 1 the minibatch is that many seed-major blocks and every term is per seed, shape (seeds,).
    """
    # No argument check: a diverged minibatch makes the losses non-finite, which the training loop reports once per
    # iteration in one line (rlsweep.training.loop.check_finite) instead of torch's check failing with a tensor dump.
    dist = Categorical(logits=logits, validate_args=False)
    logprobs = dist.log_prob(actions)
    log_ratio = logprobs - old_logprobs
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef) * advantages)
    policy = -seed_mean(surrogate, seeds)
    v_ext = seed_mean((returns_ext - value_ext) ** 2, seeds)
    v_int = seed_mean((returns_int - value_int) ** 2, seeds)
    entropy = seed_mean(dist.entropy(), seeds)
    total = policy + vf_coef * (v_ext + v_int) - ent_coef * entropy
    with torch.no_grad():
        approx_kl = seed_mean((ratio - 1) - log_ratio, seeds)  # Schulman's k3 estimator: unbiased, >= 0
        clipfrac = seed_mean(((ratio - 1).abs() > clip_coef).float(), seeds)
    return PPOLossTerms(total, policy, v_ext, v_int, entropy, approx_kl, clipfrac)


def minibatch_indices(
    batch: int, minibatch: int, sampling: str, device: torch.device, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """``batch // minibatch`` index tensors: random with replacement (seed) or one permutation (paper)."""
    count = batch // minibatch
    if sampling == "replacement":
        for _ in range(count):
            yield torch.randint(0, batch, (minibatch,), device=device, generator=generator)
    else:
        perm = torch.randperm(batch, device=device, generator=generator)
        yield from perm[: count * minibatch].view(count, minibatch)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    var = returns.var()
    return float("nan") if var == 0 else float(1 - (returns - values).var() / var)


@dataclass
class Batch:
    """A flattened rollout (B = T * N samples) on the run's device."""

    obs: torch.Tensor  # uint8 (B, C, H, W)
    actions: torch.Tensor
    logprobs: torch.Tensor
    advantages: torch.Tensor  # combined: ext_adv_coef * A_ext + int_adv_coef * A_int
    returns_ext: torch.Tensor
    returns_int: torch.Tensor


def rollout_batch(
    storage: RolloutStorage, last_value_ext: torch.Tensor, last_value_int: torch.Tensor, cfg: PPOConfig
) -> Batch:
    """GAE per stream from a filled rollout (V(s_T) given), combined 2:1, flattened for the update."""
    adv_ext, ret_ext = compute_gae(
        storage.rewards_ext, storage.values_ext, storage.dones, last_value_ext,
        cfg.gamma_ext, cfg.gae_lambda, episodic=True, bootstrap_last=cfg.bootstrap_last,
    )  # fmt: skip
    adv_int, ret_int = compute_gae(
        storage.rewards_int, storage.values_int, storage.dones, last_value_int,
        cfg.gamma_int, cfg.gae_lambda, episodic=cfg.int_episodic, bootstrap_last=cfg.bootstrap_last,
    )  # fmt: skip
    advantages = cfg.ext_adv_coef * adv_ext + cfg.int_adv_coef * adv_int
    return Batch(
        obs=storage.flat_obs(),
        actions=storage.actions.reshape(-1),
        logprobs=storage.logprobs.reshape(-1),
        advantages=advantages.reshape(-1),
        returns_ext=ret_ext.reshape(-1),
        returns_int=ret_int.reshape(-1),
    )


class PPOUpdater:
    """Runs the epochs of minibatch updates; ``after_minibatch`` lets the motivation train in lock-step.

    With ``seeds`` > 1 the policy is a :class:`~rlsweep.compute.stacked.SeedStack` and the rollout holds each seed's
    ``cfg.num_envs`` envs side by side: every seed draws its own minibatches from its own samples, and its loss,
    gradient clipping and statistics are its own (shape (seeds,)).
    """

    def __init__(
        self,
        policy: nn.Module,
        cfg: PPOConfig,
        perf: PerfConfig | None = None,
        seeds: int = 1,
        generators: list[torch.Generator] | None = None,
    ) -> None:
        self.policy = policy
        self.cfg = cfg
        self.seeds = seeds
        self.generators = generators  # each seed's own draws (several seeds); None: the global generator
        self.perf = perf or PerfConfig()
        self.optimizer = adam(policy.parameters(), cfg.learning_rate, cfg.adam_eps, fused=self.perf.fused_adam)
        prepare_modules([policy], self.perf.channels_last, self.perf.compile)
        self.nhwc = runs_nhwc(policy, self.perf.channels_last)  # NHWC convolutions read NHWC frames

    def forward(self, obs: torch.Tensor) -> PolicyOutput:
        """The policy on uint8 observations: scaled to [0, 1] on the device, outputs in float32."""
        device = obs.device
        with autocast(device, self.perf.autocast):
            out = self.policy(unit_frames(obs, self.nhwc))
        return PolicyOutput(out.logits.float(), out.value_ext.float(), out.value_int.float())

    def minibatches(self, size: int, device: torch.device) -> Iterator[torch.Tensor]:
        """One epoch's minibatch rows of a rollout of ``size`` samples (all seeds'); seed-major for several."""
        cfg, k = self.cfg, self.seeds
        if k == 1:
            return minibatch_indices(size, cfg.minibatch_size, cfg.minibatch_sampling, device)
        generators: list[torch.Generator | None] = [*self.generators] if self.generators else [None] * k
        per_seed = [minibatch_indices(size // k, cfg.minibatch_size, cfg.minibatch_sampling, device, g)
                    for g in generators]  # fmt: skip
        return seed_minibatches(per_seed, cfg.num_envs)

    def update(self, batch: Batch, after_minibatch: Callable[[torch.Tensor], Stats] | None = None) -> Stats:
        """The PPO epochs; returns the mean of each statistic over the minibatch steps, on the device."""
        cfg, k = self.cfg, self.seeds
        history: list[Stats] = []
        size = batch.actions.shape[0]
        for _ in range(cfg.update_epochs):
            for idx in self.minibatches(size, batch.obs.device):
                out = self.forward(batch.obs[idx])
                adv = batch.advantages[idx]
                if cfg.normalize_advantages:  # per minibatch, and per seed
                    blocks = adv if k == 1 else adv.reshape(k, -1)
                    adv = ((blocks - blocks.mean(-1, keepdim=True)) / (blocks.std(-1, keepdim=True) + 1e-8)).reshape(-1)
                terms = ppo_loss(
                    out.logits, out.value_ext, out.value_int, batch.actions[idx], batch.logprobs[idx], adv,
                    batch.returns_ext[idx], batch.returns_int[idx], cfg.clip_coef, cfg.ent_coef, cfg.vf_coef, k,
                )  # fmt: skip
                self.optimizer.zero_grad(set_to_none=True)
                terms.total.sum().backward()  # per-seed losses summed: each seed's gradient is its own loss's
                grad_norm = clip_grad_norm_per_seed(self.policy.parameters(), cfg.max_grad_norm, k)
                self.optimizer.step()
                # Tensors, not floats: reading each value would stall the GPU once per statistic and minibatch.
                stats: Stats = {
                    "loss/total": terms.total.detach(),
                    "loss/policy": terms.policy.detach(),
                    "loss/value_ext": terms.value_ext.detach(),
                    "loss/value_int": terms.value_int.detach(),
                    "loss/entropy": terms.entropy.detach(),
                    "ppo/approx_kl": terms.approx_kl,
                    "ppo/clipfrac": terms.clipfrac,
                    "ppo/grad_norm": grad_norm.detach(),
                }
                if after_minibatch is not None:
                    stats.update(after_minibatch(idx))
                history.append(stats)
        return mean_stats(history)
