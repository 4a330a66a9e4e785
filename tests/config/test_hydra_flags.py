"""Hydra's habits on rlsweep's command line: ``--cfg``, ``--package``, ``--resolve``, ``--info``, ``--config-dir`` and
``hydra.searchpath``, "did you mean" on keys, options and flags, and a hint for ``critic_init=sqrt(2)``.

Each runs ``sweep.py``'s main in this process (tests/launching/test_package.py runs ``--config-dir`` from a wheel
installed in a venv of its own, in another directory).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from inline import TINY, finished, record, sweep_inline

from rlsweep.cli import seeds
from rlsweep.cli.sweep import main
from rlsweep.launching.plan import compose_point


def _main(cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
          ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    monkeypatch.chdir(cwd)
    return finished(main, args, capsys)


def _one_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, out.stdout + out.stderr
    (line,) = out.stderr.strip().splitlines()
    return line


# ---- --cfg, --package, --resolve, --info ----------------------------------------------------------------------------


def test_cfg_job_prints_the_points_config_as_the_job_will_load_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _main(tmp_path, monkeypatch, capsys, "--cfg", "job", "--resolve", "model=B", "critic_init=sqrt2", "seed=3")
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout) == compose_point(["model=B", "critic_init=sqrt2", "seed=3"])
    assert list(tmp_path.iterdir()) == []  # starts nothing, writes nothing


def test_cfg_package_prints_one_section_under_its_package_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _main(tmp_path, monkeypatch, capsys, "-c", "job", "-p", "ppo", "ppo.learning_rate=3e-4")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# @package ppo\n")
    assert yaml.safe_load(out.stdout)["learning_rate"] == 3e-4
    bad = _main(tmp_path, monkeypatch, capsys, "--cfg", "job", "--package", "pop")
    assert "Invalid value for --package: 'pop' (no section 'pop'; allowed: " in _one_error(bad)


def test_cfg_hydra_of_a_grid_prints_the_launcher_and_where_the_runs_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _main(tmp_path, monkeypatch, capsys, "-m", "--cfg", "hydra", "model=A,B", "sweep_name=g",
                "hydra/launcher=slurm", "hydra.launcher.timeout_min=600")  # fmt: skip
    assert out.returncode == 0, out.stderr
    header, text = out.stdout.split("\n", 1)
    assert header == "# point 0 of 2: ppo_rnd_a0-s1"
    hydra = yaml.safe_load(text)["hydra"]
    assert hydra["mode"] == "MULTIRUN" and hydra["sweep"]["dir"] == str(tmp_path / "sweeps" / "g")
    assert hydra["launcher"]["_name"] == "slurm" and hydra["launcher"]["timeout_min"] == 600
    assert hydra["runtime"]["choices"]["model"] == "A"
    every = yaml.safe_load(_main(tmp_path, monkeypatch, capsys, "--cfg", "all").stdout)
    assert {"hydra", "ppo", "model", "seed"} <= set(every)


def test_info_says_where_configs_come_from_the_defaults_and_every_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _main(tmp_path, monkeypatch, capsys, "--info")
    assert out.returncode == 0, out.stderr
    assert "Config search path:\n  pkg://rlsweep.conf (" in out.stdout
    assert "Defaults list (conf/config.yaml):\n  - base_config\n  - model: A" in out.stdout
    assert "  env: caveflyer, chain, " in out.stdout and "..." not in out.stdout  # every option, none cut
    groups = _main(tmp_path, monkeypatch, capsys, "--info", "groups", "model=B")
    assert groups.stdout.startswith("config groups (group=option):") and "Defaults" not in groups.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--cfg", "jbo"], "rlsweep: error: Invalid value for --cfg: 'jbo' (allowed: job, hydra, all)"),
        (["--cfg"], "rlsweep: error: --cfg needs a value: job, hydra, all"),
        (["--package", "ppo"], "rlsweep: error: --package goes with --cfg (--cfg job --package ppo)"),
        (["--cgf", "job"], "rlsweep: error: unknown flag --cgf (did you mean --cfg?); allowed: -m/--multirun, "),
        (["--config-dir", "nowhere"], "rlsweep: error: Invalid value for --config-dir: 'nowhere' (no such folder)"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it_and_what_is_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    assert _one_error(_main(tmp_path, monkeypatch, capsys, *args)).startswith(said)


# ---- did you mean ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "said"),
    [
        ("motivaton=rnd", "Unknown key motivaton (did you mean motivation?); allowed: config groups budget, "),
        ("ppo.lr=3e-4", "Unknown key ppo.lr (did you mean ppo.learning_rate?); allowed keys under ppo: "),
        ("ppo.mgn=1", "Unknown key ppo.mgn (did you mean ppo.max_grad_norm?)"),
        ("model=b", "Unknown option model=b (did you mean model=B?); allowed: A, B, C, D, cleanrl"),
        ("experiment=ppo_rnd_a", "Unknown option experiment=ppo_rnd_a (did you mean experiment=ppo_rnd_a0?)"),
        ("critic_init=sqrt(2)", "Unknown function 'sqrt'"),
    ],
)
def test_a_typo_gets_the_nearest_key_or_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], arg: str, said: str
) -> None:
    line = _one_error(_main(tmp_path, monkeypatch, capsys, arg, "dry_run=true"))
    assert line.startswith("rlsweep: error: ") and said in line
    if arg.startswith("critic_init"):  # Hydra's grammar error, then what to write: options are names
        assert line.endswith("; critic_init takes the name of an option (did you mean critic_init=sqrt2?), "
                             "allowed: 0.1, sqrt2")  # fmt: skip


# ---- your own folder of options -------------------------------------------------------------------------------------


@pytest.fixture
def own(tmp_path: Path) -> Path:
    """A user's config folder: an env option built on the package's maze, and an experiment choosing it."""
    folder = tmp_path / "myconf"
    (folder / "env").mkdir(parents=True)
    (folder / "experiment").mkdir()
    (folder / "env" / "big_maze.yaml").write_text("defaults:\n  - maze\nmaze_rooms: 4\n")
    (folder / "experiment" / "my_check.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /env: big_maze\n  - override /motivation: none\n"
    )
    return folder


def test_a_config_dir_adds_its_options_beside_the_packages(
    tmp_path: Path, own: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in (["--config-dir", "myconf"], ["-cd", str(own)], [f"hydra.searchpath=[file://{own}]"]):
        out = _main(tmp_path, monkeypatch, capsys, *flag, "experiment=my_check", "--cfg", "job")
        assert out.returncode == 0, out.stderr
        config = yaml.safe_load(out.stdout)
        assert config["env"]["id"] == "maze" and config["env"]["maze_rooms"] == 4
        assert config["motivation"]["name"] == "none"
    info = _main(tmp_path, monkeypatch, capsys, "-cd", "myconf", "--info")
    assert f"  file://{own}\n" in info.stdout and f"big_maze ({own})" in info.stdout
    plain = _main(tmp_path, monkeypatch, capsys, "experiment=my_check", "dry_run=true")
    assert "Unknown option experiment=my_check" in _one_error(plain)  # without the folder, no such option


def test_an_option_named_like_the_packages_own_is_refused(
    tmp_path: Path, own: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (own / "env" / "maze.yaml").write_text("maze_rooms: 9\n")
    line = _one_error(_main(tmp_path, monkeypatch, capsys, "-cd", "myconf", "env=maze", "dry_run=true"))
    assert line == (
        f"rlsweep: error: {own / 'env' / 'maze.yaml'} has the name of rlsweep's own option env=maze; "
        "rename it (a folder on the search path adds options, it does not replace the package's)"
    )


def test_a_sweep_of_your_own_options_gets_its_new_seeds_from_them_too(
    tmp_path: Path, own: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """sweep.json records the folder, and rlsweep seeds plans new seeds with it (its plan would refuse the option
    otherwise)."""
    monkeypatch.chdir(tmp_path)
    small = [o for o in TINY if not o.startswith("env=")]  # the experiment chooses the env
    sweep_dir = sweep_inline(tmp_path, *small, f"hydra.searchpath=[file://{own}]", "experiment=my_check",
                             "model=A,B", sweep_name="own")  # fmt: skip
    from rlsweep.launching.ledger import Ledger

    Ledger(sweep_dir).record_launch("local", 2, (f"file://{own}",))
    info = json.loads((sweep_dir / "sweep.json").read_text())
    assert info["searchpath"] == [f"file://{own}"]
    run_dir = min(d for d in sweep_dir.iterdir() if d.name.endswith("-s1"))
    assert record(run_dir)["choices"]["env"] == "big_maze"
    overrides = seeds._launch_overrides(info)
    planned = seeds._plan_batch(seeds._read_sweep(sweep_dir, Ledger(sweep_dir), info, "explore/cells"),
                                {run_dir.name.removesuffix("-s1"): [3]}, overrides)  # fmt: skip
    (point,) = planned.points
    assert point.seed == 3 and point.choices["env"] == "big_maze" and point.config["env"]["maze_rooms"] == 4
