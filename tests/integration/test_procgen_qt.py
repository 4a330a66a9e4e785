"""Procgen on a machine without the system's Qt 5: real processes in a private mount namespace.

envpool's Procgen links the system's ``libQt5Gui.so.5``. To see what a user without it gets, each test starts a
process in its own mount namespace (``unshare -m``, root only) in which that library, and in the refusal tests the
PyQt5-Qt5 wheel's copy too, is covered by something else (``/dev/null``, an empty file, a copy built for another
architecture, a library without Qt's symbols, an empty folder); the machine itself is not changed.
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

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None,
        reason="hiding the system Qt needs root and unshare(1) for a private mount namespace",
    ),
]


def _library(soname: str) -> Path:
    """The file the dynamic loader opens for ``soname`` (from ldconfig's cache)."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith(f"{soname} ") and "=>" in line:
            return Path(line.rsplit("=>", 1)[1].strip()).resolve()
    raise AssertionError(f"{soname} is not installed (tests/system-setup.sh installs the system Qt 5)")


def _system_qt() -> Path:
    return _library("libQt5Gui.so.5")


def _wheel_qt() -> Path:
    lib = wheel_qt_dir()
    assert lib is not None, "the PyQt5-Qt5 wheel is not installed (it is in the test extras)"
    return (lib / "libQt5Gui.so.5").resolve()


def _hidden(cwd: Path, mounts: list[tuple[Path, Path]], *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with each ``(cover, path)`` of ``mounts`` bound over its path, in a mount namespace of its own."""
    binds = " && ".join(f"mount --bind '{cover}' '{path}'" for cover, path in mounts)
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{binds} && exec "$@"', "sh", *argv],
        cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip


NULL = Path("/dev/null")


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
    done = _hidden(tmp_path, [(NULL, _system_qt())], sys.executable, "-c", PROBE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([str(_wheel_qt())])


def _broken_qt(kind: str, tmp_path: Path) -> Path:
    """A file that stands where libQt5Gui.so.5 should be and cannot serve as it (``kind`` says how)."""
    if kind == "dev-null":
        return NULL
    broken = tmp_path / f"libQt5Gui-{kind}.so.5"
    if kind == "empty":
        broken.touch()  # the loader: "file too short"
    elif kind == "other-architecture":
        elf = bytearray(_system_qt().read_bytes())
        elf[18:20] = (183).to_bytes(2, "little")  # e_machine: AArch64 instead of x86-64
        broken.write_bytes(bytes(elf))
    elif kind == "missing-symbols":
        broken.write_bytes(_library("libz.so.1").read_bytes())  # a real library, without QImage and the rest
    else:
        raise AssertionError(kind)
    return broken


@pytest.mark.parametrize("kind", ["dev-null", "empty", "other-architecture", "missing-symbols", "wheel-absent"])
def test_without_a_working_qt_a_procgen_sweep_is_refused_saying_what_to_install(tmp_path: Path, kind: str) -> None:
    """However the library is missing or broken, the sweep ends in one line that says what to install, exit 2."""
    argv = [sys.executable, str(REPO / "sweep.py"), "env=jumper", "budget=smoke", "debug=smoke", "logger=none"]
    if kind == "wheel-absent":  # no wheel (an empty folder where its libraries were), the system's copy unreadable
        (tmp_path / "no-qt").mkdir()
        mounts = [(NULL, _system_qt()), (tmp_path / "no-qt", _wheel_qt().parent)]
    else:
        broken = _broken_qt(kind, tmp_path)
        mounts = [(broken, _system_qt()), (broken, _wheel_qt())]
    done = _hidden(tmp_path, mounts, *argv)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "env.id='procgen-jumper' cannot run here" in lines[0]
    assert "apt-get install libqt5gui5" in lines[0] and "pip install 'rlsweep[qt5]'" in lines[0]
    assert "the dynamic loader said: " in lines[0]
    assert not (tmp_path / "runs").exists()  # refused before anything was written
