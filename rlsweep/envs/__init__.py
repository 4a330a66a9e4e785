"""Environment factory: turns an ``env`` config section into a :class:`VecEnv`.

This package owns every environment backend behind the :mod:`rlsweep.envs.base` contract: envpool Atari
(:mod:`rlsweep.envs.atari`), envpool Procgen (:mod:`rlsweep.envs.procgen`, ids ``procgen-<game>``) and the
synthetic test envs ``fake``, ``maze`` and ``chain`` (:mod:`rlsweep.envs.synthetic`). envpool is imported
lazily, so the synthetic envs work (and import fast) without touching an emulator.
"""

from __future__ import annotations

from typing import Any

from rlsweep.envs.base import EpisodeInfo, StepResult, VecEnv

__all__ = ["SYNTHETIC_IDS", "EpisodeInfo", "StepResult", "VecEnv", "known_env_ids", "make_env"]

SYNTHETIC_IDS: tuple[str, ...] = ("fake", "maze", "chain")

# Defaults for fields a config object may lack (they match rlsweep.config.schema.EnvConfig), so a small
# namespace with only the fields a test cares about is enough.
_DEFAULTS: dict[str, Any] = {
    "frame_size": 96,
    "frame_stack": 4,
    "frame_skip": 4,
    "sticky_action_prob": 0.25,
    "max_episode_steps": 4500,
    "binary_reward": True,
    "episodic_life": False,
    "noop_max": 30,
    "num_threads": 0,
    "grayscale": True,
    "distribution_mode": "exploration",
    "random_action_prob": 0.0,
    "maze_rooms": 3,
    "maze_room_size": 5,
    "chain_length": 10,
}


def _field(cfg: Any, name: str) -> Any:
    # getattr's default also covers OmegaConf struct configs (their missing-key error is an AttributeError).
    return getattr(cfg, name, _DEFAULTS[name])


def known_env_ids() -> list[str]:
    """The synthetic ids, envpool's Atari ``-v5`` ids and the Procgen ids ``procgen-<game>``."""
    from rlsweep.envs.atari import atari_env_ids
    from rlsweep.envs.procgen import procgen_env_ids

    return [*SYNTHETIC_IDS, *atari_env_ids(), *procgen_env_ids()]


def make_env(cfg: Any, num_envs: int, seed: int) -> VecEnv:
    """Build ``num_envs`` vectorised envs of ``cfg.id`` seeded with ``seed``.

    ``cfg`` is read by attribute access (an OmegaConf DictConfig or the ``EnvConfig`` dataclass); fields it
    lacks take the ``EnvConfig`` defaults. Raises ValueError for an id that is neither synthetic nor an
    envpool Atari id.
    """
    env_id = str(cfg.id)
    size, stack = int(_field(cfg, "frame_size")), int(_field(cfg, "frame_stack"))
    max_steps = int(_field(cfg, "max_episode_steps"))
    if env_id in SYNTHETIC_IDS:
        from rlsweep.envs.synthetic import ChainEnv, FakeEnv, MazeEnv

        if env_id == "fake":
            return FakeEnv(num_envs, size, stack, max_steps, seed)
        if env_id == "maze":
            rooms, room_size = int(_field(cfg, "maze_rooms")), int(_field(cfg, "maze_room_size"))
            return MazeEnv(num_envs, size, stack, max_steps, seed, rooms=rooms, room_size=room_size)
        return ChainEnv(num_envs, size, stack, max_steps, seed, length=int(_field(cfg, "chain_length")))

    if env_id.startswith("procgen-"):
        from rlsweep.envs.procgen import ProcgenEnv

        return ProcgenEnv(
            env_id,
            num_envs,
            seed,
            frame_size=size,
            frame_stack=stack,
            grayscale=bool(_field(cfg, "grayscale")),
            distribution_mode=str(_field(cfg, "distribution_mode")),
            random_action_prob=float(_field(cfg, "random_action_prob")),
            binary_reward=bool(_field(cfg, "binary_reward")),
            num_threads=int(_field(cfg, "num_threads")),
        )

    from rlsweep.envs.atari import AtariEnv, atari_env_ids

    if env_id not in atari_env_ids():
        raise ValueError(
            f"env.id={env_id!r} is not a known environment; allowed: synthetic fake, maze, chain, "
            "an envpool Atari id such as MontezumaRevenge-v5, or procgen-<game> such as procgen-coinrun"
        )
    return AtariEnv(
        env_id,
        num_envs,
        seed,
        frame_size=size,
        frame_stack=stack,
        frame_skip=int(_field(cfg, "frame_skip")),
        sticky_action_prob=float(_field(cfg, "sticky_action_prob")),
        max_episode_steps=max_steps,
        binary_reward=bool(_field(cfg, "binary_reward")),
        episodic_life=bool(_field(cfg, "episodic_life")),
        noop_max=int(_field(cfg, "noop_max")),
        num_threads=int(_field(cfg, "num_threads")),
    )
