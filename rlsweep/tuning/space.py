"""The tune file: what ``rlsweep tune`` searches, with what budget, judged on which metric; read and checked here.

A tune file is ``<name>.yaml`` in the package's ``rlsweep/tuning/spaces/`` or in ``<DIR>/tune/`` of a config folder
given with ``--config-dir DIR`` (a folder of the user's options, as for ``sweep.py``), chosen with ``tune=<name>``::

    space:                                   # config key -> one distribution
      ppo.learning_rate: {log_uniform: [1.0e-5, 1.0e-3]}
      ppo.ent_coef: {uniform: [0.0, 0.01]}
      ppo.update_epochs: {int: [1, 8]}
      motivation.reward_scale: {choice: [0.5, 1.0, 2.0]}
    trials: 6            # trials per arm (every arm gets the same)
    steps: 2000000       # a trial's full budget in agent steps: its last rung
    rungs: 2             # successive-halving rungs: rung r trains to steps / reduction^(rungs-1-r)
    reduction: 2         # each rung keeps the best 1/reduction of the trials that reached it
    fresh_seeds: 3       # seeds per arm for the confirm runs, none of them a trial's
    metric: explore/cells
    storage: journal     # where the studies live: journal, sqlite, or postgresql://user@host/db (a server)

Any setting can be changed on the command line as ``tune.<setting>=<value>`` (``tune.trials=3``,
``tune.space.ppo.learning_rate={log_uniform: [1.0e-4, 1.0e-3]}``). Where the spaces live is outside
``rlsweep/conf/``: every folder there is a Hydra config group of the training config, which a tune file is not.

Every check is here and runs before anything starts: a bad setting or distribution is one :class:`BadSpace` line
naming the key, the value and what is allowed (exit status 2). The space's keys are checked against the training
config's schema (the key exists, each bound or choice is a value it takes) and against the grid (a key the command
line sets, above all one swept as an arm, cannot also be tuned). This module imports neither Optuna nor torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SPACES_DIR = Path(__file__).parent / "spaces"
TUNE_GROUP = "tune"  # <config folder>/tune/<name>.yaml, and the prefix of the command line's tune.<setting>=
KINDS = {
    "log_uniform": "log_uniform: [low, high] with 0 < low < high",
    "uniform": "uniform: [low, high] with low < high",
    "int": "int: [low, high], integers with low < high",
    "choice": "choice: [a, b, ...], two or more distinct values",
}
DIRECTIONS = ("maximize", "minimize")
STORAGES = ("journal", "sqlite")  # files in the sweep directory; or a server's URL (below)
SERVER_SCHEMES = ("postgresql", "postgresql+psycopg")
SERVER_FORM = "postgresql://user[:password]@host[:port]/database"
STORAGE_ALLOWED = f"{', '.join(STORAGES)}, or a PostgreSQL server as {SERVER_FORM}"
# Keys the tuner sets on every trial itself: tuning them or setting them on the command line would fight it.
TUNER_KEYS = ("seed", "name", "budget.total_steps", "resume")


class BadSpace(ValueError):
    """One line for the user: the key, the value and what is allowed (exit status 2, nothing started)."""


@dataclass(frozen=True)
class Param:
    """One tuned key and its distribution: ``low, high`` for the ranges, the values for ``choice``."""

    key: str
    kind: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class TuneSpec:
    name: str
    source: str  # the file it came from
    params: tuple[Param, ...]
    trials: int = 6
    steps: int = 1_000_000
    rungs: int = 2
    reduction: int = 2
    fresh_seeds: int = 3
    metric: str = "episode/score"
    direction: str = "maximize"
    batch: int = 0  # trials asked together (each batch goes through the rungs); 0: all of them at once
    storage: str = "journal"
    confirm_steps: int | None = None  # confirm runs' budget; null: the arm's own budget.total_steps
    sampler_seed: int = 0

    def budgets(self) -> list[int]:
        """Each rung's budget in agent steps, the last one ``steps``: b_r = ceil(steps / reduction^(rungs-1-r))."""
        return rung_budgets(self.steps, self.rungs, self.reduction)

    def batch_size(self) -> int:
        return self.batch or self.trials


SETTINGS = tuple(f.name for f in dataclasses.fields(TuneSpec) if f.name not in ("name", "source", "params"))


def rung_budgets(steps: int, rungs: int, reduction: int) -> list[int]:
    return [math.ceil(steps / reduction ** (rungs - 1 - r)) for r in range(rungs)]


def available(folders: Sequence[Path] = ()) -> dict[str, Path]:
    """Every tune file by name: the package's, then each folder's ``tune/`` (a folder's file of the same name wins:
    it is the user's own)."""
    found = {p.stem: p for p in sorted(SPACES_DIR.glob("*.yaml"))}
    for folder in folders:
        found.update({p.stem: p for p in sorted((Path(folder) / TUNE_GROUP).glob("*.yaml"))})
    return found


def load_spec(name: str, overrides: Sequence[str] = (), folders: Sequence[Path] = ()) -> TuneSpec:
    """The tune file ``name`` with the command line's ``tune.<setting>=<value>`` applied, every value checked."""
    files = available(folders)
    if name not in files:
        where = ", ".join([str(SPACES_DIR), *(f"{f}/{TUNE_GROUP}" for f in folders)])
        raise BadSpace(f"tune={name}: no such tune file; allowed: {', '.join(sorted(files)) or 'none'} (from {where})")
    path = files[name]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise BadSpace(f"tune={name}: {path} is not YAML ({' '.join(str(e).split())})") from None
    if not isinstance(raw, dict):
        raise BadSpace(f"tune={name}: {path} holds {type(raw).__name__}; allowed: a mapping of settings (space, "
                       "trials, ...)")  # fmt: skip
    raw = dict(raw)
    raw["space"] = dict(raw.get("space") or {})
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.startswith(TUNE_GROUP + "."):
            raise BadSpace(f"{item}: not a tune setting; allowed: tune=<name>, tune.<setting>=<value> "
                           f"({', '.join(SETTINGS)}), tune.space.<key>={{<kind>: [...]}}")  # fmt: skip
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise BadSpace(f"{key}={text}: not a YAML value") from None
        setting = key.removeprefix(TUNE_GROUP + ".")
        if setting.startswith("space."):
            raw["space"][setting.removeprefix("space.")] = value
        else:
            raw[setting] = value
    return parse_spec(name, str(path), raw)


def parse_spec(name: str, source: str, raw: Mapping[str, Any]) -> TuneSpec:
    """Check every setting and distribution of a tune file's mapping; :class:`BadSpace` on the first bad one."""
    unknown = sorted(set(raw) - {"space", *SETTINGS})
    if unknown:
        raise BadSpace(f"tune.{unknown[0]}={raw[unknown[0]]!r}: unknown setting; allowed: space, {', '.join(SETTINGS)}")
    space = raw.get("space") or {}
    if not isinstance(space, Mapping) or not space:
        raise BadSpace(f"tune.space={space!r}: nothing to tune; allowed: a mapping of config keys to distributions "
                       f"({'; '.join(KINDS.values())})")  # fmt: skip
    params = tuple(parse_param(str(k), v) for k, v in space.items())
    values = {k: raw[k] for k in SETTINGS if k in raw}
    ints = {"trials": 1, "steps": 1, "rungs": 1, "reduction": 2, "fresh_seeds": 1, "batch": 0, "sampler_seed": 0}
    for key, least in ints.items():
        if key in values and not (_is_int(values[key]) and values[key] >= least):
            raise BadSpace(f"tune.{key}={values[key]!r}: allowed: an integer >= {least}")
    confirm_steps = values.get("confirm_steps")
    if confirm_steps is not None and not (_is_int(confirm_steps) and confirm_steps >= 1):
        raise BadSpace(f"tune.confirm_steps={values['confirm_steps']!r}: allowed: an integer >= 1, or null (the arm's "
                       "own budget.total_steps)")  # fmt: skip
    if "direction" in values and values["direction"] not in DIRECTIONS:
        raise BadSpace(f"tune.direction={values['direction']!r}: allowed: {', '.join(DIRECTIONS)}")
    if "storage" in values:
        check_storage(values["storage"])
    if "metric" in values and not (isinstance(values["metric"], str) and values["metric"]):
        raise BadSpace(f"tune.metric={values['metric']!r}: allowed: a metric name (explore/cells, episode/score, ...)")
    spec = TuneSpec(name, source, params, **values)
    if spec.batch > spec.trials:
        raise BadSpace(f"tune.batch={spec.batch}: more than tune.trials={spec.trials}; allowed: 0 (all at once) to "
                       f"{spec.trials}")  # fmt: skip
    budgets = spec.budgets()
    if len(set(budgets)) < len(budgets):
        raise BadSpace(f"tune.steps={spec.steps}: too few for {spec.rungs} rungs of reduction {spec.reduction} "
                       f"(budgets {budgets}); allowed: steps >= {spec.reduction ** (spec.rungs - 1)}")  # fmt: skip
    return spec


def parse_param(key: str, given: Any) -> Param:
    """One ``<key>: {<kind>: [...]}`` of the space, checked against its kind and the training config's schema."""
    from rlsweep.config import ConfigError
    from rlsweep.config.validate import check_value

    allowed = "; ".join(KINDS.values())
    where = f"tune.space.{key}={_show(given)}"
    if key in TUNER_KEYS:
        raise BadSpace(f"{where}: {key} is set by the tuner on every trial; allowed: any other config key")
    if not isinstance(given, Mapping) or len(given) != 1 or next(iter(given)) not in KINDS:
        raise BadSpace(f"{where}: not a distribution; allowed: one of {allowed}")
    ((kind, args),) = given.items()
    if not isinstance(args, list | tuple):
        raise BadSpace(f"{where}: allowed: {KINDS[kind]}")
    args = [_number(a) for a in args]
    if kind == "choice":
        if len(args) < 2 or len({repr(a) for a in args}) < len(args):
            raise BadSpace(f"{where}: allowed: {KINDS[kind]}")
    else:
        numeric = len(args) == 2 and all(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
        if not numeric or (kind == "int" and not all(_is_int(a) for a in args)):
            raise BadSpace(f"{where}: allowed: {KINDS[kind]}")
        low, high = args
        if not all(math.isfinite(a) for a in args):
            raise BadSpace(f"{where}: bounds must be finite; allowed: {KINDS[kind]}")
        if kind == "log_uniform" and low <= 0:
            raise BadSpace(f"{where}: the log of a bound <= 0 is undefined; allowed: {KINDS[kind]}")
        if low >= high:
            raise BadSpace(f"{where}: empty range (low >= high); allowed: {KINDS[kind]}")
    try:
        for a in args:  # the key exists and takes each bound or choice (type and range of the training config)
            check_value(key, a)
    except ConfigError as e:
        raise BadSpace(f"{where}: {' '.join(str(e).split())}") from None
    return Param(key, kind, tuple(args))


def check_against_grid(spec: TuneSpec, grid: Mapping[str, bool]) -> None:
    """Refuse a tuned key the command line also sets (``grid``: key -> swept), and a tuner's key set there."""
    for p in spec.params:
        if p.key in grid:
            what = "also swept as an arm" if grid[p.key] else "also set on the command line"
            raise BadSpace(f"tune.space.{p.key}: {what}; allowed: a key the grid leaves to its config (take "
                           f"{p.key} off the command line, or out of the tune file)")  # fmt: skip
    for key in TUNER_KEYS:
        if key in grid:
            instead = {"budget.total_steps": "tune.steps (trials), tune.confirm_steps (confirm runs)",
                       "seed": "tune.trials, tune.fresh_seeds"}.get(key, "leave it to the tuner")  # fmt: skip
            raise BadSpace(f"{key}: set by rlsweep tune on every run it starts; allowed instead: {instead}")


def is_server(storage: str) -> bool:
    """``tune.storage`` names a database server (a URL), not a file of the sweep directory."""
    return "://" in storage


def check_storage(value: Any) -> None:
    """``tune.storage``: ``journal``, ``sqlite`` or a PostgreSQL URL of the form :data:`SERVER_FORM` (a query such as
    ``?sslmode=require`` is passed on to the driver). :class:`BadSpace` says what is wrong, the password hidden."""
    if value in STORAGES:
        return
    if not isinstance(value, str) or not is_server(value):
        raise BadSpace(f"tune.storage={value!r}: unknown storage; allowed: {STORAGE_ALLOWED}")
    from urllib.parse import urlsplit

    def bad(what: str) -> BadSpace:
        return BadSpace(f"tune.storage={redact(value)!r}: {what}; allowed: {STORAGE_ALLOWED}")

    scheme = value.partition("://")[0]
    if scheme not in SERVER_SCHEMES:
        raise bad(f"{scheme}:// is not a server rlsweep tune keeps studies on (PostgreSQL only)")
    userinfo = value.partition("://")[2].partition("?")[0].rpartition("@")[0]
    if "@" in userinfo or "/" in userinfo or "#" in value:
        raise bad("an @, / or # in the password must be written %40, %2F or %23")
    parts = urlsplit(value)
    if not parts.username:
        raise bad("no user (user@ before the host)")
    if not parts.hostname:
        raise bad("no host (user@host)")
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port == 0:
        raise bad(f"the port {parts.netloc.rpartition(':')[2]!r} is not a number from 1 to 65535")
    database = parts.path.removeprefix("/")
    if not database or "/" in database:
        raise bad("no database name (one name after the host: .../database)")


def redact(url: str) -> str:
    """A URL without its password (``user:***@host``), to be shown or written: a shell's history and ``ps`` see the
    command line, nothing else should. The user info ends at the last ``@`` before the query: a password may hold
    an ``@`` or a ``/`` (a URL should encode them, a typed one may not)."""
    scheme, sep, rest = url.partition("://")
    head, q, query = rest.partition("?")
    userinfo, at, host = head.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{host}{q}{query}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> Any:
    """YAML 1.1 reads 1e-5 (no dot) as a string: take it as the number it means."""
    if isinstance(v, str):
        try:
            return int(v) if v.strip().lstrip("+-").isdigit() else float(v)
        except ValueError:
            return v
    return v


def _show(v: Any) -> str:
    """A value as YAML flow, on one line."""
    return " ".join(yaml.safe_dump(v, default_flow_style=True).split()).removesuffix(" ...")
