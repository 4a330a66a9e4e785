"""The run's tracker: local store, W&B lifecycle, console progress, run.json (see the package docstring)."""

from __future__ import annotations

import json
import math
import os
import secrets
import string
import sys
import time
from pathlib import Path
from typing import Any

from rlsweep.config.schema import Config


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Lines of a metrics.jsonl; a truncated last line (a crash mid-write) is skipped."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def wandb_mode(mode: str) -> str:
    if mode == "auto":
        return "online" if _has_wandb_key() else "offline"
    return mode


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Tracker:
    def __init__(self, cfg: Config, run_dir: Path, info: dict[str, Any], resume_step: int | None) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        self.run_json = run_dir / "run.json"
        previous = json.loads(self.run_json.read_text()) if self.run_json.exists() else {}
        self.info = {**info, "status": "running", "global_step": resume_step or 0}
        self.info["wandb_id"] = previous.get("wandb_id")
        self.info["attempts"] = int(previous.get("attempts", 0)) + 1
        self._truncate(resume_step or 0)
        self._pending: list[dict[str, Any]] = []
        self._wandb: Any = None
        self._start = time.time()
        if cfg.logger.backend == "wandb" and wandb_mode(cfg.logger.mode) != "disabled":
            self._start_wandb()
        write_json_atomic(self.run_json, self.info)
        self._file = open(self.metrics_path, "a")  # noqa: SIM115 - kept open for the run's life

    def _truncate(self, keep_until: int) -> None:
        """Drop lines past the resumed step (they are about to be recomputed)."""
        if not self.metrics_path.exists():
            return
        rows = [r for r in read_metrics(self.metrics_path) if r.get("global_step", 0) <= keep_until]
        tmp = self.metrics_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, self.metrics_path)

    def _start_wandb(self) -> None:
        import wandb

        from rlsweep.config.schema import Config as _Config  # noqa: F401 - for readers: cfg is this type

        mode = wandb_mode(self.cfg.logger.mode)
        if not self.info.get("wandb_id"):
            self.info["wandb_id"] = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        from dataclasses import asdict

        config = _flatten(asdict(self.cfg))
        config.pop("defaults", None)
        config.update({f"choice/{k}": v for k, v in self.info["choices"].items()})
        config.update({"run_name": self.info["name"], "seed": self.info["seed"]})
        self._wandb = wandb.init(
            project=self.cfg.logger.project,
            entity=self.cfg.logger.entity,
            group=self.info.get("sweep") or None,
            name=self.info["run_id"],
            id=self.info["wandb_id"],
            resume="allow",
            dir=str(self.run_dir),
            mode=mode,  # type: ignore[arg-type]
            config=config,
            tags=[f"{k}={v}" for k, v in sorted(self.info["choices"].items())],
            settings=wandb.Settings(console="off", silent=True),
        )
        self._wandb.define_metric("global_step")
        self._wandb.define_metric("*", step_metric="global_step")

    def log(self, metrics: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        self._pending.append(clean)
        self.info["global_step"] = int(metrics["global_step"])

    def commit(self) -> None:
        """Called after a checkpoint: what it covers may now go to W&B and run.json."""
        if self._wandb is not None:
            for row in self._pending:
                self._wandb.log({k: v for k, v in row.items() if v is not None})
        self._pending.clear()
        write_json_atomic(self.run_json, self.info)

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

    def finish(self, status: str, summary: dict[str, Any] | None = None) -> None:
        self.info["status"] = status
        if summary:
            self.info["final"] = summary
        self._file.close()
        if self._wandb is not None:
            if status == "completed":
                self.commit()
            self._wandb.finish(exit_code=0 if status == "completed" else 1)
            self._wandb = None
        write_json_atomic(self.run_json, self.info)
