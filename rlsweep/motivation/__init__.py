"""Intrinsic motivation behind one protocol (:mod:`rlsweep.motivation.base`): none (plain PPO), RND and the SND
variants SND-V, SND-VIC and SND-STD. RND and SND share the distillation machinery
(:mod:`rlsweep.motivation.distillation`); SND differs only in that its target trains
(:mod:`rlsweep.motivation.snd`, losses and augmentations in :mod:`rlsweep.motivation.ssl`).

Implementation details of RND and their sources (method.md §2.5, §4.3-4.5):
1. Input is the newest frame only (the seed's "channel 0"; here the last channel(s), see rlsweep.envs.base;
   ``frame_channels`` = 3 for RGB Procgen), scaled to [0, 1], minus a running per-pixel mean. Dividing by the
   std "causes huge instability" in the seed; OpenAI/CleanRL divide and clip to +-5 -> ``motivation.obs_norm``,
   ``motivation.obs_norm_clip``.
2. The running mean is filled by ``warmup_steps`` random-action steps per env before training (seed: 256;
   CleanRL: 50 x 128), then updated with every agent step's s_t. No warm-up when ``obs_norm=none``.
3. r_int(s_t) = reward_scale * sum_k (T_k - P_k)^2 / 2 (seed: "sum of features / 2, not mean"); SND and
   OpenAI take the mean -> ``motivation.reward_reduction``. Computed on s_t, the state the action is taken in.
4. Optionally divided by the running std of r_int (seed variants b2/b3) -> ``normalise_int_reward``;
   OpenAI/CleanRL divide by the std of discounted intrinsic returns (not offered).
5. Then clipped to [0, 1] -> ``motivation.reward_clip``.
6. Predictor loss: squared error on a random element-wise mask keeping 25 % (seed: 32 / num_envs);
   CleanRL masks whole samples -> ``motivation.mask``. Separate Adam at 1e-4, no gradient clip; one
   predictor step per PPO minibatch (seed) or one pass over the rollout (paper) -> ``predictor_updates``.
7. The target network is frozen (no gradient ever reaches it).

Implementation details of SND and their sources (method.md §2.6, §3.1, §3.4, §4.3, §4.6-4.8):
1. Same predictor, masked loss, reward path and schedule as RND (items 1-6 above); the target is trained, by
   its own Adam (``target_learning_rate``, 1e-4 in seed and paper). The paper sums the predictor and target
   losses into one backward through one Adam; with disjoint parameters and equal learning rates that is the
   same update as two Adams. The predictor's loss sees the target's features without gradient, so the
   predictor never trains the target.
2. Reward: r_int = reward_scale * mean_k (T_k - P_k)^2, clipped to [0, 1] (``reward_reduction=mean``). The
   paper's STD/VIC error (|T - P| + 1e-8)^2 differs only by the 1e-8. ``reward_scale`` is the paper's
   motivation_eta: SND-V 0.5, SND-VIC 0.25 Atari / 0.5 Procgen, SND-STD per game (§3.4), author ``ppo_cnd_21``
   0.5.
3. Input: the paper feeds the raw [0, 1] frame (``cnd_preprocess`` 0 -> ``obs_norm=none``); the author's
   ``ppo_cnd_21`` standardises and clips to [-1, 1] (``obs_norm=mean_std``, ``obs_norm_clip=1``).
4. SND-V pairs (``snd_v``, ``target_loss=mse``): ``target_batch_size`` (64 in both sources) anchors drawn
   uniformly from the current rollout; with probability ``pair_far_prob`` (0.5) the partner is another random
   state, label 1, else the anchor itself, label 0 ([AG] ``contrastive_loss_mse``, [SND] ``sample_states``).
5. SND-V views: both members augmented independently: tile mask (tile side drawn from {1, 2, 4, 8, 12, 16}
   that divide the frame, each tile zeroed with ``aug_tile_drop`` 0.1, one mask for all channels) then
   uniform noise +-``aug_noise`` (0.2), each applied per sample with ``aug_prob`` 0.5 ([SND] hard-coded,
   [AG] ``augmentations_probs``) -> ``augmentations``. Views are applied after input normalisation (author).
6. SND-V loss: d = mean_k (z_a - z_b)^2, L = mean((y - d)^2) + ReLU(mean(z_a^2) + mean(z_b^2) -
   ``magnitude_threshold`` 200). ``target_loss=vicreg`` instead is the author's option: VICReg between two
   augmented views of the same states ([AG] ``contrastive_loss_vicreg``).
7. SND-VIC (``snd_vic``): VICReg between consecutive states (s_t, s_{t+1}) of the PPO minibatch, no
   augmentation: 1 * MSE + 1 * sum of mean ReLU(1 - sqrt(Var + 1e-4)) + 1/25 * sum of off-diagonal Cov^2 / 512
   ([SND] ``VICRegEncoderAtari``) -> ``vicreg_inv/var/cov``. s_{t+1} after a done is the next episode's first
   state (the paper's buffer does the same).
8. SND-STD (``snd_std``): ST-DIM InfoNCE: linear scorers 512 -> 64 (global of s_{t+1} vs the 64-channel
   third-conv patches of s_t) and 64 -> 64 (patches of s_{t+1} vs patches of s_t), cross-entropy over the
   batch with positives on the diagonal, plus ``stdim_norm_coef`` (1e-4) * Frobenius norm of the logits and
   ``stdim_std_coef`` (1e-4) * (-mean feature std) ([SND] ``ST_DIMEncoderAtari``, ``STDModelAtari``).
9. Networks: SND-V uses the model-C-era nets (``network=c``, ELU, gain sqrt 2); SND-STD / SND-VIC the paper's
   ST_DIM_CNN (``network=std`` / ``vic``: ReLU, gain 0.5; VIC's predictor gain sqrt 2), see
   rlsweep.models.distillation. The paper's STD predictor loss is a summed MSE and its VIC predictor a larger
   encoder; here both use the shared (mean, optionally masked) predictor loss -- with Adam the scale of a loss
   barely matters -- and ``update_proportion=1`` gives the paper's unmasked loss.
10. Schedule: seed/author: one predictor and one target step per PPO minibatch (4 x 32 per rollout,
    ``predictor_updates=per_minibatch``); paper: one pass of 32 consecutive 512-sample batches after PPO
    (``one_pass``).
"""

from __future__ import annotations

import importlib
import pkgutil

import torch

from rlsweep.config.schema import MOTIVATION_NAMES, MotivationConfig, PerfConfig
from rlsweep.motivation.base import MOTIVATIONS, Motivation, MotivationBatch, register_motivation
from rlsweep.motivation.distillation import Distillation
from rlsweep.motivation.none import NoMotivation
from rlsweep.motivation.normalizers import RunningMeanStd
from rlsweep.motivation.rnd import RND
from rlsweep.motivation.snd import SND, SNDSTD, SNDV, SNDVIC

__all__ = [
    "MOTIVATIONS",
    "RND",
    "SND",
    "SNDSTD",
    "SNDV",
    "SNDVIC",
    "Distillation",
    "Motivation",
    "MotivationBatch",
    "NoMotivation",
    "RunningMeanStd",
    "build_motivation",
    "register_motivation",
]

# Every module of the package is imported, so that a motivation's module registers its class without a line here:
# a new motivation is its module and its conf/motivation YAML (docs/architecture.md).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
# The config schema reads the names from conf/motivation (validation runs without torch); the classes must be them.
if set(MOTIVATIONS) != set(MOTIVATION_NAMES):
    raise ImportError(
        f"rlsweep.motivation builds {', '.join(sorted(MOTIVATIONS))}, but conf/motivation/*.yaml name "
        f"{', '.join(MOTIVATION_NAMES)}: each name needs a class registered with register_motivation, and each "
        "registered class a YAML file"
    )


def build_motivation(
    cfg: MotivationConfig,
    obs_shape: tuple[int, int, int],
    device: torch.device,
    frame_channels: int = 1,
    perf: PerfConfig | None = None,
    num_envs: int = 128,
) -> Motivation:
    """The motivation ``cfg.name`` for observations of ``obs_shape`` whose frames have ``frame_channels``, trained
    on rollouts of ``num_envs`` envs (the seed's predictor mask scales with it)."""
    cls = MOTIVATIONS.get(cfg.name)
    if cls is None:
        raise ValueError(f"motivation.name={cfg.name!r} is not known; allowed: {', '.join(MOTIVATION_NAMES)}")
    motivation: Motivation = cls(cfg, obs_shape, device, frame_channels, perf, num_envs)
    return motivation
