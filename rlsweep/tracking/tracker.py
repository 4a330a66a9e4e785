"""The run's tracker: local store, W&B lifecycle, console progress, run.json (see the package docstring)."""

from __future__ import annotations

import json
import math
import os
import secrets
import string
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rlsweep.config.fingerprint import flatten
from rlsweep.config.schema import Config
from rlsweep.rundir.metrics import read_metrics
from rlsweep.rundir.record import RunRecord, record_lock, set_aside
from rlsweep.tracking.gitinfo import code_version
from rlsweep.tracking.wandb_log import wait_for_exit

# W&B rejects tags longer than this (wandb_settings validates 1..64 characters).
_MAX_TAG = 64


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def wandb_mode(mode: str) -> str:
    if mode == "auto":
        return "online" if _has_wandb_key() else "offline"
    return mode


def wandb_config(cfg: Config, info: dict[str, Any]) -> dict[str, Any]:
    """The W&B run config: every resolved key (dotted), every group choice, identity and code version.

    Choices go under ``choice/<group>`` *and* are what the report groups by, so a W&B chart can be grouped
    by e.g. ``choice/model`` even where two groups set the same underlying key.
    """
    config = flatten(asdict(cfg))
    config.pop("defaults", None)
    choices = info.get("choices") or {}
    config.update({f"choice/{k}": v for k, v in choices.items()})
    git = info.get("git") or {}
    config.update(
        {
            "run_name": info["name"],  # the configuration (preset name such as ppo_rnd_b1, or canonical)
            "preset": choices.get("experiment") or info["name"],
            "seed": info["seed"],
            "sweep": info.get("sweep") or None,
            "git/commit": git.get("commit"),
            "git/dirty": git.get("dirty"),
        }
    )
    return config


def wandb_tags(info: dict[str, Any]) -> list[str]:
    """``group=choice`` per group, plus preset name, seed and code version; each cut to W&B's 64 characters."""
    tags = [f"{k}={v}" for k, v in sorted((info.get("choices") or {}).items())]
    tags += [f"name={info['name']}", f"seed={info['seed']}"]
    git = info.get("git") or {}
    tags.append(f"git={git['commit'][:8]}" if git.get("commit") else "git=none")
    if git.get("dirty"):
        tags.append("dirty")
    return list(dict.fromkeys(t[:_MAX_TAG] for t in tags))


class Tracker:
    """One run's tracking for one attempt; ``resume_step`` is the checkpoint's step when resuming.

    Call order: ``log`` every iteration, ``commit`` after every checkpoint, ``finish`` once.
    """

    def __init__(self, cfg: Config, run_dir: Path, info: dict[str, Any], resume_step: int | None) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        # The run's record (rlsweep.rundir.record): the job created it; a bare train() call gets one here.
        record = RunRecord.read_or_none(run_dir) or RunRecord(
            run_id=info["run_id"], name=info.get("name", ""), seed=int(info.get("seed", 0)),
            sweep=info.get("sweep") or "", choices=dict(info.get("choices") or {}),
            overrides=list(info.get("overrides") or []), total_steps=int(info.get("total_steps") or 0),
            run_dir=str(run_dir), status="running",
        )  # fmt: skip
        if resume_step is None:
            record = self._set_aside_earlier_attempt(record)
        self.info = {**info, "global_step": resume_step or 0, "wandb_id": record.wandb_id}
        # Last step W&B holds for sure: set only when a W&B run was closed by finish() and its lines are on disk.
        # wandb-core buffers its offline file (and its uploads): a SIGKILLed job loses lines it had
        # already been given, so commit() alone proves nothing (measured: the killed segment kept 0 rows).
        self.info["wandb_step"] = record.wandb_step
        self.info["wandb"] = record.wandb
        self.info["git"] = code_version().as_dict()
        self._record = record
        self._truncate(resume_step or 0)
        self._pending: list[dict[str, Any]] = []
        self._wandb: Any = None
        self._sent_step = self.info["wandb_step"]
        self._start = time.time()
        if cfg.logger.backend == "wandb" and wandb_mode(cfg.logger.mode) != "disabled":
            self._start_wandb()
            self._resend(resume_step or 0)
        self._save()
        self._file = open(self.metrics_path, "a")  # noqa: SIM115 - kept open for the run's life

    def _set_aside_earlier_attempt(self, record: RunRecord) -> RunRecord:
        """A run that starts at step 0 where an earlier attempt left metrics or a W&B run (its checkpoints were
        deleted, or it died before its first) starts over in a new W&B run: the old metrics.jsonl and wandb/ go to
        ``discarded/<time>/`` and the record says so. Continuing the old W&B run would send it steps it already
        holds, which W&B ignores: W&B and metrics.jsonl would then disagree."""
        rows = len(read_metrics(self.metrics_path))
        if not rows and not record.wandb_id and not (self.run_dir / "wandb").exists():
            return record
        where = set_aside(self.run_dir, ("metrics.jsonl", "wandb"))
        old = f"W&B run {record.wandb_id}" if record.wandb_id else "no W&B run"
        note = (f"started over at step 0 without a checkpoint; the earlier attempt's {rows} metric line(s) and {old} "
                f"are in {where}")  # fmt: skip
        print(f"[{record.run_id}] {note}", flush=True)
        with record_lock(self.run_dir):
            current = RunRecord.read_or_none(self.run_dir) or record
            current.global_step, current.wandb_id, current.wandb_step = 0, None, 0
            current.changes = [*current.changes, [time.time(), note]]
            if current.run_dir:
                current.write()
        return current

    def _save(self) -> None:
        """The tracking fields of the run record (its status belongs to the job: rlsweep.launching.job)."""
        with record_lock(self.run_dir):
            record = RunRecord.read_or_none(self.run_dir) or self._record
            record.update(**{k: self.info[k] for k in ("global_step", "wandb_id", "wandb_step", "wandb", "git")})

    def _truncate(self, keep_until: int) -> None:
        """Drop lines past the resumed step (they are about to be recomputed)."""
        if not self.metrics_path.exists():
            return
        rows = [r for r in read_metrics(self.metrics_path) if r.get("global_step", 0) <= keep_until]
        tmp = self.metrics_path.with_suffix(".jsonl.tmp")
        try:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
            os.replace(tmp, self.metrics_path)
        finally:
            tmp.unlink(missing_ok=True)  # a full disk: the old file stays whole, no half copy beside it

    def _start_wandb(self) -> None:
        import wandb

        mode = wandb_mode(self.cfg.logger.mode)
        if not self.info.get("wandb_id"):
            self.info["wandb_id"] = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        group = self.info.get("sweep") or None
        self.info["wandb"] = {
            "project": self.cfg.logger.project,
            "entity": self.cfg.logger.entity,
            "mode": mode,
            "group": group,
        }
        self._wandb = wandb.init(
            project=self.cfg.logger.project,
            entity=self.cfg.logger.entity,
            group=group,
            name=self.info["run_id"],
            id=self.info["wandb_id"],
            # "allow": the same id continues the run after a resume (online), or writes a second
            # offline-run-* directory with that id which `wandb sync` appends to the same run.
            resume="allow",
            # Several seeds trained in one process (seeds_per_process) each have their own W&B run, open at once.
            reinit="create_new",
            dir=str(self.run_dir),
            mode=mode,  # type: ignore[arg-type]
            config=wandb_config(self.cfg, self.info),
            tags=wandb_tags(self.info),
            settings=wandb.Settings(console="off", silent=True),
        )
        self._wandb.define_metric("global_step")
        self._wandb.define_metric("*", step_metric="global_step")

    def _resend(self, keep_until: int) -> None:
        """After a crash, give W&B again every kept line it may have lost (see ``wandb_step``).

        Lines W&B already has are harmless: their ``step`` is not above the run's current step, so W&B
        ignores them when the segments are synced (or uploaded) in order; missing ones fill the gap.
        """
        lost = [r for r in read_metrics(self.metrics_path) if self.info["wandb_step"] < r["global_step"] <= keep_until]
        self._send(lost)

    def _send(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            # W&B's own step = global_step: monotonic across resumes, so `wandb sync` of a resumed run's
            # offline segments appends each after the previous one instead of restarting at 0.
            self._wandb.log({k: v for k, v in row.items() if v is not None}, step=int(row["global_step"]))
            self._sent_step = int(row["global_step"])

    def log(self, metrics: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        self._pending.append(clean)
        self.info["global_step"] = int(metrics["global_step"])

    def commit(self) -> None:
        """Called after a checkpoint: what it covers may now go to W&B and run.json."""
        if self._wandb is not None:
            self._send(self._pending)
        self._pending.clear()
        self._save()

    def console(self, iteration: int, iterations: int, metrics: dict[str, Any]) -> None:
        step = int(metrics["global_step"])
        total = self.cfg.budget.total_steps
        sps = metrics.get("perf/sps") or 0.0
        eta = (total - step) / sps if sps else float("nan")
        parts = [
            f"[{self.info['run_id']}] it {iteration}/{iterations}",
            f"step {step}/{total} ({100 * step / total:.0f}%)",
            f"sps {sps:.0f}",
        ]
        for key, label in (("episode/return", "return"), ("episode/score", "score"), ("explore/rooms", "rooms"),
                           ("explore/cells", "cells"), ("motivation/int_reward_mean", "r_int")):  # fmt: skip
            if metrics.get(key) is not None:
                parts.append(f"{label} {metrics[key]:.3g}")
        if math.isfinite(eta):
            parts.append(f"eta {eta / 60:.1f} min")
        print("  ".join(parts), file=sys.stdout, flush=True)

    def finish(self, status: str, save: bool = True) -> None:
        """Close the local store and the W&B run (exit code 0 only for a completed run); ``save=False`` leaves the
        run record alone (another attempt owns it now)."""
        self._file.close()
        if self._wandb is not None:
            if status == "completed":
                self.commit()
            log = Path(self._wandb.settings.sync_file)
            self._wandb.finish(exit_code=0 if status == "completed" else 1)
            self._wandb = None
            # Online, finish() returns once the server has every line. Offline it returns before the
            # service has written the file (rlsweep.tracking.wandb_log): wait until the exit record is there.
            if self.info["wandb"]["mode"] != "offline" or wait_for_exit(log):
                self.info["wandb_step"] = self._sent_step
            else:
                print(f"[{self.info['run_id']}] W&B has not written {log} yet; a resume re-sends its lines",
                      file=sys.stderr, flush=True)  # fmt: skip
        if save:
            self._save()
