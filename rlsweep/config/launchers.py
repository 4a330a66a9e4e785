"""Settings of the launchers, as ``hydra.launcher.*`` keys (``hydra/launcher=local``, ``slurm`` or ``submitit_local``).

The ``hydra.`` spelling is kept so that commands written for Hydra's launchers read the same; the values are
typed by these dataclasses and range-checked by :func:`check_settings` with the training config's one-line
messages, before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlsweep.config.validate import ConfigError

ONLY_CHOICES = ("unfinished", "failed")
# Built-in cluster profiles (package data); hydra.launcher.profile may also be a path to your own YAML file.
PROFILE_DIR = Path(__file__).resolve().parents[1] / "launching" / "profiles"


@dataclass
class LocalSettings:
    max_parallel: int = 0  # runs at once; 0 = one per GPU slot (gpus x runs_per_gpu), else as the cores allow
    runs_per_gpu: int = 1  # runs sharing one GPU
    gpus: list[int] | None = None  # GPU indices to use; null = every visible GPU
    only: str = "unfinished"  # unfinished: run all but completed points | failed: rerun only failed points
    progress_every: float = 30.0  # seconds between progress tables


@dataclass
class SlurmSettings:
    profile: str | None = None  # a built-in profile name (local, example_gpu_cluster) or a path to a YAML file
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
    # Seconds between polls while waiting: each is one squeue call for the whole sweep (the user's own jobs) and
    # reads of the points' records, whatever the number of tasks; no sacct or scontrol. Shared clusters ask for at
    # most one query per 30 s; the tests poll every second or two on their own one-node cluster.
    poll_every: float = 30.0
    job_name: str = "rlsweep"


@dataclass
class SubmititLocalSettings:
    """``hydra/launcher=submitit_local``: the SLURM launcher's path (pickled jobs, records, requeue on preemption
    and timeout, the waiting launcher's reconciliation) on this machine, through submitit's local executor; to try
    a cluster set-up before submitting, as Hydra's launcher of the same name."""

    max_parallel: int = 0  # jobs at once; 0 = as the cores allow (submitit's local executor itself has no limit)
    gpus_per_node: int = 0  # GPUs per job (CUDA_VISIBLE_DEVICES=0..n-1)
    timeout_min: int = 24 * 60  # wall-time limit per job, minutes; a timeout requeues and resumes
    max_num_timeout: int = 20  # requeues after hitting the time limit
    signal_delay_s: int = 120  # seconds before the time limit at which the job is told to checkpoint and requeue
    setup: list[str] = field(default_factory=list)  # shell lines run before the job (module load, venv ...)
    only: str = "unfinished"  # unfinished | failed (see the local launcher)
    progress_every: float = 30.0  # seconds between progress tables
    poll_every: float = 1.0  # seconds between looks at the jobs (their processes and records, on this machine)


# One entry per ``hydra/launcher`` option; its launcher is the ``LAUNCHER`` of ``rlsweep/launching/<name>.py``.
LAUNCHERS: dict[str, type[LocalSettings] | type[SlurmSettings] | type[SubmititLocalSettings]] = {
    "local": LocalSettings,
    "slurm": SlurmSettings,
    "submitit_local": SubmititLocalSettings,
}
LauncherSettings = LocalSettings | SlurmSettings | SubmititLocalSettings

# key -> (lowest allowed, description); None values (profile defaults) are not checked.
_MINIMA: dict[str, tuple[float, str]] = {
    "max_parallel": (0, ">= 0 (0 = automatic)"),
    "runs_per_gpu": (1, ">= 1"),
    "progress_every": (0.1, ">= 0.1 seconds"),
    "poll_every": (0.1, ">= 0.1 seconds"),
    "timeout_min": (1, ">= 1 minute"),
    "gpus_per_node": (0, ">= 0"),
    "cpus_per_task": (1, ">= 1"),
    "mem_gb": (1, ">= 1"),
    "array_parallelism": (1, ">= 1"),
    "max_array_size": (1, ">= 1"),
    "max_num_timeout": (0, ">= 0"),
    "signal_delay_s": (0, ">= 0"),
}

# Run time that hydra.launcher.signal_delay_s must leave before SLURM's checkpoint-and-requeue signal. SLURM handles
# --signal with a 60 s resolution, so the signal may come up to 60 s before signal_delay_s asks (sbatch(1)); the
# other 60 s are for the job to start (imports, environments) and write a checkpoint. A signal before the first
# checkpoint requeues the run at the step it started from, every time, until it is cancelled.
SIGNAL_MARGIN_S = 120


def check_settings(settings: LauncherSettings) -> None:
    """Ranges and allowed words of the launcher settings; raises ConfigError naming the key and the value."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name in _MINIMA and value is not None:
            low, text = _MINIMA[f.name]
            if value < low:
                raise ConfigError(f"Invalid value for hydra.launcher.{f.name}: {value} (must be {text})")
    if settings.only not in ONLY_CHOICES:
        raise ConfigError(
            f"Invalid value for hydra.launcher.only: {settings.only!r} (allowed: {', '.join(ONLY_CHOICES)})"
        )
    if isinstance(settings, SlurmSettings | SubmititLocalSettings):
        limit_s = settings.timeout_min * 60
        if settings.signal_delay_s > limit_s - SIGNAL_MARGIN_S:
            allowed = (
                f"at most {limit_s - SIGNAL_MARGIN_S}"
                if limit_s >= SIGNAL_MARGIN_S
                else f"none; hydra.launcher.timeout_min must be >= {SIGNAL_MARGIN_S // 60}"
            )
            raise ConfigError(
                f"Invalid value for hydra.launcher.signal_delay_s: {settings.signal_delay_s} with "
                f"hydra.launcher.timeout_min={settings.timeout_min} (allowed: {allowed}; the signal must leave the "
                f"job {SIGNAL_MARGIN_S} s of its {limit_s} s to start and checkpoint, as SLURM may send it up to 60 s "
                "early)"
            )
    if isinstance(settings, LocalSettings) and settings.gpus is not None:
        bad = [g for g in settings.gpus if g < 0]
        if bad or len(set(settings.gpus)) != len(settings.gpus):
            raise ConfigError(
                f"Invalid value for hydra.launcher.gpus: {settings.gpus} (distinct GPU indices >= 0, or null for all)"
            )


def profile_path(profile: str) -> Path:
    """A profile is a path to a YAML file, or the name of a built-in one (rlsweep/launching/profiles)."""
    given = Path(profile).expanduser()
    if given.suffix in (".yaml", ".yml") or given.exists():
        if not given.is_file():
            raise ConfigError(f"Invalid value for hydra.launcher.profile: {profile!r} (no such file)")
        return given
    path = PROFILE_DIR / f"{profile}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))
        raise ConfigError(
            f"Invalid value for hydra.launcher.profile: {profile!r} (allowed: {known}, or a path to a YAML file)"
        )
    return path


def load_profile(settings: SlurmSettings) -> SlurmSettings:
    """Fill the keys left null from the cluster profile, then the built-in fallbacks; ConfigError if malformed."""
    values = {f.name: getattr(settings, f.name) for f in fields(settings)}
    if settings.profile:
        path = profile_path(settings.profile)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"Invalid cluster profile {path}: not valid YAML ({' '.join(str(e).split())})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"Invalid cluster profile {path}: expected a mapping of hydra.launcher keys")
        for key, value in data.items():
            if key not in values:
                raise ConfigError(f"Invalid cluster profile {path}: unknown key {key!r}; allowed: {', '.join(values)}")
            if values[key] is None or values[key] in ([], {}):
                values[key] = value
    values["gpus_per_node"] = 1 if values["gpus_per_node"] is None else values["gpus_per_node"]
    values["cpus_per_task"] = 8 if values["cpus_per_task"] is None else values["cpus_per_task"]
    try:
        merged = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(SlurmSettings), values))
    except OmegaConfBaseException as e:
        key = str(getattr(e, "full_key", "") or "?")
        where = f"cluster profile {profile_path(settings.profile)}" if settings.profile else "hydra.launcher"
        problem = str(e).strip().splitlines()[0]
        raise ConfigError(f"Invalid {where}: {key}={values.get(key)!r} ({problem})") from None
    assert isinstance(merged, SlurmSettings)
    check_settings(merged)
    return merged
