"""``sweep.py``: plan the grid once, then run it (one point in this process, or a sweep through a launcher).

``main()`` never lets a bad grid reach a launcher: every point is composed and checked first
(:mod:`rlsweep.launching.plan`); bad input ends with one message and exit status 2, and ``dry_run=true``
prints the job table instead of launching. Then each point to run gets its directory with the resolved
``config.yaml`` and its record (:mod:`rlsweep.launching.points`), the points are grouped into processes (one
point each, or with ``seeds_per_process=k`` up to k seeds of one configuration:
:func:`rlsweep.launching.points.process_groups`), and the launcher starts the job function
:func:`rlsweep.launching.job.run_points` on each group. Without ``-m`` the one point runs here, in
``runs/<run>/``.

Exit status: 0 when every point of the grid is completed (or, with ``hydra.launcher.wait=false``, submitted),
1 when some point failed or was stopped, 2 for bad input (a changed training config included), 3 when every
point not completed is still running or queued elsewhere (another launch, a SLURM job), 130 after Ctrl-C, 141
when the help or the dry run's table meets a closed stdout (``| head``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlsweep.cli.commands import quiet_on_closed_stdout
from rlsweep.config import ConfigError, register_configs
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching.job import DISK_FULL
from rlsweep.launching.plan import GROUPS, Plan, did_you_mean, plan, searchpath_override
from rlsweep.rundir.record import RecordWriteError

USAGE = """usage: python sweep.py [-m] [override ...]

  -m, --multirun   run the grid the overrides span (model=A,B seed=1,2 is 4 runs) through a launcher
  -h, --help       this text, the config groups and their options
  -c, --cfg job|hydra|all
                   print the composed config of the (first) point instead of running: job = the run's config,
                   hydra = the launcher's settings and where the runs go, all = both; starts nothing
  -p, --package P  with --cfg: only the section P (--cfg job --package ppo)
  --resolve        with --cfg: accepted as Hydra's; rlsweep's configs are always printed resolved
  --info [all|searchpath|defaults|groups]
                   where configs come from, the defaults list, the groups and their options
  -cd, --config-dir DIR
                   your own folder of options beside the package's: DIR/experiment/*.yaml, DIR/env/*.yaml, ...
                   (the same as hydra.searchpath=[file://DIR]; rlsweep seeds finds them too)
  -sc, --shell-completion install=bash|zsh|fish | uninstall=SHELL
                   Hydra's tab completion of groups, options, keys and flags: eval "$(python sweep.py -sc install=bash)"
                   (zsh: the same after autoload -U bashcompinit && bashcompinit;
                   fish: python sweep.py -sc install=fish | source)

overrides:  group=option (model=B), key=value (ppo.learning_rate=3e-4), sweeps a,b,c | range(1,4) | glob(ppo_rnd_*)
launcher:   hydra/launcher=local|slurm|submitit_local, hydra.launcher.<setting>=<value>, hydra.sweep.dir=<dir>
preview:    dry_run=true prints the job table and starts nothing
rerun:      resume=check (default: resume each point's checkpoint if its training config is unchanged, else refuse)
            | continue (resume under the changed config) | restart (set the old files aside, start over)
            | previous (resume the checkpoint before an unreadable newest one)
exit:       0 all completed, 1 some failed or stopped, 2 bad input, 3 the rest runs elsewhere, 130 Ctrl-C"""


# The shells of Hydra's completion plugins (rlsweep.cli.completion, imported only for -sc).
SHELLS = ("bash", "zsh", "fish")
# Hydra's flags that rlsweep keeps: name -> (spellings, the values it takes: None = none, () = any word).
FLAGS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "multirun": (("-m", "--multirun"), None),
    "help": (("-h", "--help"), None),
    "cfg": (("-c", "--cfg"), ("job", "hydra", "all")),
    "package": (("-p", "--package"), ()),
    "resolve": (("--resolve",), None),
    "info": (("--info",), ("all", "searchpath", "defaults", "groups")),
    "config_dir": (("-cd", "--config-dir"), ()),
    "shell_completion": (
        ("-sc", "--shell-completion"),
        tuple(f"{command}={shell}" for command in ("install", "uninstall", "query") for shell in SHELLS),
    ),
}


class FlagError(ValueError):
    """A flag rlsweep does not know, or a flag's value it does not take (exit status 2)."""


def parse_flags(args: Sequence[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Hydra's flags (``FLAGS``) and the overrides, in the order typed; ``--info`` takes an optional value."""
    flags: dict[str, str | bool] = {}
    overrides: list[str] = []
    spelled = {spelling: name for name, (spellings, _) in FLAGS.items() for spelling in spellings}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        given, eq, inline = arg.partition("=")
        name = spelled.get(given)
        if name is None:
            allowed = ", ".join("/".join(spellings) for spellings, _ in FLAGS.values())
            raise FlagError(f"unknown flag {arg}{did_you_mean(given, list(spelled))}; allowed: {allowed}")
        values = FLAGS[name][1]
        if values is None:
            flags[name] = True
            continue
        optional = name == "info"
        if eq:
            value = inline
        elif rest and not rest[0].startswith("-") and (not optional or rest[0] in values):
            value = rest.pop(0)
        elif optional:
            value = "all"
        else:
            raise FlagError(f"{given} needs a value" + (f": {', '.join(values)}" if values else ""))
        if values and value not in values:
            raise FlagError(f"Invalid value for {given}: {value!r} (allowed: {', '.join(values)})")
        flags[name] = value
    if "package" in flags and "cfg" not in flags:
        raise FlagError("--package goes with --cfg (--cfg job --package ppo)")
    if "config_dir" in flags:
        folder = Path(str(flags["config_dir"])).expanduser().absolute()
        if not folder.is_dir():
            raise FlagError(f"Invalid value for --config-dir: {flags['config_dir']!r} (no such folder)")
        overrides.append(searchpath_override([f"file://{folder}"]))
    return flags, overrides


def main(argv: Sequence[str] | None = None) -> int:
    try:
        flags, overrides = parse_flags(list(sys.argv[1:] if argv is None else argv))
    except FlagError as e:
        print(f"rlsweep: error: {e}", file=sys.stderr)
        return 2
    if flags.get("shell_completion"):
        from rlsweep.cli.completion import CompletionError, shell_completion

        try:
            return shell_completion(str(flags["shell_completion"]))
        except CompletionError as e:
            print(f"rlsweep: error: {e}", file=sys.stderr)
            return 2
    if flags.get("help"):
        return _show(USAGE + "\n\n" + _groups_help())
    register_configs()
    try:
        p = plan(quote_group_values(overrides, GROUPS), multirun=bool(flags.get("multirun")))
    except ConfigError as e:
        print(f"rlsweep: error: {e}", file=sys.stderr)
        return 2
    if flags.get("info"):
        return _show(info(str(flags["info"]), p))
    if flags.get("cfg"):
        try:
            return _show(config_text(p, str(flags["cfg"]), str(flags.get("package") or "")))
        except FlagError as e:
            print(f"rlsweep: error: {e}", file=sys.stderr)
            return 2
    if p.dry_run:
        return _show(format_table(p))
    try:
        return launch(p)
    except ConfigError as e:  # found while deciding what runs (a changed training config): nothing started
        print(f"rlsweep: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from rlsweep.launching.slurm import SubmissionRefused

        if not isinstance(e, SubmissionRefused):
            raise
        print(f"rlsweep: error: {e}; rerun the same command once the cluster takes jobs again", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[rlsweep] stopped; rerun the same command to resume", file=sys.stderr)
        return 130
    except OSError as e:
        if e.errno in DISK_FULL:
            print(f"rlsweep: error: {e}; free space, then rerun the same command to resume", file=sys.stderr)
        elif isinstance(e, RecordWriteError):
            print(f"rlsweep: error: {e}; make it writable, then rerun the same command", file=sys.stderr)
        else:
            raise
        return 1


@quiet_on_closed_stdout
def _show(text: str) -> int:
    """Print the help or the dry run's table: `python sweep.py ... dry_run=true | head` ends quietly."""
    print(text)
    return 0


def launch(p: Plan) -> int:
    """Write the points' configs and records, run what is not completed, report; the exit status."""
    from rlsweep.launching.launcher import start
    from rlsweep.launching.ledger import Ledger
    from rlsweep.launching.points import prepare

    ledger = Ledger(p.out_dir)
    if not p.multirun:
        from rlsweep.launching.job import EXIT_BUSY, run_point_reporting

        (point,) = p.points
        print(f"[rlsweep] run {point.run_id} in {p.run_dir(point)}", flush=True)
        if prepare(p, "inline"):
            code = run_point_reporting(p.run_dir(point))
            return 3 if code == EXIT_BUSY else code
        return exit_status(p)
    print(f"[rlsweep] sweep {p.sweep_name}: {len(p.points)} point(s) in {p.out_dir}", flush=True)
    ledger.record_launch(p.launcher, len(p.points), p.searchpath)
    if not start(p, prepare(p, p.launcher)):
        return 0
    return exit_status(p)


def exit_status(p: Plan) -> int:
    """0: every point completed; 3: the others all run (or wait in SLURM's queue) elsewhere; else 1."""
    from rlsweep.launching.ledger import Ledger
    from rlsweep.launching.points import running_elsewhere

    ledger = Ledger(p.out_dir)
    unfinished = [pt for pt in p.points if (r := ledger.get(pt.run_id)) is None or r.status != "completed"]
    if not unfinished:
        return 0
    # Run elsewhere: held by another attempt, queued in SLURM, or just claimed by a launch started beside this one
    # (its job may not have taken the point's lock yet; a rerun would then find it running).
    away = running_elsewhere([p.run_dir(pt) for pt in unfinished if pt.run_id not in p.taken_elsewhere])
    away += [p.run_dir(pt) for pt in unfinished if pt.run_id in p.taken_elsewhere]
    done = len(p.points) - len(unfinished)
    if len(away) == len(unfinished):
        print(f"[rlsweep] {done}/{len(p.points)} point(s) completed; the other {len(away)} are still running or "
              f"queued elsewhere: follow them with rlsweep status {p.out_dir}", flush=True)  # fmt: skip
        return 3
    print(f"[rlsweep] {done}/{len(p.points)} point(s) completed; rerun the same command to resume the rest", flush=True)
    return 1


def format_table(p: Plan) -> str:
    """The dry-run table: one line per job with its name, group choices, budget and launcher; with
    ``seeds_per_process`` > 1 (a sweep) also the process each point would train in, the seeds of one
    configuration at the same progress (in their records, if the sweep ran before) sharing one."""
    from rlsweep.launching.points import process_groups

    factor_keys = ["model", "critic_init", "normalise_int_reward", "motivation", "env", "budget"]
    header = ["#", "run", *factor_keys, "steps", "launcher"]
    rows = [
        [str(j.index), j.run_id, *(j.choices.get(k, "-") for k in factor_keys), _steps(j.total_steps), p.launcher]
        for j in p.points
    ]
    shared = p.multirun and any(int(pt.config.get("seeds_per_process", 1)) > 1 for pt in p.points)
    groups = process_groups(p, p.points) if shared else [[pt] for pt in p.points]
    if shared:  # a column "process": the number of the process each point would train in
        process = {pt.run_id: str(n) for n, group in enumerate(groups) for pt in group}
        header.append("process")
        for row, j in zip(rows, p.points, strict=True):
            row.append(process[j.run_id])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    total = sum(j.total_steps for j in p.points)
    where = f"sweep directory {p.out_dir}" if p.multirun else f"run directory {p.run_dir(p.points[0])}"
    processes = f" in {len(groups)} process(es)" if shared else ""
    lines.append(
        f"dry run: {len(p.points)} job(s){processes}, {_steps(total)} agent steps in all, {where}; nothing was started"
    )
    return "\n".join(lines)


def config_text(p: Plan, which: str, package: str = "") -> str:
    """``--cfg job|hydra|all`` (``--package``): the first point's config as YAML, as Hydra prints it."""
    import dataclasses

    import yaml

    point = p.points[0]
    sections: dict[str, Any] = {}
    if which in ("job", "all"):
        sections.update(point.config)
    if which in ("hydra", "all"):
        where = {"sweep": {"dir": str(p.out_dir)}} if p.multirun else {"run": {"dir": str(p.run_dir(point))}}
        sections["hydra"] = {
            "mode": "MULTIRUN" if p.multirun else "RUN",
            **where,
            "launcher": {"_name": p.launcher, **dataclasses.asdict(p.settings)},
            "runtime": {"choices": dict(point.choices)},
        }
    header = f"# point 0 of {len(p.points)}: {point.run_id}\n" if len(p.points) > 1 else ""
    if package:
        node: Any = sections
        for part in package.split("."):
            if not isinstance(node, dict) or part not in node:
                inside = node.items() if isinstance(node, dict) else []
                allowed = ", ".join(k for k, v in inside if isinstance(v, dict))
                raise FlagError(f"Invalid value for --package: {package!r} (no section {part!r}; allowed: {allowed})")
            node = node[part]
        header += f"# @package {package}\n"
        sections = node if isinstance(node, dict) else {package.rpartition(".")[2]: node}
    return header + yaml.safe_dump(sections, sort_keys=False, default_flow_style=False).rstrip()


def info(which: str, p: Plan | None) -> str:
    """``--info``: where configs come from, the root's defaults list, the groups and their options (and, given
    overrides, what they compose to)."""
    import rlsweep
    from rlsweep.config import CONF_DIR

    parts: list[str] = []
    folders = list(p.searchpath) if p is not None else []
    if which in ("all", "searchpath"):
        listed = "\n".join(f"  {f}" for f in folders)
        parts.append(f"rlsweep {rlsweep.__version__}\nConfig search path:\n  pkg://rlsweep.conf ({CONF_DIR})"
                     + (f"\n{listed}" if listed else ""))  # fmt: skip
    if which in ("all", "defaults"):
        lines = (CONF_DIR / "config.yaml").read_text().splitlines()
        start = lines.index("defaults:")
        defaults = [x.split("#")[0].rstrip() for x in lines[start + 1 :] if x.startswith("  - ")]
        parts.append("Defaults list (conf/config.yaml):\n" + "\n".join(defaults))
    if which in ("all", "groups"):
        own = [Path(f.removeprefix("file://")) for f in folders if f.startswith("file://")]
        parts.append(_groups_help(own, full=True))
    if p is not None and which == "all":
        point = p.points[0]
        choices = ", ".join(f"{k}={v}" for k, v in sorted(point.choices.items()))
        parts.append(f"These overrides: {len(p.points)} point(s); the first, {point.run_id}: {choices}")
    return "\n\n".join(parts)


def _steps(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:g}{unit}"
    return str(n)


def _groups_help(own: Sequence[Path] = (), full: bool = False) -> str:
    """The config groups and their options (the package's, then those of the folders ``own``)."""
    from rlsweep.config import CONF_DIR

    lines = ["config groups (group=option):"]
    for g in GROUPS:
        options = sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml"))
        options += sorted(f"{p.stem} ({folder})" for folder in own for p in (folder / g).glob("*.yaml"))
        cut = not full and len(options) > 12
        shown = ", ".join(options[:12]) + f", ... ({len(options)})" if cut else ", ".join(options)
        lines.append(f"  {g}: {shown}")
    return "\n".join(lines)
