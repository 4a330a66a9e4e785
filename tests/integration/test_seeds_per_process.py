"""Several seeds of one configuration trained in one process (``run_points``, what ``seeds_per_process`` launches).

Each seed must stay a run of its own: its record, metrics, W&B run and checkpoint; a crash resumes each without
gaps or duplicates; a seed's checkpoint resumes alone; a seed that diverges fails alone while the others finish.
The launchers' grouping of points into processes is tests/launching/test_seed_groups.py's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from inline import TINY, metrics
from tolerance import RUN_DRIFT

from rlsweep.config.files import load_config
from rlsweep.config.overrides import quote_group_values
from rlsweep.envs import make_env
from rlsweep.launching.job import SeedsDiverged, run_point, run_points
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import GROUPS, plan
from rlsweep.launching.points import prepare
from rlsweep.models import build_policy
from rlsweep.motivation import build_motivation
from rlsweep.rundir.record import RunRecord
from rlsweep.training.checkpoint import CheckpointError, load_checkpoint

pytestmark = [pytest.mark.slow]  # several runs of a few iterations each, compared

STEPS = [64, 128, 192, 256]  # TINY: 4 iterations of 4 envs x 16 steps


def seeds_of_one_config(tmp_path: Path, *overrides: str, seeds: str = "1,2") -> list[Path]:
    """The run directories of a planned and prepared sweep over ``seed`` (nothing trained yet)."""
    p = plan(quote_group_values([*overrides, f"seed={seeds}", "sweep_name=group"], GROUPS), multirun=True)
    p.out_dir = tmp_path / "sweeps" / "group"
    Ledger(p.out_dir).record_launch("inline", len(p.points))
    return [p.run_dir(point) for point in prepare(p, "inline")]


def set_config(run_dir: Path, **debug: int) -> None:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["debug"].update(debug)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))


def test_two_seeds_in_one_process_are_two_runs_with_their_own_records_metrics_wandb_and_checkpoints(
    tmp_path: Path,
) -> None:
    dirs = seeds_of_one_config(tmp_path, *TINY[:-1], "motivation=rnd", "logger.mode=offline")
    results = run_points(dirs)
    records = [RunRecord.read(d) for d in dirs]
    assert [r.status for r in records] == ["completed", "completed"]
    assert [r.seed for r in records] == [1, 2] and records[0].pid == records[1].pid  # one process trained both
    rows = [metrics(d) for d in dirs]
    assert [[r["global_step"] for r in run] for run in rows] == [STEPS, STEPS]
    # their own numbers: different seeds, different networks and envs
    assert rows[0][-1]["loss/policy"] != rows[1][-1]["loss/policy"]
    assert [res["global_step"] for res in results] == [256, 256]
    wandb_ids = set()
    for d, record in zip(dirs, records, strict=True):
        (offline,) = (d / "wandb").glob("offline-run-*")  # one W&B run each, in its own directory
        assert offline.name.endswith(record.wandb_id or "?")
        wandb_ids.add(record.wandb_id)
        saved = load_checkpoint(d)
        assert saved is not None and saved["global_step"] == 256
        # a lone run's checkpoint: the seed's networks load into lone ones, key for key
        cfg = load_config(d)
        envs = make_env(cfg.env, 1, 0)
        build_policy(cfg.model.name, envs.obs_shape, envs.num_actions, 0.1).load_state_dict(saved["policy"])
        build_motivation(cfg.motivation, envs.obs_shape, torch.device("cpu")).load_state_dict(saved["motivation"])
    assert len(wandb_ids) == 2


@pytest.mark.parametrize(
    "switches",
    [["motivation=rnd"], ["motivation=rnd", "motivation.mask=sample", "motivation.update_proportion=0.25"],
     ["motivation=snd_v"], ["motivation=snd_std"]],
    ids=["rnd", "rnd-sample-mask", "snd_v", "snd_std"],
)  # fmt: skip
def test_a_seed_repeats_its_lone_run_whichever_seeds_share_its_process(tmp_path: Path, switches: list[str]) -> None:
    """Each seed draws from its own generator, in a lone run's order: seed 1 trained with seed 2 or with seed 3
    gives the same numbers bit for bit, and those of seed 1 trained alone up to the batched kernels' rounding.
    CleanRL's per-sample mask: each seed's predictor runs on its own kept rows, however many the others keep.
    SND-V draws pairs and augmentations too; SND-STD trains loss heads beside its target."""

    def seed_1(sweep: str, seeds: str) -> list[dict[str, float]]:
        first = seeds_of_one_config(tmp_path / sweep, *TINY, *switches, seeds=seeds)
        run_points(first)
        return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in metrics(first[0])]

    alone, with_2, with_3 = seed_1("alone", "1"), seed_1("with-2", "1,2"), seed_1("with-3", "1,3")
    assert with_2 == with_3
    assert [r["global_step"] for r in alone] == STEPS
    for lone, grouped in zip(alone, with_2, strict=True):
        assert grouped.keys() == lone.keys()
        # what the seed did (its actions, hence its episodes and exploration) is the same to the bit
        assert {k: v for k, v in grouped.items() if k.startswith(("episode/", "explore/"))} == {
            k: v for k, v in lone.items() if k.startswith(("episode/", "explore/"))
        }
        # A whole run: no epsilon-times-depth bound (rule 5 of tests/tolerance.py). RUN_DRIFT relative; and where a
        # number is a small difference of terms of about 1 (an explained variance, 1 - var(R - V) / var(R); the total
        # and policy losses, normalised advantages times ratios near 1; the k3 KL), as much absolute. The largest
        # drift seen, 4.2e-6 (AVX-512), is 30 times below it; a 1 % larger learning rate moves these runs by 4e-2.
        cancelling = ("loss/total", "loss/policy", "ppo/approx_kl", "ppo/explained_var_ext", "ppo/explained_var_int")
        for key, value in lone.items():
            size = 1.0 if key in cancelling else 0.0
            assert grouped[key] == pytest.approx(value, rel=RUN_DRIFT, abs=RUN_DRIFT * size), key


def test_a_crashed_process_resumes_every_seed_without_gaps_or_duplicates(tmp_path: Path) -> None:
    dirs = seeds_of_one_config(tmp_path, *TINY, "motivation=rnd", "debug.crash_at_iteration=4")
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        run_points(dirs)
    for d in dirs:
        record = RunRecord.read(d)
        assert record.status == "failed" and "debug.crash_at_iteration=4" in (record.error or "")
        assert [r["global_step"] for r in metrics(d)] == STEPS[:3]  # logged up to iteration 3
        saved = load_checkpoint(d)
        assert saved is not None and saved["iteration"] == 2  # budget=smoke checkpoints every 2 iterations
        set_config(d, crash_at_iteration=0)
    run_points(dirs)
    for d in dirs:
        record = RunRecord.read(d)
        assert record.status == "completed" and record.attempts == 2
        assert [r["global_step"] for r in metrics(d)] == STEPS  # iteration 3 recomputed once, not twice


@pytest.mark.parametrize("motivation", ["rnd", "snd_std"])  # SND-STD: target, loss heads and their Adam too
def test_a_seed_trained_in_a_group_resumes_alone_from_its_checkpoint(tmp_path: Path, motivation: str) -> None:
    dirs = seeds_of_one_config(tmp_path, *TINY, f"motivation={motivation}", "debug.crash_at_iteration=3")
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        run_points(dirs)
    alone = dirs[1]
    set_config(alone, crash_at_iteration=0)
    run_point(alone)
    assert RunRecord.read(alone).status == "completed"
    assert [r["global_step"] for r in metrics(alone)] == STEPS
    assert RunRecord.read(dirs[0]).status == "failed"  # the other seed is untouched


def test_a_seed_that_diverges_fails_alone_and_keeps_its_last_good_checkpoint(tmp_path: Path) -> None:
    dirs = seeds_of_one_config(tmp_path, *TINY, "motivation=rnd", "debug.crash_at_iteration=3")
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        run_points(dirs)
    # seed 2's saved policy goes bad (as if its numbers had blown up): only seed 2 can diverge on resuming
    bad = dirs[1] / "checkpoint.pt"
    state = torch.load(bad, weights_only=True)
    first = next(iter(state["policy"]))
    state["policy"][first] = torch.full_like(state["policy"][first], float("nan"))
    torch.save(state, bad)
    for d in dirs:
        set_config(d, crash_at_iteration=0)

    with pytest.raises(SeedsDiverged, match=dirs[1].name):
        run_points(dirs)
    good, failed = RunRecord.read(dirs[0]), RunRecord.read(dirs[1])
    assert good.status == "completed" and [r["global_step"] for r in metrics(dirs[0])] == STEPS
    assert failed.status == "failed" and (failed.error or "").startswith("DivergenceError: non-finite ")
    assert "at iteration 3" in (failed.error or "")
    assert [r["global_step"] for r in metrics(dirs[1])] == STEPS[:2]  # nothing of the diverged iteration
    saved = load_checkpoint(dirs[1])
    assert saved is not None and saved["iteration"] == 2


def test_seeds_at_different_iterations_are_refused_before_training(tmp_path: Path) -> None:
    dirs = seeds_of_one_config(tmp_path, *TINY, "debug.crash_at_iteration=3")
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        run_point(dirs[0])  # seed 1 alone: checkpointed at iteration 2; seed 2 never started
    set_config(dirs[0], crash_at_iteration=0)
    set_config(dirs[1], crash_at_iteration=0)
    with pytest.raises(CheckpointError, match="must start at one iteration") as refused:
        run_points(dirs)
    assert f"{dirs[0].name}: iteration 2" in str(refused.value) and f"{dirs[1].name}: new" in str(refused.value)
    assert json.loads((dirs[1] / "run.json").read_text())["status"] == "failed"
    assert not (dirs[1] / "checkpoint.pt").exists()


@pytest.mark.gpu
@pytest.mark.parametrize(
    "switches",
    [["motivation=rnd"], ["motivation=rnd", "perf.autocast=bf16"], ["motivation=snd_v"]],
    ids=["defaults", "bf16", "snd_v"],  # SND-V: each seed's pairs and augmentations from its CUDA generator
)
def test_two_seeds_in_one_process_on_cuda(tmp_path: Path, switches: list[str]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine; the same runs are tested on the CPU above")
    dirs = seeds_of_one_config(tmp_path, *TINY, "device=cuda", *switches)
    run_points(dirs)
    for d in dirs:
        assert RunRecord.read(d).status == "completed"
        rows = metrics(d)
        assert [r["global_step"] for r in rows] == STEPS
        assert all(math.isfinite(r["loss/total"]) for r in rows)


@pytest.mark.gpu
@pytest.mark.parametrize("motivation", ["rnd", "snd_v"])  # SND-V: its target's Adam and CUDA generators too
def test_on_cuda_checkpoints_move_between_a_group_and_lone_runs(tmp_path: Path, motivation: str) -> None:
    """Resumes on CUDA: checkpoints are read to host memory (the RNG states are host data), and the Adam
    moments of a group (NCHW) and of lone runs (NHWC weights) take their parameters' layout, which CUDA's fused
    Adam insists on. A group's seed resumes alone; lone runs resume as a group."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine; the same resumes are tested on the CPU above")
    group = seeds_of_one_config(tmp_path / "a", *TINY, "device=cuda", f"motivation={motivation}",
                                "debug.crash_at_iteration=3")  # fmt: skip
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        run_points(group)
    lone = seeds_of_one_config(tmp_path / "b", *TINY, "device=cuda", f"motivation={motivation}",
                               "debug.crash_at_iteration=3")  # fmt: skip
    for d in lone:
        with pytest.raises(RuntimeError, match="crashing on purpose"):
            run_point(d)
    for d in [*group, *lone]:
        set_config(d, crash_at_iteration=0)
    for d in group:
        run_point(d)  # each seed of the group alone
    run_points(lone)  # the lone runs as one group
    for d in [*group, *lone]:
        record = RunRecord.read(d)
        assert record.status == "completed" and record.attempts == 2, record.error
        rows = metrics(d)
        assert [r["global_step"] for r in rows] == STEPS
        assert all(math.isfinite(r["loss/total"]) for r in rows)
