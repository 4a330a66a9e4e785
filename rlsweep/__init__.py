"""rlsweep: PPO with RND / SND intrinsic motivation on hard-exploration Atari and Procgen, run as ablation sweeps.

Rooms (sub-packages): ``config`` (typed Hydra schema, validation, run names), ``envs`` (vectorised envs),
``models`` (PPO models A-D, distillation networks), ``motivation`` (none / RND / SND behind one protocol),
``agent`` (GAE, PPO update), ``storage`` (rollout tensors), ``training`` (the one loop, checkpoints),
``tracking`` (W&B + local metrics store), ``launching`` (Hydra task function, CLI), ``analysis`` (reports).
"""

__version__ = "0.1.0"
