"""Random Network Distillation as the seed implements it (details and sources: the package docstring).

Everything is the shared distillation machinery (:mod:`rlsweep.motivation.distillation`) with a frozen target:
``update`` is one masked predictor step.
"""

from __future__ import annotations

from rlsweep.motivation.base import register_motivation
from rlsweep.motivation.distillation import Distillation


@register_motivation
class RND(Distillation):
    name = "rnd"
    frozen_target = True
    author_stats_from_next = True  # the author's RND agent updates its RunningStats with s_{t+1}
