"""The Hydra config tree, the command-line quoting, the grid pre-flight and the sweep.py CLI.

Expected values come from the YAML options as written in conf/ and from the seed's table of RND variants
(shared/reference/method.md §3.2); the CLI tests run ``sweep.py`` in a real subprocess, in a scratch
directory so that nothing a test starts can write into the repository.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

import rlsweep.config
from rlsweep.config import CONF_DIR, ConfigError, validate
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching import preflight

# envpool (imported lazily by env-id validation) probes the removed numpy alias np.bool8; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`np.bool8` is a deprecated alias:DeprecationWarning")

REPO_ROOT = Path(__file__).resolve().parents[2]
SWEEP_PY = REPO_ROOT / "sweep.py"
SQRT2 = math.sqrt(2.0)

# The seed's table (method.md §3.2): name -> (model, normalise int reward, critic hidden init gain).
SEED_TABLE: dict[str, tuple[str, bool, float]] = {
    "ppo_rnd_a0": ("A", False, 0.1),
    "ppo_rnd_b0": ("B", False, 0.1),
    "ppo_rnd_b1": ("B", False, SQRT2),
    "ppo_rnd_b2": ("B", True, 0.1),
    "ppo_rnd_b3": ("B", True, SQRT2),
    "ppo_rnd_c0": ("C", False, 0.1),
    "ppo_rnd_c1": ("C", False, SQRT2),
    "ppo_rnd_d0": ("D", False, 0.1),
}

# What each option of each group must set (dotted key -> value), written from the option's meaning.
EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    ("budget", "demo"): {"budget.total_steps": 16_384},
    ("budget", "full"): {"budget.total_steps": 128_000_000},
    ("budget", "full_procgen"): {"budget.total_steps": 64_000_000},
    ("budget", "smoke"): {"budget.total_steps": 256},
    ("critic_init", "0.1"): {"model.critic_init_gain": 0.1},
    ("critic_init", "sqrt2"): {"model.critic_init_gain": SQRT2},
    ("debug", "none"): {"ppo.num_envs": 128, "ppo.minibatch_size": 512, "debug.profile": False},
    ("debug", "small"): {"ppo.num_envs": 8, "ppo.num_steps": 64, "ppo.minibatch_size": 128, "debug.profile": True},
    ("debug", "smoke"): {"ppo.num_envs": 4, "ppo.num_steps": 16, "ppo.minibatch_size": 32, "debug.profile": True},
    ("env", "chain"): {"env.id": "chain", "env.frame_stack": 1},
    ("env", "fake"): {"env.id": "fake", "env.frame_size": 32},
    ("env", "maze"): {"env.id": "maze", "env.frame_size": 32},
    ("env", "gravitar"): {"env.id": "Gravitar-v5", "env.frame_size": 96},
    ("env", "montezuma"): {"env.id": "MontezumaRevenge-v5", "env.max_episode_steps": 4500},
    ("env", "pitfall"): {"env.id": "Pitfall-v5"},
    ("env", "private_eye"): {"env.id": "PrivateEye-v5"},
    ("env", "solaris"): {"env.id": "Solaris-v5"},
    ("env", "venture"): {"env.id": "Venture-v5"},
    ("logger", "none"): {"logger.backend": "none", "logger.mode": "disabled"},
    ("logger", "wandb"): {"logger.backend": "wandb", "logger.mode": "auto"},
    ("model", "A"): {"model.name": "A"},
    ("model", "B"): {"model.name": "B"},
    ("model", "C"): {"model.name": "C"},
    ("model", "D"): {"model.name": "D"},
    ("motivation", "none"): {"motivation.name": "none"},
    ("motivation", "rnd"): {"motivation.name": "rnd", "motivation.reward_reduction": "sum_half"},
    ("normalise_int_reward", "false"): {"motivation.normalise_int_reward": False},
    ("normalise_int_reward", "true"): {"motivation.normalise_int_reward": True},
    ("ppo", "seed"): {"ppo.minibatch_size": 512, "ppo.minibatch_sampling": "replacement", "ppo.gamma_ext": 0.998},
    # cleanrl inherits from seed: num_envs stays 128, the CleanRL differences are applied on top.
    ("ppo", "cleanrl"): {
        "ppo.num_envs": 128,
        "ppo.minibatch_size": 4096,
        "ppo.minibatch_sampling": "permutation",
        "ppo.gamma_ext": 0.999,
        "ppo.int_episodic": False,
        "ppo.normalize_advantages": True,
    },
    # The CPU demo preset: the synthetic maze with the demo budget at small sizes.
    ("experiment", "demo_maze"): {"env.id": "maze", "budget.total_steps": 16_384, "ppo.num_envs": 8},
    **{
        ("experiment", name): {
            "model.name": model,
            "motivation.normalise_int_reward": nir,
            "model.critic_init_gain": gain,
            "motivation.name": "rnd",
        }
        for name, (model, nir, gain) in SEED_TABLE.items()
    },
    # SND options (method.md §3.4, §4.6-4.7) and the Procgen games (§3.5).
    ("motivation", "snd_v"): {
        "motivation.name": "snd_v",
        "motivation.network": "c",
        "motivation.target_loss": "mse",
        "motivation.reward_scale": 0.5,
        "motivation.reward_reduction": "mean",
        "motivation.obs_norm": "none",
        "motivation.pair_far_prob": 0.5,
        "motivation.augmentations": "mask+noise",
        "motivation.aug_prob": 0.5,
        "motivation.magnitude_threshold": 200.0,
    },
    ("motivation", "snd_vic"): {
        "motivation.name": "snd_vic",
        "motivation.target_loss": "vicreg",
        "motivation.network": "vic",
    },
    ("motivation", "snd_std"): {
        "motivation.name": "snd_std",
        "motivation.target_loss": "stdim",
        "motivation.network": "std",
    },
    **{
        ("env", game): {
            "env.id": f"procgen-{game}",
            "env.frame_size": 64,
            "env.frame_stack": 2,
            "env.grayscale": False,
            "env.distribution_mode": "exploration",
            "env.random_action_prob": 0.01,
        }
        for game in ("caveflyer", "climber", "coinrun", "jumper")
    },
    ("experiment", "ppo_snd_c_0"): {"model.name": "C", "motivation.name": "snd_v", "motivation.obs_norm": "mean"},
    ("experiment", "ppo_snd_c_3"): {
        "model.name": "C",
        "motivation.name": "snd_v",
        "motivation.obs_norm": "mean_std",
        "motivation.obs_norm_clip": 1.0,
        "motivation.reward_scale": 0.5,
    },
    ("experiment", "ppo_snd_c_4"): {
        "model.name": "C",
        "motivation.name": "snd_v",
        "motivation.obs_norm": "none",
        "motivation.predictor_updates": "one_pass",
        "ppo.minibatch_sampling": "permutation",
    },
    **{
        ("experiment", f"paper_{variant}_{game}"): {
            "model.name": "C",
            "motivation.name": motivation,
            "ppo.minibatch_sampling": "permutation",
            "budget.total_steps": 64_000_000 if game in ("caveflyer", "climber", "coinrun", "jumper") else 128_000_000,
        }
        for variant, motivation in {
            "baseline": "none",
            "rnd": "rnd",
            "snd_v": "snd_v",
            "snd_vic": "snd_vic",
            "snd_std": "snd_std",
        }.items()
        for game in (
            "montezuma",
            "gravitar",
            "venture",
            "private_eye",
            "pitfall",
            "solaris",
            "caveflyer",
            "climber",
            "coinrun",
            "jumper",
        )
    },
}

# The paper's per-game intrinsic scale (motivation_eta, method.md §3.4).
PAPER_ETA = {
    "snd_std": {"montezuma": 1.0, "gravitar": 1.0, "pitfall": 1.0, "jumper": 1.0, "climber": 1.0,
                "private_eye": 0.5, "solaris": 0.5, "caveflyer": 0.5, "venture": 0.25, "coinrun": 0.25},
    "snd_vic": {"caveflyer": 0.5, "climber": 0.5, "coinrun": 0.5, "jumper": 0.5},
}  # fmt: skip
for _variant, _etas in PAPER_ETA.items():
    for _game in ("montezuma", "gravitar", "venture", "private_eye", "pitfall", "solaris",
                  "caveflyer", "climber", "coinrun", "jumper"):  # fmt: skip
        _eta = _etas.get(_game, 0.25)
        EXPECTED[("experiment", f"paper_{_variant}_{_game}")]["motivation.reward_scale"] = _eta


def _group_options() -> list[tuple[str, str]]:
    return sorted(
        (group.name, option.stem)
        for group in CONF_DIR.iterdir()
        if group.is_dir() and group.name != "hydra"
        for option in group.glob("*.yaml")
    )


GROUP_OPTIONS = _group_options()


@pytest.fixture
def hydra_ctx() -> Iterator[None]:
    rlsweep.config.register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def _compose(overrides: list[str]) -> dict[str, Any]:
    cfg = compose(config_name="config", overrides=overrides)
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}


def _get(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], node


# ---- composition of every option ---------------------------------------------------------------------------


def test_every_option_in_the_tree_has_an_expectation() -> None:
    # A new option under conf/ must come with a statement of what it sets (and so a test below).
    assert len(GROUP_OPTIONS) >= 38
    assert set(GROUP_OPTIONS) == set(EXPECTED)


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_option_composes_validates_and_sets_its_fields(hydra_ctx: None, group: str, option: str) -> None:
    cfg = _compose([f"{group}='{option}'"])
    validate(cfg)
    for key, value in EXPECTED[(group, option)].items():
        got = _get(cfg, key)
        assert type(got) is type(value), (key, got)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, (key, got, value)

    # Every value the YAML file writes ends up where its package says (global or under the group).
    raw = (CONF_DIR / group / f"{option}.yaml").read_text()
    data = OmegaConf.to_container(OmegaConf.create(raw))
    assert isinstance(data, dict)
    data.pop("defaults", None)
    prefix = "" if "@package _global_" in raw else f"{group}."
    for key, value in _leaves(data):
        assert _get(cfg, prefix + key) == value, (prefix + key, value)


def test_options_named_like_numbers_and_booleans_need_quoting(hydra_ctx: None) -> None:
    # Why quote_group_values exists: unquoted, Hydra parses 0.1 / true as a float / bool and refuses them.
    with pytest.raises((HydraException, ValueError), match="must be a string"):
        compose(config_name="config", overrides=["critic_init=0.1"])
    with pytest.raises((HydraException, ValueError), match="must be a string"):
        compose(config_name="config", overrides=["normalise_int_reward=true"])


def test_defaults_are_the_seeds(hydra_ctx: None) -> None:
    cfg = _compose([])
    validate(cfg)
    assert cfg["model"] == {"name": "A", "critic_init_gain": 0.1}
    assert cfg["motivation"]["name"] == "rnd"
    assert cfg["motivation"]["normalise_int_reward"] is False
    assert cfg["env"]["id"] == "MontezumaRevenge-v5"
    assert (cfg["ppo"]["num_envs"], cfg["ppo"]["num_steps"], cfg["ppo"]["minibatch_size"]) == (128, 128, 512)


@pytest.mark.parametrize("name", sorted(SEED_TABLE))
def test_experiment_preset_is_its_row_of_the_seed_table(hydra_ctx: None, name: str) -> None:
    model, nir, gain = SEED_TABLE[name]
    preset = _compose([f"experiment={name}"])
    assert preset["model"]["name"] == model
    assert preset["motivation"]["normalise_int_reward"] is nir
    assert preset["model"]["critic_init_gain"] == pytest.approx(gain, rel=1e-15)
    assert preset["motivation"]["name"] == "rnd"
    # ...and nothing else: the preset is exactly the same config as choosing its three groups by hand.
    critic = "sqrt2" if gain == SQRT2 else "0.1"
    by_hand = _compose([f"model={model}", f"normalise_int_reward='{str(nir).lower()}'", f"critic_init='{critic}'"])
    assert preset == by_hand


def test_command_line_group_choice_wins_over_the_experiment_preset(hydra_ctx: None) -> None:
    cfg = _compose(["experiment=ppo_rnd_b3", "model=C"])
    assert cfg["model"]["name"] == "C"
    assert cfg["model"]["critic_init_gain"] == pytest.approx(SQRT2)
    assert cfg["motivation"]["normalise_int_reward"] is True


# ---- quoting of group choices ------------------------------------------------------------------------------


def test_quote_group_values_quotes_group_choices_and_leaves_values_alone() -> None:
    args = ["critic_init=0.1,sqrt2", "normalise_int_reward=true", "model=A,B", "ppo.learning_rate=0.1", "seed=3"]
    out = quote_group_values(args, preflight.GROUPS)
    assert out[2:] == ["model=A,B", "ppo.learning_rate=0.1", "seed=3"]  # strings and non-groups: untouched

    parser = OverridesParser.create()
    sweep = parser.parse_override(out[0])
    assert sweep.is_sweep_override()
    # Unquoted, Hydra reads 0.1 as a float; quoted, no choice is a number or a bool any more.
    assert not any(isinstance(v, bool | int | float) for v in sweep.value().list)
    assert len(sweep.value().list) == 2
    single = parser.parse_override(out[1])
    assert single.value() == "true"
    assert isinstance(single.value(), str)  # the option name, not the bool True
    # A non-group override keeps its type: the learning rate is still the float 0.1.
    assert parser.parse_override(out[3]).value() == 0.1
    assert quote_group_values(["ppo.learning_rate=0.1,0.2"], preflight.GROUPS) == ["ppo.learning_rate=0.1,0.2"]


def test_quoted_group_choices_are_accepted_by_hydra_job_by_job(hydra_ctx: None) -> None:
    [crit, nir] = quote_group_values(["critic_init=0.1,sqrt2", "normalise_int_reward=true"], preflight.GROUPS)
    parser = OverridesParser.create()
    # Hydra's own sweeper splits the sweep into one override per job; each must compose.
    [jobs] = BasicSweeper.split_arguments([parser.parse_override(crit)], max_batch_size=None)
    gains = sorted(_compose([*job, nir])["model"]["critic_init_gain"] for job in jobs)
    assert gains == pytest.approx([0.1, SQRT2])
    assert _compose([nir])["motivation"]["normalise_int_reward"] is True
    [nir_false] = quote_group_values(["normalise_int_reward=false"], preflight.GROUPS)
    assert _compose([nir_false])["motivation"]["normalise_int_reward"] is False


# ---- the grid pre-flight -----------------------------------------------------------------------------------


def _plan(*args: str) -> preflight.Plan:
    return preflight.plan(quote_group_values(list(args), preflight.GROUPS), multirun=True)


def test_plan_of_the_users_grid_names_the_presets() -> None:
    p = _plan("model=A,B,C,D", "critic_init=0.1,sqrt2")
    assert len(p.jobs) == 8
    names = {j.name for j in p.jobs}
    assert len(names) == 8
    presets = {"ppo_rnd_a0", "ppo_rnd_b0", "ppo_rnd_b1", "ppo_rnd_c0", "ppo_rnd_c1", "ppo_rnd_d0"}
    assert presets <= names
    for job in p.jobs:
        model, critic = job.choices["model"], job.choices["critic_init"]
        # The composed config is the grid point's.
        assert job.config["model"]["name"] == model
        assert job.config["model"]["critic_init_gain"] == pytest.approx(SQRT2 if critic == "sqrt2" else 0.1)
        if job.name not in presets:  # A/sqrt2 and D/sqrt2 are not in the seed's table
            assert critic == "sqrt2" and model in ("A", "D")
            assert job.name.startswith(f"ppo_rnd_{model.lower()}")
            assert "sqrt2" in job.name and "false" in job.name
        assert job.run_id == f"{job.name}-s1"
    assert {(j.choices["model"], j.choices["critic_init"]) for j in p.jobs} == {
        (m, c) for m in "ABCD" for c in ("0.1", "sqrt2")
    }
    assert len({j.run_id for j in p.jobs}) == 8
    assert p.dry_run is False


def test_plan_glob_of_experiments_is_the_seed_table() -> None:
    p = _plan("experiment=glob(ppo_rnd_*)")
    assert sorted(j.name for j in p.jobs) == sorted(SEED_TABLE)
    for job in p.jobs:
        model, nir, gain = SEED_TABLE[job.name]
        assert job.config["model"]["name"] == model
        assert job.config["motivation"]["normalise_int_reward"] is nir
        assert job.config["model"]["critic_init_gain"] == pytest.approx(gain)


def test_plan_seed_range_gives_one_run_per_seed() -> None:
    p = _plan("seed=range(1,4)", "experiment=ppo_rnd_b1")
    assert len(p.jobs) == 3
    assert sorted(j.run_id for j in p.jobs) == ["ppo_rnd_b1-s1", "ppo_rnd_b1-s2", "ppo_rnd_b1-s3"]
    assert sorted(j.config["seed"] for j in p.jobs) == [1, 2, 3]
    assert {j.name for j in p.jobs} == {"ppo_rnd_b1"}


def test_plan_value_sweep_gives_distinct_run_ids_and_values() -> None:
    p = _plan("ppo.learning_rate=1e-4,3e-4")
    assert len(p.jobs) == 2
    assert len({j.run_id for j in p.jobs}) == 2
    assert sorted(j.config["ppo"]["learning_rate"] for j in p.jobs) == pytest.approx([1e-4, 3e-4])
    assert all("learning_rate" in j.run_id for j in p.jobs)
    assert all(isinstance(j.config["ppo"]["learning_rate"], float) for j in p.jobs)


def test_plan_of_a_thousand_point_grid() -> None:
    p = _plan("seed=range(0,250)", "model=A,B,C,D")
    assert len(p.jobs) == 1000
    assert len({j.run_id for j in p.jobs}) == 1000
    assert {(j.choices["model"], j.config["seed"]) for j in p.jobs} == {(m, s) for m in "ABCD" for s in range(250)}


def test_plan_refuses_grid_points_that_share_a_run_directory() -> None:
    with pytest.raises(ConfigError, match="share the run directory"):
        _plan("seed=1,1")


def test_plan_refuses_a_sweep_without_multirun() -> None:
    with pytest.raises(ConfigError, match="-m"):
        preflight.plan(["seed=1,2"], multirun=False)


def test_plan_reports_the_first_bad_grid_point() -> None:
    with pytest.raises(ConfigError, match=r"ppo\.num_envs: 0"):
        _plan("ppo.num_envs=8,0")


# ---- sweep.py through real subprocesses --------------------------------------------------------------------


def _sweep(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A scratch cwd: a sweeps/ or runs/ directory a buggy run might create lands there, not in the repo. The
    # timeout stops a bad input that slipped through from training for real.
    return subprocess.run(
        [sys.executable, str(SWEEP_PY), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_dry_run_of_the_users_grid(tmp_path: Path) -> None:
    res = _sweep(tmp_path, "-m", "model=A,B,C,D", "critic_init=0.1,sqrt2", "dry_run=true")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    rows = [line for line in res.stdout.splitlines() if re.match(r"^\d+\s", line)]
    assert len(rows) == 8
    assert sorted(int(r.split()[0]) for r in rows) == list(range(8))
    assert any(r.split()[1] == "ppo_rnd_b1-s1" for r in rows)
    assert "8 job(s)" in res.stdout
    assert "nothing was started" in res.stdout
    assert not (tmp_path / "sweeps").exists()
    assert not (tmp_path / "runs").exists()
    assert list(tmp_path.iterdir()) == []


# (args, key, regex of the bad value right after the key, texts that say what is allowed)
BAD_INPUTS = {
    "unknown-group-option": (["model=E"], "model", "E", ["A, B, C, D"]),
    "unknown-key": (["ppo.num_env=3"], "ppo.num_env", "", ["ppo.num_envs"]),
    "wrong-type": (["ppo.num_envs=abc"], "ppo.num_envs", "'?abc'?", ["integer"]),
    "num-envs-zero": (["ppo.num_envs=0"], "ppo.num_envs", "0", [">= 1"]),
    "negative-lr": (["ppo.learning_rate=-1e-4"], "ppo.learning_rate", r"-(1e-0?4|0\.0001)", ["> 0"]),
    "clip-above-1": (["ppo.clip_coef=1.5"], "ppo.clip_coef", r"1\.5", ["(0, 1)"]),
    "clip-zero": (["ppo.clip_coef=0"], "ppo.clip_coef", r"0(\.0)?\b", ["(0, 1)"]),
    # 500 does not divide 128 envs * 128 steps = 16384.
    "minibatch-not-dividing": (["ppo.minibatch_size=500"], "ppo.minibatch_size", "500", ["divide", "16384"]),
    "unknown-env-id": (["env.id=NotAGame-v5"], "env.id", "'?NotAGame-v5'?", ["fake, maze, chain", "Atari"]),
    "bad-value-inside-sweep": (["-m", "ppo.num_envs=8,0"], "ppo.num_envs", "0", [">= 1"]),
    "unknown-compile-mode": (["perf.compile=fast"], "perf.compile", "'?fast'?", ["none, default, reduce-overhead"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_cli_bad_input_exits_2_with_one_clear_message(tmp_path: Path, case: str) -> None:
    args, key, bad, allowed = BAD_INPUTS[case]
    res = _sweep(tmp_path, *args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert re.search(re.escape(key) + (r"[:=\s]+" + bad if bad else r"\b"), res.stderr), res.stderr
    for text in allowed:
        assert text in res.stderr, (text, res.stderr)
    assert "rlsweep: error:" in res.stderr
    # Nothing ran: no job table, no sweep or run directory.
    assert "nothing was started" not in res.stdout
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_non_atari_envpool_id(tmp_path: Path) -> None:
    res = _sweep(tmp_path, "env.id=CartPole-v1", "dry_run=true")
    assert res.returncode == 2
    assert "env.id" in res.stderr
