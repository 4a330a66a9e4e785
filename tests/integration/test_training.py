"""End-to-end runs on the synthetic envs and the real Atari emulator.

Runs go through the launch path in this process (``inline``: plan, config.yaml and record, ``run_point``), in
a temporary directory, so they land in ``tmp/runs`` and ``tmp/sweeps`` exactly where a user would find them.
A run killed by SIGKILL and resumed through ``python sweep.py`` is tests/unit/test_tracking.py's (with W&B).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from inline import metrics, run_inline, sweep_inline
from tolerance import FLOAT32_EPS, RUN_DRIFT

from rlsweep.cli.commands import main as cli_main

pytestmark = [pytest.mark.slow]  # whole runs compared with one another

REPO = Path(__file__).resolve().parents[2]
SMOKE = ["env=fake", "budget=smoke", "debug=smoke", "logger=none"]

METRIC_KEYS = {
    "global_step",
    "iteration",
    "loss/policy",
    "loss/value_ext",
    "loss/value_int",
    "loss/entropy",
    "ppo/approx_kl",
    "ppo/clipfrac",
    "ppo/explained_var_ext",
    "ppo/explained_var_int",
    "motivation/int_reward_mean",
    "perf/sps",
}


def runs_with(tmp_path: Path, common: list[str], **variants: str) -> list[list[dict]]:
    """One run of ``common`` per variant (name = one extra override), in order; each run's metric lines."""
    for name, override in variants.items():
        run_inline(tmp_path, *common, override, f"name={name}")
    return [metrics(tmp_path / "runs" / f"{name}-s1") for name in variants]


def test_smoke_every_model_on_fake_env(tmp_path: Path) -> None:
    sweep_inline(tmp_path, "model=A,B,C,D", "motivation=rnd", *SMOKE, sweep_name="smoke")
    runs = sorted((tmp_path / "sweeps" / "smoke").glob("*/run.json"))
    assert len(runs) == 4
    for run_json in runs:
        info = json.loads(run_json.read_text())
        assert info["status"] == "completed"
        assert info["global_step"] == info["total_steps"] == 256
        rows = metrics(run_json.parent)
        assert [r["global_step"] for r in rows] == [64, 128, 192, 256]
        assert set(rows[-1]) >= METRIC_KEYS
        assert (run_json.parent / "checkpoint.pt").exists()
        # the resolved config sits next to the metrics, and the record names the choices that made it
        config = (run_json.parent / "config.yaml").read_text()
        assert f"name: {info['choices']['model']}" in config and "critic_init_gain" in config
        assert info["attempts"] == 1 and [h[1] for h in info["history"]] == ["running", "completed"]
    names = {json.loads(r.read_text())["name"] for r in runs}
    assert names == {
        "ppo_rnd_a0-env_fake",
        "ppo_rnd_b0-env_fake",
        "ppo_rnd_c0-env_fake",
        "ppo_rnd_d0-env_fake",
    }


@pytest.mark.parametrize("motivation", ["rnd", "snd_v"])
def test_the_seeds_runs_train_under_fidelity_author(tmp_path: Path, motivation: str) -> None:
    """The author's choices (no last-step bootstrap, RND statistics on s_{t+1}, the variance floor) train too."""
    run_dir = run_inline(tmp_path, *SMOKE, f"motivation={motivation}", "fidelity=author", "name=author")
    assert [m["global_step"] for m in metrics(run_dir)] == [64, 128, 192, 256]
    assert all(math.isfinite(m["loss/policy"]) for m in metrics(run_dir))


def test_rnd_statistics_fed_s_t_plus_1_see_each_rollouts_last_state_one_rollout_earlier(tmp_path: Path) -> None:
    """Same seed, same run, only motivation.stats_state: the same number of states enter the statistics, but with
    ``author`` each rollout's s_T enters before its update (and s_0 of the first rollout never), so they differ."""
    import torch

    saved = {}
    for state in ("input", "author"):
        run_dir = run_inline(tmp_path, *SMOKE, f"motivation.stats_state={state}", f"name=stats_{state}")
        saved[state] = torch.load(run_dir / "checkpoint.pt", weights_only=True)["motivation"]["obs_rms"]
    assert saved["input"]["count"] == saved["author"]["count"]
    assert not torch.equal(saved["input"]["mean"], saved["author"]["mean"])


def test_plain_ppo_smoke_and_same_seed_same_numbers(tmp_path: Path) -> None:
    sweep_inline(tmp_path, "motivation=none,rnd", *SMOKE, sweep_name="first")
    sweep_inline(tmp_path, "motivation=none,rnd", *SMOKE, sweep_name="second")
    for run in ("ppo_none_a-nir_false-ci_0.1-env_fake-s1", "ppo_rnd_a0-env_fake-s1"):
        first = metrics(tmp_path / "sweeps" / "first" / run)
        second = metrics(tmp_path / "sweeps" / "second" / run)
        strip = [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in first]
        assert strip == [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in second]
    none_rows = metrics(tmp_path / "sweeps" / "first" / "ppo_none_a-nir_false-ci_0.1-env_fake-s1")
    assert all(r["motivation/int_reward_mean"] == 0 for r in none_rows)


def test_report_on_a_real_sweep(tmp_path: Path) -> None:
    sweep_dir = sweep_inline(tmp_path, "motivation=none,rnd", "seed=1,2", *SMOKE, sweep_name="rep")
    assert cli_main(["report", str(sweep_dir)]) == 0
    html = (sweep_dir / "report" / "report.html").read_text()
    assert "ppo_rnd_a0-env_fake" in html and "data:image/png;base64," in html
    table = (sweep_dir / "report" / "summary.md").read_text()
    # Configurations are labelled by the factor that varies; the run names stay in the page's tables.
    assert "| motivation=none | 2/2 |" in table and "| motivation=rnd | 2/2 |" in table
    assert "ppo_none_a-nir_false-ci_0.1-env_fake" in html


def test_ppo_solves_the_chain(tmp_path: Path) -> None:
    """Known answer: the optimal policy walks right 9 steps for return 1; a random one gets ~0.27."""
    run_inline(
        tmp_path, "env=chain", "motivation=none", "logger=none", "name=chain",
        "ppo.num_envs=8", "ppo.num_steps=64", "ppo.minibatch_size=128", "ppo.learning_rate=1e-3",
        "budget.total_steps=8192",
    )  # fmt: skip
    rows = [r for r in metrics(tmp_path / "runs" / "chain-s1") if r.get("episode/return") is not None]
    last = rows[-3:]
    assert all(r["episode/return"] >= 0.95 for r in last), last
    assert all(r["episode/length"] <= 12 for r in last), last


def test_montezuma_smoke_on_real_envpool(tmp_path: Path) -> None:
    """Two iterations of the seed's model A + RND on the real emulator at 4x96x96."""
    run_inline(tmp_path, "env=montezuma", "debug=smoke", "logger=none", "budget.total_steps=128", "name=mr")
    run_dir = tmp_path / "runs" / "mr-s1"
    rows = metrics(run_dir)
    assert [r["global_step"] for r in rows] == [64, 128]
    assert rows[-1]["explore/rooms"] >= 1  # the start room, read from the console RAM
    assert 0 <= rows[-1]["motivation/int_reward_mean"] <= 1  # clipped to [0, 1]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_overlapped_env_stepping_gives_the_same_run(tmp_path: Path) -> None:
    """perf.overlap_env only changes when the emulators run (envpool send/recv around r_int): same numbers."""
    common = ["env=montezuma", "debug=smoke", "logger=none", "budget.total_steps=128"]
    overlap, serial = runs_with(tmp_path, common, overlap="perf.overlap_env=true", serial="perf.overlap_env=false")
    assert [r["global_step"] for r in overlap] == [64, 128]
    assert overlap[-1]["motivation/int_reward_mean"] > 0
    strip = [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in overlap]
    assert strip == [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in serial]


def test_reused_target_features_give_the_same_run_on_raw_input(tmp_path: Path) -> None:
    """perf.reuse_target_features: with un-normalised input the kept features are the ones the update would
    recompute, so the run is the same (up to float rounding of a different batch); the predictor's loss too."""
    common = ["env=montezuma", "debug=smoke", "logger=none", "budget.total_steps=128", "motivation.obs_norm=none"]
    reuse, recompute = runs_with(tmp_path, common, reuse="perf.reuse_target_features=true",
                                 recompute="perf.reuse_target_features=false")  # fmt: skip
    assert [r["global_step"] for r in reuse] == [64, 128]
    for a, b in zip(reuse, recompute, strict=True):
        for key in ("loss/motivation", "motivation/int_reward_mean", "loss/total"):
            # two runs a differently batched target pass apart: rule 5 of tests/tolerance.py (equal to the bit with
            # ATEN_CPU_CAPABILITY=default and avx2)
            assert a[key] == pytest.approx(b[key], rel=RUN_DRIFT), key


def test_target_features_once_per_update_give_the_run_of_a_target_pass_per_minibatch(tmp_path: Path) -> None:
    """perf.target_features_per_update: the frozen target's features, computed once when the update starts, are
    those each minibatch's target pass would compute (the statistics do not move within an update): the same run
    with the seed's normalised input, up to the rounding of a differently batched target pass."""
    common = ["env=montezuma", "debug=smoke", "logger=none", "budget.total_steps=128", "motivation.obs_norm=mean_std"]
    once, each = runs_with(tmp_path, common, once="perf.target_features_per_update=true",
                           each="perf.target_features_per_update=false")  # fmt: skip
    assert [r["global_step"] for r in once] == [64, 128]
    for a, b in zip(once, each, strict=True):
        assert a["loss/motivation"] > 0
        for key in ("loss/motivation", "motivation/int_reward_mean", "loss/total", "ppo/approx_kl"):
            # Rule 5 of tests/tolerance.py (equal to the bit with ATEN_CPU_CAPABILITY=default and avx2). The k3 KL
            # (r - 1) - log r ~ x^2 / 2 for log ratios x cancels: a drift of both log-probabilities (|log p| < 3 for a
            # near-uniform policy over 18 actions) moves it by mean|x| x 6 RUN_DRIFT, mean|x| <= sqrt(2 KL); and r
            # = exp(x) rounds to an epsilon of 1, which (r - 1) - log r keeps: 4 roundings of 1.
            kl_atol = 6 * RUN_DRIFT * math.sqrt(2 * b[key]) + 4 * FLOAT32_EPS if key == "ppo/approx_kl" else 0.0
            assert a[key] == pytest.approx(b[key], rel=RUN_DRIFT, abs=kl_atol), key


def test_a_sample_mask_on_kept_rows_only_gives_the_all_rows_run(tmp_path: Path) -> None:
    """perf.predictor_kept_rows: with CleanRL's per-sample mask the predictor runs on a quarter of the rows, and
    the run is the one that runs every row (up to the order of float sums)."""
    common = ["env=montezuma", "debug=smoke", "logger=none", "budget.total_steps=128", "motivation.mask=sample",
              "motivation.update_proportion=0.25"]  # fmt: skip
    kept, every = runs_with(tmp_path, common, kept="perf.predictor_kept_rows=true",
                            all="perf.predictor_kept_rows=false")  # fmt: skip
    assert [r["global_step"] for r in kept] == [64, 128]
    for a, b in zip(kept, every, strict=True):
        assert 0 < a["motivation/mask_kept"] < 1
        for key in ("loss/motivation", "motivation/mask_kept", "motivation/int_reward_mean", "loss/total"):
            # the predictor on a quarter of the rows: rule 5 of tests/tolerance.py (equal to the bit with
            # ATEN_CPU_CAPABILITY=default and avx2)
            assert a[key] == pytest.approx(b[key], rel=RUN_DRIFT), key


def test_double_buffered_collection_stores_what_the_envs_did(tmp_path: Path) -> None:
    """perf.double_buffer: the two halves step out of phase, one in flight at a time. Replaying the stored actions
    through the same envs stepped all at once gives every stored state, reward and done, episode ends included
    (Breakout: lives are lost on different steps in different envs, so a half's results stored in the other
    half's rows would show)."""
    from rlsweep.config.files import typed_config
    from rlsweep.envs import make_env
    from rlsweep.launching.plan import compose_point
    from rlsweep.training.loop import PhaseTimer, close, collect, resume_or_warm_up, set_up

    overrides = [
        "env=montezuma",
        "debug=smoke",
        "logger=none",
        "motivation=rnd",
        "perf.double_buffer=true",
        "ppo.num_envs=4",
        "ppo.num_steps=48",
        "env.id=Breakout-v5",  # lives lost on different steps in different envs
        "env.episodic_life=true",
        "env.max_episode_steps=30",
        "motivation.warmup_steps=0",
    ]
    cfg = typed_config(compose_point(overrides))
    info = {"name": "db", "run_id": "db", "seed": cfg.seed, "sweep": "", "choices": {}, "overrides": overrides}
    run, saved = set_up([cfg], [tmp_path / "db"], [info])
    try:
        first = resume_or_warm_up(run, saved).clone()
        timer = PhaseTimer(0)
        last = collect(run, first, timer)
        storage = run.storage
        episodes = sorted(run.seeds[0].episodes.episodes, key=lambda e: (e.length, e.env_index))
    finally:
        close(run, finished=False, superseded=False)
    assert timer.seconds["env"] > 0
    replay = make_env(cfg.env, num_envs=4, seed=cfg.seed)
    try:
        state = replay.reset()
        assert np.array_equal(state, first.numpy())
        replayed = []
        for t in range(48):
            assert np.array_equal(storage.obs[t].numpy(), state), t
            result = replay.step(storage.actions[t].numpy())
            state = result.obs
            assert np.array_equal(storage.rewards_ext[t].numpy(), result.reward), t
            assert np.array_equal(storage.dones[t].numpy().astype(bool), result.done), t
            replayed += result.episodes
        assert np.array_equal(last.numpy(), state)
    finally:
        replay.close()
    assert len(replayed) >= 4  # 30-step episodes: every env ended at least once in 48 steps
    dones = storage.dones.numpy()
    assert (dones[:, :2] != dones[:, 2:]).any()  # the halves' episodes end on different steps
    assert episodes == sorted(replayed, key=lambda e: (e.length, e.env_index))
    assert bool((storage.rewards_int > 0).all())  # r_int(s_t) of every step of both halves


@pytest.mark.gpu
@pytest.mark.parametrize(
    "switches",
    [[], ["perf.autocast=bf16", "perf.compile=reduce-overhead", "perf.channels_last=false", "perf.pin_memory=false"]],
    ids=["defaults", "bf16-cudagraphs-nchw"],
)
def test_smoke_on_cuda(tmp_path: Path, switches: list[str]) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine; the same smoke runs on the CPU above")
    run_inline(tmp_path, "device=cuda", "name=gpu", *SMOKE, *switches)
    assert json.loads((tmp_path / "runs" / "gpu-s1" / "run.json").read_text())["status"] == "completed"
    assert all(np.isfinite(r["loss/total"]) for r in metrics(tmp_path / "runs" / "gpu-s1"))
