"""The pre-flight over a whole grid: expand it, check every point, name every run, before any job starts.

Hydra composes a job's config only when the launcher reaches that job, so a bad value in the 37th point of a
sweep would surface hours in. Here the grid is expanded with Hydra's own sweeper and override parser, each
distinct set of group choices is composed once, value overrides are applied to a plain copy and checked with
:mod:`rlsweep.config.validate`. The same plan drives the dry-run table; a 1,000-point grid plans in about a
second.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlsweep.config import CONF_DIR, ConfigError, check_value, register_configs, run_id, validate
from rlsweep.config.naming import config_name

# Top-level keys a user may set on the command line that are not schema leaves of a group.
GROUPS = tuple(sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"))


@dataclass
class Job:
    """One grid point with its seed: what the launcher will run."""

    index: int
    overrides: list[str]
    run_id: str
    name: str
    choices: dict[str, str]
    total_steps: int
    config: dict[str, Any]


@dataclass
class Plan:
    jobs: list[Job]
    sweep_name: str
    launcher: str
    dry_run: bool


def sweep_name_for(task_overrides: Sequence[str], explicit: str = "") -> str:
    """Same rule as the ``rlsweep_sweep_name`` resolver: explicit name, else a digest of the overrides."""
    if explicit:
        return explicit
    keep = sorted(o for o in task_overrides if not o.startswith(("dry_run", "hydra/launcher", "hydra.launcher")))
    return "sweep-" + hashlib.sha1(" ".join(keep).encode()).hexdigest()[:8]


def _is_hydra(o: Override) -> bool:
    return o.is_hydra_override() or o.key_or_group.startswith("hydra/")


def plan(args: Sequence[str], multirun: bool, config_name_: str = "config") -> Plan:
    """Expand and check ``args`` (already quoted by quote_group_values); raise ConfigError on bad input."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            loader = GlobalHydra.instance().config_loader()
            return _plan(loader, list(args), multirun, config_name_)
    finally:
        GlobalHydra.instance().clear()


def _plan(loader: Any, args: list[str], multirun: bool, cfg_name: str) -> Plan:
    parser = OverridesParser.create(config_loader=loader)
    try:
        parsed = parser.parse_overrides(args)
    except HydraException as e:
        raise ConfigError(str(e).strip()) from None
    hydra_args = [str(o.input_line) for o in parsed if _is_hydra(o)]
    task = [o for o in parsed if not _is_hydra(o)]
    for o in task:
        if o.is_delete():
            raise ConfigError(f"Deleting keys is not supported: {o.input_line}")
        if o.key_or_group not in GROUPS:
            check_key_or_group(o.key_or_group)
    if multirun:
        try:
            points = BasicSweeper.split_arguments(task, max_batch_size=None)[0]
        except HydraException as e:
            raise ConfigError(str(e).strip()) from None
    else:
        for o in task:
            if o.is_sweep_override():
                raise ConfigError(f"{o.input_line} is a sweep: add -m (--multirun) to run a grid")
        points = [[str(o.input_line) for o in task]]

    parse_cache: dict[str, Override] = {}
    # get_group_options deep-copies Hydra's repository (milliseconds): ask once per group, not per point.
    options_of = {g: set(loader.get_group_options(g)) for g in GROUPS}
    compose_cache: dict[tuple[str, ...], tuple[dict[str, Any], dict[str, str], str]] = {}
    value_cache: dict[tuple[str, Any], Any] = {}
    jobs: list[Job] = []
    dry_run = False
    explicit_sweep_name = ""
    for index, point in enumerate(points):
        group_ovs: list[str] = []
        value_ovs: list[tuple[str, Any]] = []
        for s in point:
            if s not in parse_cache:
                parse_cache[s] = parser.parse_override(s)
            o = parse_cache[s]
            if o.key_or_group in GROUPS:
                options = options_of[o.key_or_group]
                value = o.value()
                if value is not None and str(value) not in options:
                    raise ConfigError(f"Unknown option {o.key_or_group}={value}; allowed: {', '.join(sorted(options))}")
                group_ovs.append(s)
            else:
                value_ovs.append((o.key_or_group, o.value()))
        key = tuple(group_ovs)
        if key not in compose_cache:
            compose_cache[key] = _compose(loader, cfg_name, group_ovs + hydra_args)
        base, choices, launcher = compose_cache[key]
        cfg = copy.deepcopy(base)
        for k, v in value_ovs:
            ck = (k, repr(v))
            if ck not in value_cache:
                value_cache[ck] = check_value(k, v)
            _set(cfg, k, value_cache[ck])
        validate(cfg)
        dry_run = dry_run or bool(cfg["dry_run"])
        explicit_sweep_name = explicit_sweep_name or str(cfg["sweep_name"])
        jobs.append(
            Job(
                index=index,
                overrides=list(point),
                run_id=run_id(choices, point, cfg["seed"], cfg["name"]),
                name=cfg["name"] or config_name(choices),
                choices=choices,
                total_steps=int(cfg["budget"]["total_steps"]),
                config=cfg,
            )
        )
    ids = [j.run_id for j in jobs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"Two grid points would share the run directory {dup}; make the grid values distinct")
    launcher = compose_cache[next(iter(compose_cache))][2] if compose_cache else "local"
    task_strings = [str(o.input_line) for o in task]
    return Plan(jobs, sweep_name_for(task_strings, explicit_sweep_name), launcher, dry_run)


def check_key_or_group(key: str) -> None:
    if "." not in key and key not in ("seed", "device", "torch_threads", "name", "sweep_name", "dry_run"):
        from rlsweep.config.validate import known_keys

        top = sorted({k.partition(".")[0] for k in known_keys()})
        raise ConfigError(f"Unknown key {key}; allowed: config groups {', '.join(GROUPS)}; keys {', '.join(top)}")
    from rlsweep.config.validate import check_key

    check_key(key)


def _compose(loader: Any, cfg_name: str, overrides: list[str]) -> tuple[dict[str, Any], dict[str, str], str]:
    try:
        cfg = loader.load_configuration(config_name=cfg_name, overrides=overrides, run_mode=RunMode.RUN)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(" ".join(str(e).split())) from None
    choices = {k: str(v) for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra/") and v}
    launcher = str(cfg.hydra.runtime.choices.get("hydra/launcher", "local"))
    with_hydra = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(with_hydra, dict)
    del with_hydra["hydra"]
    return {str(k): v for k, v in with_hydra.items()}, choices, launcher


def _set(cfg: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = value


def format_table(p: Plan, out_root: Path = Path("sweeps")) -> str:
    """The dry-run table: one line per job with its name, group choices, budget and launcher."""
    factor_keys = ["model", "critic_init", "normalise_int_reward", "motivation", "env", "budget"]
    header = ["#", "run", *factor_keys, "steps", "launcher"]
    rows = [
        [
            str(j.index),
            j.run_id,
            *(j.choices.get(k, "-") for k in factor_keys),
            _steps(j.total_steps),
            p.launcher,
        ]
        for j in p.jobs
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    total = sum(j.total_steps for j in p.jobs)
    lines.append(
        f"dry run: {len(p.jobs)} job(s), {_steps(total)} agent steps in all, sweep directory "
        f"{out_root / p.sweep_name}; nothing was started"
    )
    return "\n".join(lines)


def _steps(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:g}{unit}"
    return str(n)
