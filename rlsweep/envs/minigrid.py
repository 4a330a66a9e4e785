"""MiniGrid backend: Farama's MiniGrid grid worlds behind the :class:`~rlsweep.envs.base.VecEnv` contract.

This module owns the translation from MiniGrid (the ``minigrid`` package 3.2.0, pure Python on gymnasium) to the
project contract. MiniGrid holds the hard-exploration grid worlds that exploration papers evaluate RND-style
bonuses on next to Montezuma's Revenge (RIDE, NovelD, AGAC: MultiRoom-N6, KeyCorridorS3R3, ObstructedMaze):

* **Ids.** Every ``MiniGrid-*`` id that ``import minigrid`` registers with gymnasium, read from gymnasium's registry
  (BabyAI's ids, registered by the same package, are language-conditioned tasks and not this family's). minigrid
  is imported only when a MiniGrid id is built, checked or listed, so other sweeps do not pay its second of
  imports (it pulls pygame). Where it is not installed, the family still accepts its ids so that its check can say,
  in one line, what to pip install.
* **Frames.** The agent's partial egocentric view (``RGBImgPartialObsWrapper``): the ``agent_view_size`` x
  ``agent_view_size`` cells (7 x 7) in front of the agent, drawn from above with the agent at the bottom centre
  facing up and the cells it can see drawn lighter. This is MiniGrid's default observation and the one RIDE, NovelD
  and AGAC give their agents (as symbols there, as pixels here, since rlsweep's nets and motivations read pixels),
  and it is what makes these envs hard to explore: the rooms ahead cannot be seen, and a novelty bonus on the view
  rewards going somewhere new rather than the whole map's layout. The full map (``RGBImgObsWrapper``) would show
  the goal, and each episode's new random layout would be novel by itself. Tiles are drawn at
  ``ceil(frame_size / 7)`` pixels and area-resized to ``frame_size`` (no resize at 56 = 7 tiles of MiniGrid's 8
  pixels); RGB, or grey (ITU-R 601 luma, 1 channel) per ``grayscale``. The stack is kept here, newest frame in
  the last channels; a new episode fills every slot with its first frame.
* **Stepping.** The N envs step one after another in this process (MiniGrid is Python; no worker threads), so
  ``step_async`` only records the actions (:class:`~rlsweep.envs.base.SyncStepping`). Same-step autoreset: on the
  step that ends an episode the reward belongs to the finished episode and the observation to the next one.
* **Seeding.** Env i's first reset is seeded with the i-th number drawn from ``SeedSequence(seed)``; later
  episodes continue that env's own generator, as gymnasium intends, so one seed and one action sequence give one
  observation sequence, and the N envs' layouts differ.
* **Episodes** end where MiniGrid ends them (the goal reached, or its own step limit ``max_steps``: 120 on
  MultiRoom-N6, 270 on KeyCorridorS3R3), or after ``max_episode_steps`` agent steps where that is shorter. The
  raw reward is MiniGrid's ``1 - 0.9 * steps / max_steps`` on success, 0 otherwise; it is summed into the score,
  and the training reward is it, or 1 on success with ``binary_reward``.
* **Exploration.** ``explore/cells`` counts the distinct grid cells (row, column) the agent has stood on in any
  env since the run began, as the synthetic maze does. ``explore/rooms`` and ``EpisodeInfo.rooms`` count rooms
  where the env has them: MultiRoom's rooms by their place along the chain from the start (room 0) to the goal
  room, and the rooms of ``RoomGrid`` envs (KeyCorridor, ObstructedMaze, ...) by their place in the grid. Door
  and wall cells belong to no room. Where the layout changes every episode (MultiRoom places its rooms anew), a
  cell is a position on the grid, not a place in one layout: an agent that never leaves its first room still adds
  cells as the first room moves, so there the rooms counter is the measure of getting further.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from rlsweep.config.schema import EnvConfig
from rlsweep.envs.base import EpisodeInfo, StepResult, SyncStepping, VecEnv
from rlsweep.envs.family import EnvFamily

__all__ = ["FAMILY", "MINIGRID_MISSING", "MiniGridUnavailable", "MiniGridVecEnv", "minigrid_env_ids"]

_PREFIX = "MiniGrid-"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

MINIGRID_MISSING = (
    "MiniGrid envs need the minigrid package, which is not installed here: pip install 'rlsweep[minigrid]' "
    "(or pip install minigrid==3.2.0)"
)


class MiniGridUnavailable(ImportError):
    """The minigrid package cannot be imported here (the message says what to install)."""


def require_minigrid() -> None:
    """Import minigrid (which registers its ids with gymnasium); :class:`MiniGridUnavailable` where it is missing."""
    try:
        import minigrid  # noqa: F401  (registers the MiniGrid-* ids with gymnasium)
    except ImportError as exc:
        raise MiniGridUnavailable(MINIGRID_MISSING) from exc


class _AnyMiniGridId(tuple[str, ...]):
    """The ids without the package: none to list or to suggest, but every ``MiniGrid-*`` id is accepted, so that the
    family's check, not an "unknown id", tells the user what to install."""

    def __contains__(self, env_id: object) -> bool:
        return isinstance(env_id, str) and env_id.startswith(_PREFIX)


@lru_cache(maxsize=1)
def minigrid_env_ids() -> tuple[str, ...]:
    """Every ``MiniGrid-*`` id minigrid registers, sorted; where minigrid is missing, an empty tuple that still
    contains every ``MiniGrid-*`` id (see :class:`_AnyMiniGridId`)."""
    try:
        require_minigrid()
    except MiniGridUnavailable:
        return _AnyMiniGridId()
    import gymnasium

    return tuple(sorted(i for i, spec in gymnasium.registry.items() if i.startswith(_PREFIX) and _ours(spec)))


def _ours(spec: Any) -> bool:
    entry = spec.entry_point
    return isinstance(entry, str) and entry.startswith("minigrid.")


def _make_one(env_id: str, tile_size: int) -> Any:
    """One MiniGrid env that observes its partial view as RGB pixels."""
    import gymnasium
    from minigrid.wrappers import RGBImgPartialObsWrapper

    # gymnasium's passive checker re-validates MiniGrid's own spaces on the first step of each env: skipped.
    return RGBImgPartialObsWrapper(gymnasium.make(env_id, disable_env_checker=True), tile_size=tile_size)


class MiniGridVecEnv(SyncStepping):
    """N MiniGrid envs of one id stepped in this process, with a frame stack, episode statistics and cell counting."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        seed: int,
        *,
        frame_size: int = 56,
        frame_stack: int = 2,
        grayscale: bool = False,
        max_episode_steps: int | None = None,
        binary_reward: bool = False,
    ) -> None:
        if num_envs < 1 or frame_stack < 1 or frame_size < 1:
            raise ValueError(
                f"num_envs, frame_stack and frame_size must be >= 1, got {num_envs}, {frame_stack}, {frame_size}"
            )
        require_minigrid()
        self.env_id = env_id
        self.num_envs = num_envs
        self.frame_channels = 1 if grayscale else 3
        self.obs_shape = (frame_stack * self.frame_channels, frame_size, frame_size)
        self._frame_size = frame_size
        self._grayscale = grayscale
        self._binary_reward = binary_reward
        self._max_steps = max_episode_steps

        probe = _make_one(env_id, 1)
        view = int(probe.unwrapped.agent_view_size)
        probe.close()
        # Tiles at least frame_size / view pixels, so the resize only ever shrinks (area averaging, no blur of
        # upsampling); at frame_size = 7 * 8 the frame is minigrid's own render, untouched.
        self._tile = -(-frame_size // view)
        self._envs = [_make_one(env_id, self._tile) for _ in range(num_envs)]
        first = self._envs[0].unwrapped
        self.num_actions = int(self._envs[0].action_space.n)
        self.grid_shape = (int(first.height), int(first.width))  # (rows, cols); fixed per id
        self._env_seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(num_envs)]
        self._seeded = False

        self._stack = np.zeros((num_envs, *self.obs_shape), dtype=np.uint8)
        self._ep_return = np.zeros(num_envs, dtype=np.float64)
        self._score = np.zeros(num_envs, dtype=np.float64)
        self._length = np.zeros(num_envs, dtype=np.int64)
        self._pos = np.zeros((num_envs, 2), dtype=np.int64)
        self._ep_rooms: list[set[int]] = [set() for _ in range(num_envs)]
        self._run_cells = np.zeros(self.grid_shape, dtype=bool)
        self._rooms_at = [self._room_of(e.unwrapped) for e in self._envs]  # per env: (x, y) -> room, or None
        self._has_rooms = self._rooms_at[0] is not None
        self._run_rooms: set[int] = set()

    # ---- frames --------------------------------------------------------------------------------------------
    def _frames(self, images: list[np.ndarray]) -> np.ndarray:
        """MiniGrid's HWC RGB views -> uint8 (N, frame_channels, frame_size, frame_size)."""
        size = self._frame_size
        if images[0].shape[0] != size:
            import cv2

            images = [cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) for img in images]
        rgb = np.stack(images).transpose(0, 3, 1, 2)
        if self._grayscale:
            grey = np.rint(np.tensordot(_LUMA, rgb.astype(np.float32), axes=(0, 1))).clip(0, 255).astype(np.uint8)
            return grey[:, None]
        return np.ascontiguousarray(rgb)

    def _fill(self, i: int, frame: np.ndarray) -> None:
        """Start env i's stack from its first frame only: no frame of the old episode leaks into the new one."""
        self._stack[i] = np.tile(frame, (self.obs_shape[0] // self.frame_channels, 1, 1))

    # ---- exploration counters ------------------------------------------------------------------------------
    @staticmethod
    def _room_of(env: Any) -> Callable[[int, int], int] | None:
        """A function (x, y) -> room index or -1 (doors, walls) for envs with rooms; None for the others. It reads
        the env's layout when called, so it follows MultiRoom's new layout each episode."""
        from minigrid.core.roomgrid import RoomGrid
        from minigrid.envs.multiroom import MultiRoomEnv

        if isinstance(env, RoomGrid):
            pitch, cols = env.room_size - 1, env.num_cols

            def in_grid(x: int, y: int) -> int:
                if x % pitch == 0 or y % pitch == 0:  # the wall lines between rooms (and their doors)
                    return -1
                return (y // pitch) * cols + x // pitch

            return in_grid
        if isinstance(env, MultiRoomEnv):

            def in_chain(x: int, y: int) -> int:
                # The rooms of this episode's layout, in order from the start room to the goal room; a room's
                # top and size include its walls.
                for k, room in enumerate(env.rooms):
                    (left, top), (width, height) = room.top, room.size
                    if left < x < left + width - 1 and top < y < top + height - 1:
                        return k
                return -1

            return in_chain
        return None

    def _visit(self, i: int) -> None:
        """Record env i's current cell (and room) in the episode's and the run's counters."""
        env = self._envs[i].unwrapped
        x, y = (int(v) for v in env.agent_pos)
        self._pos[i] = (y, x)
        self._run_cells[y, x] = True
        room_at = self._rooms_at[i]
        if room_at is not None:
            room = room_at(x, y)
            if room >= 0:
                self._ep_rooms[i].add(room)
                self._run_rooms.add(room)

    @property
    def positions(self) -> np.ndarray:
        """(N, 2) int (row, col) grid cell of each agent, as the synthetic maze gives it; a copy."""
        return self._pos.copy()

    def exploration(self) -> dict[str, float]:
        counters = {"cells": float(self._run_cells.sum())}
        if self._has_rooms:
            counters["rooms"] = float(len(self._run_rooms))
        return counters

    def exploration_state(self) -> dict[str, Any]:
        # Plain lists of ints: picklable and loadable by torch.load(weights_only=True).
        return {"cells": [int(i) for i in np.flatnonzero(self._run_cells)], "rooms": sorted(self._run_rooms)}

    def load_exploration_state(self, state: dict[str, Any]) -> None:
        self._run_cells[:] = False
        self._run_cells.flat[np.asarray(state.get("cells", []), dtype=np.int64)] = True
        self._run_rooms = {int(r) for r in state.get("rooms", [])}

    # ---- VecEnv --------------------------------------------------------------------------------------------
    def _reset_one(self, i: int) -> np.ndarray:
        # Only the first episode is seeded: later ones continue the env's generator (a fresh layout each time).
        seed = None if self._seeded else self._env_seeds[i]
        obs, _ = self._envs[i].reset(seed=seed)
        self._ep_rooms[i] = set()
        self._visit(i)
        image: np.ndarray = obs["image"]
        return image

    def reset(self) -> np.ndarray:
        images = [self._reset_one(i) for i in range(self.num_envs)]
        self._seeded = True
        frames = self._frames(images)
        for i in range(self.num_envs):
            self._fill(i, frames[i])
        self._ep_return[:] = 0.0
        self._score[:] = 0.0
        self._length[:] = 0
        return self._stack.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions).astype(np.int64, copy=False).reshape(self.num_envs)
        if actions.min() < 0 or actions.max() >= self.num_actions:
            raise ValueError(f"actions must lie in [0, {self.num_actions}), got {actions}")
        reward_out = np.zeros(self.num_envs, dtype=np.float32)  # the training reward
        done = np.zeros(self.num_envs, dtype=bool)
        images: list[np.ndarray] = []
        episodes: list[EpisodeInfo] = []
        for i, env in enumerate(self._envs):
            obs, reward, terminated, truncated, _ = env.step(int(actions[i]))
            raw = float(reward)
            reward_out[i] = float(raw > 0) if self._binary_reward else raw
            self._ep_return[i] += reward_out[i]
            self._score[i] += raw
            self._length[i] += 1
            self._visit(i)  # before a reset, so the last cell of an episode counts too
            cut = self._max_steps is not None and self._length[i] >= self._max_steps
            if terminated or truncated or cut:
                done[i] = True
                rooms = len(self._ep_rooms[i])
                episodes.append(
                    EpisodeInfo(i, float(self._ep_return[i]), float(self._score[i]), int(self._length[i]), rooms)
                )
                self._ep_return[i] = self._score[i] = 0.0
                self._length[i] = 0
                images.append(self._reset_one(i))
            else:
                images.append(obs["image"])
        frames = self._frames(images)
        c = self.frame_channels
        self._stack[:, :-c] = self._stack[:, c:]
        self._stack[:, -c:] = frames
        for j in np.flatnonzero(done):
            self._fill(int(j), frames[j])
        return StepResult(obs=self._stack.copy(), reward=reward_out, done=done, episodes=episodes)

    def close(self) -> None:
        for env in self._envs:
            env.close()


def _build(env: EnvConfig, num_envs: int, seed: int) -> VecEnv:
    return MiniGridVecEnv(
        env.id,
        num_envs,
        seed,
        frame_size=env.frame_size,
        frame_stack=env.frame_stack,
        grayscale=env.grayscale,
        max_episode_steps=env.max_episode_steps,
        binary_reward=env.binary_reward,
    )


def _check(env: EnvConfig) -> None:
    """minigrid is installed, and the env builds and resets here (the WFC envs import minigrid's extra ``wfc`` on
    their first reset): said before any job starts, in one line."""
    try:
        require_minigrid()
        probe = _make_one(env.id, 1)
        probe.reset(seed=0)
        probe.close()
    except Exception as exc:  # whatever the package raises (DependencyNotInstalled, ImportError, ...): one line
        reason = " ".join(str(exc).split())
        raise ValueError(f"env.id={env.id!r} cannot run here: {reason}") from None


FAMILY = EnvFamily(
    name="minigrid",
    ids_look=f"{_PREFIX}<env> such as {_PREFIX}MultiRoom-N6-v0",
    owns=lambda env_id: env_id.startswith(_PREFIX),
    ids=minigrid_env_ids,
    build=_build,
    check=_check,
    colour=True,
    steps_part=False,  # steps all its envs at once (SyncStepping): no halves for perf.double_buffer
)
