"""PPO learns on real Atari through the real env stack (envpool's emulator, rlsweep's AtariEnv, the training
loop): the check that fails when an env-library change breaks learning without breaking any interface.

``experiment=atari_check`` is plain PPO on Road Runner for 32 k agent steps, sized for a 2-core CPU. Measured
with benchmarks/atari_learning_check.py (results in benchmarks/results/, the 2-core VM): the mean score of the
episodes ending in the second half of the run was 102–858 over 5 trained seeds and 6.5–32.5 for a uniformly
random policy over 8 seeds. Trained scores are heavy-tailed (their logs have a standard deviation of about
0.8), so one seed would fall below a bound of 60 a few percent of the time; the mean of two seeds hardly ever
does (about 0.2 % under a log-normal fit), while a policy no better than random (below 33 per seed) stays far
under it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from inline import metrics, sweep_inline

pytestmark = [pytest.mark.slow]

BOUND = 60.0  # between the random policy's highest seed (32.5) and the trained seeds' lowest (102)
SEEDS = (1, 2)


def test_ppo_scores_well_above_random_on_road_runner(tmp_path: Path) -> None:
    sweep = sweep_inline(tmp_path, "experiment=atari_check", f"seed={','.join(map(str, SEEDS))}", "logger=none",
                         sweep_name="atari")  # fmt: skip
    scores = {}
    for seed in SEEDS:
        rows = metrics(sweep / f"atari_check-s{seed}")
        total = rows[-1]["global_step"]
        assert total == 32_768
        late = [r for r in rows if r["global_step"] > total // 2 and r.get("episode/count")]
        count = sum(r["episode/count"] for r in late)
        assert count >= 20, f"seed {seed}: only {count} episodes ended in the second half"
        scores[seed] = sum(r["episode/score"] * r["episode/count"] for r in late) / count
    mean = sum(scores.values()) / len(scores)
    assert mean >= BOUND, f"mean score {mean:.1f} over seeds {scores} (random play: 6.5-32.5)"
