"""rlsweep is a real package: a non-editable ``pip install .`` works from any directory.

A fresh venv gets rlsweep from its wheel (built from this checkout, ``--no-deps``); the dependencies come from
the test environment's site-packages through a ``.pth`` line, which adds their directory but not its own
``.pth`` files, so the editable install of this checkout is invisible to it. Then, from a directory outside
the checkout, the package must find its config tree and cluster profiles (package data), compose, dry-run a
grid and train a smoke point.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

# a wheel built and installed by pip into a venv of its own, run as a user would; one worker builds the
# module's fixture (xdist_group)
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("test_package")]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pkg")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(purelib, "test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # The wheel is built by the test environment (its setuptools; no download), installed like any wheel. It is built
    # from a copy of the checkout's files (tracked, and untracked but not ignored: what a clone plus this change
    # holds): setuptools builds in the source tree's build/, where a stale build/lib would ship modules the checkout
    # no longer has, and where two builds at once (a second suite, a second Python) remove each other's files.
    source = root / "source"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():  # a file deleted from the work tree but not yet from the index is left out
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root), str(source)],
        capture_output=True, text=True, cwd=root,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    (wheel,) = root.glob("rlsweep-*.whl")
    install = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                             capture_output=True, text=True, cwd=root)  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    return python


def _run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([python, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    out = _run(installed, tmp_path, "-c", "import rlsweep, rlsweep.config as c; print(rlsweep.__file__, c.CONF_DIR)")
    assert out.returncode == 0, out.stderr
    module, conf = out.stdout.split()
    assert str(REPO) not in module and "site-packages" in module
    assert Path(conf, "config.yaml").is_file() and Path(conf, "experiment", "ppo_rnd_b1.yaml").is_file()
    profiles = _run(installed, tmp_path, "-c", "from rlsweep.config.launchers import PROFILE_DIR as p; print(p)")
    assert Path(profiles.stdout.strip(), "local.yaml").is_file(), profiles.stderr


def test_installed_package_dry_runs_a_grid_and_trains_a_smoke_point(installed: Path, tmp_path: Path) -> None:
    dry = _run(installed, tmp_path, "-m", "rlsweep", "-m", "model=A,B", "critic_init=0.1,sqrt2", "dry_run=true")
    assert dry.returncode == 0, dry.stderr
    assert "ppo_rnd_b1-s1" in dry.stdout and "dry run: 4 job(s)" in dry.stdout
    run = _run(installed, tmp_path, "-m", "rlsweep", "env=fake", "budget=smoke", "debug=smoke", "logger=none")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "ppo_rnd_a0-env_fake-s1" / "run.json").read_text())
    assert record["status"] == "completed" and record["global_step"] == 256
    assert not any(tmp_path.glob("**/.hydra"))  # nothing of Hydra's job machinery is left behind


def test_installed_package_takes_a_users_own_config_folder(installed: Path, tmp_path: Path) -> None:
    """A user of the wheel adds an experiment of their own without touching the installed package: a folder of
    options beside the package's (``--config-dir``, Hydra's flag), from a directory of their own."""
    experiments = tmp_path / "myconf" / "experiment"
    experiments.mkdir(parents=True)
    (experiments / "my_smoke.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /env: fake\n  - override /budget: smoke\n"
        "  - override /debug: smoke\n  - override /logger: none\n"
    )
    run = _run(installed, tmp_path, "-m", "rlsweep", "--config-dir", "myconf", "experiment=my_smoke")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "ppo_rnd_a0-env_fake-s1" / "run.json").read_text())
    assert record["status"] == "completed" and record["global_step"] == 256
    assert record["choices"]["experiment"] == "my_smoke"
