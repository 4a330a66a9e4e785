"""envpool Atari backend: the hard-exploration games behind the :class:`~rlsweep.envs.base.VecEnv` contract.

This module owns the translation from envpool's gymnasium API (envpool 1.2.5) to the project contract:

* **Same-step autoreset** through :class:`~rlsweep.envs.pool.SameStepPool` (a finished game is reset within
  the step that ended it). Verified in ``tests/unit/test_envs.py``.
* **Frame order.** envpool's stack (``stack_num``) already has the newest frame last (each step shifts the
  older frames towards channel 0); a reset fills all channels with the first frame. Asserted in the tests.
* **Rewards.** Training reward is binary (1 if the raw reward > 0) when ``binary_reward``; the raw reward is
  summed into the episode score.
* **Episodic life.** envpool's own ``episodic_life=True`` expects its next-step autoreset to *continue* the
  game after a life loss, but an explicit ``reset(env_id)`` restarts the whole game (measured: lives go back
  to 5 in Breakout). So envpool always runs with ``episodic_life=False`` and the life split happens here: a
  lost life sets ``done`` (cutting GAE) without a reset, and an :class:`EpisodeInfo` is emitted only when the
  game really ends.
* **Montezuma rooms.** ``info["ram"]`` (N, 128) is the console RAM; byte 3 is the room and byte 57 the level.
  The distinct (level, room) pairs are tracked per episode and over the whole run.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from rlsweep.config.schema import EnvConfig
from rlsweep.envs.base import EpisodeInfo, StepResult, VecEnv
from rlsweep.envs.family import EnvFamily
from rlsweep.envs.pool import SameStepPool, import_envpool

__all__ = ["FAMILY", "AtariEnv", "atari_env_ids"]

_ROOM_BYTE = 3  # Montezuma RAM: current room (OpenAI MontezumaInfoWrapper, author ColectStatesEnv)
_LEVEL_BYTE = 57  # Montezuma RAM: current level


@lru_cache(maxsize=1)
def atari_env_ids() -> tuple[str, ...]:
    """envpool's Atari ids that end in ``-v5`` (the registry also holds MuJoCo ``-v5`` ids, filtered out)."""
    import_envpool()
    from envpool.registration import registry

    ids = [env_id for env_id, spec in registry.specs.items() if env_id.endswith("-v5") and spec[0] == "envpool.atari"]
    return tuple(sorted(ids))


class AtariEnv:
    """N envpool Atari emulators with same-step autoreset, binary rewards and Montezuma room counting."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        seed: int,
        *,
        frame_size: int = 96,
        frame_stack: int = 4,
        frame_skip: int = 4,
        sticky_action_prob: float = 0.25,
        max_episode_steps: int = 4500,
        binary_reward: bool = True,
        episodic_life: bool = False,
        noop_max: int = 30,
        num_threads: int = 0,
    ) -> None:
        self._pool = SameStepPool.make(
            env_id,
            num_envs,
            seed=seed,
            num_threads=num_threads,
            img_height=frame_size,
            img_width=frame_size,
            stack_num=frame_stack,
            gray_scale=True,
            frame_skip=frame_skip,
            episodic_life=False,  # split on life loss here instead, see the module docstring
            reward_clip=False,
            # envpool's default is 0.0 (gymnasium v5's is 0.25): always pass it explicitly.
            repeat_action_probability=sticky_action_prob,
            max_episode_steps=max_episode_steps,
            noop_max=noop_max,
            use_fire_reset=False,
        )
        self.env_id = env_id
        self.num_envs = num_envs
        self.obs_shape = (frame_stack, frame_size, frame_size)
        self.frame_channels = 1  # always grey (the seed's wrapper)
        self.num_actions = int(self._pool.env.action_space.n)
        self._binary_reward = binary_reward
        self._episodic_life = episodic_life
        self._track_rooms = env_id.startswith("MontezumaRevenge")
        self._all_ids = np.arange(num_envs)

        self._ep_return = np.zeros(num_envs, dtype=np.float64)
        self._score = np.zeros(num_envs, dtype=np.float64)
        self._length = np.zeros(num_envs, dtype=np.int64)
        self._lives = np.zeros(num_envs, dtype=np.int64)
        # Last (level, room) key per env, so the Python sets are touched only when an agent changes room.
        self._last_key = np.full(num_envs, -1, dtype=np.int64)
        self._ep_rooms: list[set[tuple[int, int]]] = [set() for _ in range(num_envs)]
        self._run_rooms: set[tuple[int, int]] = set()

    # ---- VecEnv --------------------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        obs, info = self._pool.reset()
        self._ep_return[:] = 0.0
        self._score[:] = 0.0
        self._length[:] = 0
        self._lives[:] = np.asarray(info["lives"])
        self._start_rooms(self._all_ids, np.asarray(info["ram"]))
        return obs

    def step(self, actions: np.ndarray) -> StepResult:
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: np.ndarray, part: slice = slice(None)) -> None:
        """Hand the actions of the envs ``part`` (all by default; a part is a contiguous slice) to envpool's worker
        threads and return while they emulate."""
        self._pool.send(actions, part)

    def step_wait(self) -> StepResult:
        """Wait for the step, then apply rewards, life splits, room counts and same-step resets. The result holds
        the envs of the step's part, episodes numbered among all envs."""
        part, obs, raw, game_over, info = self._pool.recv()
        lives, ram = np.asarray(info["lives"], dtype=np.int64), np.asarray(info["ram"])
        reward = (raw > 0).astype(np.float32) if self._binary_reward else raw.astype(np.float32)
        self._ep_return[part] += reward
        self._score[part] += raw
        self._length[part] += 1
        done = game_over | ((lives < self._lives[part]) & self._episodic_life)
        self._lives[part] = lives
        part_ids = self._all_ids[part]
        if self._track_rooms:
            # The final frame of an ending episode still counts for that episode (recorded before the reset).
            self._visit_rooms(part_ids, ram)

        episodes: list[EpisodeInfo] = []
        if game_over.any():
            ids = part_ids[game_over]
            for i in ids:
                episodes.append(
                    EpisodeInfo(
                        env_index=int(i),
                        episode_return=float(self._ep_return[i]),
                        score=float(self._score[i]),
                        length=int(self._length[i]),
                        rooms=len(self._ep_rooms[i]),
                    )
                )
            self._ep_return[ids] = 0.0
            self._score[ids] = 0.0
            self._length[ids] = 0
            reset_ids, reset_obs, reset_info = self._pool.reset_envs(ids)
            obs[reset_ids - part_ids[0]] = reset_obs
            self._lives[reset_ids] = reset_info["lives"]
            self._start_rooms(reset_ids, np.asarray(reset_info["ram"]))
        return StepResult(obs=obs, reward=reward, done=done, episodes=episodes)

    def exploration(self) -> dict[str, float]:
        if not self._track_rooms:
            return {}
        return {"rooms": float(len(self._run_rooms))}

    def current_rooms(self) -> np.ndarray | None:
        """Each env's current room as level * 256 + room (from RAM), or None for games without rooms."""
        return self._last_key.copy() if self._track_rooms else None

    def exploration_state(self) -> dict[str, Any]:
        # Sorted lists of [level, room] ints: picklable and loadable by torch.load(weights_only=True).
        return {"rooms": [[level, room] for level, room in sorted(self._run_rooms)]}

    def load_exploration_state(self, state: dict[str, Any]) -> None:
        self._run_rooms = {(int(level), int(room)) for level, room in state.get("rooms", [])}

    def close(self) -> None:
        self._pool.close()

    # ---- helpers -------------------------------------------------------------------------------------------
    def _start_rooms(self, env_ids: np.ndarray, ram: np.ndarray) -> None:
        """Begin new episodes' room sets with their start room (from the reset RAM)."""
        if not self._track_rooms:
            return
        for i in env_ids:
            self._ep_rooms[int(i)] = set()
        self._last_key[env_ids] = -1
        self._visit_rooms(env_ids, ram)

    def _visit_rooms(self, env_ids: np.ndarray, ram: np.ndarray) -> None:
        ram = np.asarray(ram)
        level = ram[:, _LEVEL_BYTE].astype(np.int64)
        room = ram[:, _ROOM_BYTE].astype(np.int64)
        key = level * 256 + room
        changed = np.flatnonzero(key != self._last_key[env_ids])
        for k in changed:
            i = int(env_ids[k])
            self._last_key[i] = key[k]
            pair = (int(level[k]), int(room[k]))
            self._ep_rooms[i].add(pair)
            self._run_rooms.add(pair)


def _build(env: EnvConfig, num_envs: int, seed: int) -> VecEnv:
    return AtariEnv(
        env.id,
        num_envs,
        seed,
        frame_size=env.frame_size,
        frame_stack=env.frame_stack,
        frame_skip=env.frame_skip,
        sticky_action_prob=env.sticky_action_prob,
        max_episode_steps=env.max_episode_steps,
        binary_reward=env.binary_reward,
        episodic_life=env.episodic_life,
        noop_max=env.noop_max,
        num_threads=env.num_threads,
    )


_GAMES = "MontezumaRevenge-v5, Gravitar-v5, Venture-v5, PrivateEye-v5, Pitfall-v5, Solaris-v5"
FAMILY = EnvFamily(
    name="atari",
    ids_look=f"an envpool Atari id such as {_GAMES}, ...",
    owns=lambda env_id: env_id.endswith("-v5"),  # the membership check reads envpool's registry: ids()
    ids=atari_env_ids,
    build=_build,
)
