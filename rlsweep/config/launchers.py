"""Settings of the launchers, as ``hydra.launcher.*`` keys (``hydra/launcher=local`` or ``slurm``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LocalSettings:
    max_parallel: int = 0  # runs at once; 0 = one per GPU slot (gpus x runs_per_gpu), 1 without a GPU
    runs_per_gpu: int = 1  # runs sharing one GPU
    gpus: list[int] | None = None  # GPU indices to use; null = every visible GPU
    only: str = "unfinished"  # unfinished: run all but completed points | failed: rerun only failed points
    progress_every: float = 30.0  # seconds between progress tables


@dataclass
class SlurmSettings:
    profile: str | None = None  # launchers/profiles/<profile>.yaml fills the keys left null here
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    timeout_min: int = 24 * 60  # wall-time limit per job, minutes; a timeout requeues and resumes
    gpus_per_node: int | None = None  # null: from the profile, else 1
    cpus_per_task: int | None = None  # null: from the profile, else 8
    mem_gb: int | None = None  # null: the partition's default
    setup: list[str] = field(default_factory=list)  # shell lines run before the job (module load, venv ...)
    additional_parameters: dict[str, Any] = field(default_factory=dict)  # extra sbatch flags, e.g. {exclude: n1}
    array_parallelism: int = 256  # array tasks running at once (sbatch --array=...%N)
    max_array_size: int = 1000  # the cluster's MaxArraySize: larger grids are split into several arrays
    max_num_timeout: int = 20  # requeues after hitting the time limit (hydra-submitit's default 0 never requeues)
    signal_delay_s: int = 120  # seconds before the time limit at which the job is told to checkpoint and requeue
    wait: bool = True  # false: submit and return the shell at once; follow with `rlsweep status <sweep>`
    only: str = "unfinished"  # unfinished | failed (see the local launcher)
    progress_every: float = 30.0  # seconds between progress tables while waiting
    poll_every: float = 2.0  # seconds between ledger / squeue polls while waiting
    job_name: str = "rlsweep"


@dataclass
class LocalLauncherConf(LocalSettings):
    _target_: str = "hydra_plugins.rlsweep_launchers.launchers.LocalLauncher"


@dataclass
class SlurmLauncherConf(SlurmSettings):
    _target_: str = "hydra_plugins.rlsweep_launchers.launchers.SlurmLauncher"
