"""What the envpool backends (Atari and Procgen) share: stepping a pool with same-step autoreset.

envpool resets a finished env on the *next* ``step`` call: that call ignores the action and returns the reset
observation, a dummy transition. :class:`SameStepPool` instead resets every env that finished on a step at
once, with ``reset(env_id=ids)``, which envpool accepts in sync mode for a subset of envs and answers with only
those envs' observations. The next ``send`` is then an ordinary step (``elapsed_step`` is 1), so the training
loop never sees a dummy transition (verified for both backends in the tests).

Stepping is split into ``send`` and ``recv`` so that the training loop can compute the intrinsic reward of s_t
while envpool's worker threads emulate s_{t+1}. A send may name a contiguous part of the envs
(``perf.double_buffer``: one half steps while the networks work on the other); sync-mode envpool then answers
the next ``recv`` with exactly those envs. One send at a time: with two in flight, sync-mode envpool answers the
first ``recv`` with a full batch of mixed and unset env ids (observed with envpool 1.2.5), so ``send`` refuses it.

:func:`import_envpool` is the one place envpool is imported. envpool loads its Procgen module, which links the
system's Qt 5 GUI library, at import, once per process. Where the system has no Qt 5 but the ``PyQt5-Qt5``
wheel is installed (``pip install 'rlsweep[qt5]'``, the way without root), its libraries are loaded first, so
the dynamic loader finds them by name when envpool's Procgen module asks for them.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["SameStepPool", "import_envpool", "wheel_qt_dir"]

_QT_LIBS = ("libQt5Core.so.5", "libQt5Gui.so.5")


def wheel_qt_dir() -> Path | None:
    """The PyQt5-Qt5 wheel's folder of Qt 5 libraries, where the wheel is installed."""
    for entry in sys.path:
        lib = Path(entry or ".") / "PyQt5" / "Qt5" / "lib"
        if (lib / _QT_LIBS[1]).is_file():
            return lib
    return None


def _load_wheel_qt() -> None:
    """Load Qt 5 from the PyQt5-Qt5 wheel when the system's loader finds none (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(_QT_LIBS[1], mode=ctypes.RTLD_GLOBAL)  # the system's (or LD_LIBRARY_PATH's) Qt 5
        return
    except OSError:
        pass
    lib = wheel_qt_dir()
    if lib is not None:
        try:
            for name in _QT_LIBS:
                ctypes.CDLL(str(lib / name), mode=ctypes.RTLD_GLOBAL)
        except OSError:
            # A broken copy (empty, another architecture, missing symbols) is no Qt: Atari runs without one, and
            # Procgen's import then fails and says what to install (rlsweep.envs.procgen.require_procgen).
            pass


def import_envpool() -> ModuleType:
    """``import envpool``, with Qt 5 from the PyQt5-Qt5 wheel where the system has none."""
    if "envpool" not in sys.modules:
        _load_wheel_qt()
    import envpool

    return envpool


class SameStepPool:
    """An envpool env in sync mode, results always in env-id order, finished envs reset by the caller."""

    @classmethod
    def make(cls, env_id: str, num_envs: int, *, seed: int, num_threads: int = 0, **options: Any) -> SameStepPool:
        """``envpool.make`` in gymnasium sync mode; ``num_threads`` 0 means one worker per core."""
        threads = num_threads if num_threads > 0 else (os.cpu_count() or 1)
        env = import_envpool().make(
            env_id,
            env_type="gymnasium",
            num_envs=num_envs,
            num_threads=min(threads, num_envs),  # more threads than envs only adds idle workers
            seed=seed,
            **options,
        )
        return cls(env, num_envs)

    def __init__(self, env: Any, num_envs: int) -> None:
        self.env = env
        self.num_envs = num_envs
        self._all_ids = np.arange(num_envs)
        self._all_ids_i32 = self._all_ids.astype(np.int32)
        self._sent: slice | None = None  # the envs of the send that awaits its recv

    def reset(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Reset every env: (obs, info) in env-id order."""
        obs, info = self.env.reset()
        (obs,), info = self._in_order(info, self._all_ids, np.asarray(obs))
        return obs, info

    def send(self, actions: np.ndarray, part: slice = slice(None)) -> None:
        """Hand the actions of the envs ``part`` (all by default) to envpool's worker threads and return while they
        emulate."""
        if self._sent is not None:
            raise RuntimeError("step_async() twice without step_wait()")
        ids = self._all_ids_i32[part]
        self.env.send(np.asarray(actions).astype(np.int32, copy=False).reshape(len(ids)), ids)
        self._sent = part

    def recv(self) -> tuple[slice, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Wait for the step: (the part sent, writable obs, raw reward float64, episode over, info) of the envs
        sent, in env-id order."""
        part, self._sent = self._sent, None
        if part is None:
            raise RuntimeError("step_wait() without step_async()")
        ids = self._all_ids[part]
        obs, raw, terminated, truncated, info = self.env.recv()
        over = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        (obs, raw, over), info = self._in_order(info, ids, np.asarray(obs), np.asarray(raw, dtype=np.float64), over)
        if not obs.flags.writeable:  # the finished envs' rows are overwritten with their reset observations
            obs = obs.copy()
        return part, obs, raw, over, info

    def reset_envs(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Reset the envs ``ids`` now: (the ids envpool answered for, their obs, their info)."""
        obs, info = self.env.reset(env_id=np.asarray(ids).astype(np.int32))
        return np.asarray(info["env_id"], dtype=np.int64), np.asarray(obs), info

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if close is not None:
            close()

    def _in_order(
        self, info: dict[str, Any], ids: np.ndarray, *arrays: np.ndarray
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Sort the result of the envs ``ids`` (``arrays`` and ``info``'s per-env arrays) by env id. Sync envpool
        answers in id order (observed); this guards the assumption for one compare and permutes only when it
        fails."""
        env_ids = np.asarray(info["env_id"])
        if np.array_equal(env_ids, ids):
            return list(arrays), info
        if not np.array_equal(np.sort(env_ids), ids):
            raise RuntimeError(f"envpool answered envs {env_ids.tolist()} for a step of envs {ids.tolist()}")
        order = np.argsort(env_ids)
        return [a[order] for a in arrays], {
            k: (np.asarray(v)[order] if isinstance(v, np.ndarray) and v.shape[:1] == (len(ids),) else v)
            for k, v in info.items()
        }
