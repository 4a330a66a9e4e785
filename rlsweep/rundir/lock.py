"""The point lock: at most one live attempt per grid point, whoever starts it (a local launcher, a SLURM job,
a second terminal running the same sweep).

A lock is a file per generation in the run directory, ``.lock-<n>.json``, holding its owner (host, pid, the
process's start time, SLURM job id, when it was taken). Its modification time is the owner's heartbeat,
renewed every ``HEARTBEAT_S`` by a thread of the job; a released lock has its heartbeat set to 0.

Taking the lock means creating generation ``n + 1`` while ``n`` is free, released or stale. The file is
created by ``link(2)`` of a fully written private file, which is atomic on local filesystems and on NFS
(where ``O_EXCL`` has not always been; the link count settles a reply lost in transit), so of two contenders
for a stale lock exactly one wins, and the loser sees the winner's lock. The owner of a superseded generation
learns it before its next write (:meth:`PointLock.check`, called by the training loop every iteration) and
stops, which fences a process that only looked dead (hung for minutes on a network filesystem, say).

Whether an owner is alive: on this host, from its pid *and* the process's start time, so a pid reused by
another process does not count; on another host, from the heartbeat, which must be younger than
``STALE_S`` (clocks of cluster nodes agree to well under that).

A heartbeat from the future (the file's mtime ahead of this host's clock): up to ``STALE_S`` ahead it is the
other host's clock running ahead, and counts as fresh (age 0); further ahead it is no clock a cluster keeps,
but a bad stamp (set by hand, a node whose clock jumped), and the lock counts as stale, as one silent for
``STALE_S``, so that a point is not held for ever by a heartbeat no one renews. The owner's own host judges by
its process, whatever the heartbeat says.

A live owner whose heartbeat is older than ``STALLED_S`` (three missed beats) is *stalled*: its process exists
(on this host) or may exist (another host, until ``STALE_S``) but its heartbeat thread does not run: stopped by
SIGSTOP (Ctrl-Z), hung on I/O (a network filesystem), or on a node that cannot be reached. It keeps the point
(a stopped process may be continued); ``rlsweep status`` says so, with the heartbeat's age.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

HEARTBEAT_S = 30.0  # how often a live owner renews its heartbeat
STALE_S = 300.0  # a heartbeat older than this, from another host, is a dead owner's
STALLED_S = 3 * HEARTBEAT_S  # a live owner's heartbeat older than this: stopped, hung, or out of reach
_NAME = re.compile(r"^\.lock-(\d+)\.json$")


@dataclass(frozen=True)
class Holder:
    """The owner of a point's lock, as its file says."""

    generation: int
    host: str
    pid: int
    process_start: float  # psutil's create_time of the owner's process
    taken: float
    job_id: str | None
    heartbeat: float  # the file's mtime; 0 once released

    @property
    def released(self) -> bool:
        return self.heartbeat == 0

    @property
    def here(self) -> bool:
        """Whether the owner runs on this host (then its process, not its heartbeat, says whether it lives)."""
        return self.host == socket.gethostname()

    def age(self, now: float | None = None) -> float:
        """Seconds since the heartbeat; 0 for one ahead of this host's clock (clock skew)."""
        return max(0.0, (now if now is not None else time.time()) - self.heartbeat)

    def alive(self, now: float | None = None) -> bool:
        if self.released:
            return False
        if self.here:
            return process_matches(self.pid, self.process_start)
        now = now if now is not None else time.time()
        # Ahead by more than STALE_S: not a clock a cluster keeps, no heartbeat to trust (module docstring).
        return self.heartbeat - now <= STALE_S and now - self.heartbeat < STALE_S

    def stalled(self, now: float | None = None) -> bool:
        """Alive, but its heartbeat is older than ``STALLED_S``: stopped, hung, or out of reach."""
        return self.alive(now) and self.age(now) > STALLED_S

    def describe(self) -> str:
        job = f", SLURM job {self.job_id}" if self.job_id else ""
        ahead = self.heartbeat - time.time()
        beat = f"{ahead:.0f} s ahead of this host's clock" if ahead > 1 else f"{self.age():.0f} s ago"
        return f"pid {self.pid} on {self.host}{job}, heartbeat {beat}"


class LockHeld(RuntimeError):
    """Another live attempt holds the point."""

    def __init__(self, run_dir: Path, holder: Holder) -> None:
        super().__init__(f"{run_dir.name} is already running ({holder.describe()}); not starting it twice")
        self.holder = holder


class LockLost(RuntimeError):
    """This attempt's lock was taken over (its heartbeat had gone stale); it must stop writing at once."""


def process_matches(pid: int, process_start: float) -> bool:
    """Whether ``pid`` is alive and is the same process (not a later one that reused the pid)."""
    try:
        process = psutil.Process(pid)
        # A zombie (killed, not yet reaped: an orphan in a container whose init does not reap) is dead too.
        return abs(process.create_time() - process_start) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def _generations(run_dir: Path) -> list[tuple[int, Path]]:
    try:
        names = os.listdir(run_dir)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), run_dir / n) for n in names if (m := _NAME.match(n))]
    return sorted(found)


def _read(generation: int, path: Path) -> Holder | None:
    try:
        heartbeat = path.stat().st_mtime
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # Unreadable contents (never written partially: the file is linked in whole): trust only the heartbeat.
        data = {}
    return Holder(generation, str(data.get("host", "?")), int(data.get("pid", -1)),
                  float(data.get("process_start", 0.0)), float(data.get("taken", 0.0)), data.get("job_id"),
                  heartbeat)  # fmt: skip


def holder(run_dir: Path) -> Holder | None:
    """The newest generation's owner (live or not), or None if the point was never locked."""
    for generation, path in reversed(_generations(Path(run_dir))):
        found = _read(generation, path)
        if found is not None:
            return found
    return None


def live_holder(run_dir: Path) -> Holder | None:
    """The owner of a live attempt of this point, or None when nobody runs it."""
    found = holder(run_dir)
    return found if found is not None and found.alive() else None


class PointLock:
    """This process's claim on a point: ``acquire``, renewed by a heartbeat thread, ``release``d at the end."""

    def __init__(self, run_dir: Path, job_id: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.job_id = job_id
        self.generation: int | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        assert self.generation is not None
        return self.run_dir / f".lock-{self.generation}.json"

    def acquire(self) -> None:
        """Take the point, or raise :class:`LockHeld` naming the live owner; then start the heartbeat."""
        for _ in range(10):  # each round either wins or finds a newer generation to judge
            current = holder(self.run_dir)
            if current is not None and current.alive():
                raise LockHeld(self.run_dir, current)
            generation = 1 if current is None else current.generation + 1
            if self._create(generation):
                self.generation = generation
                self._discard_older(generation)
                self._start_heartbeat()
                return
        raise RuntimeError(f"could not lock {self.run_dir}: its lock changed hands 10 times in a row")

    def _create(self, generation: int) -> bool:
        me = psutil.Process()
        claim = {"host": socket.gethostname(), "pid": me.pid, "process_start": me.create_time(), "taken": time.time(),
                 "job_id": self.job_id}  # fmt: skip
        private = self.run_dir / f".lock-claim.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
        with open(private, "w") as f:
            json.dump(claim, f)
            f.flush()
            os.fsync(f.fileno())
        # The heartbeat is the owner's clock, also for the first one (an NFS server would stamp its own).
        os.utime(private, (claim["taken"], claim["taken"]))
        target = self.run_dir / f".lock-{generation}.json"
        try:
            os.link(private, target)
            won = True
        except FileExistsError:
            won = False
        except OSError as e:
            # NFS: the link may have happened although its reply was lost; the link count tells.
            won = os.stat(private).st_nlink == 2
            if not won and e.errno not in (errno.EEXIST, errno.ENOENT, errno.ESTALE):
                raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(private)
        return won

    def _discard_older(self, generation: int) -> None:
        for g, path in _generations(self.run_dir):
            if g < generation:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat_until_stopped, name="rlsweep-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.beat()

    def beat(self) -> None:
        """Renew the heartbeat, unless a newer generation took the point over (then ``lost`` is set)."""
        if self.generation is None or self._superseded():
            return
        with contextlib.suppress(FileNotFoundError):
            now = time.time()
            os.utime(self.path, (now, now))

    def _superseded(self) -> bool:
        """Whether our generation's file is gone or the next one exists (two stats; sets ``lost`` for good)."""
        if self.lost.is_set() or self.generation is None:
            return self.lost.is_set()
        if not self.path.exists() or (self.run_dir / f".lock-{self.generation + 1}.json").exists():
            self.lost.set()
        return self.lost.is_set()

    def check(self) -> None:
        """Raise :class:`LockLost` if another attempt took the point over: called before each write of a run."""
        if self._superseded():
            raise LockLost(f"{self.run_dir.name}: another attempt took this point over; this one stops writing")

    def release(self) -> None:
        """Stop the heartbeat and mark the lock released (heartbeat 0), unless it was taken over."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.generation is not None and not self.lost.is_set():
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path, (0, 0))
        self.generation = None


@contextlib.contextmanager
def exclusive(where: Path, refusal: Callable[[Holder], Exception]) -> Iterator[None]:
    """Hold the lock in ``where`` (made if missing) for the block, so that one process at a time does what it
    guards (``rlsweep seeds``, ``rlsweep tune``: one per sweep); held by another, raise ``refusal(its holder)``.
    Only the acquisition is turned into the refusal: a LockHeld from inside the block is the block's own."""
    where.mkdir(parents=True, exist_ok=True)
    lock = PointLock(where)
    try:
        lock.acquire()
    except LockHeld as e:
        raise refusal(e.holder) from None
    try:
        yield
    finally:
        lock.release()
