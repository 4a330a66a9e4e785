"""The typed schema of every config group (Hydra 1.3 structured configs).

One dataclass per group; the YAML options under ``conf/<group>/`` extend these and only set values. Struct mode
plus the dataclass types make Hydra reject unknown keys and values of the wrong type before anything starts;
range and divisibility checks that types cannot express live in :mod:`rlsweep.config.validate`.

A string field that takes one of a fixed set of words declares them here, once, with :func:`one_of`; the
validation reads them from the field (``allowed_words``), and the registries that build the things named
(rlsweep.models, rlsweep.motivation) check at import that they build exactly these names. A group whose
options pick such a word (conf/model/*.yaml) is tested against the same list. The motivations are the one
exception to "declared here": their names are the ``name`` values of the package's conf/motivation/*.yaml, so
that a new motivation is its module and its YAML file (docs/architecture.md).

Defaults are the seed's (the author's RLAgents configs, docs/method.md §3.1); where the seed, the
SND paper code and CleanRL/OpenAI disagree, the difference is a field here with the seed's choice as default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SQRT2 = math.sqrt(2.0)

# Names the registries build (models need torch, so the lists live here and the registries check against them).
MODEL_NAMES: tuple[str, ...] = ("A", "B", "C", "D", "cleanrl")  # PPO actor-critics, rlsweep.models.build_policy


def _motivation_names() -> tuple[str, ...]:
    """The ``name`` of each option of the package's motivation group (conf/motivation/*.yaml), "none" first: the
    motivations rlsweep.motivation registers a class for (it checks at import that they are exactly these)."""
    import yaml  # PyYAML, which OmegaConf reads its files with

    group = Path(__file__).resolve().parents[1] / "conf" / "motivation"
    names = {str(yaml.safe_load(path.read_text())["name"]) for path in group.glob("*.yaml")}
    return ("none", *sorted(names - {"none"}))


MOTIVATION_NAMES: tuple[str, ...] = _motivation_names()  # rlsweep.motivation.MOTIVATIONS
DISTILLATION_NETWORKS: tuple[str, ...] = ("a", "c", "std", "vic", "cleanrl")  # rlsweep.models.build_distillation_nets
RESUME_CHOICES: tuple[str, ...] = ("check", "continue", "restart", "previous")  # rlsweep.launching.points
# Top-level keys that say how to run a point, not what it trains: never part of a run's name, its factors in a
# report, its sweep's default name or its config fingerprint (rlsweep.config.fingerprint).
CONTROL_KEYS = frozenset({"name", "sweep_name", "dry_run", "device", "torch_threads", "seeds_per_process", "resume"})

_CHOICES = "choices"  # dataclass field metadata key: the words a string field allows


def one_of(default: str, allowed: tuple[str, ...]) -> Any:
    """A string field that allows only the words ``allowed`` (checked by rlsweep.config.validate)."""
    if default not in allowed:
        raise ValueError(f"default {default!r} is not one of {allowed}")
    return field(default=default, metadata={_CHOICES: allowed})


def allowed_words(f: Any) -> tuple[str, ...] | None:
    """The words a dataclass field allows, or None for a free value."""
    words = f.metadata.get(_CHOICES)
    return None if words is None else tuple(words)


@dataclass
class ModelConfig:
    """PPO actor-critic (method.md §2): encoder -> actor head, critic head with two value outputs."""

    name: str = one_of("A", MODEL_NAMES)  # D = attention model; cleanrl = CleanRL ppo_rnd_envpool's Nature CNN
    critic_init_gain: float = 0.1  # orthogonal gain of the critic hidden layer; set by the critic_init group


@dataclass
class PPOConfig:
    """PPO with two critic heads and two discount factors (method.md §3.1, §4.1, §4.2)."""

    num_envs: int = 128  # parallel environments
    num_steps: int = 128  # rollout length per env per iteration (agent steps)
    update_epochs: int = 4  # passes over the rollout per iteration
    minibatch_size: int = 512  # samples per minibatch; must divide num_envs * num_steps
    minibatch_sampling: str = one_of("replacement", ("replacement", "permutation"))  # seed: random indices;
    #                                                    SND paper: one permutation
    learning_rate: float = 1e-4  # Adam, no annealing
    adam_eps: float = 1e-8  # torch default (CleanRL uses 1e-5)
    gamma_ext: float = 0.998  # discount of the extrinsic stream
    gamma_int: float = 0.99  # discount of the intrinsic stream
    gae_lambda: float = 0.95
    int_episodic: bool = True  # seed/paper: done cuts the intrinsic stream too; OpenAI/CleanRL: False
    bootstrap_last: bool = True  # bootstrap the rollout's last step from V(s_T); False = seed's quirk (zero)
    ext_adv_coef: float = 2.0  # A = ext_adv_coef * A_ext + int_adv_coef * A_int
    int_adv_coef: float = 1.0
    normalize_advantages: bool = False  # seed/paper: off; CleanRL: per-minibatch normalisation
    clip_coef: float = 0.1  # PPO ratio clip epsilon, in (0, 1)
    ent_coef: float = 0.001  # entropy bonus weight (beta)
    vf_coef: float = 0.5  # critic loss weight; critic loss = MSE_ext + MSE_int, no value clipping
    max_grad_norm: float = 0.5  # gradient-norm clip on the PPO model only


@dataclass
class MotivationConfig:
    """Intrinsic motivation (method.md §2.5, §2.6, §4.3-4.8). ``name=none`` is plain PPO.

    The first block is shared by every distillation method (RND and the SND variants); the second block only
    matters for SND (its target is trained by a self-supervised loss). Option files under conf/motivation/ set
    the paper's values per method; every key can be swept from the command line.
    """

    name: str = one_of("rnd", MOTIVATION_NAMES)  # snd_v: SND-V (contrastive MSE) | snd_vic: VICReg | snd_std: ST-DIM
    network: str = one_of("a", DISTILLATION_NETWORKS)  # a (8x8 convs) | c (3x3 convs, SND-V) | std / vic (ST-DIM CNN)
    coupled_init: bool = False  # arch c author variant: target/predictor rows drawn from one orthogonal matrix
    learning_rate: float = 1e-4  # predictor Adam (separate optimiser, no grad clip)
    reward_scale: float = 1.0  # eta: r_int = reward_scale * error (paper: RND 1, SND-V 0.5, per game for STD/VIC)
    reward_reduction: str = one_of("sum_half", ("sum_half", "mean"))  # sum_half: seed RND, sum of squares / 2;
    #                                                                    mean: SND, OpenAI
    reward_clip: float = 1.0  # r_int clipped to [0, reward_clip]; 0 disables the clip
    normalise_int_reward: bool = False  # divide r_int by its running std (seed variants b2/b3); set by group
    # predictor-loss mask keep probability; null = the seed's rule min(1, 32 / ppo.num_envs): 0.25 at 128 envs,
    # 1 at 32 or fewer (rlsweep.motivation.distillation.keep_fraction); a number fixes it (SND paper: 0.25)
    update_proportion: float | None = None
    mask: str = one_of("element", ("element", "sample"))  # element: seed | sample: CleanRL/OpenAI
    obs_norm: str = one_of("mean", ("mean", "mean_std", "none"))  # mean: seed RND, subtract the running mean |
    #                                     mean_std: standardise, clip +-obs_norm_clip | none: the raw frame
    obs_norm_clip: float = 5.0  # |standardised input| clip for obs_norm=mean_std (OpenAI 5; author CND 1)
    warmup_steps: int = 256  # random-action steps per env that fill the observation statistics before training
    # which state updates the observation statistics during training: input = s_t, just before r_int(s_t) (paper,
    # author CND/SND) | author = what the author's agent used: s_{t+1} after the step for RND, s_t for SND
    stats_state: str = one_of("input", ("input", "author"))
    obs_var_floor: float = 0.0  # obs_norm=mean_std divides by sqrt(max(var, floor)); 0 = by std + 1e-8 instead
    #                             (the author's RunningStats floors the variance at 1e-3)
    predictor_updates: str = one_of("per_minibatch", ("per_minibatch", "one_pass"))  # per_minibatch: seed |
    #                                     one_pass: SND paper; SND's target follows the same schedule

    # ---- SND only: the self-supervised target (method.md §4.6-4.8) ----
    target_loss: str = one_of("mse", ("mse", "vicreg", "stdim"))  # mse: SND-V contrastive MSE (snd_v) |
    #                        vicreg: snd_vic, or snd_v's two-view variant | stdim: snd_std
    target_learning_rate: float = 1e-4  # SND target Adam (its own optimiser; seed/paper 1e-4, no grad clip)
    target_batch_size: int = 64  # SND-V pairs per target step (author 16 x 4 envs-batch = 64; paper 512 / 8 = 64)
    pair_far_prob: float = (
        0.5  # SND-V: probability a pair is (anchor, random other state), label 1; else (s, s), label 0
    )
    magnitude_threshold: float = 200.0  # SND-V hinge: loss += ReLU(mean(z_a^2) + mean(z_b^2) - threshold)
    augmentations: str = one_of("mask+noise", ("mask+noise", "mask", "noise", "none"))  # SND-V views; paper: mask+noise
    aug_prob: float = 0.5  # per-sample probability that each augmentation is applied (author/paper 0.5)
    aug_tile_drop: float = 0.1  # tile mask: probability that one tile is zeroed (tile side drawn from 1..16 px)
    aug_noise: float = 0.2  # additive uniform noise amplitude: x + U(-aug_noise, aug_noise), input units
    vicreg_inv: float = 1.0  # VICReg invariance weight (MSE between the two views)
    vicreg_var: float = 1.0  # VICReg variance weight (hinge of per-feature std at 1)
    vicreg_cov: float = 0.04  # VICReg covariance weight (1/25; off-diagonal Cov^2 summed / feature_dim)
    stdim_norm_coef: float = 1e-4  # ST-DIM: weight of the L2 norm of the InfoNCE logits (cnd_loss_target_reg)
    stdim_std_coef: float = 1e-4  # ST-DIM: weight of -mean per-sample std of the target features

    # ---- simhash only: count-based exploration (Tang et al. 2017; rlsweep.motivation.simhash) ----
    hash_bits: int = 64  # bits of the SimHash code sgn(A g(s)): more bits tell more states apart
    hash_side: int = 16  # the newest frame is average-pooled to hash_side x hash_side before the projection


@dataclass
class EnvConfig:
    """Vectorised environment (method.md §3.5). ``id`` picks the backend: an envpool Atari id (``*-v5``), a
    Procgen game as ``procgen-<game>`` (e.g. ``procgen-coinrun``), or a synthetic id."""

    id: str = "MontezumaRevenge-v5"  # envpool Atari id | procgen-<game> | synthetic: fake | maze | chain
    frame_size: int = 96  # square frame side, pixels (Procgen renders 64; other sizes are resized)
    frame_stack: int = 4  # frames stacked per observation (newest last)
    frame_skip: int = 4  # emulator frames per agent step (Atari only)
    sticky_action_prob: float = 0.25  # repeat previous action with this probability (per emulator frame; Atari)
    max_episode_steps: int = 4500  # agent steps (= 18000 frames at frame_skip 4); Procgen ends episodes itself
    binary_reward: bool = True  # training reward = 1 if raw reward > 0; the raw score is tracked apart
    episodic_life: bool = False  # seed: a lost life does not end the episode
    noop_max: int = 30  # random no-ops on reset (author: 1-30; SND paper: none)
    num_threads: int = 0  # envpool / Procgen worker threads; 0 = all cores
    grayscale: bool = True  # Procgen: True = 1 grey channel per frame; False = RGB (paper: 3 channels/frame)
    distribution_mode: str = one_of("exploration", ("exploration", "easy", "hard", "extreme", "memory"))  # Procgen
    #                                                 level distribution; paper: exploration
    random_action_prob: float = 0.0  # Procgen: replace the agent's action by a uniform one (paper: 0.01)
    maze_rooms: int = 3  # synthetic maze: rooms per side
    maze_room_size: int = 5  # synthetic maze: cells per room side
    chain_length: int = 10  # synthetic chain: cells


@dataclass
class BudgetConfig:
    """How long a run is and how often it logs and checkpoints."""

    total_steps: int = 128_000_000  # agent steps summed over envs (seed: 128 M on Atari)
    log_every: int = 1  # iterations between metric lines
    checkpoint_every: int = 50  # iterations between atomic checkpoints (and one at the end)
    # 0 = keep only the latest checkpoint (and the one before it); K > 0 = also keep the checkpoint of every K-th
    # checkpoint interval (iterations that are multiples of K * checkpoint_every) and of the last iteration as
    # checkpoints/step-<global_step>.pt, for `rlsweep eval --all-steps` (a learning curve evaluated afterwards)
    keep_checkpoints: int = 0


@dataclass
class LoggerConfig:
    """Where metrics go besides the local store (metrics.jsonl, always written)."""

    backend: str = one_of("wandb", ("wandb", "none"))
    mode: str = one_of("auto", ("auto", "offline", "online", "disabled"))  # auto: online if an API key is
    #                                                                      configured, else offline
    project: str = "rlsweep"
    entity: str | None = None
    console_every: int = 10  # iterations between console progress lines


@dataclass
class DebugConfig:
    """Switches for finding problems; off by default."""

    deterministic: bool = True  # torch deterministic algorithms (CPU results repeat exactly for one seed)
    detect_anomaly: bool = False  # torch autograd anomaly detection (slow)
    profile: bool = False  # log phase times (perf/*) every iteration
    crash_at_iteration: int = 0  # raise an error when this iteration starts (0 = never): tests crash handling
    pause_at_iteration: int = 0  # checkpoint this iteration, then wait until stopped from outside (0 = never):
    #                              tests kill, cancel or preempt a run at a known point, never racing its end


@dataclass
class PerfConfig:
    """Speed switches (benchmarks/README.md). Each gives the same numbers up to floating-point rounding
    (``autocast`` up to bf16 rounding), except ``reuse_target_features`` and ``double_buffer`` (see their
    comments). A switch is on by default only where it was measured faster and changes no number beyond
    rounding; the GPU-only ones stay off until measured on a GPU.
    """

    fused_adam: bool = True  # one fused Adam kernel over all parameters instead of torch's per-tensor loop
    overlap_env: bool = True  # the emulators step (envpool send/recv) while the intrinsic reward is computed
    # Double-buffered sampling: the envs step in two halves, each half's policy pass and r_int computed while the
    # other half steps. Envpool envs (Atari, Procgen), an even number of envs, one seed per process, no
    # reuse_target_features. Changes numbers (not the method): actions are drawn per half, and the observation
    # and reward statistics are updated half by half, so each half's r_int sees the statistics up to itself.
    double_buffer: bool = False
    compile: str = one_of("none", ("none", "default", "reduce-overhead", "max-autotune"))  # torch.compile the
    #                        policy and distillation nets (reduce-overhead = CUDA graphs on GPU)
    autocast: str = one_of("none", ("none", "bf16"))  # bf16: the policy's and the predictor's training forward
    #                        passes under bf16 autocast (weights, gradients and Adam stay float32; r_int too)
    # Convolution weights in NHWC memory order (oneDNN's and cuDNN's preferred layout); the convs then run NHWC.
    channels_last: bool = True
    pin_memory: bool = True  # observations reach a CUDA device through a pinned buffer, asynchronously
    # RND's frozen target: its features of each collected state, computed for r_int during collection, are kept
    # and reused by the predictor's update instead of a target forward pass per minibatch. Changes numbers
    # slightly where the input is normalised (obs_norm mean/std): the target then sees the state normalised by
    # the statistics of collection time, the predictor by those of update time. Not for SND (its target trains).
    reuse_target_features: bool = False
    # RND's frozen target, when its features are not reused from collection: its features of the rollout's states
    # are computed once when the update starts (in chunks, with the statistics the update reads) and every
    # epoch's minibatches read them, instead of a target pass per minibatch in each of ppo.update_epochs epochs.
    # The same numbers up to the rounding of batched kernels; holds (T N, feature_dim) floats during the update.
    target_features_per_update: bool = True
    # motivation.mask=sample (CleanRL's and OpenAI's RND): the predictor's training passes run on the rows its mask
    # keeps (update_proportion of the minibatch) instead of on every row with the rest zeroed. The same loss and
    # gradient up to the order of float sums. Stacked seeds (seeds_per_process) keep different numbers of rows, so
    # each seed's kept rows run through its own slice of the stacked networks, a lone run's pass on them. No effect
    # on mask=element (the seed's, and SND's).
    predictor_kept_rows: bool = True


@dataclass
class Config:
    """The root config: one run (a grid point with a seed)."""

    defaults: list[Any] = field(default_factory=list)
    model: ModelConfig = field(default_factory=ModelConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    motivation: MotivationConfig = field(default_factory=MotivationConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)
    perf: PerfConfig = field(default_factory=PerfConfig)
    seed: int = 1
    device: str = "auto"  # auto (cuda if present, else cpu) | cpu | cuda | cuda:N
    torch_threads: int = 0  # 0 = torch default
    # Launchers: up to this many seeds of one configuration (resolved configs equal but for `seed`, and at the same
    # progress) train together in one process, with stacked networks; each seed stays its own run (directory,
    # record, lock, metrics, W&B run). 1 = one process per point. > 1 only with perf.compile=none
    # (rlsweep.config.validate); on the CPU slower than separate processes (docs/usage.md)
    seeds_per_process: int = 1
    name: str = ""  # configuration name; empty = derived from the group choices (see rlsweep.config.naming)
    sweep_name: str = ""  # W&B group; empty = the sweep directory's name
    dry_run: bool = False  # print the job table and start nothing
    # What a rerun does with a point that has progress: check = resume its checkpoint if the config that decides
    # training is unchanged, else refuse naming the keys | continue = resume under the changed config |
    # restart = set its files aside (discarded/) and start over in a new W&B run | previous = set an unreadable
    # checkpoint aside and resume the one before it
    resume: str = one_of("check", RESUME_CHOICES)
