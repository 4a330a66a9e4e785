"""Procgen on a machine without the system's Qt 5: real processes in a private mount namespace.

envpool's Procgen links the system's ``libQt5Gui.so.5``. To see what a user without it gets, each test starts a
process in its own mount namespace (``unshare -m``, root only) in which that library, and in the second test the
PyQt5-Qt5 wheel's copy too, is covered by ``/dev/null``; the machine itself is not changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from procs import ENV, REPO

from rlsweep.envs.pool import wheel_qt_dir

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="hiding the system Qt needs root and unshare(1) for a private mount namespace",
)


def _system_qt() -> Path:
    """The file the dynamic loader opens for libQt5Gui.so.5 (from ldconfig's cache)."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("libQt5Gui.so.5 ") and "=>" in line:
            return Path(line.rsplit("=>", 1)[1].strip()).resolve()
    raise AssertionError("the system Qt 5 GUI library is not installed (tests/system-setup.sh installs it)")


def _wheel_qt() -> Path:
    lib = wheel_qt_dir()
    assert lib is not None, "the PyQt5-Qt5 wheel is not installed (it is in the test extras)"
    return (lib / "libQt5Gui.so.5").resolve()


def _hidden(cwd: Path, hide: list[Path], *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with the files ``hide`` covered by /dev/null, in a mount namespace of its own."""
    mounts = " && ".join(f"mount --bind /dev/null '{p}'" for p in hide)
    script = f'{mounts} && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *argv],
        cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip


PROBE = """
import re
import numpy as np
from rlsweep.envs.procgen import ProcgenEnv

env = ProcgenEnv("procgen-jumper", 2, seed=0)
obs = env.reset()
result = env.step(np.zeros(2, dtype=np.int64))
assert obs.shape == (2, 6, 64, 64) and result.obs.std() > 0
print(sorted(set(re.findall(r"/\\S*libQt5Gui\\S*", open("/proc/self/maps").read()))))
"""


def test_without_the_system_qt_procgen_runs_on_the_wheels_qt(tmp_path: Path) -> None:
    done = _hidden(tmp_path, [_system_qt()], sys.executable, "-c", PROBE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([str(_wheel_qt())])


def test_without_any_qt_a_procgen_sweep_is_refused_saying_what_to_install(tmp_path: Path) -> None:
    done = _hidden(
        tmp_path, [_system_qt(), _wheel_qt()],
        sys.executable, str(REPO / "sweep.py"), "env=jumper", "budget=smoke", "debug=smoke", "logger=none",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "env.id='procgen-jumper' cannot run here" in lines[0]
    assert "apt-get install libqt5gui5" in lines[0] and "pip install 'rlsweep[qt5]'" in lines[0]
    assert not (tmp_path / "runs").exists()  # refused before anything was written
