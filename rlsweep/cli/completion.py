"""``python sweep.py -sc install=bash|zsh|fish``: Hydra's shell completion for rlsweep's command line.

Imported only when ``-sc``/``--shell-completion`` is given. The candidates are Hydra's: its completion plugins
(:mod:`hydra._internal.core_plugins.bash_completion`, ``zsh_completion``, ``fish_completion``) query the
``ConfigLoader`` of rlsweep's search path (``initialize_config_dir`` on the package's conf/, the generated
experiment presets, the folders of ``--config-dir`` and ``hydra.searchpath``), through :class:`_Loader`, which
makes the command line acceptable to Hydra the way :mod:`rlsweep.launching.plan` does (quoted group values) and
offers Hydra's keys only where rlsweep takes them (``hydra/launcher=local|slurm|submitit_local`` with their settings,
``hydra.sweep.dir``, ``hydra.run.dir``, ``hydra.searchpath``). rlsweep's own flags are completed here.

The install snippet is Hydra's, with small changes: the completion runs only for ``python sweep.py`` (Hydra's
check for ``@hydra.main`` is kept for Hydra's own apps; Hydra's bash snippet ran any ``python x.py -sc
query=bash``), and ``python3`` is completed like ``python``. The shell calls back ``python sweep.py -sc
query=bash`` with ``COMP_LINE`` set, Hydra's query protocol.
"""

from __future__ import annotations

import contextlib
import io
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.bash_completion import BashCompletion
from hydra._internal.core_plugins.fish_completion import FishCompletion
from hydra._internal.core_plugins.zsh_completion import ZshCompletion
from hydra.core.object_type import ObjectType
from hydra.plugins.completion_plugin import CompletionPlugin

from rlsweep.config import ConfigError
from rlsweep.config.launchers import LAUNCHERS
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching.plan import GROUPS, SEARCHPATH, searchpath_override, split_searchpath

SCRIPT = "sweep.py"
# The files whose completion the snippet asks for: rlsweep's sweep.py, and Hydra's own apps as Hydra's snippet does.
_GUARD = '-e "rlsweep.cli.sweep" -e "@hydra.main"'
# Hydra's keys that rlsweep takes (rlsweep.launching.plan._launcher_settings): the others are not offered.
_HYDRA_KEYS = ("hydra.launcher.", "hydra.sweep.", "hydra.run.", "hydra.sweep.dir=", "hydra.run.dir=")


class CompletionError(ValueError):
    """A ``-sc`` query that cannot be answered (exit status 2)."""


def shell_completion(spec: str) -> int:
    """``-sc <command>=<shell>``, already checked against ``sweep.FLAGS``: print the snippet, or the candidates
    for the line in ``COMP_LINE`` (Hydra's query protocol)."""
    command, _, shell = spec.partition("=")
    plugin_cls = _PLUGINS[shell]
    if command == "install":
        plugin_cls(None).install()
        return 0
    if command == "uninstall":
        plugin_cls(None).uninstall()
        return 0
    if "COMP_LINE" not in os.environ:
        raise CompletionError(f"-sc query={shell} reads the command line from COMP_LINE, which the shell sets")
    try:
        with _loader() as loader:
            plugin_cls(loader).query(config_name="config")
    except (Exception, SystemExit):  # a half-typed line must not print a traceback into the user's prompt
        if os.environ.get("HYDRA_COMP_DEBUG") == "1":
            traceback.print_exc()
        return 1
    return 0


@contextlib.contextmanager
def _loader() -> Iterator[_Loader]:
    """Hydra's ConfigLoader of rlsweep's search path, with rlsweep's launchers as ``hydra/launcher`` options."""
    from hydra import initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra

    from rlsweep.config import CONF_DIR, register_configs

    register_configs()
    store = ConfigStore.instance()
    for name, settings in LAUNCHERS.items():
        store.store(group="hydra/launcher", name=name, node=settings, provider="rlsweep")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            yield _Loader(GlobalHydra.instance().config_loader())
    finally:
        GlobalHydra.instance().clear()
        launchers = store.repo.get("hydra", {}).get("launcher", {})
        for name in LAUNCHERS:
            launchers.pop(f"{name}.yaml", None)


class _Loader:
    """Hydra's ConfigLoader, given each override list as rlsweep's planner gives it to Hydra.

    Group values are quoted (``critic_init=0.1`` is the option "0.1", not a float), the folders of ``--config-dir``
    and every ``hydra.searchpath=[...]`` make one search path override, and the launcher is rlsweep's default,
    ``local``, unless the line names one."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.folders: list[str] = []  # from --config-dir on the line (file://<absolute folder>)

    def overrides(self, overrides: Sequence[str] | None) -> list[str]:
        words = list(overrides or [])
        try:
            rest, folders = split_searchpath(words)
        except ConfigError:  # a folder still being typed: complete without it
            rest, folders = [w for w in words if not w.startswith(SEARCHPATH + "=")], []
        folders = [*self.folders, *folders]
        out = [searchpath_override(folders)] if folders else []
        out += quote_group_values(rest, GROUPS)
        if not any(w.startswith("hydra/launcher=") for w in rest):
            out.append("hydra/launcher=local")
        return out

    def get_group_options(
        self,
        group_name: str,
        results_filter: ObjectType | None = ObjectType.CONFIG,
        config_name: str | None = None,
        overrides: Sequence[str] | None = None,
    ) -> list[str]:
        options: list[str] = self.loader.get_group_options(
            group_name, results_filter=results_filter, config_name=config_name, overrides=self.overrides(overrides)
        )
        if group_name == "hydra":  # of Hydra's own groups rlsweep takes only the launcher
            return ["launcher"] if results_filter == ObjectType.GROUP else []
        if group_name == "hydra/launcher":
            return [o for o in options if o in LAUNCHERS]
        return options

    def load_configuration(self, config_name: str | None, overrides: list[str], run_mode: Any, **kw: Any) -> Any:
        return self.loader.load_configuration(config_name, self.overrides(overrides), run_mode, **kw)


class _Rlsweep(CompletionPlugin):
    """Hydra's query, with rlsweep's flags taken off the line first (and completed here) and Hydra's keys that
    rlsweep does not take left out."""

    def _query(self, config_name: str | None, line: str) -> list[str]:
        words = line.split()
        current = "" if not line or line.endswith(" ") else words.pop()
        kept, wanting, folders = _without_flags(words)
        if isinstance(self.config_loader, _Loader):
            self.config_loader.folders = [f"file://{f}" for f in folders]
        if wanting is not None:  # the value of a flag: its words (a folder: the shell's own file completion)
            return [v for v in wanting if v.startswith(current)]
        if current.startswith("-"):
            return sorted(s for s in _spellings() if s.startswith(current))
        # -m first: Hydra's argparse takes no flag between the overrides
        multirun = ["-m"] if "-m" in kept else []
        line = " ".join([*multirun, *(w for w in kept if w != "-m"), current])
        candidates = super()._query(config_name, line)
        candidates = [f"{SEARCHPATH}=" if c == f"{SEARCHPATH}." else c for c in candidates]
        return [c for c in candidates if _offered(c.lstrip("+~"))]

    @staticmethod
    def _get_exec() -> str:
        return "python"


def _offered(candidate: str) -> bool:
    if not candidate.startswith("hydra.") or candidate.startswith(("hydra.launcher.", f"{SEARCHPATH}=")):
        return True
    return candidate in _HYDRA_KEYS


def _spellings() -> list[str]:
    from rlsweep.cli.sweep import FLAGS

    return [s for spellings, _ in FLAGS.values() for s in spellings]


def _without_flags(words: Sequence[str]) -> tuple[list[str], tuple[str, ...] | None, list[Path]]:
    """The overrides of a half-typed line (and ``-m``), the values the next word may take when the line ends with a
    flag that wants one (None otherwise), and the folders of ``--config-dir`` that exist."""
    from rlsweep.cli.sweep import FLAGS

    spelled = {s: name for name, (spellings, _) in FLAGS.items() for s in spellings}
    kept: list[str] = []
    folders: list[Path] = []
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if not word.startswith("-"):
            kept.append(word)
            continue
        given, eq, value = word.partition("=")
        name = spelled.get(given)
        if name == "multirun":
            kept.append("-m")
        if name is None or FLAGS[name][1] is None:
            continue
        values = FLAGS[name][1] or ()
        if not eq:
            if not rest:
                return kept, values, folders
            if name == "info" and rest[0] not in values:
                continue
            value = rest.pop(0)
        if name == "config_dir" and Path(value).expanduser().is_dir():
            folders.append(Path(value).expanduser().absolute())
    return kept, None, folders


class RlsweepBash(_Rlsweep, BashCompletion):
    def install(self) -> None:
        script = _captured(super().install)
        script = script.replace('grep "@hydra.main" $file_path -q', f'grep -q {_GUARD} "$file_path" || return')
        script = script.replace("file_path=$(pwd)/${words[1]}", "file_path=${words[1]}")  # absolute paths too
        python = '[[ "${words[0]}" == python || "${words[0]}" == python3 ]]'
        script = script.replace('[ "${words[0]}" == "python" ]', python)
        lines = script.rstrip("\n").split("\n")
        lines[-1] += " python3"
        print(f"# rlsweep: completion for python {SCRIPT} (Hydra's), installed by: eval \"$(python {SCRIPT} -sc "
              "install=bash)\"")  # fmt: skip
        print("\n".join(lines))


class RlsweepZsh(_Rlsweep, ZshCompletion):
    def __init__(self, config_loader: Any) -> None:
        super().__init__(config_loader)
        self.delegate = RlsweepBash(config_loader)


class RlsweepFish(_Rlsweep, FishCompletion):
    def install(self) -> None:
        script = _captured(super().install)
        print(script.replace('grep -q "@hydra.main" $parts[2]', f"grep -q {_GUARD} $parts[2]"), end="")

    @staticmethod
    def _get_exec() -> list[tuple[str, str]]:  # type: ignore[override]
        return [(py, f"-n '__fish_seen_subcommand_from {SCRIPT}' ") for py in ("python", "python3")]

    @staticmethod
    def _get_uninstall_exec() -> str:
        return "python"


_PLUGINS: dict[str, Callable[[Any], CompletionPlugin]] = {"bash": RlsweepBash, "zsh": RlsweepZsh, "fish": RlsweepFish}


def _captured(print_it: Any) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_it()
    return out.getvalue()
