"""Procgen backend: envpool's Procgen games behind the :class:`~rlsweep.envs.base.VecEnv` contract.

This module owns the translation from envpool's Procgen envs (envpool 1.2.5) to the project contract (method.md
§3.5, [SND] ``ProcgenWrapper``: exploration mode, RGB 64x64, 2 stacked frames, 1 % random actions):

* **Ids.** The project's ``procgen-<game>`` with ``distribution_mode`` (easy, hard, exploration, memory,
  extreme) names envpool's ``<Game><Mode>-v0``, e.g. ``procgen-jumper`` in exploration mode is
  ``JumperExploration-v0``. Exploration mode is Procgen's single fixed level per game (the procgen package's
  ``EXPLORATION_LEVEL_SEEDS``, played in hard mode), the mode the SND paper trained on; envpool offers it for
  the eight games procgen offers it for. Which game has which mode is read from envpool's registry.
* **Same as procgen.** For the same seed and actions, envpool gives the observations, rewards and episode ends
  of the procgen package (procgen-mirror 0.10.7) bit for bit when both draw with the same Qt; with procgen's
  bundled Qt 5.9 a few pixels of some frames differ (benchmarks/procgen_equivalence.py and its results).
* **Same-step autoreset** through :class:`~rlsweep.envs.pool.SameStepPool`, as for Atari: on the step that ends
  an episode the reward belongs to the finished episode and the observation to the next one.
* **Frames.** envpool's frames are uint8 (N, 3, 64, 64), channel first. Kept in colour (3 channels per frame,
  the paper) or converted to grey (ITU-R 601 luma, 1 channel) per ``grayscale``; resized with area
  interpolation only when ``frame_size`` is not 64. The stack is kept here (envpool's Procgen has none), newest
  frame in the last channels; a new episode fills every slot with its first frame, so no frame of the old
  episode leaks into the new one. ``frame_channels`` (3 or 1) tells the motivation how many trailing channels
  make the newest frame.
* **Episode length** is Procgen's own (1000 steps); ``max_episode_steps`` does not apply here.
* **Random actions** (paper: 1 %) replace the agent's action by a uniform one with ``random_action_prob``,
  drawn from a generator seeded with the run's seed.
* **Qt.** envpool draws Procgen's frames with the system's Qt 5 GUI library; :func:`require_procgen` says in
  one message what to install where it is missing (see :mod:`rlsweep.envs.pool` for the wheel fallback).
* Procgen has no rooms: ``exploration()`` is empty and ``EpisodeInfo.rooms`` is 0.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rlsweep.config.schema import EnvConfig
from rlsweep.envs.base import EpisodeInfo, NoExplorationCounters, StepResult, VecEnv
from rlsweep.envs.family import EnvFamily
from rlsweep.envs.pool import SameStepPool, import_envpool

__all__ = ["FAMILY", "ProcgenEnv", "ProcgenUnavailable", "procgen_env_ids", "procgen_modes", "require_procgen"]

_PREFIX = "procgen-"
_NATIVE_SIDE = 64
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Procgen's DistributionMode numbers (game.h; 20 is the exploration mode), as envpool's registry gives them.
_MODE_NAMES = {0: "easy", 1: "hard", 2: "extreme", 10: "memory", 20: "exploration"}

QT_MISSING = (
    "Procgen needs the Qt 5 GUI library (libQt5Gui.so.5, libQt5Core.so.5), which this machine lacks or cannot "
    "load. With root: apt-get install libqt5gui5 (Debian, Ubuntu) or dnf install qt5-qtbase-gui (Fedora, RHEL, "
    "Rocky). Without root: pip install 'rlsweep[qt5]' (Qt 5 from PyPI, loaded by rlsweep; needs libGL.so.1, which "
    "most nodes have), or make a Qt 5 visible through LD_LIBRARY_PATH (e.g. module load qt5)"
)


class ProcgenUnavailable(ImportError):
    """Procgen cannot run here: the Qt 5 GUI library is missing (the message says what to install)."""


@lru_cache(maxsize=1)
def procgen_modes() -> dict[str, dict[str, str]]:
    """``{game: {mode: envpool id}}`` for every Procgen game and distribution mode envpool registers."""
    import_envpool()
    from envpool.registration import registry

    modes: dict[str, dict[str, str]] = {}
    for env_id, (module, _, kwargs) in registry.specs.items():
        if module == "envpool.procgen" and "env_name" in kwargs:
            mode = _MODE_NAMES.get(int(kwargs.get("distribution_mode", 0)))
            if mode is not None:
                modes.setdefault(str(kwargs["env_name"]), {})[mode] = env_id
    return {game: modes[game] for game in sorted(modes)}


def procgen_env_ids() -> tuple[str, ...]:
    """``procgen-<game>`` for every Procgen game."""
    return tuple(f"{_PREFIX}{game}" for game in procgen_modes())


def envpool_id(env_id: str, distribution_mode: str) -> str:
    """envpool's id for ``procgen-<game>`` in ``distribution_mode``; ValueError naming what is allowed."""
    game = env_id[len(_PREFIX) :] if env_id.startswith(_PREFIX) else None
    modes = procgen_modes()
    if game not in modes:
        raise ValueError(f"env.id={env_id!r} is not a Procgen id; allowed: {', '.join(procgen_env_ids())}")
    if distribution_mode not in modes[game]:
        offered = sorted(g for g, m in modes.items() if distribution_mode in m)
        raise ValueError(
            f"Invalid value for env.distribution_mode: {distribution_mode!r} with env.id={env_id!r} (allowed: "
            f"{', '.join(sorted(modes[game]))}; {distribution_mode} mode exists for {', '.join(offered) or 'no game'})"
        )
    return modes[game][distribution_mode]


def require_procgen() -> None:
    """Raise :class:`ProcgenUnavailable` with what to install when envpool's Procgen cannot load here."""
    import_envpool()
    try:
        from envpool.procgen import ProcgenEnvSpec  # noqa: F401  (raises ImportError without Qt 5)
    except (ImportError, OSError) as exc:
        # However the library is missing or broken (absent, empty, another architecture, a missing symbol), the
        # dynamic loader's complaint ends up here: one line that says what to install, and what the loader said.
        reason = " ".join(str(exc.__cause__ or exc).split())
        raise ProcgenUnavailable(f"{QT_MISSING} (the dynamic loader said: {reason})") from exc


class ProcgenEnv(NoExplorationCounters):
    """N Procgen games of one kind in one envpool, with the seed-style frame stack and episode statistics."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        seed: int,
        *,
        frame_size: int = 64,
        frame_stack: int = 2,
        grayscale: bool = False,
        distribution_mode: str = "exploration",
        random_action_prob: float = 0.0,
        binary_reward: bool = False,
        num_threads: int = 0,
    ) -> None:
        pool_id = envpool_id(env_id, distribution_mode)
        require_procgen()
        self._pool = SameStepPool.make(pool_id, num_envs, seed=int(seed) % (2**31 - 1), num_threads=num_threads)
        self.env_id = env_id
        self.game = env_id[len(_PREFIX) :]
        self.num_envs = num_envs
        self.frame_channels = 1 if grayscale else 3
        self.obs_shape = (frame_stack * self.frame_channels, frame_size, frame_size)
        self.num_actions = int(self._pool.env.action_space.n)
        self._grayscale = grayscale
        self._frame_size = frame_size
        self._random_action_prob = random_action_prob
        self._binary_reward = binary_reward
        self._rng = np.random.default_rng(seed)
        self._stack = np.zeros((num_envs, *self.obs_shape), dtype=np.uint8)
        self._ep_return = np.zeros(num_envs, dtype=np.float64)
        self._score = np.zeros(num_envs, dtype=np.float64)
        self._length = np.zeros(num_envs, dtype=np.int64)

    def _frames(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (N, 3, 64, 64) -> uint8 (N, frame_channels, frame_size, frame_size)."""
        if self._frame_size != _NATIVE_SIDE:
            import cv2

            size = (self._frame_size, self._frame_size)
            hwc = rgb.transpose(0, 2, 3, 1)
            rgb = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in hwc]).transpose(0, 3, 1, 2)
        if self._grayscale:
            grey = np.rint(np.tensordot(_LUMA, rgb.astype(np.float32), axes=(0, 1))).clip(0, 255).astype(np.uint8)
            return grey[:, None]
        return np.ascontiguousarray(rgb)

    def _fill(self, ids: np.ndarray, frames: np.ndarray) -> None:
        """Start the stacks of ``ids`` from their first frame only."""
        self._stack[ids] = np.tile(frames, (1, self.obs_shape[0] // self.frame_channels, 1, 1))

    # ---- VecEnv --------------------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        obs, _ = self._pool.reset()
        self._fill(np.arange(self.num_envs), self._frames(obs))
        self._ep_return[:] = 0.0
        self._score[:] = 0.0
        self._length[:] = 0
        return self._stack.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: np.ndarray, part: slice = slice(None)) -> None:
        """Start a step of the envs ``part`` (all by default; a contiguous slice)."""
        actions = np.asarray(actions).astype(np.int32, copy=True).reshape(-1)
        if self._random_action_prob > 0:
            swap = self._rng.random(len(actions)) < self._random_action_prob
            actions[swap] = self._rng.integers(0, self.num_actions, size=int(swap.sum()))
        self._pool.send(actions, part)

    def step_wait(self) -> StepResult:
        """The step's result for the envs of its part, episodes numbered among all envs."""
        part, obs, raw, done, _ = self._pool.recv()
        reward = (raw > 0).astype(np.float32) if self._binary_reward else raw.astype(np.float32)
        self._ep_return[part] += reward
        self._score[part] += raw
        self._length[part] += 1

        c = self.frame_channels
        stack = self._stack[part]  # a view: the part's rows
        stack[:, :-c] = stack[:, c:]
        stack[:, -c:] = self._frames(obs)
        episodes: list[EpisodeInfo] = []
        if done.any():
            ids = np.arange(self.num_envs)[part][done]
            for i in ids:
                episodes.append(
                    EpisodeInfo(int(i), float(self._ep_return[i]), float(self._score[i]), int(self._length[i]), 0)
                )
            self._ep_return[ids] = 0.0
            self._score[ids] = 0.0
            self._length[ids] = 0
            reset_ids, reset_obs, _ = self._pool.reset_envs(ids)
            self._fill(reset_ids, self._frames(reset_obs))
        return StepResult(obs=stack.copy(), reward=reward, done=done, episodes=episodes)

    def close(self) -> None:
        self._pool.close()


def _build(env: EnvConfig, num_envs: int, seed: int) -> VecEnv:
    return ProcgenEnv(
        env.id,
        num_envs,
        seed,
        frame_size=env.frame_size,
        frame_stack=env.frame_stack,
        grayscale=env.grayscale,
        distribution_mode=env.distribution_mode,
        random_action_prob=env.random_action_prob,
        binary_reward=env.binary_reward,
        num_threads=env.num_threads,
    )


def _check(env: EnvConfig) -> None:
    """The game offers the mode, and Procgen can run here (Qt 5): said before any job starts."""
    envpool_id(env.id, env.distribution_mode)
    try:
        require_procgen()
    except ProcgenUnavailable as exc:
        raise ValueError(f"env.id={env.id!r} cannot run here: {exc}") from None


FAMILY = EnvFamily(
    name="procgen",
    ids_look=f"{_PREFIX}<game> such as {_PREFIX}coinrun",
    owns=lambda env_id: env_id.startswith(_PREFIX),
    ids=procgen_env_ids,
    build=_build,
    check=_check,
    colour=True,
)
