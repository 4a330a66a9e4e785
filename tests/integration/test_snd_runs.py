"""End-to-end SND, Procgen and feature pictures: runs through the launch path in this process (``inline``),
in a temporary working directory, and the feature pictures through their command's ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from inline import metrics, run_inline, sweep_inline

from rlsweep.analysis.features import main as features_main

# a trained run of each SND variant per module; one worker builds the module's fixture (xdist_group)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_snd_runs")]

SMOKE = ["env=fake", "budget=smoke", "debug=smoke", "logger=none"]


@pytest.fixture(scope="module")
def snd_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("snd")
    return sweep_inline(cwd, "motivation=snd_v,snd_vic,snd_std", *SMOKE, sweep_name="snd")


def test_each_snd_variant_smoke_runs_on_the_fake_env(snd_sweep: Path) -> None:
    runs = sorted(snd_sweep.glob("*/run.json"))
    assert len(runs) == 3
    seen = set()
    for run_json in runs:
        info = json.loads(run_json.read_text())
        assert info["status"] == "completed" and info["global_step"] == 256
        rows = metrics(run_json.parent)
        last = rows[-1]
        # Both the predictor and the self-supervised target trained, with finite losses.
        assert np.isfinite(last["loss/motivation"]) and np.isfinite(last["loss/motivation_target"])
        assert 0.0 <= last["motivation/int_reward_max"] <= 1.0
        seen.add(info["choices"]["motivation"])
    assert seen == {"snd_v", "snd_vic", "snd_std"}


def test_feature_pictures_from_a_smoke_checkpoint(snd_sweep: Path, tmp_path: Path) -> None:
    run_dir = next(snd_sweep.glob("ppo_snd_v*"))
    out = tmp_path / "pictures"
    assert features_main([str(run_dir), "--out", str(out), "--steps", "48", "--envs", "4"]) == 0
    import matplotlib.image as mpimg

    for name in ("tsne.png", "intrinsic_reward.png"):
        png = out / name
        assert png.stat().st_size > 5_000, name
        pixels = mpimg.imread(png)
        assert pixels.ndim == 3 and pixels[..., :3].std() > 0.05, f"{name} looks blank"
    data = np.load(out / "features.npz")
    assert data["points"].shape == (192, 2)
    assert data["features"].shape == (192, 512)


def test_procgen_smoke_run_with_rgb_frames(tmp_path: Path) -> None:
    run_inline(tmp_path, "env=coinrun", "motivation=snd_v", "budget=smoke", "debug=smoke", "logger=none")
    run_dirs = list((tmp_path / "runs").glob("*/run.json"))
    assert len(run_dirs) == 1
    info = json.loads(run_dirs[0].read_text())
    assert info["status"] == "completed" and info["name"].endswith("-env_coinrun")
    assert "grayscale: false" in (run_dirs[0].parent / "config.yaml").read_text()


def test_procgen_env_contract() -> None:
    from rlsweep.envs import make_env
    from rlsweep.envs.procgen import ProcgenEnv

    cfg = {"id": "procgen-jumper", "frame_size": 64, "frame_stack": 2, "grayscale": False,
           "distribution_mode": "exploration", "random_action_prob": 0.0, "binary_reward": False}  # fmt: skip
    env = make_env(type("Env", (), cfg)(), 4, seed=3)
    assert isinstance(env, ProcgenEnv)
    try:
        assert env.obs_shape == (6, 64, 64) and env.frame_channels == 3 and env.num_actions == 15
        obs = env.reset()
        assert obs.dtype == np.uint8 and obs.shape == (4, 6, 64, 64)
        assert np.array_equal(obs[:, :3], obs[:, 3:])  # a new episode's stack holds its first frame only
        rng = np.random.default_rng(0)
        finished, previous = [], obs
        for _ in range(400):
            result = env.step(rng.integers(0, 15, size=4))
            # Newest frame last: the older slot is the previous step's newest frame unless the env reset.
            kept = ~result.done
            assert np.array_equal(result.obs[kept, :3], previous[kept, 3:])
            for i in np.flatnonzero(result.done):
                assert np.array_equal(result.obs[i, :3], result.obs[i, 3:])
            finished += result.episodes
            previous = result.obs
        assert finished, "no Procgen episode ended in 400 random steps"
        assert all(e.length > 0 and e.rooms == 0 for e in finished)
        assert env.exploration() == {}
    finally:
        env.close()
