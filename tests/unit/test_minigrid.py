"""The MiniGrid env family (rlsweep.envs.minigrid) on the real minigrid package: registered like the other families,
frames as the nets and motivations read them (MiniGrid's own partial-view render, stacked newest last), seeding,
same-step autoreset with MiniGrid's reward, the cells and rooms counters, the messages before any job starts, and
a few PPO + RND iterations on ``env=minigrid_multiroom``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inline import metrics, run_inline

from rlsweep.config import ConfigError, EnvConfig
from rlsweep.envs import FAMILIES, check_env, family_of, known_env_ids, make_env
from rlsweep.envs.minigrid import MINIGRID_MISSING, MiniGridUnavailable, MiniGridVecEnv, minigrid_env_ids

LEFT, RIGHT, FORWARD = 0, 1, 2  # MiniGrid's actions: turn left, turn right, move forward (then pickup, drop, ...)


def _cfg(**env: Any) -> dict[str, Any]:
    return {"env": env, "perf": {"double_buffer": False}}


def _env(env_id: str = "MiniGrid-MultiRoom-N6-v0", num_envs: int = 3, seed: int = 0, **fields: Any) -> MiniGridVecEnv:
    settings = {"frame_size": 56, "frame_stack": 2, "grayscale": False, "binary_reward": False, **fields}
    env = make_env(EnvConfig(id=env_id, **settings), num_envs=num_envs, seed=seed)
    assert isinstance(env, MiniGridVecEnv)
    return env


@pytest.fixture
def multiroom() -> Iterator[MiniGridVecEnv]:
    env = _env()
    yield env
    env.close()


def test_the_family_is_registered_and_knows_minigrids_ids() -> None:
    assert "minigrid" in FAMILIES
    for env_id in ("MiniGrid-MultiRoom-N6-v0", "MiniGrid-KeyCorridorS3R3-v0", "MiniGrid-DoorKey-8x8-v0"):
        family = family_of(env_id)
        assert family is not None and family.name == "minigrid"
        assert env_id in known_env_ids()
    ids = minigrid_env_ids()
    assert len(ids) > 70 and all(i.startswith("MiniGrid-") for i in ids)
    assert "MiniGrid-ObstructedMaze-Full-v1" in ids
    assert family_of("BabyAI-GoTo-v0") is None  # the same package's language tasks are not this family's


def test_frames_are_minigrids_partial_view_stacked_newest_last(multiroom: MiniGridVecEnv) -> None:
    env = multiroom
    assert (env.num_envs, env.obs_shape, env.frame_channels, env.num_actions) == (3, (6, 56, 56), 3, 7)
    obs = env.reset()
    assert obs.shape == (3, 6, 56, 56) and obs.dtype == np.uint8
    assert (obs[:, :3] == obs[:, 3:]).all()  # a fresh stack repeats the first frame
    for i, wrapped in enumerate(env._envs):
        # At 56 pixels the frame is minigrid's own render of the 7x7 view, untouched (HWC there, CHW here).
        own = wrapped.unwrapped.get_frame(tile_size=8, agent_pov=True)
        np.testing.assert_array_equal(obs[i, -3:].transpose(1, 2, 0), own)
        # The view is the agent's own: the agent is the red triangle in the bottom-centre tile, facing up (its
        # point at the tile's top row, its base wide at the bottom).
        r, g, b = obs[i, -3:, 48:56, 24:32].astype(int)
        red = (r > 200) & (g < 120) & (b < 120)
        assert red[1].sum() < red[6].sum() and red.sum() > 8
    res = env.step(np.full(3, LEFT))
    np.testing.assert_array_equal(res.obs[:, :3], obs[:, 3:])  # the older slot holds the previous newest frame
    assert (res.obs[:, 3:] != obs[:, 3:]).any()  # turning changes the view


def test_grey_and_resized_frames_have_the_configured_shape() -> None:
    env = _env(num_envs=2, frame_size=64, frame_stack=3, grayscale=True)
    try:
        obs = env.reset()
        assert obs.shape == (2, 3, 64, 64) and obs.dtype == np.uint8 and env.frame_channels == 1
        assert obs.max() > 0 and (obs[:, 0] == obs[:, 2]).all()
    finally:
        env.close()


def test_stepping_is_deterministic_per_seed_and_the_envs_differ() -> None:
    actions = np.random.default_rng(7).integers(0, 7, size=(150, 3))  # past MultiRoom's 120-step limit: a reset too

    def play(seed: int) -> tuple[np.ndarray, list[Any], np.ndarray]:
        env = _env(seed=seed)
        try:
            frames, episodes = [env.reset()], []
            for a in actions:
                res = env.step(a)
                frames.append(res.obs)
                episodes.extend(res.episodes)
            return np.stack(frames), episodes, env.positions
        finally:
            env.close()

    first, again, other = play(3), play(3), play(4)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1] and (first[2] == again[2]).all()
    assert len(first[1]) == 3  # every env's episode ended at 120 steps, and the next one went on
    assert (first[0] != other[0]).any()  # another seed, other layouts
    assert (first[0][:, 0] != first[0][:, 1]).any()  # the envs of one run differ from one another


def test_the_goal_ends_the_episode_with_minigrids_reward_and_the_next_starts_in_the_same_step() -> None:
    # MiniGrid-Empty-5x5: the agent starts at (1, 1) facing right, the goal is at (3, 3); its step limit is 100.
    env = _env("MiniGrid-Empty-5x5-v0", num_envs=2)
    try:
        start = env.reset()
        path = [FORWARD, FORWARD, RIGHT, FORWARD, FORWARD]
        for t, action in enumerate(path, start=1):
            res = env.step(np.array([action, LEFT]))  # env 1 only turns
            if t < len(path):
                assert not res.done.any() and res.episodes == []
        assert res.done.tolist() == [True, False]
        assert res.reward[0] == np.float32(1 - 0.9 * 5 / 100) and res.reward[1] == 0.0
        (episode,) = res.episodes
        assert (episode.env_index, episode.length, episode.rooms) == (0, 5, 0)
        assert episode.score == pytest.approx(0.955) and episode.episode_return == pytest.approx(0.955)
        # The returned observation is already the next episode's first, in every slot of the stack.
        np.testing.assert_array_equal(res.obs[0], start[0])
        assert env.positions[0].tolist() == [1, 1]

        binary = _env("MiniGrid-Empty-5x5-v0", num_envs=1, binary_reward=True)
        binary.reset()
        rewards = [binary.step(np.array([a])).reward[0] for a in path]
        assert rewards == [0, 0, 0, 0, 1.0]
        binary.close()
    finally:
        env.close()


def test_max_episode_steps_cuts_episodes_shorter_than_minigrids_limit() -> None:
    env = _env("MiniGrid-Empty-8x8-v0", num_envs=2, max_episode_steps=4)
    try:
        env.reset()
        ends = [env.step(np.array([LEFT, LEFT])).done.all() for _ in range(8)]
        assert ends == [False, False, False, True] * 2
    finally:
        env.close()


def test_cells_grow_as_the_agent_moves_and_survive_a_checkpoint() -> None:
    # MiniGrid-Empty-8x8: every agent starts at (1, 1) facing right, with 6 free cells ahead in its row.
    env = _env("MiniGrid-Empty-8x8-v0", num_envs=2)
    try:
        env.reset()
        assert env.exploration() == {"cells": 1.0}  # no rooms in this env: no rooms counter
        assert env.positions.tolist() == [[1, 1], [1, 1]]
        for k in range(1, 6):
            env.step(np.array([FORWARD, LEFT]))
            assert env.exploration()["cells"] == 1 + k
        assert env.positions.tolist() == [[1, 6], [1, 1]]  # (row, col), as the synthetic maze gives it
        env.step(np.array([FORWARD, FORWARD]))  # env 0 walks into the wall; env 1 (facing up) too
        assert env.exploration()["cells"] == 6
        state = env.exploration_state()
        fresh = _env("MiniGrid-Empty-8x8-v0", num_envs=2)
        fresh.load_exploration_state(state)
        assert fresh.exploration() == env.exploration()
        fresh.close()
    finally:
        env.close()


def test_multiroom_counts_rooms_along_its_chain(multiroom: MiniGridVecEnv) -> None:
    multiroom.reset()
    assert multiroom.exploration() == {"cells": 3.0, "rooms": 1.0}
    assert multiroom.exploration_state()["rooms"] == [0]  # every agent starts in the chain's first room


def test_an_unknown_id_is_one_line_with_the_closest_id() -> None:
    with pytest.raises(ConfigError) as err:
        check_env(_cfg(id="MiniGrid-MultiRoom-N7-v0"))
    msg = str(err.value)
    assert msg.startswith(
        "Invalid value for env.id: 'MiniGrid-MultiRoom-N7-v0' (did you mean MiniGrid-MultiRoom-N6-v0?)"
    )
    assert "minigrid: MiniGrid-<env> such as MiniGrid-MultiRoom-N6-v0" in msg and "\n" not in msg
    check_env(_cfg(id="MiniGrid-KeyCorridorS3R3-v0", grayscale=False))  # a known id passes, in colour too


def test_an_env_that_needs_more_than_minigrid_is_refused_in_one_line() -> None:
    # The WFC envs import minigrid's extra "wfc" (imageio, networkx), which rlsweep does not install.
    with pytest.raises(ConfigError, match=r"^env\.id='MiniGrid-WFC-MazeSimple-v0' cannot run here: .*minigrid\[wfc\]"):
        check_env(_cfg(id="MiniGrid-WFC-MazeSimple-v0"))


def test_without_the_package_the_ids_are_refused_saying_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "minigrid", None)  # what `import minigrid` meets where it is not installed
            minigrid_env_ids.cache_clear()
            with pytest.raises(ConfigError) as err:
                check_env(_cfg(id="MiniGrid-MultiRoom-N6-v0"))
            assert str(err.value) == f"env.id='MiniGrid-MultiRoom-N6-v0' cannot run here: {MINIGRID_MISSING}"
            with pytest.raises(MiniGridUnavailable, match=r"pip install 'rlsweep\[minigrid\]'"):
                make_env(EnvConfig(id="MiniGrid-MultiRoom-N6-v0"), num_envs=1, seed=0)
            assert list(minigrid_env_ids()) == []  # nothing to list or suggest
            check_env(_cfg(id="maze"))  # the other families do not notice
    finally:
        minigrid_env_ids.cache_clear()
    assert "MiniGrid-MultiRoom-N6-v0" in list(minigrid_env_ids())  # installed again: the ids are read again


def test_ppo_rnd_trains_a_few_iterations_on_minigrid_multiroom(tmp_path: Path) -> None:
    run_dir = run_inline(
        tmp_path, "env=minigrid_multiroom", "motivation=rnd", "budget=smoke", "debug=smoke", "logger=none"
    )
    lines = metrics(run_dir)
    assert [m["iteration"] for m in lines] == [1, 2, 3, 4]
    cells = [m["explore/cells"] for m in lines]
    assert cells == sorted(cells) and cells[-1] > 4  # 4 envs start on 4 cells at most; random moves add more
    assert all(m["explore/rooms"] >= 1 for m in lines)
    assert all(np.isfinite(v) for m in lines for v in m.values() if isinstance(v, float))
    assert lines[-1]["motivation/int_reward_mean"] > 0
