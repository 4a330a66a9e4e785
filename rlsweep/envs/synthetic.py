"""Synthetic pixel environments for smoke runs and known-answer learning tests.

This module owns three numpy-vectorised envs that fulfil the :class:`~rlsweep.envs.base.VecEnv` contract
without an emulator, so tests and smoke runs of the training loop take seconds:

* :class:`FakeEnv` ("fake"): a bright blob moved by 18 Atari-style actions over a noisy background, episodes
  of random length, a rare reward in the corners. Only exercises the plumbing.
* :class:`MazeEnv` ("maze"): a top-down grid of rooms joined by one-cell doorways; extrinsic reward is always
  0, so only an exploration bonus can drive the agent out of the first rooms. Counts distinct cells and rooms.
* :class:`ChainEnv` ("chain"): a 1-D corridor with reward 1 at the right end; PPO must learn to walk right.

All share :class:`_PixelVecEnv`: a frame stack with the newest frame last, same-step autoreset (the obs
returned for a done env is already the first frame of its next episode, with every stacked channel equal to
it, as envpool does), per-env return/length bookkeeping and a seeded ``numpy.random.Generator`` so that the
same seed and the same actions give the same observation sequence. Every per-step operation is vectorised over
envs; Python loops only run over the (few) envs whose episode ended on that step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from rlsweep.config.schema import EnvConfig
from rlsweep.envs.base import EpisodeInfo, NoExplorationCounters, StepResult, SyncStepping, VecEnv
from rlsweep.envs.family import EnvFamily

__all__ = ["FAMILY", "SYNTHETIC_IDS", "ChainEnv", "FakeEnv", "MazeEnv"]


class _PixelVecEnv(SyncStepping, NoExplorationCounters, ABC):
    """Shared bookkeeping: frame stack, autoreset, episode returns. Subclasses define the dynamics."""

    num_envs: int
    obs_shape: tuple[int, int, int]
    num_actions: int
    frame_channels = 1  # grey frames

    def __init__(self, num_envs: int, frame_size: int, frame_stack: int, max_episode_steps: int, seed: int) -> None:
        if num_envs < 1 or frame_stack < 1 or frame_size < 1 or max_episode_steps < 1:
            raise ValueError(
                f"num_envs, frame_stack, frame_size and max_episode_steps must be >= 1, got {num_envs}, "
                f"{frame_stack}, {frame_size}, {max_episode_steps}"
            )
        self.num_envs = num_envs
        self.obs_shape = (frame_stack, frame_size, frame_size)
        self._size = frame_size
        self._max_steps = max_episode_steps
        self._rng = np.random.default_rng(seed)
        self._stack = np.zeros((num_envs, *self.obs_shape), dtype=np.uint8)
        self._ep_return = np.zeros(num_envs, dtype=np.float64)
        self._ep_length = np.zeros(num_envs, dtype=np.int64)
        self._arange = np.arange(num_envs)

    # ---- hooks for subclasses ------------------------------------------------------------------------------
    @abstractmethod
    def _reset_envs(self, mask: np.ndarray) -> None:
        """Start a new episode in the envs selected by the bool mask (positions, per-episode counters)."""
        ...

    @abstractmethod
    def _move(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the actions; return (float32 reward, bool terminated)."""
        ...

    @abstractmethod
    def _render(self) -> np.ndarray:
        """Current frame of every env, uint8 (N, S, S)."""
        ...

    def _episode_limit(self) -> np.ndarray | int:
        """Agent steps after which an episode is truncated (scalar or per env)."""
        return self._max_steps

    def _episode_rooms(self, env_index: int) -> int:
        """Rooms visited in env ``env_index``'s ending episode (0 where the env has no rooms)."""
        return 0

    # ---- VecEnv --------------------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        self._reset_envs(np.ones(self.num_envs, dtype=bool))
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        # A fresh stack repeats the first frame in every channel (envpool does the same), so no channel
        # carries a frame from a previous episode.
        self._stack[:] = self._render()[:, None]
        return self._stack.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions).astype(np.int64, copy=False).reshape(self.num_envs)
        if actions.min() < 0 or actions.max() >= self.num_actions:
            raise ValueError(f"actions must lie in [0, {self.num_actions}), got {actions}")
        reward, terminated = self._move(actions)
        self._ep_length += 1
        self._ep_return += reward
        done = terminated | (self._ep_length >= self._episode_limit())

        episodes: list[EpisodeInfo] = []
        if done.any():
            for i in np.flatnonzero(done):
                ret = float(self._ep_return[i])
                episodes.append(
                    EpisodeInfo(
                        env_index=int(i),
                        episode_return=ret,
                        score=ret,  # synthetic envs have no separate raw score
                        length=int(self._ep_length[i]),
                        rooms=self._episode_rooms(int(i)),
                    )
                )
            self._ep_return[done] = 0.0
            self._ep_length[done] = 0
            self._reset_envs(done)

        frame = self._render()
        # Shift older frames towards channel 0 and put the newest last (numpy handles the overlapping copy).
        self._stack[:, :-1] = self._stack[:, 1:]
        self._stack[:, -1] = frame
        if done.any():
            self._stack[done] = frame[done][:, None]
        return StepResult(obs=self._stack.copy(), reward=reward.astype(np.float32), done=done, episodes=episodes)

    def close(self) -> None:
        return None

    # ---- helpers -------------------------------------------------------------------------------------------
    def _paint_blocks(
        self, frames: np.ndarray, top: np.ndarray, left: np.ndarray, height: int, width: int, value: int
    ) -> None:
        """Set one axis-aligned block per env (top/left: int arrays (N,)) to ``value``, vectorised."""
        rows = top[:, None] + np.arange(height)  # (N, h)
        cols = left[:, None] + np.arange(width)  # (N, w)
        frames[self._arange[:, None, None], rows[:, :, None], cols[:, None, :]] = value


# Atari's 18-action layout (NOOP, FIRE, UP, RIGHT, LEFT, DOWN, UPRIGHT, UPLEFT, DOWNRIGHT, DOWNLEFT, then the
# same eight with FIRE) as (dy, dx), so the fake env takes the same action space as the full Atari set.
_DIRECTIONS = [(-1, 0), (0, 1), (0, -1), (1, 0), (-1, 1), (-1, -1), (1, 1), (1, -1)]
_ATARI_MOVES = np.array([(0, 0), (0, 0), *_DIRECTIONS, *_DIRECTIONS], dtype=np.int64)


class FakeEnv(_PixelVecEnv):
    """Smoke-test env: a bright square on a grid of 8x8 positions over a noisy background.

    18 actions move it like an Atari joystick. Episodes last a random 16-64 steps (or ``max_episode_steps`` if
    that is shorter). Each step spent in one of the four corner positions pays reward 1 with probability 0.1,
    so the reward stream is sparse but not empty.
    """

    num_actions = 18
    _GRID = 8  # blob positions per side
    _MIN_LEN, _MAX_LEN = 16, 64
    _CORNER_REWARD_PROB = 0.1
    _NOISE_FRAMES = 32

    def __init__(self, num_envs: int, frame_size: int, frame_stack: int, max_episode_steps: int, seed: int) -> None:
        super().__init__(num_envs, frame_size, frame_stack, max_episode_steps, seed)
        if frame_size < self._GRID:
            raise ValueError(f"fake env needs frame_size >= {self._GRID}, got {frame_size}")
        self._blob = frame_size // self._GRID
        # A bank of precomputed noise frames: drawing fresh noise for every pixel each step would dominate the
        # step time; picking a random bank frame per env keeps the background changing at no cost.
        self._noise = self._rng.integers(0, 64, size=(self._NOISE_FRAMES, frame_size, frame_size), dtype=np.uint8)
        self._pos = np.zeros((num_envs, 2), dtype=np.int64)
        self._length_limit = np.full(num_envs, self._MAX_LEN, dtype=np.int64)

    def _reset_envs(self, mask: np.ndarray) -> None:
        n = int(mask.sum())
        self._pos[mask] = self._rng.integers(0, self._GRID, size=(n, 2))
        lengths = self._rng.integers(self._MIN_LEN, self._MAX_LEN + 1, size=n)
        self._length_limit[mask] = np.minimum(lengths, self._max_steps)

    def _episode_limit(self) -> np.ndarray:
        return self._length_limit

    def _move(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._pos = np.clip(self._pos + _ATARI_MOVES[actions], 0, self._GRID - 1)
        edge = (self._pos == 0) | (self._pos == self._GRID - 1)
        in_corner = edge[:, 0] & edge[:, 1]
        lucky = self._rng.random(self.num_envs) < self._CORNER_REWARD_PROB
        reward = (in_corner & lucky).astype(np.float32)
        return reward, np.zeros(self.num_envs, dtype=bool)

    def _render(self) -> np.ndarray:
        frames = self._noise[self._rng.integers(0, self._NOISE_FRAMES, size=self.num_envs)]
        b = self._blob
        self._paint_blocks(frames, self._pos[:, 0] * b, self._pos[:, 1] * b, b, b, 255)
        return frames


# Maze moves: 0 noop, 1 up, 2 down, 3 left, 4 right, as (dy, dx).
_MAZE_MOVES = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int64)


class MazeEnv(_PixelVecEnv):
    """Sparse-reward exploration maze: ``rooms x rooms`` rooms of ``room_size x room_size`` cells.

    Layout (identical for every seed, so exploration counts are comparable across seeds): the grid has one
    wall line around and between rooms, i.e. ``rooms * (room_size + 1) + 1`` cells per side. Each wall shared
    by two rooms has a single one-cell doorway at a fixed pseudo-random offset, so the rooms form a grid graph
    whose edges are bottlenecks: a random walk needs many steps to find a doorway. The agent starts in the
    top-left cell of the top-left room. Actions: noop, up, down, left, right (moves into walls leave the agent
    in place). Extrinsic reward is always 0; episodes end only by truncation at ``max_episode_steps``.

    The frame is a top-down render (walls grey 128, floor black, agent white) with ``frame_size // cells``
    pixels per cell, centred with black padding. Doorway cells belong to no room: a room counts as visited
    once the agent stands on one of its floor cells.
    """

    num_actions = 5
    _WALL, _AGENT = 128, 255
    _LAYOUT_SEED = 20240611  # fixed so that the doorways do not move with the run seed

    def __init__(
        self,
        num_envs: int,
        frame_size: int,
        frame_stack: int,
        max_episode_steps: int,
        seed: int,
        rooms: int = 3,
        room_size: int = 5,
    ) -> None:
        super().__init__(num_envs, frame_size, frame_stack, max_episode_steps, seed)
        if rooms < 1 or room_size < 1:
            raise ValueError(f"maze needs rooms >= 1 and room_size >= 1, got {rooms}, {room_size}")
        self._rooms = rooms
        pitch = room_size + 1  # room cells plus the wall line after them
        side = rooms * pitch + 1
        if frame_size < side:
            raise ValueError(f"maze of {side}x{side} cells needs frame_size >= {side}, got {frame_size}")
        self.grid_side = side

        wall = np.ones((side, side), dtype=bool)
        room_of = np.full((side, side), -1, dtype=np.int64)
        for ry in range(rooms):
            for rx in range(rooms):
                y0, x0 = 1 + ry * pitch, 1 + rx * pitch
                wall[y0 : y0 + room_size, x0 : x0 + room_size] = False
                room_of[y0 : y0 + room_size, x0 : x0 + room_size] = ry * rooms + rx
        layout_rng = np.random.default_rng(self._LAYOUT_SEED)
        for ry in range(rooms):
            for rx in range(rooms):
                if rx + 1 < rooms:  # doorway in the vertical wall to the right of room (ry, rx)
                    wall[1 + ry * pitch + int(layout_rng.integers(room_size)), (rx + 1) * pitch] = False
                if ry + 1 < rooms:  # doorway in the horizontal wall below room (ry, rx)
                    wall[(ry + 1) * pitch, 1 + rx * pitch + int(layout_rng.integers(room_size))] = False
        self.wall = wall
        self.room_of = room_of
        self.num_cells = int((~wall).sum())
        self.start = np.array([1, 1], dtype=np.int64)

        self._cell_px = frame_size // side
        self._offset = (frame_size - self._cell_px * side) // 2
        base = np.zeros((frame_size, frame_size), dtype=np.uint8)
        span = self._cell_px * side
        cell_block = np.ones((self._cell_px, self._cell_px), dtype=np.uint8)
        base[self._offset : self._offset + span, self._offset : self._offset + span] = (
            np.kron(wall.astype(np.uint8), cell_block) * self._WALL
        )
        self._base = base

        self._pos = np.zeros((num_envs, 2), dtype=np.int64)
        self._ep_rooms = np.zeros((num_envs, rooms * rooms), dtype=bool)
        self._run_cells = np.zeros((side, side), dtype=bool)
        self._run_rooms = np.zeros(rooms * rooms, dtype=bool)

    @property
    def positions(self) -> np.ndarray:
        """(N, 2) int (row, col) grid cell of each agent; a copy, for tests and scripted policies."""
        return self._pos.copy()

    def _visit(self, env_ids: np.ndarray) -> None:
        """Record the current cells of ``env_ids`` in the per-episode and run-wide counters."""
        ys, xs = self._pos[env_ids, 0], self._pos[env_ids, 1]
        self._run_cells[ys, xs] = True
        room = self.room_of[ys, xs]
        in_room = room >= 0
        self._ep_rooms[env_ids[in_room], room[in_room]] = True
        self._run_rooms[room[in_room]] = True

    def _reset_envs(self, mask: np.ndarray) -> None:
        self._pos[mask] = self.start
        self._ep_rooms[mask] = False
        self._visit(np.flatnonzero(mask))

    def _move(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        target = self._pos + _MAZE_MOVES[actions]
        # The outer wall line guarantees targets stay inside the grid, so no clipping is needed.
        blocked = self.wall[target[:, 0], target[:, 1]]
        self._pos = np.where(blocked[:, None], self._pos, target)
        # Visits are recorded before a possible reset, so the last cell of an episode counts too.
        self._visit(self._arange)
        return np.zeros(self.num_envs, dtype=np.float32), np.zeros(self.num_envs, dtype=bool)

    def _episode_rooms(self, env_index: int) -> int:
        return int(self._ep_rooms[env_index].sum())

    def _render(self) -> np.ndarray:
        frames = np.repeat(self._base[None], self.num_envs, axis=0)
        c, o = self._cell_px, self._offset
        self._paint_blocks(frames, o + self._pos[:, 0] * c, o + self._pos[:, 1] * c, c, c, self._AGENT)
        return frames

    def exploration(self) -> dict[str, float]:
        return {"cells": float(self._run_cells.sum()), "rooms": float(self._run_rooms.sum())}

    def exploration_state(self) -> dict[str, Any]:
        # Plain lists of ints: picklable and loadable by torch.load(weights_only=True).
        return {
            "cells": [int(i) for i in np.flatnonzero(self._run_cells)],
            "rooms": [int(i) for i in np.flatnonzero(self._run_rooms)],
        }

    def load_exploration_state(self, state: dict[str, Any]) -> None:
        self._run_cells[:] = False
        self._run_rooms[:] = False
        self._run_cells.flat[np.asarray(state.get("cells", []), dtype=np.int64)] = True
        self._run_rooms[np.asarray(state.get("rooms", []), dtype=np.int64)] = True


class ChainEnv(_PixelVecEnv):
    """Known-answer env: a corridor of ``length`` cells; start at the left end, reward 1 at the right end.

    Actions: 0 = left, 1 = right (moving left at the left end stays put). Reaching cell ``length - 1`` pays
    1.0 and terminates the episode, so the optimal return is 1.0 in ``length - 1`` steps. Episodes are
    truncated after ``min(max_episode_steps, 4 * length)`` steps: long enough for the optimal path, short
    enough that a uniformly random policy (a reflecting random walk, expected hitting time ~ length**2) mostly
    fails.

    Render: a dim corridor band across the middle of the frame, the goal cell grey, the agent white;
    ``frame_size // length`` pixels per cell.
    """

    num_actions = 2
    _FLOOR, _GOAL, _AGENT = 48, 128, 255

    def __init__(
        self,
        num_envs: int,
        frame_size: int,
        frame_stack: int,
        max_episode_steps: int,
        seed: int,
        length: int = 10,
    ) -> None:
        super().__init__(num_envs, frame_size, frame_stack, min(max_episode_steps, 4 * length), seed)
        if length < 2:
            raise ValueError(f"chain_length must be >= 2, got {length}")
        if frame_size < length:
            raise ValueError(f"chain of {length} cells needs frame_size >= {length}, got {frame_size}")
        self.length = length
        self._cell_px = frame_size // length
        self._offset = (frame_size - self._cell_px * length) // 2
        self._band_h = max(self._cell_px, frame_size // 4)
        self._band_top = (frame_size - self._band_h) // 2
        base = np.zeros((frame_size, frame_size), dtype=np.uint8)
        band = slice(self._band_top, self._band_top + self._band_h)
        base[band, self._offset : self._offset + self._cell_px * length] = self._FLOOR
        goal_left = self._offset + (length - 1) * self._cell_px
        base[band, goal_left : goal_left + self._cell_px] = self._GOAL
        self._base = base
        self._pos = np.zeros(num_envs, dtype=np.int64)

    @property
    def positions(self) -> np.ndarray:
        """(N,) int cell index of each agent; a copy."""
        return self._pos.copy()

    def _reset_envs(self, mask: np.ndarray) -> None:
        self._pos[mask] = 0

    def _move(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._pos = np.clip(self._pos + np.where(actions == 1, 1, -1), 0, self.length - 1)
        at_goal = self._pos == self.length - 1
        return at_goal.astype(np.float32), at_goal

    def _render(self) -> np.ndarray:
        frames = np.repeat(self._base[None], self.num_envs, axis=0)
        c = self._cell_px
        top = np.full(self.num_envs, self._band_top, dtype=np.int64)
        self._paint_blocks(frames, top, self._offset + self._pos * c, self._band_h, c, self._AGENT)
        return frames


def _build(env: EnvConfig, num_envs: int, seed: int) -> VecEnv:
    size, stack, steps = env.frame_size, env.frame_stack, env.max_episode_steps
    if env.id == "fake":
        return FakeEnv(num_envs, size, stack, steps, seed)
    if env.id == "maze":
        return MazeEnv(num_envs, size, stack, steps, seed, rooms=env.maze_rooms, room_size=env.maze_room_size)
    return ChainEnv(num_envs, size, stack, steps, seed, length=env.chain_length)


SYNTHETIC_IDS: tuple[str, ...] = ("fake", "maze", "chain")
FAMILY = EnvFamily(
    name="synthetic",
    ids_look=", ".join(SYNTHETIC_IDS),
    owns=SYNTHETIC_IDS.__contains__,
    ids=lambda: SYNTHETIC_IDS,
    build=_build,
    steps_part=False,  # they step all their envs at once (SyncStepping): no halves for perf.double_buffer
)
