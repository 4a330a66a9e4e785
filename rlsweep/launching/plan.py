"""The plan of a launch: expand the grid, compose and check every point once, name every run.

This is the only place a point's configuration is composed. The grid is expanded with Hydra's public
override parser (sweeps, ``range``, ``glob``), each distinct set of group choices is composed once with
Hydra's compose API, value overrides are applied to a plain copy and checked with
:mod:`rlsweep.config.validate`. A bad value anywhere in the grid stops the whole launch with one message
before anything starts. What comes out is a list of :class:`Point` with the resolved config each job will
load from its ``config.yaml``, and the launcher's settings (``hydra/launcher=local|slurm|submitit_local``,
``hydra.launcher.*``), checked the same way. :func:`seed_groups` says which of the points that run share a
process (``seeds_per_process``): the launchers start one job per group.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlsweep.config import CONF_DIR, ConfigError, check_value, register_configs, run_id, validate
from rlsweep.config.fingerprint import without_seed
from rlsweep.config.launchers import LAUNCHERS, LauncherSettings, SlurmSettings, check_settings, load_profile
from rlsweep.config.naming import MAX_RUN_ID, config_name
from rlsweep.config.schema import CONTROL_KEYS
from rlsweep.envs import check_env

# The config groups: every directory of the config tree.
GROUPS = tuple(sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir()))
# Top-level keys that identify a run without changing what it computes: a point differing from another only
# in these validates once (a 10,000-seed grid is one check, not 10,000).
IDENTITY_KEYS = frozenset({"seed", "name", "sweep_name", "dry_run", "resume"})
# Hydra-style keys that place the output (kept so that commands written for Hydra keep working).
DIR_KEYS = ("hydra.sweep.dir", "hydra.run.dir")


@dataclass
class Point:
    """One grid point with its seed: what a job runs, fully resolved."""

    index: int
    overrides: list[str]  # the command-line overrides that make this point (its run id is built from them)
    run_id: str
    name: str
    choices: dict[str, str]
    config: dict[str, Any]  # the resolved config, exactly what the job loads

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def total_steps(self) -> int:
        return int(self.config["budget"]["total_steps"])


@dataclass
class Plan:
    points: list[Point]
    multirun: bool
    sweep_name: str  # empty for a single run
    out_dir: Path  # sweeps/<sweep_name> for a sweep, the run's own directory's parent for a single run
    launcher: str  # local | slurm
    settings: LauncherSettings
    dry_run: bool
    # Config folders beside the package's (hydra.searchpath, --config-dir), absolute: recorded in sweep.json, so
    # that rlsweep seeds plans new seeds from the same files.
    searchpath: tuple[str, ...] = ()
    # Points this process left alone because another launch wrote their record while it prepared them
    # (rlsweep.launching.points.prepare): that launch runs them, though its job may not hold them yet.
    taken_elsewhere: set[str] = dataclasses.field(default_factory=set, compare=False)

    def run_dir(self, point: Point) -> Path:
        return self.out_dir / point.run_id


# Overrides that say how to launch, not what: the same grid run with them is the same sweep.
_NOT_IN_SWEEP_NAME = ("dry_run=", "resume=", "seeds_per_process=", "hydra/launcher", "hydra.launcher")


def sweep_name_for(task_overrides: Sequence[str], explicit: str = "") -> str:
    """The explicit ``sweep_name``, else a digest of the overrides, so rerunning a command finds its runs."""
    if explicit:
        return explicit
    keep = sorted(o for o in task_overrides if not o.startswith(_NOT_IN_SWEEP_NAME))
    return "sweep-" + hashlib.sha1(" ".join(keep).encode()).hexdigest()[:8]


def seed_groups(points: Sequence[Point], global_steps: Mapping[str, int] | None = None) -> list[list[Point]]:
    """The jobs that run ``points``: one list of points per process.

    A point whose ``seeds_per_process`` is k > 1 shares its process with up to k - 1 other seeds of its
    configuration: points whose resolved configs are equal except ``seed`` (so they share k, too) and whose
    records are at the same ``global_step`` (by run id; missing = 0, a new point), so that the seeds of one
    process start at the same progress. Each such set is taken in seed order and cut into chunks of at most k.
    The jobs come in the order of their first point in ``points``; with k = 1 that is one job per point, in the
    order given.
    """
    steps = global_steps or {}
    buckets: dict[tuple[str, int], list[tuple[int, Point]]] = {}
    jobs: list[tuple[int, list[Point]]] = []
    for i, p in enumerate(points):
        k = int(p.config.get("seeds_per_process", 1))
        if k <= 1:
            jobs.append((i, [p]))
            continue
        same = json.dumps(without_seed(p.config), sort_keys=True, default=str)
        buckets.setdefault((same, int(steps.get(p.run_id, 0))), []).append((i, p))
    for members in buckets.values():
        members.sort(key=lambda m: (m[1].seed, m[0]))
        k = int(members[0][1].config["seeds_per_process"])
        for start in range(0, len(members), k):
            chunk = members[start : start + k]
            jobs.append((min(i for i, _ in chunk), [p for _, p in chunk]))
    jobs.sort(key=lambda job: job[0])
    return [group for _, group in jobs]


def plan(args: Sequence[str], multirun: bool) -> Plan:
    """Expand and check ``args`` (group values already quoted by quote_group_values); ConfigError on bad input."""
    register_configs()
    args, searchpath = split_searchpath(list(args))
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            planned = _Planner(GlobalHydra.instance().config_loader(), searchpath).plan(args, multirun)
    finally:
        GlobalHydra.instance().clear()
    planned.searchpath = tuple(searchpath)
    return planned


SEARCHPATH = "hydra.searchpath"


def searchpath_override(folders: Sequence[str]) -> str:
    """The override that puts ``folders`` (``file://`` or ``pkg://`` entries) on Hydra's config search path."""
    return f"{SEARCHPATH}=[" + ",".join("'" + f.replace("'", "\\'") + "'" for f in folders) + "]"


def split_searchpath(args: list[str]) -> tuple[list[str], list[str]]:
    """Take ``hydra.searchpath=[...]`` out of ``args``: its folders, each checked and made absolute.

    A folder holds group subfolders (``experiment/``, ``env/``, ``model/`` ...) whose files are options beside the
    package's own; an option of the package's name would be shadowed by one of them (or shadow it), so it is refused.
    """
    rest, folders = [], []
    for arg in args:
        if not arg.startswith(SEARCHPATH + "="):
            rest.append(arg)
            continue
        try:
            value = OverridesParser.create().parse_override(arg).value()
        except HydraException as e:
            raise ConfigError(" ".join(str(e).split())) from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"Invalid value for {SEARCHPATH}: {value!r} (a list of folders: [file:///path/to/conf])")
        for entry in value:
            scheme, sep, where = entry.partition("://")
            if not sep:
                scheme, where = "file", entry
            if scheme == "pkg":
                folders.append(entry)
                continue
            folder = Path(where).expanduser().absolute()
            if scheme != "file" or not folder.is_dir():
                raise ConfigError(f"Invalid value for {SEARCHPATH}: {entry!r} (allowed: an existing folder, "
                                  "file:///path/to/conf, or pkg://module.conf)")  # fmt: skip
            for group in GROUPS:
                for option in sorted((folder / group).glob("*.yaml")):
                    if (CONF_DIR / group / option.name).exists():
                        raise ConfigError(
                            f"{option} has the name of rlsweep's own option {group}={option.stem}; rename it (a "
                            "folder on the search path adds options, it does not replace the package's)"
                        )
            folders.append(f"file://{folder}")
    return rest, folders


class _Planner:
    def __init__(self, loader: Any, searchpath: Sequence[str] = ()) -> None:
        self.parser = OverridesParser.create(config_loader=loader)
        # Hydra's own way to extend the search path: the override, given to every composition and options query.
        self.searchpath = [searchpath_override(searchpath)] if searchpath else []
        # get_group_options copies Hydra's repository (milliseconds): ask once per group, not per point.
        self.options = {g: set(loader.get_group_options(g, overrides=self.searchpath)) for g in GROUPS}
        self.composed: dict[tuple[str, ...], tuple[dict[str, Any], dict[str, str]]] = {}
        self.checked_values: dict[tuple[str, str], Any] = {}
        self.validated: set[tuple[Any, ...]] = set()
        self.names: dict[tuple[tuple[str, str], ...], str] = {}
        self.parsed: dict[str, Override] = {}  # a grid repeats each override string many times

    def plan(self, args: list[str], multirun: bool) -> Plan:
        try:
            parsed = self.parser.parse_overrides(args)
        except HydraException as e:
            raise ConfigError(" ".join(str(e).split()) + self._grammar_hint(args)) from None
        launcher_ovs = [o for o in parsed if _is_hydra(o)]
        task = [o for o in parsed if not _is_hydra(o)]
        for o in task:
            if o.is_delete():
                raise ConfigError(f"Deleting keys is not supported: {o.input_line}")
            if o.key_or_group not in GROUPS:
                check_key_or_group(o.key_or_group)
            if not multirun and o.is_sweep_override():
                raise ConfigError(f"{o.input_line} is a sweep: add -m (--multirun) to run a grid")
        launcher, settings, dirs = _launcher_settings(launcher_ovs)

        points = [self.point(i, list(p)) for i, p in enumerate(_expand(task))]
        seen: set[str] = set()
        for p in points:
            if p.run_id in seen:
                raise ConfigError(
                    f"Two grid points would share the run directory {p.run_id}; make the grid values distinct"
                )
            seen.add(p.run_id)
        for p in points:
            check_name("name", str(p.config["name"]))
            check_name("sweep_name", str(p.config["sweep_name"]))
        dry_run = any(bool(p.config["dry_run"]) for p in points)
        explicit = next((str(p.config["sweep_name"]) for p in points if p.config["sweep_name"]), "")
        if multirun:
            sweep_name = sweep_name_for([str(o.input_line) for o in task], explicit)
            out_dir = Path(dirs.get("hydra.sweep.dir") or Path("sweeps") / sweep_name)
            sweep_name = explicit or (out_dir.name if "hydra.sweep.dir" in dirs else sweep_name)
        else:
            sweep_name = explicit
            run_dir = dirs.get("hydra.run.dir")
            out_dir = Path(run_dir).parent if run_dir else Path("runs")
            if run_dir:
                points[0].run_id = Path(run_dir).name
        for p in points:
            p.config["sweep_name"] = sweep_name
        return Plan(points, multirun, sweep_name, out_dir.absolute(), launcher, settings, dry_run)

    def point(self, index: int, overrides: list[str]) -> Point:
        group_ovs: list[str] = []
        value_ovs: list[tuple[str, Any]] = []
        for s in overrides:
            if s not in self.parsed:
                self.parsed[s] = self.parser.parse_override(s)
            o = self.parsed[s]
            if o.key_or_group in GROUPS:
                value = o.value()
                if value is not None and str(value) not in self.options[o.key_or_group]:
                    options = sorted(self.options[o.key_or_group])
                    hint = did_you_mean(str(value), options, f"{o.key_or_group}=")
                    raise ConfigError(f"Unknown option {o.key_or_group}={value}{hint}; allowed: {', '.join(options)}")
                group_ovs.append(s)
            else:
                value_ovs.append((o.key_or_group, o.value()))
        key = tuple(group_ovs)
        if key not in self.composed:
            self.composed[key] = self.compose(group_ovs)
        base, choices = self.composed[key]
        # The base is shared by every point of its group choices: copy only the mappings a value override changes.
        cfg = dict(base)
        for k, v in value_ovs:
            ck = (k, repr(v))
            if ck not in self.checked_values:
                self.checked_values[ck] = check_value(k, v)
            _set(cfg, k, self.checked_values[ck])
        # Values were checked one by one above; what is left are the checks across keys, once per distinct set.
        vkey = (key, tuple((k, repr(v)) for k, v in value_ovs if k not in IDENTITY_KEYS))
        if vkey not in self.validated:
            validate(cfg)
            check_env(cfg)  # the env family's own rules: the id, its modes, RGB frames, stepping half of the envs
            self.validated.add(vkey)
        ckey = tuple(sorted(choices.items()))
        if ckey not in self.names:
            self.names[ckey] = config_name(choices)
        name = str(cfg["name"]) or self.names[ckey]
        rid = run_id(choices, overrides, int(cfg["seed"]), str(cfg["name"]))
        return Point(index, overrides, rid, name, choices, cfg)

    def _grammar_hint(self, args: list[str]) -> str:
        """For an override Hydra's grammar refused, the group's options where it names a group (``critic_init=sqrt(2)``
        is the option ``sqrt2``: options are file names, not expressions)."""
        for arg in args:
            key, sep, value = arg.partition("=")
            if sep and key in GROUPS:
                try:
                    self.parser.parse_override(arg)
                except HydraException:
                    options = sorted(self.options[key])
                    plain = "".join(c for c in value if c.isalnum() or c in "._-")
                    hint = did_you_mean(plain, options, f"{key}=")
                    return f"; {key} takes the name of an option{hint}, allowed: {', '.join(options)}"
        return ""

    def compose(self, overrides: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
        try:
            cfg = compose(config_name="config", overrides=[*self.searchpath, *overrides], return_hydra_config=True)
        except (HydraException, OmegaConfBaseException) as e:
            raise ConfigError(" ".join(str(e).split())) from None
        choices = {k: str(v) for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra/") and v}
        task = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
        plain = OmegaConf.to_container(task, resolve=True)
        assert isinstance(plain, dict)
        plain.pop("defaults", None)
        return {str(k): v for k, v in plain.items()}, choices


def check_name(key: str, value: str) -> None:
    """Sweep and run names become directory names: one plain path component, nothing that climbs or roots."""
    if value and (value in (".", "..") or "/" in value or "\\" in value or value.startswith(("~", "-"))):
        raise ConfigError(
            f"Invalid value for {key}: {value!r} (a name, not a path: no '/', no '..', not starting with '~' or '-')"
        )
    if len(value.encode()) > MAX_RUN_ID - 8:  # room for the run id's "-s<seed>"
        raise ConfigError(
            f"Invalid value for {key}: {value[:40]!r}... ({len(value)} characters; at most {MAX_RUN_ID - 8})"
        )


def compose_point(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved, checked config of the one point ``overrides`` make (as typed on a command line)."""
    from rlsweep.config.overrides import quote_group_values

    (point,) = plan(quote_group_values(list(overrides), GROUPS), multirun=False).points
    return point.config


def _is_hydra(o: Override) -> bool:
    return o.is_hydra_override() or o.key_or_group.startswith("hydra/")


def _expand(task: list[Override]) -> list[tuple[str, ...]]:
    """The grid: the Cartesian product of every override's values, in command-line order (as Hydra's sweeper)."""
    axes = []
    for o in task:
        key = o.get_key_element()
        if o.is_sweep_override():
            axes.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            axes.append([f"{key}={o.get_value_element_as_str()}"])
    return list(itertools.product(*axes))


def _launcher_settings(overrides: list[Override]) -> tuple[str, LauncherSettings, dict[str, str]]:
    """``hydra/launcher=<name>`` and ``hydra.launcher.<key>=<value>``, typed and range-checked."""
    launcher = "local"
    values: dict[str, Any] = {}
    dirs: dict[str, str] = {}
    for o in overrides:
        if o.is_sweep_override():
            raise ConfigError(f"{o.input_line}: launcher settings cannot be swept")
        if o.key_or_group == "hydra/launcher":
            launcher = str(o.value())
            if launcher not in LAUNCHERS:
                raise ConfigError(f"Unknown option hydra/launcher={launcher}; allowed: {', '.join(LAUNCHERS)}")
        elif o.key_or_group.startswith("hydra.launcher."):
            values[o.key_or_group.removeprefix("hydra.launcher.")] = o.value()
        elif o.key_or_group in DIR_KEYS:
            dirs[o.key_or_group] = str(o.value())
        else:
            raise ConfigError(
                f"Unknown key {o.key_or_group}; allowed Hydra keys: hydra/launcher, hydra.launcher.<setting>, "
                f"{', '.join(DIR_KEYS)}"
            )
    cls = LAUNCHERS[launcher]
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise ConfigError(
                f"Unknown key hydra.launcher.{key} for hydra/launcher={launcher}; allowed: {', '.join(names)}"
            )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), values)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", "") or "?"
        raise ConfigError(f"Invalid value for hydra.launcher.{key}: {values.get(key)!r} ({_first_line(e)})") from None
    settings = OmegaConf.to_object(merged)
    assert isinstance(settings, LauncherSettings)
    check_settings(settings)
    if isinstance(settings, SlurmSettings):
        # The cluster profile fills the keys left null; a missing or malformed one is bad input like any other.
        settings = load_profile(settings)
    return launcher, settings, dirs


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0]


def did_you_mean(given: str, allowed: Sequence[str], prefix: str = "") -> str:
    """`` (did you mean X?)`` for the closest of ``allowed`` to a mistyped ``given``, else ''."""
    close = [a for a in allowed if a.lower() == given.lower()] or difflib.get_close_matches(given, list(allowed), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def check_key_or_group(key: str) -> None:
    if "." not in key and key != "seed" and key not in CONTROL_KEYS:
        from rlsweep.config.validate import known_keys

        top = sorted({k.partition(".")[0] for k in known_keys()})
        hint = did_you_mean(key, sorted({*GROUPS, *top}))
        raise ConfigError(f"Unknown key {key}{hint}; allowed: config groups {', '.join(GROUPS)}; keys {', '.join(top)}")
    from rlsweep.config.validate import check_key

    check_key(key)


def _set(cfg: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key, copying each nested mapping on the way (the one above is already this point's own)."""
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node[p] = dict(node[p])
        node = node[p]
    node[leaf] = value
