"""Hydra's shell completion on rlsweep's command line: ``python sweep.py -sc install=bash|zsh|fish`` prints the
code the shell evaluates, and ``-sc query=bash`` (Hydra's protocol: the line in ``COMP_LINE``) the candidates.

The fast tests call ``sweep.py``'s main in this process; the e2e test sources the snippet in a real bash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from inline import finished

from rlsweep.cli.sweep import main
from rlsweep.config import CONF_DIR

REPO = Path(__file__).resolve().parents[2]


def _query(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], line: str, shell: str = "bash"
           ) -> list[str]:  # fmt: skip
    monkeypatch.setenv("COMP_LINE", line)
    out = finished(main, ["-sc", f"query={shell}"], capsys)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    return out.stdout.split()


def _options(group: str) -> list[str]:
    return sorted(f"{group}={p.stem}" for p in (CONF_DIR / group).glob("*.yaml"))


def test_install_bash_defines_the_completion_function_for_python_sweep_py(capsys: pytest.CaptureFixture[str]) -> None:
    out = finished(main, ["-sc", "install=bash"], capsys)
    assert out.returncode == 0, out.stderr
    assert "hydra_bash_completion()\n{" in out.stdout  # Hydra's function, so Hydra's uninstall=bash undoes it
    assert "sweep.py" in out.stdout
    assert 'grep -q -e "rlsweep.cli.sweep" -e "@hydra.main" "$file_path" || return' in out.stdout  # no other script
    assert "$helper -sc query=bash" in out.stdout  # calls python sweep.py back with Hydra's query protocol
    assert out.stdout.rstrip().endswith("complete -o nospace -o default -F hydra_bash_completion python python3")
    assert finished(main, ["--shell-completion=install=zsh"], capsys).stdout == out.stdout  # zsh: bashcompinit
    fish = finished(main, ["-sc", "install=fish"], capsys).stdout
    assert "function hydra_fish_completion" in fish
    assert "complete -c python -n '__fish_seen_subcommand_from sweep.py' -x -a '(hydra_fish_completion)'" in fish
    assert "unset hydra_bash_completion" in finished(main, ["-sc", "uninstall=bash"], capsys).stdout


def test_query_lists_the_options_of_a_group_and_the_keys_of_a_section(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _query(monkeypatch, capsys, "python sweep.py model=") == _options("model")
    assert _query(monkeypatch, capsys, "python sweep.py -m motivation=") == _options("motivation")
    assert _query(monkeypatch, capsys, "python sweep.py ppo.lea") == ["ppo.learning_rate="]
    # a group value Hydra would read as a float is an option name, as on a real command line
    assert _query(monkeypatch, capsys, "python sweep.py critic_init=0.1 -m ppo.lea") == ["ppo.learning_rate="]
    assert _query(monkeypatch, capsys, "python sweep.py ppo.lea", shell="fish") == ["ppo.learning_rate="]


def test_query_offers_rlsweeps_launchers_their_settings_and_the_flags(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _query(monkeypatch, capsys, "python sweep.py hydra/") == ["hydra/launcher="]
    assert _query(monkeypatch, capsys, "python sweep.py hydra/launcher=") == [
        "hydra/launcher=local", "hydra/launcher=slurm", "hydra/launcher=submitit_local"
    ]  # fmt: skip
    hydra_keys = ["hydra.launcher.", "hydra.run.", "hydra.searchpath=", "hydra.sweep."]
    assert _query(monkeypatch, capsys, "python sweep.py hydra.") == hydra_keys
    assert _query(monkeypatch, capsys, "python sweep.py hydra.sweep.") == ["hydra.sweep.dir="]
    assert "hydra.launcher.max_parallel=" in _query(monkeypatch, capsys, "python sweep.py hydra.launcher.")
    slurm = _query(monkeypatch, capsys, "python sweep.py hydra/launcher=slurm hydra.launcher.pa")
    assert slurm == ["hydra.launcher.partition="]
    assert _query(monkeypatch, capsys, "python sweep.py --c") == ["--cfg", "--config-dir"]
    assert _query(monkeypatch, capsys, "python sweep.py --cfg ") == ["job", "hydra", "all"]
    assert "-sc" in _query(monkeypatch, capsys, "python sweep.py -")


def test_query_sees_the_options_of_a_config_dir_on_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine" / "env").mkdir(parents=True)
    (tmp_path / "mine" / "env" / "my_maze.yaml").write_text("id: maze\n")
    monkeypatch.chdir(tmp_path)
    expected = sorted([*_options("env"), "env=my_maze"])
    assert _query(monkeypatch, capsys, "python sweep.py -cd mine env=") == expected
    assert _query(monkeypatch, capsys, "python sweep.py --config-dir=mine env=my") == ["env=my_maze"]
    assert _query(monkeypatch, capsys, f"python sweep.py hydra.searchpath=[file://{tmp_path}/mine] env=") == expected
    assert _query(monkeypatch, capsys, "python sweep.py env=") == _options("env")  # nothing left behind


def test_a_bad_shell_is_one_line_naming_the_allowed_ones(capsys: pytest.CaptureFixture[str]) -> None:
    out = finished(main, ["-sc", "install=tcsh"], capsys)
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("rlsweep: error: Invalid value for -sc: 'install=tcsh' (allowed: install=bash, ")
    assert all(f"install={shell}" in line for shell in ("bash", "zsh", "fish"))


def test_a_query_without_comp_line_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                               ) -> None:  # fmt: skip
    monkeypatch.delenv("COMP_LINE", raising=False)
    out = finished(main, ["-sc", "query=bash"], capsys)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "rlsweep: error: -sc query=bash reads the command line from COMP_LINE, which the shell sets"
    ]


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("bash") is None, reason="the snippet is bash code: no bash here to source it")
def test_bash_completes_python_sweep_py_through_the_installed_snippet() -> None:
    script = """
        eval "$(python sweep.py -sc install=bash)"
        complete -p python | grep -q hydra_bash_completion || exit 3
        complete_line() {
            COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$COMP_LINE"
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); [[ "$COMP_LINE" == *" " ]] && COMP_CWORD=${#COMP_WORDS[@]}
            COMPREPLY=(); hydra_bash_completion; echo "${COMPREPLY[*]}"
        }
        complete_line "python sweep.py model="
        complete_line "python sweep.py env=fake motivation=snd_"
        complete_line "python sweep.py ppo.lea"
    """
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("COMP_LINE", None)
    out = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        " ".join(_options("model")),
        "motivation=snd_std motivation=snd_v motivation=snd_vic",
        "ppo.learning_rate=",
    ]
