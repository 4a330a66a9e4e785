"""Unit tests for rlsweep.envs: the VecEnv contract on envpool Atari and Procgen and on the synthetic envs.

The Atari tests run the real envpool MontezumaRevenge-v5 with a few envs and a 30-step episode cap, so they
check the facts the training loop relies on (same-step autoreset without a dummy transition, newest frame
last, binary rewards, RAM room counting) against the emulator rather than against a mock. The Procgen tests
run envpool's real Procgen games (the frame stack and RGB contract: tests/integration/test_snd_runs.py).
"""

from __future__ import annotations

import pickle
from collections import deque
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from rlsweep.config.schema import EnvConfig
from rlsweep.envs import known_env_ids, make_env
from rlsweep.envs.atari import AtariEnv
from rlsweep.envs.pool import SameStepPool, import_envpool
from rlsweep.envs.procgen import envpool_id
from rlsweep.envs.synthetic import ChainEnv, MazeEnv


def _run(env: Any, actions: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Reset, apply a (T, N) action sequence; return (T+1, N, C, H, W) observations and the StepResults."""
    obs = [env.reset()]
    results = []
    for a in actions:
        res = env.step(a)
        obs.append(res.obs)
        results.append(res)
    return np.stack(obs), results


# ---- envpool Atari -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def montezuma() -> Any:
    env = make_env(EnvConfig(id="MontezumaRevenge-v5", max_episode_steps=30, num_threads=2), num_envs=3, seed=0)
    yield env
    env.close()


def test_atari_contract_autoreset_and_frame_order(montezuma: AtariEnv) -> None:
    env = montezuma
    assert isinstance(env, AtariEnv)
    assert env.num_actions == 18
    assert env.obs_shape == (4, 96, 96)
    # envpool's default is 0.0; the config value must reach it.
    assert env._pool.env.config["repeat_action_probability"] == 0.25  # exact: 0.25 is a power of 2 in any float

    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.num_actions, size=(61, env.num_envs))
    obs, results = _run(env, actions)
    assert obs.dtype == np.uint8 and obs.shape == (62, 3, 4, 96, 96)

    # A fresh episode's stack repeats its first frame in every channel.
    assert (obs[0] == obs[0][:, -1:]).all()
    for t, res in enumerate(results, start=1):
        assert res.reward.dtype == np.float32 and set(np.unique(res.reward)) <= {0.0, 1.0}
        assert res.done.dtype == np.bool_ and res.done.shape == (3,)
        # Episodes are cut at exactly 30 agent steps for every env, twice: if envpool still auto-reset on the
        # step after our explicit reset (a dummy transition), the second cut would come at step 61, not 60.
        assert res.done.all() == (t % 30 == 0), t
        assert res.done.any() == (t % 30 == 0), t
        if t % 30 == 0:
            assert sorted(e.env_index for e in res.episodes) == [0, 1, 2]
            assert all(e.length == 30 and e.rooms >= 1 for e in res.episodes)
            # Same-step autoreset: the returned obs is already the reset stack (all channels equal).
            assert (obs[t] == obs[t][:, -1:]).all()
        else:
            assert res.episodes == []
            # Newest frame last: each step shifts the older frames one channel towards 0.
            np.testing.assert_array_equal(obs[t][:, :-1], obs[t - 1][:, 1:])
    # Something moves on screen, so the newest channel is a new frame (not a copy of the previous one).
    assert any((obs[t][:, -1] != obs[t][:, -2]).any() for t in range(1, 30))


def test_atari_async_step_equals_step() -> None:
    """step_async (envpool send) + step_wait (recv) is the same step as step(), resets and rooms included."""
    cfg = EnvConfig(id="MontezumaRevenge-v5", max_episode_steps=20, num_threads=2)
    sync, split = make_env(cfg, num_envs=3, seed=5), make_env(cfg, num_envs=3, seed=5)
    try:
        previous = split.reset()
        assert np.array_equal(sync.reset(), previous)
        rng = np.random.default_rng(0)
        ended = 0
        for _ in range(45):  # two 20-step episode caps: same-step resets on both paths
            actions = rng.integers(0, sync.num_actions, size=3)
            expected = sync.step(actions)
            before = previous.copy()
            split.step_async(actions)
            got = split.step_wait()
            # The loop reads s_t (a zero-copy view on the CPU) while the workers step: they must not write into it.
            assert np.array_equal(previous, before)
            previous = got.obs
            assert np.array_equal(expected.obs, got.obs)
            assert np.array_equal(expected.reward, got.reward) and np.array_equal(expected.done, got.done)
            assert expected.episodes == got.episodes
            ended += len(got.episodes)
        assert ended == 6
        assert sync.exploration() == split.exploration()
        split.step_async(np.zeros(3, dtype=np.int64))
        with pytest.raises(RuntimeError, match="twice"):
            split.step_async(np.zeros(3, dtype=np.int64))
        split.step_wait()
        with pytest.raises(RuntimeError, match="without step_async"):
            split.step_wait()
    finally:
        sync.close()
        split.close()


@pytest.mark.parametrize(
    "cfg",
    [
        EnvConfig(id="MontezumaRevenge-v5", max_episode_steps=12, num_threads=2),
        EnvConfig(id="procgen-jumper", frame_size=64, frame_stack=2, grayscale=False, num_threads=2),
    ],
    ids=["atari", "procgen"],
)
def test_stepping_in_halves_is_stepping_all_envs(cfg: EnvConfig) -> None:
    """perf.double_buffer steps the two halves of the envs one after the other: each env's trajectory, its
    resets, episodes (numbered among all envs) and the run's rooms are those of stepping every env at once."""
    whole, halves = make_env(cfg, num_envs=4, seed=5), make_env(cfg, num_envs=4, seed=5)
    try:
        assert np.array_equal(whole.reset(), halves.reset())
        rng = np.random.default_rng(0)
        parts = [slice(0, 2), slice(2, 4)]
        ended = 0
        for _ in range(40):
            actions = rng.integers(0, whole.num_actions, size=4)
            expected = whole.step(actions)
            got = []
            for part in parts:
                halves.step_async(actions[part], part)
                got.append(halves.step_wait())
            assert np.array_equal(expected.obs, np.concatenate([g.obs for g in got]))
            assert np.array_equal(expected.reward, np.concatenate([g.reward for g in got]))
            assert np.array_equal(expected.done, np.concatenate([g.done for g in got]))
            assert sorted(expected.episodes, key=lambda e: e.env_index) == [e for g in got for e in g.episodes]
            ended += len(expected.episodes)
        assert ended >= 4  # resets happened inside the halves (Atari: 12-step cap)
        assert whole.exploration() == halves.exploration()
        halves.step_async(np.zeros(2, dtype=np.int64), parts[0])
        with pytest.raises(RuntimeError, match="twice"):  # envpool mixes up two sends in flight: refused
            halves.step_async(np.zeros(2, dtype=np.int64), parts[1])
        halves.step_wait()
    finally:
        whole.close()
        halves.close()


def test_synthetic_envs_refuse_to_step_a_part() -> None:
    env = make_env(EnvConfig(id="fake", frame_size=16), num_envs=4, seed=0)
    env.reset()
    with pytest.raises(ValueError, match="steps all its envs at once"):
        env.step_async(np.zeros(2, dtype=np.int64), slice(0, 2))


def test_atari_montezuma_rooms(montezuma: AtariEnv) -> None:
    env = montezuma
    env.reset()
    assert env.exploration()["rooms"] >= 1
    state = env.exploration_state()
    assert [0, 1] in state["rooms"]  # level 0, start room 1 (RAM bytes 57 and 3)
    restored = pickle.loads(pickle.dumps(state))
    env.load_exploration_state({"rooms": []})
    assert env.exploration()["rooms"] == 0
    env.load_exploration_state(restored)
    assert env.exploration_state() == state


def test_atari_other_game_has_no_rooms_and_raw_score() -> None:
    cfg = EnvConfig(id="Pong-v5", max_episode_steps=200, num_threads=2)
    env = make_env(cfg, num_envs=2, seed=1)
    try:
        env.reset()
        rng = np.random.default_rng(1)
        episodes = []
        for _ in range(200):
            episodes += env.step(rng.integers(0, env.num_actions, size=2)).episodes
        assert env.exploration() == {}
        assert len(episodes) == 2 and all(e.rooms == 0 and e.length == 200 for e in episodes)
        # Pong's raw reward is -1 per lost point: negative score, binary training return stays >= 0.
        assert all(e.score < 0 <= e.episode_return for e in episodes)
    finally:
        env.close()


def test_atari_episodic_life_cuts_without_reset() -> None:
    cfg = EnvConfig(id="Breakout-v5", episodic_life=True, max_episode_steps=400, num_threads=2)
    env = make_env(cfg, num_envs=2, seed=0)
    try:
        env.reset()
        rng = np.random.default_rng(0)
        life_cuts = 0
        for _ in range(400):
            res = env.step(rng.integers(0, env.num_actions, size=2))
            ended = {e.env_index for e in res.episodes}
            life_cuts += sum(1 for i in np.flatnonzero(res.done) if i not in ended)
        # Lost lives end training episodes (done) without an EpisodeInfo; the game itself continues.
        assert life_cuts > 0
    finally:
        env.close()


def test_known_env_ids() -> None:
    ids = known_env_ids()
    assert ids[:3] == ["fake", "maze", "chain"]
    assert {
        "MontezumaRevenge-v5",
        "Gravitar-v5",
        "Venture-v5",
        "PrivateEye-v5",
        "Pitfall-v5",
        "Solaris-v5",
    } <= set(ids)
    assert "Ant-v5" not in ids  # MuJoCo shares the -v5 suffix


# ---- envpool Procgen ---------------------------------------------------------------------------------------

# procgen 0.10.7's EXPLORATION_LEVEL_SEEDS (procgen/env.py) for the SND paper's four games and Heist (conf/env): the
# procgen package's exploration mode is this one level per game, played in hard mode.
PROCGEN_EXPLORATION_LEVELS = {"caveflyer": 1259048185, "climber": 1561126160, "coinrun": 1949448038,
                              "jumper": 1434825276, "heist": 876640971}  # fmt: skip


@pytest.mark.parametrize("game", sorted(PROCGEN_EXPLORATION_LEVELS))
def test_procgen_exploration_mode_is_procgens_fixed_level(game: str) -> None:
    env = import_envpool().make(envpool_id(f"procgen-{game}", "exploration"), env_type="gymnasium", num_envs=3, seed=5)
    pool = SameStepPool(env, 3)
    try:
        _, info = pool.reset()
        levels = set(info["level_seed"].tolist())
        rng = np.random.default_rng(0)
        for _ in range(300):  # random play ends episodes; every new episode is the same level again
            pool.send(rng.integers(0, 15, size=3))
            _, _, _, over, info = pool.recv()
            levels |= set(info["level_seed"].tolist())
            if over.any():
                _, _, reset_info = pool.reset_envs(np.flatnonzero(over))
                levels |= set(np.asarray(reset_info["level_seed"]).tolist())
        assert levels == {PROCGEN_EXPLORATION_LEVELS[game]}
    finally:
        pool.close()


def test_procgen_same_step_reset_leaves_no_dummy_step() -> None:
    """After a same-step reset the env's next step is its episode's first (envpool's elapsed_step is 1), so
    envpool's own next-step autoreset never runs and no action is ignored."""
    env = import_envpool().make(envpool_id("procgen-jumper", "exploration"), env_type="gymnasium", num_envs=4, seed=0)
    pool = SameStepPool(env, 4)
    try:
        pool.reset()
        rng = np.random.default_rng(1)
        just_reset = np.zeros(4, dtype=bool)
        resets = 0
        for _ in range(300):
            pool.send(rng.integers(0, 15, size=4))
            _, _, _, over, info = pool.recv()
            steps = np.asarray(info["elapsed_step"])
            assert (steps[just_reset] == 1).all(), steps
            just_reset = over.copy()
            if over.any():
                ids, _, reset_info = pool.reset_envs(np.flatnonzero(over))
                assert sorted(ids.tolist()) == np.flatnonzero(over).tolist()
                assert (np.asarray(reset_info["elapsed_step"]) == 0).all()
                resets += len(ids)
        assert resets >= 4, "too few Procgen episodes ended to check the reset"
    finally:
        pool.close()


def test_procgen_modes_come_from_envpool() -> None:
    with pytest.raises(ValueError, match="exploration"):
        envpool_id("procgen-bigfish", "exploration")  # procgen has no exploration level for bigfish
    assert envpool_id("procgen-jumper", "exploration") == "JumperExploration-v0"
    assert envpool_id("procgen-coinrun", "easy") == "CoinrunEasy-v0"


# ---- synthetic ---------------------------------------------------------------------------------------------

_SMALL = EnvConfig(frame_size=32, max_episode_steps=50)


@pytest.mark.parametrize(("env_id", "num_actions"), [("fake", 18), ("maze", 5), ("chain", 2)])
def test_synthetic_contract(env_id: str, num_actions: int) -> None:
    cfg = replace(_SMALL, id=env_id)
    env = make_env(cfg, num_envs=6, seed=3)
    assert env.num_actions == num_actions and env.obs_shape == (4, 32, 32)
    rng = np.random.default_rng(0)
    obs, results = _run(env, rng.integers(0, num_actions, size=(120, 6)))
    assert obs.dtype == np.uint8 and obs.shape == (121, 6, 4, 32, 32)
    assert (obs[0] == obs[0][:, -1:]).all()
    for t, res in enumerate(results, start=1):
        assert res.reward.dtype == np.float32 and res.done.dtype == np.bool_
        assert sorted(e.env_index for e in res.episodes) == sorted(np.flatnonzero(res.done).tolist())
        live = ~res.done
        np.testing.assert_array_equal(obs[t][live, :-1], obs[t - 1][live, 1:])  # newest frame last
        assert (obs[t][res.done] == obs[t][res.done][:, -1:]).all()  # autoreset: a fresh stack
    lengths = [e.length for r in results for e in r.episodes]
    assert lengths
    if env_id == "fake":
        assert all(16 <= n <= 50 for n in lengths)
    elif env_id == "maze":
        assert all(n == 50 for n in lengths)
    else:
        assert all(n <= 40 for n in lengths)  # min(max_episode_steps, 4 * chain_length)

    # Same seed and actions: identical observations; another seed: different (fake draws positions and noise).
    replay, _ = _run(make_env(cfg, num_envs=6, seed=3), np.random.default_rng(0).integers(0, num_actions, (120, 6)))
    np.testing.assert_array_equal(replay, obs)
    if env_id == "fake":
        other, _ = _run(make_env(cfg, num_envs=6, seed=4), np.zeros((5, 6), dtype=np.int64))
        assert (other != obs[:6]).any()


def test_chain_known_answer() -> None:
    cfg = EnvConfig(id="chain", frame_size=20, chain_length=10, max_episode_steps=4500)
    env = make_env(cfg, num_envs=4, seed=0)
    assert isinstance(env, ChainEnv)
    env.reset()
    episodes = []
    for t in range(1, 28):
        res = env.step(np.ones(4, dtype=np.int64))
        assert res.done.all() == (t % 9 == 0) and res.reward.sum() == (4.0 if t % 9 == 0 else 0.0)
        episodes += res.episodes
    assert len(episodes) == 12 and all(e.episode_return == 1.0 and e.length == 9 for e in episodes)
    assert (env.positions == 0).all()

    # A uniformly random policy reaches the goal in well under half of its episodes.
    rng = np.random.default_rng(0)
    env.reset()
    returns = [e.episode_return for _ in range(2000) for e in env.step(rng.integers(0, 2, size=4)).episodes]
    assert len(returns) > 100 and np.mean(returns) < 0.4


def _bfs_actions(maze: MazeEnv, start: tuple[int, int], goal_room: int) -> list[int]:
    """Shortest action sequence from ``start`` to the nearest cell of ``goal_room``."""
    moves = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}
    prev: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if maze.room_of[cell] == goal_room:
            path = []
            while prev[cell] is not None:
                cell, action = prev[cell]  # type: ignore[misc]
                path.append(action)
            return path[::-1]
        for action, (dy, dx) in moves.items():
            nxt = (cell[0] + dy, cell[1] + dx)
            if not maze.wall[nxt] and nxt not in prev:
                prev[nxt] = (cell, action)
                queue.append(nxt)
    raise AssertionError("goal room unreachable")


def test_maze_counters_and_doorway() -> None:
    cfg = EnvConfig(id="maze", frame_size=24, maze_rooms=3, maze_room_size=5, max_episode_steps=40)
    env = make_env(cfg, num_envs=2, seed=0)
    assert isinstance(env, MazeEnv)
    assert env.grid_side == 19 and env.num_cells == 9 * 25 + 12
    obs = env.reset()
    assert env.exploration() == {"cells": 1.0, "rooms": 1.0}

    # Env 0 walks through the doorway into the room to the right; env 1 stays put.
    path = _bfs_actions(env, (1, 1), goal_room=1)
    assert len(path) < 40
    for a in path:
        res = env.step(np.array([a, 0]))
        assert (res.obs[0, -1] != res.obs[1, -1]).any()  # different positions render differently
    assert env.exploration() == {"cells": float(len(path) + 1), "rooms": 2.0}
    episodes = []
    for _ in range(40 - len(path)):
        episodes += env.step(np.array([0, 0])).episodes
    assert sorted((e.env_index, e.rooms, e.length) for e in episodes) == [(0, 2, 40), (1, 1, 40)]
    assert (env.positions == [1, 1]).all()
    assert not (obs == 0).all()

    # Run-wide counters survive a pickle round trip into a fresh env, and keep growing from there.
    state = pickle.loads(pickle.dumps(env.exploration_state()))
    fresh = make_env(cfg, num_envs=2, seed=1)
    fresh.reset()
    fresh.load_exploration_state(state)
    assert fresh.exploration() == env.exploration()
    rng = np.random.default_rng(0)
    for _ in range(400):
        fresh.step(rng.integers(0, 5, size=2))
    assert fresh.exploration()["cells"] > env.exploration()["cells"]


def test_synthetic_accepts_omegaconf() -> None:
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.structured(EnvConfig(id="chain", frame_size=16, chain_length=5))
    env = make_env(cfg, num_envs=2, seed=0)
    assert env.obs_shape == (4, 16, 16) and env.reset().shape == (2, 4, 16, 16)
