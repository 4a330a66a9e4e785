"""What the SLURM launcher asks of sbatch, read from the script submitit would submit (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlsweep.config.launchers import SlurmSettings, load_profile
from rlsweep.launching.slurm import executor_for


def sbatch_text(settings: SlurmSettings, tmp_path: Path) -> str:
    ex = executor_for(tmp_path, load_profile(settings))
    return str(ex._executor._make_submission_file_text("python -m rlsweep", "uid"))


def test_profile_fills_every_sbatch_setting(tmp_path: Path) -> None:
    text = sbatch_text(SlurmSettings(profile="example_gpu_cluster", timeout_min=90), tmp_path)
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=my_project",
        "#SBATCH --qos=normal",
        "#SBATCH --constraint='a100|h100'",  # quoted by submitit for the shell
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --mem=64GB",
        "#SBATCH --time=90",
        "#SBATCH --mail-type=FAIL",
        "#SBATCH --signal=USR2@120",
        "source ~/rlsweep/.venv/bin/activate",
    ):
        assert line in text, line


def test_explicit_keys_win_over_the_profile_and_extra_flags_pass_through(tmp_path: Path) -> None:
    settings = SlurmSettings(
        profile="example_gpu_cluster", partition="big", gpus_per_node=4, additional_parameters={"exclude": "n7"}
    )
    text = sbatch_text(settings, tmp_path)
    assert "#SBATCH --partition=big" in text and "--partition=gpu" not in text
    assert "#SBATCH --gpus-per-node=4" in text
    assert "#SBATCH --exclude=n7" in text
    assert "--mail-type" not in text  # the profile's extra flags only fill an empty mapping


def test_local_profile_asks_for_no_gpu(tmp_path: Path) -> None:
    text = sbatch_text(SlurmSettings(profile="local"), tmp_path)
    assert "#SBATCH --partition=debug" in text and "gpus" not in text and "#SBATCH --cpus-per-task=1" in text


def test_unknown_profile_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"profile: 'nope' \(allowed: example_gpu_cluster, local, or a path"):
        load_profile(SlurmSettings(profile="nope"))


def test_signal_delay_must_leave_two_minutes_of_the_time_limit(tmp_path: Path) -> None:
    text = sbatch_text(SlurmSettings(profile="local", timeout_min=3, signal_delay_s=60), tmp_path)
    assert "#SBATCH --signal=USR2@60" in text and "#SBATCH --time=3" in text
    with pytest.raises(ValueError, match=r"signal_delay_s: 61 with .*timeout_min=3 \(allowed: at most 60;"):
        load_profile(SlurmSettings(profile="local", timeout_min=3, signal_delay_s=61))
    with pytest.raises(ValueError, match=r"allowed: none; hydra.launcher.timeout_min must be >= 2;"):
        load_profile(SlurmSettings(timeout_min=1, signal_delay_s=0))
