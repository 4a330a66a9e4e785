"""Hydra Launcher plugins ``local`` and ``slurm`` over rlsweep's ledger-driven launching."""

from __future__ import annotations

import dataclasses
import socket
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from rlsweep.launching.ledger import Ledger
from rlsweep.launching.points import job_returns, make_points, record_sweep, select


class _LedgerLauncher(Launcher):
    kind = "?"

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context

    def settings(self, cls: type) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}
        plain = {k: OmegaConf.to_object(v) if OmegaConf.is_config(v) else v for k, v in self.params.items()}
        return cls(**{k: v for k, v in plain.items() if k in names})

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        ledger = Ledger(sweep_dir)
        ledger.dir.mkdir(parents=True, exist_ok=True)
        points = make_points(self.hydra_context, self.config, job_overrides)
        record_sweep(sweep_dir, self.kind)
        todo = select(points, ledger, str(self.params.get("only", "unfinished")), socket.gethostname())
        self.run(todo, points, sweep_dir, ledger)
        return job_returns(points, ledger)

    @abstractmethod
    def run(self, todo: list[Any], points: list[Any], sweep_dir: Path, ledger: Ledger) -> None: ...


class LocalLauncher(_LedgerLauncher):
    kind = "local"

    def run(self, todo: list[Any], points: list[Any], sweep_dir: Path, ledger: Ledger) -> None:
        from rlsweep.launching.local import LocalSettings, run_local, summary

        failed = run_local(todo, sweep_dir.name, ledger, self.settings(LocalSettings))
        print(summary(ledger, points, failed), flush=True)
        if failed:
            raise SystemExit(1)


class SlurmLauncher(_LedgerLauncher):
    kind = "slurm"

    def run(self, todo: list[Any], points: list[Any], sweep_dir: Path, ledger: Ledger) -> None:
        from rlsweep.launching.slurm import SlurmSettings, run_slurm

        if not run_slurm(todo, points, sweep_dir, ledger, self.settings(SlurmSettings)):
            raise SystemExit(1)
