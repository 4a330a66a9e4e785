"""The SND paper's presets ``paper_<variant>_<game>``, generated from one base and a table of games.

Each preset must compose to exactly the config of choosing its groups by hand plus the paper's values, stated
here from the paper (docs/method.md §3.4) independently of rlsweep.config.presets: a whole-config
comparison, so a value the generator adds or drops shows up as a difference.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from rlsweep.config import CONF_DIR, validate
from rlsweep.config.naming import config_name
from rlsweep.config.presets import generated_experiments

ATARI = ("montezuma", "gravitar", "venture", "private_eye", "pitfall", "solaris")
PROCGEN = ("caveflyer", "climber", "coinrun", "jumper")
VARIANTS = {"baseline": "none", "rnd": "rnd", "snd_v": "snd_v", "snd_vic": "snd_vic", "snd_std": "snd_std"}
# motivation_eta per game (method.md §3.4): SND-V 0.5 everywhere, SND-VIC 0.25 on Atari and 0.5 on Procgen,
# SND-STD tuned per game.
SND_STD_ETA = {"montezuma": 1.0, "gravitar": 1.0, "pitfall": 1.0, "jumper": 1.0, "climber": 1.0,
               "private_eye": 0.5, "solaris": 0.5, "caveflyer": 0.5, "venture": 0.25, "coinrun": 0.25}  # fmt: skip
CELLS = [(v, g) for v in VARIANTS for g in (*ATARI, *PROCGEN)]


def paper_values(variant: str, game: str) -> dict[str, Any]:
    """Dotted key -> value the paper sets on top of the group options."""
    values: dict[str, Any] = {"ppo.minibatch_sampling": "permutation"}
    if variant == "baseline" and game == "montezuma":
        values["ppo.gamma_ext"] = 0.99  # the baseline's single discount on Montezuma
    if variant == "rnd":
        values |= {
            "motivation.network": "a",
            "motivation.obs_norm": "mean",
            "motivation.warmup_steps": 0,
            "motivation.update_proportion": 0.25,  # fixed in the paper, scaled with the envs in the seed
        }
    if variant in ("rnd", "snd_v", "snd_vic", "snd_std"):
        values["motivation.predictor_updates"] = "one_pass"
    if variant == "snd_v":
        values["motivation.reward_scale"] = 0.5
    if variant == "snd_vic":
        values["motivation.reward_scale"] = 0.25 if game in ATARI else 0.5
    if variant == "snd_std":
        values["motivation.reward_scale"] = SND_STD_ETA[game]
    return values


def _compose(overrides: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    choices = {str(k): str(v) for k, v in cfg.hydra.runtime.choices.items() if not str(k).startswith("hydra/") and v}
    plain = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"]), resolve=True)
    assert isinstance(plain, dict)
    return {str(k): v for k, v in plain.items()}, choices


def _set(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    assert leaf in node, dotted
    node[leaf] = value


def test_the_paper_presets_are_the_fifty_cells_and_no_files(hydra_ctx: None) -> None:
    options = GlobalHydra.instance().config_loader().get_group_options("experiment")
    assert sorted(o for o in options if o.startswith("paper_")) == sorted(f"paper_{v}_{g}" for v, g in CELLS)
    assert set(generated_experiments()) == {f"paper_{v}_{g}" for v, g in CELLS}
    # Generated, not written: no file repeats them (a file of the same name would shadow the preset).
    assert not list((CONF_DIR / "experiment").rglob("paper_*"))
    files = {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
    assert not files & set(generated_experiments())


@pytest.mark.parametrize(("variant", "game"), CELLS, ids=[f"{v}-{g}" for v, g in CELLS])
def test_paper_preset_is_its_groups_plus_the_papers_values(hydra_ctx: None, variant: str, game: str) -> None:
    name = f"paper_{variant}_{game}"
    preset, choices = _compose([f"experiment={name}"])
    validate(preset)
    groups = {
        "model": "C",
        "normalise_int_reward": "false",
        "critic_init": "0.1",
        "motivation": VARIANTS[variant],
        "env": game,
        "budget": "full" if game in ATARI else "full_procgen",
    }
    by_hand, by_hand_choices = _compose([f"{g}='{o}'" for g, o in groups.items()])
    assert choices == {**by_hand_choices, "experiment": name}
    expected = copy.deepcopy(by_hand)
    for key, value in paper_values(variant, game).items():
        _set(expected, key, value)
    assert preset == expected
    # ...and the preset names its runs while its choices hold.
    assert config_name(choices) == name


def test_glob_over_the_generated_presets(hydra_ctx: None) -> None:
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    [montezuma, snd_std] = parser.parse_overrides(
        ["experiment=glob(paper_*_montezuma)", "experiment=glob(paper_snd_std_*)"]
    )
    assert sorted(montezuma.sweep_string_iterator()) == sorted(f"paper_{v}_montezuma" for v in VARIANTS)
    assert sorted(snd_std.sweep_string_iterator()) == sorted(f"paper_snd_std_{g}" for g in (*ATARI, *PROCGEN))


def test_a_group_overridden_away_from_a_paper_preset_is_named_from_it(hydra_ctx: None) -> None:
    _, choices = _compose(["experiment=paper_snd_std_montezuma", "env=coinrun"])
    assert config_name(choices) == "ppo_snd_std_c-nir_false-ci_0.1-env_coinrun-from_paper_snd_std_montezuma"
    _, choices = _compose(["experiment=paper_rnd_gravitar", "budget=smoke", "ppo=cleanrl"])
    assert config_name(choices) == "paper_rnd_gravitar-ppo_cleanrl"  # budget does not name; ppo is not its group


def test_generated_experiments_are_copies() -> None:
    first = generated_experiments()
    first["paper_rnd_montezuma"]["motivation"]["network"] = "c"
    assert generated_experiments()["paper_rnd_montezuma"]["motivation"]["network"] == "a"
