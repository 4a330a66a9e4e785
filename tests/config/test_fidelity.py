"""``fidelity=author``: one switch that undoes every deliberate departure from the author's code
(docs/method.md §7.1), on any preset of the seed, and names its runs apart from the default ones."""

from __future__ import annotations

import pytest

from rlsweep.config import CONF_DIR
from rlsweep.config.overrides import quote_group_values
from rlsweep.launching.plan import GROUPS, plan

SEED_PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("ppo_*.yaml"))
AUTHOR = {"ppo.bootstrap_last": False, "motivation.stats_state": "author", "motivation.obs_var_floor": 1e-3}
RLSWEEP = {"ppo.bootstrap_last": True, "motivation.stats_state": "input", "motivation.obs_var_floor": 0.0}


def _point(*overrides: str) -> tuple[str, dict[str, object]]:
    (point,) = plan(quote_group_values(list(overrides), GROUPS), multirun=False).points
    flat = {f"{s}.{k}": v for s in ("ppo", "motivation") for k, v in point.config[s].items()}
    return point.run_id, {k: flat[k] for k in AUTHOR}


@pytest.mark.parametrize("preset", SEED_PRESETS)
def test_every_seed_preset_composes_and_checks_either_way(preset: str) -> None:
    default_id, default = _point(f"experiment={preset}")
    author_id, author = _point(f"experiment={preset}", "fidelity=author")
    assert default == RLSWEEP and author == AUTHOR
    assert author_id == default_id.replace("-s1", "-fidelity_author-s1")  # the two never share a run directory


def test_the_switch_sets_only_what_it_lists() -> None:
    (plain,) = plan(["experiment=ppo_rnd_a0"], multirun=False).points
    (author,) = plan(["experiment=ppo_rnd_a0", "fidelity=author"], multirun=False).points
    changed = {
        f"{s}.{k}" for s in plain.config if isinstance(plain.config[s], dict)
        for k in plain.config[s] if plain.config[s][k] != author.config[s][k]
    }  # fmt: skip
    assert changed == set(AUTHOR)
