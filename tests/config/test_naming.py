"""Run names: derived from the group choices and the experiment options, with no table of names in code.

The names below are the ones runs already carry on disk (sweep directories, W&B runs); they must not change.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import rlsweep.config
from rlsweep.config import CONF_DIR, naming
from rlsweep.config.naming import (
    MAX_RUN_ID,
    NAME_FACTORS,
    config_name,
    experiments,
    group_defaults,
    read_experiment,
    run_id,
)

SEED_TABLE = {  # method.md §3.2: (model, normalise_int_reward, critic_init) of the RND variants
    "ppo_rnd_a0": ("A", "false", "0.1"),
    "ppo_rnd_b0": ("B", "false", "0.1"),
    "ppo_rnd_b1": ("B", "false", "sqrt2"),
    "ppo_rnd_b2": ("B", "true", "0.1"),
    "ppo_rnd_b3": ("B", "true", "sqrt2"),
    "ppo_rnd_c0": ("C", "false", "0.1"),
    "ppo_rnd_c1": ("C", "false", "sqrt2"),
    "ppo_rnd_d0": ("D", "false", "0.1"),
}


def _clear_caches() -> None:
    for f in (naming.experiments, naming.group_defaults, naming._tables):
        f.cache_clear()


@pytest.fixture
def conf_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the config tree that naming reads instead of the package's."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    monkeypatch.setattr(naming, "_conf_dir", lambda: conf)
    _clear_caches()
    yield conf
    _clear_caches()


# ---- the names that are pinned -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SEED_TABLE))
def test_a_seed_preset_is_recognised_from_its_choices(name: str) -> None:
    model, nir, critic = SEED_TABLE[name]
    choices = {"model": model, "normalise_int_reward": nir, "critic_init": critic}
    assert config_name(choices) == name
    assert config_name({**choices, "experiment": name}) == name
    assert config_name({**choices, "motivation": "rnd", "env": "montezuma", "ppo": "seed", "experiment": None}) == name


def test_pinned_names() -> None:
    assert config_name({"model": "B", "critic_init": "sqrt2"}) == "ppo_rnd_b1"
    assert config_name({}) == "ppo_rnd_a0"
    assert config_name({"motivation": "none", "env": "fake"}) == "ppo_none_a-nir_false-ci_0.1-env_fake"
    assert config_name({"model": "A", "critic_init": "sqrt2"}) == "ppo_rnd_a-nir_false-ci_sqrt2"
    assert config_name({"env": "fake"}) == "ppo_rnd_a0-env_fake"
    assert config_name({"ppo": "cleanrl", "env": "maze"}) == "ppo_rnd_a0-env_maze-ppo_cleanrl"
    # An experiment that sets values is named after itself while its groups hold...
    assert config_name({"experiment": "ppo_snd_c_3", "model": "C", "motivation": "snd_v"}) == "ppo_snd_c_3"
    snd_c_3 = {"experiment": "ppo_snd_c_3", "model": "C", "motivation": "snd_v", "env": "gravitar"}
    assert config_name(snd_c_3) == "ppo_snd_c_3-env_gravitar"
    # ...and gets the canonical name with -from_<experiment> once one of them is overridden.
    assert config_name({**snd_c_3, "model": "B"}) == "ppo_snd_v_b-nir_false-ci_0.1-env_gravitar-from_ppo_snd_c_3"
    # A seed preset with one of its groups overridden is simply the point it now is.
    assert config_name({"experiment": "ppo_rnd_b3", "model": "C", "normalise_int_reward": "true"}) == (
        "ppo_rnd_c-nir_true-ci_0.1"
    )
    # demo_maze leaves the method to the grid: its runs keep the names of their choices.
    demo = {"experiment": "demo_maze", "env": "maze", "budget": "demo", "debug": "small"}
    assert config_name({**demo, "motivation": "none"}) == "ppo_none_a-nir_false-ci_0.1-env_maze"
    assert config_name({**demo, "motivation": "rnd"}) == "ppo_rnd_a0-env_maze"


def test_run_ids_append_value_overrides_and_the_seed() -> None:
    choices = {"model": "B", "critic_init": "sqrt2", "hydra/launcher": "local"}
    assert run_id(choices, ["model=B", "critic_init='sqrt2'"], 2) == "ppo_rnd_b1-s2"
    overrides = ["ppo.learning_rate=3e-4", "seed=2", "logger.mode=offline", "budget.total_steps=8", "dry_run=true"]
    assert run_id(choices, overrides, 2) == "ppo_rnd_b1-ppo.learning_rate=3e-4-s2"
    assert run_id(choices, ["motivation.obs_norm='mean_std'", "ppo.num_envs=8"], 1) == (
        "ppo_rnd_b1-motivation.obs_norm=mean_std-ppo.num_envs=8-s1"
    )
    assert run_id(choices, ["ppo.learning_rate=3e-4"], 3, name="mine") == "mine-s3"


def test_a_run_id_too_long_for_a_directory_keeps_what_fits_and_a_digest_of_the_rest() -> None:
    choices = {"model": "B", "critic_init": "sqrt2"}
    many = [f"ppo.key_number_{i}={i / 7:.12f}" for i in range(12)]  # about 420 characters of overrides
    rid = run_id(choices, many, 1)
    assert len(rid.encode()) <= MAX_RUN_ID and rid.startswith("ppo_rnd_b1-ppo.key_number_0=")
    assert rid == run_id(choices, list(reversed(many)), 1)  # the same command finds the same directory
    other = run_id(choices, [*many[:9], "ppo.key_number_9=0", *many[10:]], 1)  # a change past the kept parts
    assert other != rid and other.rsplit("-h", 1)[0] == rid.rsplit("-h", 1)[0]
    assert rid.endswith("-s1") and run_id(choices, many, 2).endswith("-s2")
    fits = [f"ppo.k{i}={i}" for i in range(3)]
    assert run_id(choices, fits, 1) == "ppo_rnd_b1-ppo.k0=0-ppo.k1=1-ppo.k2=2-s1"  # short ids are unchanged


# ---- where the names come from ---------------------------------------------------------------------------


def test_defaults_are_read_from_the_root_config() -> None:
    rlsweep.config.register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True)
    GlobalHydra.instance().clear()
    hydra_choices = {str(k): str(v) for k, v in cfg.hydra.runtime.choices.items() if v and "/" not in str(k)}
    assert group_defaults() == hydra_choices


def test_every_experiment_option_is_read() -> None:
    exps = experiments()
    files = {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
    assert files <= set(exps)
    assert {"ppo_rnd_b1", "ppo_snd_c_3", "demo_maze", "paper_snd_std_montezuma"} <= set(exps)
    assert exps["ppo_rnd_b1"].choices == {
        "model": "B",
        "normalise_int_reward": "false",
        "critic_init": "sqrt2",
        "motivation": "rnd",
    }
    assert not exps["ppo_rnd_b1"].sets_values
    assert exps["ppo_snd_c_3"].sets_values
    assert exps["paper_rnd_venture"].choices["env"] == "venture"


def test_each_experiment_that_fixes_the_method_names_its_own_runs() -> None:
    defaults = group_defaults()
    fixing = [e for e in experiments().values() if all(g in e.choices for g in NAME_FACTORS)]
    assert len(fixing) == len(SEED_TABLE) + 3 + 50 + 2  # seed table, ppo_snd_c_0/3/4, the paper's, atari_check,
    #                                                    cleanrl_rnd
    for exp in fixing:
        assert config_name({**defaults, **exp.choices, "experiment": exp.name}) == exp.name
    # The seed presets are exactly the experiments recognised from their choices (no values, only the factors).
    recognised = {e.name for e in fixing if not e.sets_values and set(e.choices) == set(NAME_FACTORS)}
    assert recognised == set(SEED_TABLE)


def test_yaml_scalars_in_a_defaults_list_are_option_names() -> None:
    exp = read_experiment("x", {"defaults": [{"override /normalise_int_reward": True}, {"override /critic_init": 0.1},
                                             "_self_", {"override hydra/launcher": "slurm"}]})  # fmt: skip
    assert exp.choices == {"normalise_int_reward": "true", "critic_init": "0.1"}
    assert not exp.sets_values
    assert read_experiment("y", None) == naming.Experiment("y", {}, False)


def test_a_new_experiment_file_names_its_runs(conf_copy: Path) -> None:
    (conf_copy / "experiment" / "ppo_rnd_d1.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: D\n  - override /normalise_int_reward: 'false'\n"
        "  - override /critic_init: sqrt2\n  - override /motivation: rnd\n"
    )
    (conf_copy / "experiment" / "ppo_snd_c_9.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: C\n  - override /normalise_int_reward: 'false'\n"
        "  - override /critic_init: '0.1'\n  - override /motivation: snd_v\n  - override /env: venture\n"
        "motivation:\n  reward_scale: 2.0\n"
    )
    assert config_name({"model": "D", "critic_init": "sqrt2"}) == "ppo_rnd_d1"
    snd = {"experiment": "ppo_snd_c_9", "model": "C", "motivation": "snd_v", "env": "venture"}
    assert config_name(snd) == "ppo_snd_c_9"
    assert config_name({**snd, "ppo": "cleanrl"}) == "ppo_snd_c_9-ppo_cleanrl"
    assert config_name({**snd, "env": "gravitar"}) == "ppo_snd_v_c-nir_false-ci_0.1-env_gravitar-from_ppo_snd_c_9"


def test_the_root_defaults_come_from_the_file(conf_copy: Path) -> None:
    root = conf_copy / "config.yaml"
    root.write_text(root.read_text().replace("- env: montezuma", "- env: gravitar"))
    assert config_name({"env": "gravitar"}) == "ppo_rnd_a0"
    assert config_name({"env": "montezuma"}) == "ppo_rnd_a0-env_montezuma"


def test_ten_thousand_points_are_named_in_well_under_a_second() -> None:
    _clear_caches()
    points = [
        ({"model": m, "critic_init": c, "experiment": e}, [f"seed={s}", "ppo.learning_rate=3e-4"], s)
        for m in "ABCD"
        for c in ("0.1", "sqrt2")
        for e in (None, "ppo_snd_c_3")
        for s in range(625)
    ]
    start = time.perf_counter()
    ids = {run_id(choices, overrides, seed) for choices, overrides, seed in points}
    elapsed = time.perf_counter() - start
    assert len(ids) == len(points) == 10_000
    assert elapsed < 0.5, elapsed
