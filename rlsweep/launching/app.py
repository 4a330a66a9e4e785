"""The Hydra entry point behind ``sweep.py``: quote group choices, pre-flight the grid, then let Hydra launch.

``main()`` is what ``sweep.py`` calls. It never lets a bad grid reach a launcher: every point is composed and
checked first (:mod:`rlsweep.launching.preflight`), bad input ends with one message and exit status 2, and
``dry_run=true`` prints the job table instead of launching. ``run_task`` is the Hydra task function that
each job runs: it writes the run's resolved config and group choices, then calls the training loop.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlsweep.config import CONF_DIR, Config, ConfigError, config_name, register_configs, validate
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching.ledger import Ledger, job_identity
from rlsweep.launching.preflight import GROUPS, format_table, plan

# Hydra flags that take a value (the value is not an override).
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--experimental-rerun"}  # fmt: skip
# Flags that only inspect: hand them to Hydra untouched.
_INSPECT_FLAGS = {
    "-h",
    "--help",
    "--hydra-help",
    "--version",
    "--cfg",
    "-c",
    "--info",
    "-i",
    "--shell-completion",
}


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    flags: list[str] = []
    overrides: list[str] = []
    it = iter(argv)
    for a in it:
        if a.startswith("-"):
            flags.append(a)
            if a in _FLAGS_WITH_VALUE:
                flags.append(next(it, ""))
        else:
            overrides.append(a)
    return flags, overrides


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    register_configs()
    flags, overrides = _split(argv)
    overrides = quote_group_values(overrides, GROUPS)
    if not any(f in _INSPECT_FLAGS for f in flags):
        multirun = "-m" in flags or "--multirun" in flags
        try:
            p = plan(overrides, multirun=multirun)
        except ConfigError as e:
            print(f"rlsweep: error: {e}", file=sys.stderr)
            return 2
        if p.dry_run:
            print(format_table(p))
            return 0
        if multirun and not any(o.startswith("hydra.sweep.dir=") for o in overrides):
            overrides.append(f"hydra.sweep.dir=sweeps/{p.sweep_name}")
    sys.argv = [sys.argv[0], *flags, *overrides]
    _hydra_main()
    return 0


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run_task(cfg)


def run_task(cfg: DictConfig) -> float | None:
    """One job: check, record what it is, train, return the final objective (mean training return)."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    choices = {k: str(v) for k, v in hc.runtime.choices.items() if not k.startswith("hydra/") and v}
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    try:
        validate({str(k): v for k, v in plain.items()})
    except ConfigError as e:
        print(f"rlsweep: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    typed: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    info: dict[str, Any] = {
        "name": typed.name or config_name(choices),
        "run_id": run_dir.name,
        "seed": typed.seed,
        "sweep": typed.sweep_name or (run_dir.parent.name if str(hc.mode) == "RunMode.MULTIRUN" else ""),
        "choices": choices,
        "overrides": list(hc.overrides.task),
        "total_steps": typed.budget.total_steps,
    }
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (run_dir / "choices.json").write_text(json.dumps(choices, indent=2) + "\n")

    from rlsweep.training import train  # imported late: torch and envs are not needed to plan a sweep

    # Inside a launched sweep the point also keeps its ledger record current (rlsweep.launching.ledger).
    ledger = Ledger(run_dir.parent) if Ledger(run_dir.parent).exists() else None
    run_id = run_dir.name
    if ledger is not None:
        previous = ledger.get(run_id) or {}
        ledger.update(run_id, status="running", attempts=int(previous.get("attempts", 0)) + 1, error=None,
                      run_dir=str(run_dir), **job_identity())  # fmt: skip
    previous_handler = signal.signal(signal.SIGTERM, partial(_terminated, ledger, run_id))
    try:
        result = train(typed, run_dir, info)
    except Exception as e:
        if ledger is not None:
            record_failure(ledger, run_id, e)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    if ledger is not None:
        wandb_id = json.loads((run_dir / "run.json").read_text()).get("wandb_id")
        keep = {k: v for k, v in result.items() if not k.startswith(("perf/time", "loss/"))}
        ledger.update(run_id, status="completed", result=keep, wandb_id=wandb_id,
                      checkpoint=str(run_dir / "checkpoint.pt"))  # fmt: skip
    value = result.get("episode/return")
    return None if value is None else float(value)


def _terminated(ledger: Ledger | None, run_id: str, signum: int, frame: Any) -> None:
    """SIGTERM (``scancel``, ``kill``): record it, then stop; the last checkpoint is where a rerun resumes."""
    # A requeue after preemption also ends with SIGTERM: the record already says preempted, keep it.
    if ledger is not None and not _preempted(ledger, run_id):
        ledger.update(run_id, status="cancelled", error="terminated by SIGTERM (scancel or kill); rerun resumes it")
    raise SystemExit(128 + signum)


def _preempted(ledger: Ledger, run_id: str) -> bool:
    return (ledger.get(run_id) or {}).get("status") == "preempted"


def record_failure(ledger: Ledger, run_id: str, e: BaseException) -> None:
    """Record a run's exception as failed, unless the run was interrupted from outside while it raised.

    A preemption (submitit's USR2 handler) or a cancellation (``_terminated`` on SIGTERM) records itself first,
    then raises inside whatever ran at that moment; inside torch (a checkpoint being written, say) that exit
    surfaces as an ordinary error. The interruption is what happened: keep its record, so a rerun resumes.
    """
    if (ledger.get(run_id) or {}).get("status") in ("preempted", "cancelled"):
        return
    ledger.update(run_id, status="failed", error=_error_summary(e))


def _error_summary(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {tb[-1].filename}:{tb[-1].lineno}" if tb else ""
    return f"{type(e).__name__}: {e}{where}"
