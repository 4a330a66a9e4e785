"""Scores normalised per game, so that a sweep over several games can be aggregated (rliable's practice).

Raw scores of different games live on different scales (Montezuma's thousands, Coinrun's 10), so an effect
averaged over games would be the effect on the game with the largest numbers. The report therefore adds
``episode/score_normalised`` = (score - low) / (high - low) per game when the ``env`` factor varies, and leads
with it:

* Atari: human-normalised, low = a uniformly random policy's score, high = the human tester's, the reference
  pair used since Mnih et al. (2015) and tabulated again in Badia et al. (2020, Agent57, Table H.1).
* Procgen: Cobbe et al. (2020), Procgen paper, Appendix: low = R_min, high = R_max of the game's mode; the
  exploration levels the SND experiments use are hard-mode levels, so they take the hard-mode pair.

The keys are the ``env`` config group's option names (what a run records as its ``env`` choice). A game with
no pair here (the maze, the fake env, an env a user added) gets no normalised score; the report says so.
"""

from __future__ import annotations

import numpy as np

from rlsweep.analysis.load import SweepData

SCORE = "episode/score"
NORMALISED = "episode/score_normalised"

# env group option -> (low, high): random and human score (Atari), R_min and R_max of hard mode (Procgen).
REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "montezuma": (0.0, 4753.3),
    "pitfall": (-229.4, 6463.7),
    "private_eye": (24.9, 69571.3),
    "venture": (0.0, 1187.5),
    "gravitar": (173.0, 3351.4),
    "solaris": (1236.3, 12326.7),
    "road_runner": (11.5, 7845.0),
    "caveflyer": (2.0, 13.4),
    "climber": (1.0, 12.6),
    "coinrun": (5.0, 10.0),
    "jumper": (1.0, 10.0),
}

# The Atari games above: their low end is a uniformly random policy's score (Procgen's is R_min, not a policy's).
ATARI_GAMES = frozenset({"montezuma", "pitfall", "private_eye", "venture", "gravitar", "solaris", "road_runner"})


def add_normalised_score(data: SweepData) -> list[str]:
    """Add :data:`NORMALISED` to ``data.metrics`` when the sweep spans several games with a logged score.

    Returns the envs of the sweep that have no reference pair (their runs get NaN, so they are left out of
    the normalised comparison, not mixed in raw); empty when every env has one or nothing was added.
    """
    if "env" not in data.factors or SCORE not in data.metrics or not data.metrics[SCORE].notna().any():
        return []
    envs = data.metrics["env"].astype(str)
    low = envs.map(lambda e: REFERENCE_SCORES.get(e, (np.nan, np.nan))[0]).astype(float)
    high = envs.map(lambda e: REFERENCE_SCORES.get(e, (np.nan, np.nan))[1]).astype(float)
    data.metrics[NORMALISED] = (data.metrics[SCORE].astype(float) - low) / (high - low)
    if NORMALISED not in data.metric_names:
        data.metric_names = sorted([*data.metric_names, NORMALISED])
    return sorted({e for e in envs.unique() if e not in REFERENCE_SCORES})
